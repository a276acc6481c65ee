"""The baseline: adopt coherence on an existing deployment, fail only on new findings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from coherence.baseline import dumps, from_findings, load_baseline
from coherence.diagnostics import CoherenceError
from tests.ci.policy_run import ALWAYS, assert_agree, check_all, spec_copy
from tests.ci.util import DATA, cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with one spec that has a finding (COH506), checked from its root."""
    (tmp_path / "specs").mkdir()
    shutil.copy(DATA / "overload.coh", tmp_path / "specs" / "fleet.coh")
    monkeypatch.chdir(tmp_path)
    return tmp_path


CHECK = ("check", "specs", "--no-smt", "--no-linear", "--fail-level", "warning")


def test_write_then_use_a_baseline(project: Path) -> None:
    assert cli(*CHECK)[0] == 1
    code, _, err = cli(*CHECK, "--write-baseline", "coherence-baseline.json")
    assert code == 0 and "wrote coherence-baseline.json: 1 known finding" in err
    doc = json.loads((project / "coherence-baseline.json").read_text())
    assert doc["version"] == 1
    assert [(e["code"], e["path"]) for e in doc["findings"]] == [("COH506", "specs/fleet.coh")]
    code, out, _ = cli(*CHECK, "--baseline", "coherence-baseline.json", "--format", "json")
    assert code == 0
    summary = json.loads(out)["summary"]
    assert summary["suppressed"] == 1
    assert summary["baseline"] == {"path": "coherence-baseline.json", "matched": 1, "stale": 0}


def test_the_baseline_survives_lines_moving(project: Path) -> None:
    cli(*CHECK, "--write-baseline", "base.json")
    spec = project / "specs" / "fleet.coh"
    spec.write_text("# a new comment\n# and another\n\n" + spec.read_text())
    code, out, _ = cli(*CHECK, "--baseline", "base.json", "--format", "sarif")
    assert code == 0
    (result,) = json.loads(out)["runs"][0]["results"]
    assert result["suppressions"][0]["kind"] == "external"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 27


def test_new_findings_fail_and_fixed_ones_are_reported_stale(project: Path) -> None:
    cli(*CHECK, "--write-baseline", "base.json")
    spec = project / "specs" / "fleet.coh"
    text = spec.read_text()
    # a new finding: a second keep objective that fails at once
    extra = "    objective keep latency <= slo\n    objective keep fast = latency <= 0.1 s"
    spec.write_text(text.replace("    objective keep latency <= slo", extra))
    code, out, _ = cli(*CHECK, "--baseline", "base.json", "--format", "json")
    assert code == 1
    shown = [f["message"] for s in json.loads(out)["files"][0]["systems"] for f in s["findings"]]
    assert shown == ["objective `autoscaler.fast` is violated at t=0s in the nominal scenario"]
    # the old finding fixed: its baseline entry is stale
    spec.write_text(text.replace("latency <= slo", "latency <= slo tolerance 400%"))
    code, out, _ = cli(*CHECK, "--baseline", "base.json", "--format", "json")
    summary = json.loads(out)["summary"]
    assert summary["baseline"]["stale"] == 1 and code == 0


def test_no_baseline_overrides_the_configured_one(project: Path) -> None:
    cli(*CHECK, "--write-baseline", "base.json")
    (project / "coherence.toml").write_text('baseline = "base.json"\n')
    assert cli(*CHECK)[0] == 0
    assert cli(*CHECK, "--no-baseline")[0] == 1


def test_bad_baselines_are_usage_errors(project: Path) -> None:
    code, _, err = cli(*CHECK, "--baseline", "missing.json")
    assert code == 2 and "no baseline file `missing.json`" in err
    (project / "bad.json").write_text("{not json")
    code, _, err = cli(*CHECK, "--baseline", "bad.json")
    assert code == 2 and "bad.json:1:2: the baseline is not valid JSON" in err
    (project / "other.json").write_text('{"version": 7, "findings": []}')
    with pytest.raises(CoherenceError, match="not a coherence baseline"):
        load_baseline(str(project / "other.json"))


def test_baseline_round_trip_and_duplicates() -> None:
    from coherence.results import Finding
    from coherence.source import Span

    f = Finding("COH505", "clamped", Span("a.coh", 3, 1, 3, 4), key="clip:q")
    base = from_findings([f, f, Finding("COH220", "x", f.span)], "b.json")
    assert len(base.entries) == 2  # suppression errors are never baselined
    assert base.counter()[f.fingerprint] == 2
    assert json.loads(dumps(base))["findings"][0]["fingerprint"] == f.fingerprint


@pytest.mark.usefixtures("fake_analyses")
@pytest.mark.parametrize("unknown", ["fail", "warn", "ignore"])
def test_a_baseline_acts_on_every_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unknown: str
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = spec_copy(tmp_path)
    before = check_all(spec, tmp_path, "--unknown", unknown)
    assert_agree(before)
    assert before.code == 1  # the conflict falsifies `require coherent`
    code, _, _ = cli("check", str(spec), "--write-baseline", "base.json")
    assert code == 0  # the run that writes the baseline is judged with it
    o = check_all(spec, tmp_path, "--baseline", "base.json", "--unknown", unknown)
    assert_agree(o)
    # both deciding findings are known: the run passes and no output says otherwise
    assert (o.code, o.result) == (0, "passed")
    assert int(str(o.junit.get("failures"))) == 0
    assert o.verdict("require coherent")["shown"] == "falsified (baselined)"
    assert o.verdict(ALWAYS)["shown"] == "unknown (baselined)"
    summary = o.json["summary"]
    assert (summary["errors"], summary["suppressed"], summary["baselined"]) == (0, 2, 2)
    assert summary["verdicts"] == {"falsified": 0, "unknown": 0, "accepted": 2}
    assert "conflicting (latency +1.2 s, 3s after it acts; baselined)" in o.markdown
    assert o.json["files"][0]["systems"][0]["coherence"] == "coherent"
    kinds = {r["ruleId"]: r["suppressions"][0]["kind"] for r in o.sarif["runs"][0]["results"]}
    assert kinds == {"COH401": "external", "COH901": "external"}
    assert "::" not in o.github  # nothing left to annotate
