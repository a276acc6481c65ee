"""Every output format: golden files, schema validity, and the details each format promises.

Golden files live in tests/golden/reports/ (regenerate with ``pytest --update-golden``):
each format on three specs checked with ``--no-smt --no-linear`` (deterministic), and on a
synthetic run that uses every part of the result model (verdicts, tables, data, traces,
suppressions), since the analyses that produce those are still being written.

tests/data/sarif-2.1.0.json is the official OASIS schema, unchanged:
oasis-tcs/sarif-spec, Schemata/sarif-schema-2.1.0.json at commit 0a8091f7d4057e57b6d8d9b56129e5f918747b34.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from coherence.diagnostics import REGISTRY, Severity
from coherence.policy import Policy
from coherence.reports import FORMATS, RenderOptions, render
from coherence.reports.github import escape_data, escape_property
from coherence.reports.json import schema
from coherence.reports.text import make_console, render_table
from coherence.results import (
    AnalysisResult,
    Finding,
    RunReport,
    Table,
    TraceStep,
    TraceView,
)
from tests.ci import model
from tests.ci.policy_run import ALWAYS, assert_agree, check_all, spec_copy
from tests.ci.util import OVERLOAD, SARIF_SCHEMA, SUPPRESSED, TIPPING, cli, normalise

SPECS = {"tipping_point": TIPPING, "overload": OVERLOAD, "suppressed": SUPPRESSED}
SUFFIX = {
    "text": "txt",
    "json": "json",
    "sarif": "sarif.json",
    "junit": "junit.xml",
    "github": "github.txt",
    "markdown": "md",
    "gitlab": "gitlab.json",
}


def sarif_validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8")))


def report_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def rendered(
    fmt: str, run: Any, options: RenderOptions | None = None, policy: Policy | None = None
) -> str:
    out = io.StringIO()
    render(fmt, run, out, options or RenderOptions(color=False, width=100), policy)
    return out.getvalue()


@pytest.mark.usefixtures("in_root")
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", list(SPECS))
def test_golden_reports_of_specs(golden: Any, fmt: str, name: str) -> None:
    code, out, err = cli("check", SPECS[name], "--no-smt", "--no-linear", "--format", fmt)
    assert code in (0, 1), err
    golden.check(f"reports/{name}.{SUFFIX[fmt]}", normalise(out))


@pytest.mark.usefixtures("in_root")
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_golden_reports_of_the_synthetic_run(golden: Any, fmt: str) -> None:
    options = RenderOptions(color=False, width=100)
    policy = Policy(fail_level=Severity.WARNING)
    golden.check(
        f"reports/synthetic.{SUFFIX[fmt]}",
        normalise(rendered(fmt, model.triaged(), options, policy)),
    )


@pytest.mark.usefixtures("in_root")
@pytest.mark.parametrize("name", list(SPECS))
def test_sarif_is_valid_against_the_official_schema(name: str) -> None:
    _, out, _ = cli("check", SPECS[name], "--no-smt", "--no-linear", "--format", "sarif")
    sarif_validator().validate(json.loads(out))


@pytest.mark.usefixtures("in_root")
def test_synthetic_sarif_and_json_are_valid() -> None:
    sarif_validator().validate(json.loads(rendered("sarif", model.triaged())))
    report_validator().validate(json.loads(rendered("json", model.triaged())))


@pytest.mark.usefixtures("in_root")
@pytest.mark.parametrize("name", list(SPECS))
def test_json_is_valid_against_its_schema(name: str) -> None:
    _, out, _ = cli("check", SPECS[name], "--no-smt", "--no-linear", "--format", "json")
    doc = json.loads(out)
    report_validator().validate(doc)
    assert doc["schema_version"] == "1"


def test_the_json_schema_is_a_valid_schema_and_shipped_in_the_package() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["schema_version"]["const"] == "1"


def test_the_vendored_sarif_schema_is_the_official_one() -> None:
    doc = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(doc)
    assert doc["id"].endswith("/sarif-schema-2.1.0.json") and "oasis-open.org" in doc["id"]
    assert doc["properties"]["version"]["enum"] == ["2.1.0"]


@pytest.mark.usefixtures("in_root")
def test_json_writes_non_finite_numbers_and_numpy_values_as_valid_json() -> None:
    text = rendered("json", model.triaged())
    doc = json.loads(text)  # strict: NaN / Infinity would not even be written
    system = doc["files"][0]["systems"][0]
    linear = next(a for a in system["analyses"] if a["analysis"] == "linear")
    assert linear["data"]["eigenvalues"][0] == {"re": 0.5, "im": 0.5}
    assert linear["data"]["open_loop_radius"] == "inf"
    assert linear["data"]["participation"] == [0.63, 0.37]
    assert linear["data"]["stable"] is True
    assert linear["tables"][0]["rows"][1][1:3] == ["nan", "inf"]
    trace = next(f for f in system["findings"] if f["code"] == "COH501")["trace"]
    assert trace["steps"][2]["values"][2] == "inf" and trace["steps"][2]["violated"] is True


@pytest.mark.usefixtures("in_root")
def test_sarif_rules_are_the_whole_registry_in_code_order_with_help() -> None:
    doc = json.loads(rendered("sarif", model.triaged()))
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(REGISTRY)
    r = next(r for r in rules if r["id"] == "COH207")
    assert REGISTRY["COH207"].explanation in r["help"]["text"]
    assert "Example:" in r["help"]["text"] and r["defaultConfiguration"]["level"] == "error"
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


@pytest.mark.usefixtures("in_root")
def test_sarif_results_carry_fingerprints_traces_and_suppressions() -> None:
    run = json.loads(rendered("sarif", model.triaged()))["runs"][0]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    violated = by_rule["COH501"]
    assert violated["partialFingerprints"]["coherence/v1"] == model.findings()[0].fingerprint
    flow = violated["codeFlows"][0]["threadFlows"][0]["locations"]
    assert len(flow) == 3 and flow[-1]["kinds"] == ["danger"]
    assert len(violated["relatedLocations"]) == 2
    assert "suppressions" not in violated
    inline = by_rule["COH505"]["suppressions"][0]
    assert inline == {
        "kind": "inSource",
        "status": "accepted",
        "justification": "the bound models admission control",
        "location": inline["location"],
    }
    assert by_rule["COH312"]["suppressions"][0]["kind"] == "external"
    region = violated["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (28, 3)


def test_fingerprints_do_not_depend_on_lines() -> None:
    f = model.findings()[0]
    from dataclasses import replace

    moved = replace(f, span=replace(f.span, line=f.span.line + 7, end_line=f.span.end_line + 7))
    assert moved.fingerprint == f.fingerprint
    renamed = replace(f, key="always:other")
    assert renamed.fingerprint != f.fingerprint


@pytest.mark.usefixtures("in_root")
def test_junit_has_a_case_per_verdict_and_one_per_file() -> None:
    root = ET.fromstring(rendered("junit", model.triaged(), policy=Policy(Severity.ERROR)))
    cases = root.findall(".//testcase")
    names = [c.get("name") for c in cases]
    assert names == [
        "require stable [linear]",
        "require always latency <= 60 s for 120 ticks [smt]",
        "require stable [smt]",
        "require no bad equilibrium [smt]",
        "require coherent [smt]",
        "findings",
    ]
    # the unknown is not a failure at the error level under `--unknown warn`: it is skipped
    assert root.get("tests") == "6" and root.get("failures") == "1" and root.get("skipped") == "2"
    falsified = cases[1].find("failure")
    assert falsified is not None and falsified.get("type") == "COH501"
    assert "<-- violated" in (falsified.text or "")  # the trace is in the failure text
    unknown = cases[2].find("skipped")
    assert cases[2].find("failure") is None
    assert unknown is not None and unknown.get("message") == "unknown: resource limit"
    # the remaining finding (COH303, a warning) does not fail at the error level
    assert cases[-1].find("failure") is None


@pytest.mark.usefixtures("in_root")
def test_junit_findings_case_fails_at_the_fail_level() -> None:
    xml = rendered("junit", model.triaged(), policy=Policy(Severity.WARNING))
    findings_case = ET.fromstring(xml).findall(".//testcase")[-1]
    failure = findings_case.find("failure")
    assert failure is not None and failure.get("type") == "COH303"


@pytest.mark.usefixtures("in_root")
def test_github_annotations_are_workflow_commands() -> None:
    code, out, _ = cli("check", OVERLOAD, "--no-smt", "--no-linear", "--format", "github")
    first = out.splitlines()[0]
    assert first.startswith(
        "::warning file=tests/ci/data/overload.coh,line=24,col=5,endLine=24,endColumn=34,"
        "title=COH506::objective `autoscaler.latency` is violated"
    )
    assert out.splitlines()[-2].startswith("coherence: 1 file, 0 errors, 1 warning")
    assert out.splitlines()[-1] == "result: PASSED [--fail-level error --unknown warn]"
    assert code == 0


def test_github_escaping() -> None:
    assert escape_data("50%\nnext\r") == "50%25%0Anext%0D"
    assert escape_property("a:b,c") == "a%3Ab%2Cc"


@pytest.mark.usefixtures("in_root")
def test_markdown_draws_the_coupling_graph_in_mermaid() -> None:
    _, out, _ = cli("check", TIPPING, "--no-smt", "--no-linear", "--format", "markdown")
    assert "```mermaid\nflowchart LR" in out
    assert 'n2(["router"])' in out and "==>|actuates|" in out
    assert "| `tipping_point` | `specs/seed/tipping_point.coh` | COHERENT |" in out


@pytest.mark.usefixtures("in_root")
def test_text_hides_suppressed_findings_but_counts_them() -> None:
    _, out, _ = cli("check", SUPPRESSED, "--no-smt", "--no-linear", "--color", "never")
    assert "warning[COH506]" not in out and "spare" not in out
    # the coherence verdict says what it left out
    assert "(not counted: COH506 (objective:autoscaler.latency))" in out
    assert "(2 suppressed: 2 inline, 0 baseline)" in out


def test_text_honours_no_color_and_non_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    run = model.triaged()
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.chdir(model.__file__.rsplit("/tests/", 1)[0])
    plain = rendered("text", run, RenderOptions())  # a StringIO is not a terminal
    assert "\x1b[" not in plain
    forced = rendered("text", run, RenderOptions(color=True))
    assert "\x1b[" in forced
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in rendered("text", run, RenderOptions())


def test_every_format_renders_an_empty_run() -> None:
    for fmt in FORMATS:
        assert isinstance(rendered(fmt, RunReport(())), str)


# ---- one verdict, the same everywhere (tests/ci/policy_run.py) ---------------------------


@pytest.mark.usefixtures("fake_analyses")
@pytest.mark.parametrize(
    ("unknown", "result", "label", "level", "command"),
    [
        ("fail", "failed", "unknown", "error", "error"),
        ("warn", "inconclusive", "unknown", "warning", "warning"),
        ("ignore", "passed", "unknown (ignored)", "note", "notice"),
    ],
)
def test_every_output_follows_the_unknown_policy(
    tmp_path: Path, unknown: str, result: str, label: str, level: str, command: str
) -> None:
    # the conflict is suppressed inline, so that only the unknown verdict is in question
    spec = spec_copy(tmp_path, suppressed=True)
    o = check_all(spec, tmp_path, "--unknown", unknown)
    assert_agree(o)
    assert o.result == result and o.code == (1 if unknown == "fail" else 0)
    v = o.verdict(ALWAYS)
    assert (v["shown"], v["passed"]) == (label, False)
    assert v["outcome"] == {"fail": "fail", "warn": "warn", "ignore": "ignored"}[unknown]
    case = o.case(ALWAYS)
    if unknown == "fail":
        failure = case.find("failure")
        assert failure is not None and failure.get("message") == "unknown: resource limit"
    else:  # not a pass either: skipped, with the reason
        skipped = case.find("skipped")
        assert skipped is not None and skipped.get("message") == f"{label}: resource limit"
    assert o.sarif_levels()["COH901"] == level
    (annotation,) = [line for line in o.github.splitlines() if "title=COH901" in line]
    assert annotation.startswith(f"::{command} ")
    assert "title=COH401" not in o.github  # suppressed: not annotated
    assert f"| {ALWAYS} | {label} | smt |" in o.markdown
    assert f"{label}" in o.text and "INCONCLUSIVE" in o.text
    assert o.json["files"][0]["systems"][0]["coherence"] == "inconclusive"
    explanation = o.json["files"][0]["systems"][0]["explanation"]
    assert explanation.startswith(f"inconclusive: no error, but `{ALWAYS}` (smt: resource limit)")


@pytest.mark.usefixtures("fake_analyses")
def test_an_unknown_under_warn_fails_where_warnings_fail(tmp_path: Path) -> None:
    spec = spec_copy(tmp_path, suppressed=True)
    o = check_all(spec, tmp_path, "--fail-level", "warning")
    assert_agree(o)
    assert o.code == 1 and o.verdict(ALWAYS)["outcome"] == "fail"
    assert o.json["summary"]["failing"] == {"findings": 1, "verdicts": 1}


@pytest.mark.usefixtures("fake_analyses")
def test_the_unknown_policy_is_read_from_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_copy(tmp_path, suppressed=True)
    (tmp_path / "coherence.toml").write_text('unknown = "fail"\n')
    monkeypatch.chdir(tmp_path)
    o = check_all(spec, tmp_path)
    assert o.code == 1 and o.json["summary"]["policy"] == {"fail_level": "error", "unknown": "fail"}
    assert check_all(spec, tmp_path, "--unknown", "ignore").code == 0  # the option wins


def test_explain_coherence_says_how_the_verdict_is_decided() -> None:
    code, out, _ = cli("explain", "coherence")
    assert code == 0
    for word in ("INCOHERENT", "INCONCLUSIVE", "DEGRADED", "COHERENT", "--unknown"):
        assert word in out


# ---- the terminal report: verdict first, details with -v, one line with -q ----------------


def _text_lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def _index(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if line.startswith(start))


def _wide_run() -> RunReport:
    """The synthetic run with what a real one adds: the formal analysis' own copy of the
    verdicts, an empty table, a cell wider than 80 columns, and a trace of 200 ticks."""
    run = model.report()
    (fr,) = run.files
    (system,) = fr.systems
    steps = tuple(
        TraceStep(
            t,
            float(t),
            (float(t),),
            (f"autoscaler saw queue={t} req; held",) * (t % 7 == 0),
            violated=t == 150,
            significant=t % 7 == 0,
        )
        for t in range(200)
    )
    long_trace = TraceView("a long run", ("queue [req]",), steps, violation_tick=150)
    finding = Finding(
        "COH506",
        "objective `autoscaler.latency` is violated",
        model.span(24, 5, 34),
        trace=long_trace,
        key="objective:autoscaler.latency",
    )
    long_cell = "Z" * 30 + "_" + "W" * 70
    extra = AnalysisResult(
        "smt",
        (finding,),
        (),
        (
            Table(
                "Requirements", ("requirement", "status", "depth", "detail"), (("a", "b", 1, "c"),)
            ),
            Table("Nothing to show", ("a", "b"), ()),
            Table(
                "Wide",
                ("loop", "what", "more", "still more"),
                (("autoscaler", long_cell, long_cell, "z"),),
            ),
        ),
    )
    system = replace(system, analyses=(*system.analyses, extra))
    return replace(run, files=(replace(fr, systems=(system,)),))


@pytest.mark.usefixtures("in_root")
@pytest.mark.parametrize("verbose", [False, True])
def test_text_gives_the_verdict_first_then_the_requirements_once_then_errors_first(
    verbose: bool,
) -> None:
    text = rendered("text", _wide_run(), RenderOptions(color=False, width=100, verbose=verbose))
    lines = _text_lines(text)
    assert lines[1].startswith("control coherence: INCOHERENT  (1 error, 3 warnings, 0 notes)")
    assert lines[2].startswith("incoherent: error-level finding COH501")
    assert lines.count("Requirements") == 1  # the formal analysis' copy is not printed
    assert _index(text, "control coherence") < _index(text, "Requirements")
    assert _index(text, "Requirements") < _index(text, "error[COH501]")
    assert _index(text, "error[COH501]") < _index(text, "warning[")  # errors first
    assert ("Wide" in lines) == verbose  # the analyses' tables only with -v
    if not verbose:
        assert "2 analysis tables not shown (shown with -v)" in lines


@pytest.mark.usefixtures("in_root")
def test_text_prints_no_empty_table() -> None:
    text = rendered("text", _wide_run(), RenderOptions(color=False, width=100, verbose=True))
    assert "Nothing to show" not in text
    out = io.StringIO()
    render_table(make_console(out, False, 80), Table("Empty", ("a",), ()))
    assert out.getvalue() == ""


@pytest.mark.usefixtures("in_root")
def test_text_folds_a_long_trace_to_the_decisive_ticks_and_shows_more_with_v() -> None:
    short = rendered("text", _wide_run(), RenderOptions(color=False, width=100))
    full = rendered("text", _wide_run(), RenderOptions(color=False, width=100, verbose=True))

    def ticks_of(text: str) -> list[str]:
        after = text.split("a long run\n", 1)[1].split("\n\n", 1)[0]
        return [line for line in after.splitlines() if line.startswith("t=")]

    ticks = ticks_of(short)
    assert len(ticks) <= 6 and ticks[0].startswith("t=0s") and ticks[-1].startswith("t=199s")
    assert any(t.startswith("t=150s") and t.endswith("<-- violated") for t in ticks)
    assert "ticks not shown (-v shows more)" in short
    assert len(ticks_of(full)) > len(ticks)


@pytest.mark.usefixtures("in_root")
@pytest.mark.parametrize("verbose", [False, True])
def test_text_cuts_nothing_short_at_80_columns(verbose: bool) -> None:
    options = RenderOptions(color=False, width=80, verbose=verbose)
    text = rendered("text", _wide_run(), options)
    assert "\u2026" not in text
    if verbose:  # the wide cells wrap: every one of their characters is there
        assert text.count("Z") == 60 and text.count("W") == 140 + text.count("Wide")
    _, out, _ = cli("check", TIPPING, "--no-smt", "--no-linear", "-v", "--color", "never")
    assert "\u2026" not in out


@pytest.mark.usefixtures("in_root")
def test_quiet_prints_one_line_per_system_then_the_result() -> None:
    code, out, _ = cli(
        "check", TIPPING, OVERLOAD, "--no-smt", "--no-linear", "-q", "--color", "never"
    )
    assert code == 0
    assert out.splitlines() == [
        f"{TIPPING}: tipping_point: COHERENT (0 errors, 0 warnings) \u2014 no error or "
        "warning, and no requirement falsified or unknown",
        f"{OVERLOAD}: overload: DEGRADED (0 errors, 1 warning) \u2014 no error and nothing "
        "unknown, but the warning COH506 (objective:autoscaler.latency)",
        "result: PASSED [--fail-level error --unknown warn]",
    ]


@pytest.mark.usefixtures("in_root")
@pytest.mark.parametrize("mode", ["verbose", "quiet"])
def test_golden_text_report_verbose_and_quiet(golden: Any, mode: str) -> None:
    options = RenderOptions(color=False, width=100, **{mode: True})
    policy = Policy(fail_level=Severity.WARNING)
    golden.check(
        f"reports/synthetic.{mode}.txt",
        normalise(rendered("text", model.triaged(), options, policy)),
    )
