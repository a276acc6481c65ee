"""``coherence diff``: pairs of specs whose change is known, git revisions, and the
generic comparison of verdicts, data and tables."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from coherence.diff import diff_files, flatten
from coherence.reports.json import schema as report_schema
from coherence.results import (
    AnalysisResult,
    FileReport,
    Finding,
    Status,
    SystemReport,
    Table,
    Verdict,
)
from coherence.source import Span
from tests.ci.util import DATA, cli, normalise

PAIRS = DATA / "diff"
OPTS = ("--no-smt", "--no-linear", "--color", "never")


def pair(name: str) -> tuple[str, str]:
    return (f"tests/ci/data/diff/{name}_old.coh", f"tests/ci/data/diff/{name}_new.coh")


def diff_validator() -> jsonschema.Draft202012Validator:
    text = resources.files("coherence.schemas").joinpath("diff-1.schema.json").read_text()
    doc = json.loads(text)
    report = report_schema()
    registry: Registry[Any] = Registry().with_resources(
        [(report["$id"], Resource.from_contents(report)), (doc["$id"], Resource.from_contents(doc))]
    )
    return jsonschema.Draft202012Validator(doc, registry=registry)


@pytest.mark.usefixtures("in_root")
def test_moving_lines_changes_nothing() -> None:
    code, out, _ = cli("diff", *pair("moved"), *OPTS)
    assert code == 0
    assert "no change in verdicts, findings, margins or objectives" in out


@pytest.mark.usefixtures("in_root")
def test_a_new_error_is_a_regression(golden: Any) -> None:
    code, out, _ = cli("diff", *pair("zero"), *OPTS)
    assert code == 1
    assert "+ error[COH507]" in out and "REGRESSION" in out
    assert "control coherence COHERENT -> INCOHERENT" in out
    # the nominal run's extremes are internals (in `check --format json`), not the diff's
    assert "Nominal scenario" not in out and "[replicas].min" not in out
    golden.check("reports/diff-zero.txt", normalise(out))
    assert cli("diff", *pair("zero"), *OPTS, "--exit-zero")[0] == 0


@pytest.mark.usefixtures("in_root")
def test_a_fix_removes_a_finding_and_moves_the_numbers(golden: Any) -> None:
    code, out, _ = cli("diff", *pair("slow"), *OPTS, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    diff_validator().validate(doc)
    assert doc["regressions"] == 0
    assert [(c["change"], c["finding"]["code"]) for c in doc["findings"]] == [
        ("went away", "COH506")
    ]
    assert doc["coherence"] == [{"system": "overload", "old": "degraded", "new": "coherent"}]
    assert doc["numbers"] == []  # only the linear and formal analyses' numbers are shown
    assert doc["relaxed"] == [] and doc["earlier"] == [] and doc["status"] == "changed"
    golden.check("reports/diff-slow.json", normalise(out))


@pytest.mark.usefixtures("in_root")
def test_diff_json_of_a_regression_is_valid() -> None:
    code, out, _ = cli("diff", *pair("zero"), *OPTS, "--format", "json")
    doc = json.loads(out)
    diff_validator().validate(doc)
    assert code == 1 and doc["regressions"] == 1
    assert doc["findings"][0]["finding"]["code"] == "COH507"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_diff_against_a_git_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "specs" / "zero.coh"
    spec.parent.mkdir()
    shutil.copy(PAIRS / "zero_old.coh", spec)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "fleet")
    shutil.copy(PAIRS / "zero_new.coh", spec)
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("diff", "specs/zero.coh", "--rev", "HEAD", *OPTS)
    assert code == 1
    assert out.startswith("coherence diff: specs/zero.coh@HEAD -> specs/zero.coh")
    assert "+ error[COH507] specs/zero.coh:13:3" in out
    code, _, err = cli("diff", "specs/zero.coh", "--rev", "no-such-rev", *OPTS)
    assert code == 2 and "cannot read `specs/zero.coh` at revision `no-such-rev`" in err


def test_diff_needs_two_specs_or_a_revision() -> None:
    assert cli("diff", "a.coh")[0] == 2
    code, _, err = cli("diff", "a.coh", "b.coh", "--rev", "HEAD")
    assert code == 2 and "not both" in err


# ---- the comparison itself, on synthetic results -------------------------------------------


def sp(line: int) -> Span:
    return Span("f.coh", line, 1, line, 5)


def system(status: Status, radius: float, margin: float, extra_row: bool = False) -> SystemReport:
    rows: tuple[tuple[Any, ...], ...] = (("router", margin, "ok"),)
    if extra_row:
        rows += (("autoscaler", 3.0, "ok"),)
    linear = AnalysisResult(
        "linear",
        verdicts=(Verdict("require stable", "stable", status, sp(9), "linear"),),
        tables=(Table("Margins", ("loop", "gain margin", "note"), rows),),
        data=(("spectral_radius", radius), ("margins", {"router": {"gain": margin}})),
    )
    return SystemReport("fleet", "f.coh", sp(1), (linear,), ("router",))


def test_verdicts_that_get_worse_are_regressions() -> None:
    old = FileReport("f.coh", (), (system(Status.PROVED, 0.9, 2.0),))
    new = FileReport("f.coh", (), (system(Status.FALSIFIED, 1.1, 0.8, extra_row=True),))
    d = diff_files(old, new, "old", "new")
    assert [(v.requirement, v.old, v.new, v.regression) for v in d.verdicts] == [
        ("require stable", "proved", "falsified", True)
    ]
    keys = {n.key: n for n in d.numbers}
    assert keys["spectral_radius"].delta == pytest.approx(0.2)
    assert keys["spectral_radius"].relative == pytest.approx(0.2 / 0.9)
    assert "margins.router.gain" not in keys  # the raw data is internals; the table is not
    assert keys["Margins[router].gain margin"].old == 2.0
    assert keys["Margins[autoscaler]"].new == "row added"
    assert d.regressions == 1


@pytest.mark.parametrize(
    ("old", "new", "worse"),
    [
        (Status.PROVED, Status.HOLDS, False),
        (Status.HOLDS, Status.UNKNOWN, True),
        (Status.UNKNOWN, Status.FALSIFIED, True),
        (Status.FALSIFIED, Status.PROVED, False),
        (Status.SKIPPED, Status.FALSIFIED, False),
    ],
)
def test_what_counts_as_worse(old: Status, new: Status, worse: bool) -> None:
    d = diff_files(
        FileReport("f.coh", (), (system(old, 0.5, 2.0),)),
        FileReport("f.coh", (), (system(new, 0.5, 2.0),)),
        "a",
        "b",
    )
    assert d.regressions == int(worse)


def test_findings_are_matched_by_fingerprint_across_paths() -> None:
    f = Finding("COH505", "clamped", Span("old.coh", 3, 1, 3, 4), key="clip:q")
    moved = Finding("COH505", "clamped", Span("new.coh", 30, 1, 30, 4), key="clip:q")
    new_error = Finding("COH301", "unstable", Span("new.coh", 9, 1, 9, 4), key="unstable")
    old_diags = (f.as_diagnostic(),)
    d = diff_files(
        FileReport("old.coh", old_diags),
        FileReport("new.coh", (moved.as_diagnostic(), new_error.as_diagnostic())),
        "old.coh",
        "new.coh",
    )
    assert [(c.change, c.finding.code, c.regression) for c in d.findings] == [
        ("appeared", "COH301", True)
    ]


def test_flatten() -> None:
    assert flatten({"a": {"b": [1, {"c": 2}]}, "d": "x"}) == {"a.b[0]": 1, "a.b[1].c": 2, "d": "x"}
