"""Inline suppressions, code selection, and how they meet the exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from coherence.results import FileReport, Finding, RunReport
from coherence.source import Span
from coherence.suppress import (
    Selection,
    every_code,
    front_end_only,
    parse_suppressions,
    triage,
)
from tests.ci.policy_run import assert_agree, check_all, spec_copy
from tests.ci.util import OVERLOAD, SUPPRESSED, cli


def test_parse_trailing_and_own_line_suppressions() -> None:
    text = (
        "system s {\n"  # 1
        "  param a = 1   # coherence: ignore[COH218] kept for later\n"  # 2
        "  # coherence: ignore[COH505, COH506] bounded on purpose\n"  # 3
        "  # coherence: ignore[COH3] linear verdict is local\n"  # 4
        "\n"  # 5
        "  state q : req in [0, 1] init 0\n"  # 6
        '  let doc = "# coherence: ignore[COH999] inside a string"\n'  # 7
        "}\n"
    )
    found, errors = parse_suppressions("s.coh", text)
    assert not errors
    assert [(s.target, s.codes, s.reason) for s in found] == [
        (2, ("COH218",), "kept for later"),
        (6, ("COH505", "COH506"), "bounded on purpose"),
        (6, ("COH3",), "linear verdict is local"),
    ]
    assert found[0].span == Span("s.coh", 2, 17, 2, 59)


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("# coherence: ignore[COH218]", "the suppression of COH218 gives no reason"),
        ("# coherence: ignore[COH218] -- ", "the suppression of COH218 gives no reason"),
        ("# coherence: ignore", "this suppression names no codes"),
        ("# coherence: ignore[] because", "this suppression names no codes"),
        ("# coherence: ignore[E501] because", "`E501` is not a diagnostic code"),
    ],
)
def test_malformed_suppressions_are_coh220(comment: str, message: str) -> None:
    found, errors = parse_suppressions("s.coh", f"  param a = 1  {comment}\n")
    assert not found
    assert [(d.code, d.message) for d in errors] == [("COH220", message)]


def finding(code: str, line: int, key: str = "") -> Finding:
    return Finding(code, f"{code} here", Span("s.coh", line, 3, line, 9), key=key or code)


def run_of(text: str, *findings: Finding) -> RunReport:
    diags = tuple(f.as_diagnostic() for f in findings)
    return RunReport((FileReport("s.coh", diags, (), text),))


def test_triage_silences_matching_codes_on_the_target_line_only() -> None:
    text = "a\n  x  # coherence: ignore[COH5] accepted: the bound is real\nb\n"
    run = triage(run_of(text, finding("COH505", 2), finding("COH505", 3), finding("COH218", 2)))
    assert [f.code for f in run.findings] == ["COH218", "COH505"]
    assert [f.span.line for f in run.findings] == [2, 3]
    assert [(s.finding.code, s.kind, s.justification) for s in run.suppressed] == [
        ("COH505", "inSource", "accepted: the bound is real")
    ]


def test_unused_suppressions_warn_only_for_codes_the_run_could_report() -> None:
    text = "  x  # coherence: ignore[COH218,COH401] both accepted\n"
    full = triage(run_of(text), judge=every_code)
    partial = triage(run_of(text), judge=front_end_only)
    assert [f.message for f in full.findings] == ["this suppression of COH218 silences nothing"]
    assert [f.code for f in partial.findings] == ["COH221"]
    # COH401 is judged only when the file's systems were analysed (here: none)
    assert "COH401" not in " ".join(f.message for f in full.findings)


def test_suppression_problems_cannot_themselves_be_suppressed() -> None:
    text = "  # coherence: ignore[COH220] trying my luck\n  y  # coherence: ignore[COH218]\n"
    run = triage(run_of(text))
    assert [(f.code, f.span.line) for f in run.findings] == [("COH221", 1), ("COH220", 2)]


def test_selection_uses_the_longest_prefix() -> None:
    sel = Selection(select=("COH3", "COH5"), ignore=("COH50", "COH303"))
    assert sel.enabled("COH301") and not sel.enabled("COH303")
    assert not sel.enabled("COH505") and not sel.enabled("COH201")
    assert Selection(select=("COH505",), ignore=("COH5",)).enabled("COH505")
    assert Selection(ignore=("COH",)).enabled("COH100")  # an unreadable file always shows


def test_deselected_findings_are_counted_not_listed() -> None:
    run = triage(
        run_of("", finding("COH218", 1), finding("COH505", 1)), Selection(ignore=("COH2",))
    )
    assert [f.code for f in run.findings] == ["COH505"]
    assert run.deselected == 1 and not run.suppressed


@pytest.mark.usefixtures("in_root")
def test_suppressions_in_a_spec_end_to_end() -> None:
    code, out, _ = cli("check", SUPPRESSED, "--no-smt", "--no-linear", "--format", "json")
    import json

    doc = json.loads(out)
    codes = [d["code"] for d in doc["files"][0]["diagnostics"]]
    assert codes == ["COH218", "COH220", "COH221"]
    assert doc["summary"]["suppressed"] == 2
    assert code == 1  # COH220 is an error
    assert cli("check", SUPPRESSED, "--no-smt", "--no-linear", "--ignore", "COH220")[0] == 0


@pytest.mark.usefixtures("in_root")
def test_fail_level_and_exit_zero_with_suppressions(tmp_path: Path) -> None:
    spec = tmp_path / "o.coh"
    text = (Path(OVERLOAD)).read_text()
    assert cli("check", OVERLOAD, "--no-smt", "--no-linear", "--fail-level", "warning")[0] == 1
    silenced = text.replace(
        "    objective keep latency <= slo",
        "    objective keep latency <= slo  # coherence: ignore[COH506] warm-up transient",
    )
    spec.write_text(silenced)
    assert cli("check", str(spec), "--no-smt", "--no-linear", "--fail-level", "warning")[0] == 0
    assert (
        cli("check", OVERLOAD, "--no-smt", "--no-linear", "--fail-level", "note", "--exit-zero")[0]
        == 0
    )
    assert cli("check", OVERLOAD, "--no-smt", "--no-linear", "--select", "COH2")[0] == 0
    assert cli("check", OVERLOAD, "--no-smt", "--no-linear", "--select", "COH8")[0] == 2


@pytest.mark.usefixtures("fake_analyses")
def test_a_suppressed_conflict_is_out_of_the_decision_in_every_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # the text report's table cells in full
    # without the suppression the conflict falsifies `require coherent`: every output fails
    bare = check_all(spec_copy(tmp_path / "bare"), tmp_path / "bare")
    assert_agree(bare)
    assert bare.code == 1 and bare.verdict("require coherent")["shown"] == "falsified"
    assert bare.json["files"][0]["systems"][0]["coherence"] == "incoherent"
    assert "conflicting (latency +1.2 s, 3s after it acts) |" in bare.markdown

    # -v: the text report shows the analyses' tables (the alignment table) only when verbose
    o = check_all(spec_copy(tmp_path, suppressed=True), tmp_path, "-v")
    assert_agree(o)
    assert o.code == 0 and o.result == "inconclusive"  # the unknown is left, as a warning
    v = o.verdict("require coherent")
    assert (v["shown"], v["outcome"], v["passed"]) == (
        "falsified (suppressed)",
        "suppressed",
        False,
    )
    skipped = o.case("require coherent").find("skipped")
    assert skipped is not None
    assert str(skipped.get("message")).startswith("falsified (suppressed)")
    assert "| require coherent | falsified (suppressed) | smt |" in o.markdown
    assert "falsified (suppressed)" in o.text
    # the alignment table says which cell the suppressed finding decided
    cell = "conflicting (latency +1.2 s, 3s after it acts; suppressed)"
    assert cell in o.markdown and cell in o.text
    smt = next(a for a in o.json["files"][0]["systems"][0]["analyses"] if a["analysis"] == "smt")
    assert smt["tables"][0]["rows"][1][1] == cell
    assert smt["tables"][0]["rows"][0][2] == "aligned (proved, k=4)"  # other cells untouched
    # SARIF keeps the result with its suppression; GitHub does not annotate it
    (conflict,) = [r for r in o.sarif["runs"][0]["results"] if r["ruleId"] == "COH401"]
    assert conflict["suppressions"][0]["kind"] == "inSource"
    assert "COH401" not in o.github
    system = o.json["files"][0]["systems"][0]
    assert system["coherence"] == "inconclusive"
    assert "not counted: COH401 (conflict:router)" in system["explanation"]
    assert o.json["summary"]["verdicts"] == {"falsified": 0, "unknown": 1, "accepted": 1}
