"""`coherence diff DIR --rev REV`: every spec of a folder against its version at a git
revision, new and deleted specs included, as text, JSON and a Markdown PR comment; what a
reviewer needs (verdicts, findings, violations that moved earlier, relaxed objectives,
spectral radius and margins) and not the analyses' internals."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from coherence.cli import main
from coherence.reports.json import schema as report_schema

ROOT = Path(__file__).resolve().parent.parent
OVERLOAD = (ROOT / "tests" / "ci" / "data" / "overload.coh").read_text(encoding="utf-8")
FAST = ("--no-smt", "--no-linear", "--color", "never", "--no-cache")

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def validator(name: str) -> jsonschema.Draft202012Validator:
    docs = {
        n: json.loads(resources.files("coherence.schemas").joinpath(n).read_text("utf-8"))
        for n in ("diff-1.schema.json", "diff-set-1.schema.json")
    }
    report = report_schema()
    registry: Registry[Any] = Registry().with_resources(
        [(d["$id"], Resource.from_contents(d)) for d in (report, *docs.values())]
    )
    return jsonschema.Draft202012Validator(docs[name], registry=registry)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose first commit holds specs/overload.coh and specs/gone.coh; the
    working copy then relaxes overload (the SLO bound loosened, the `always` requirement
    removed), deletes gone.coh and adds new.coh."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "overload.coh").write_text(OVERLOAD, encoding="utf-8")
    (specs / "gone.coh").write_text(OVERLOAD.replace("system overload", "system gone"), "utf-8")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    relaxed = OVERLOAD.replace("param slo         = 2 s", "param slo         = 20 s").replace(
        "  require always latency <= 60 s for 120 ticks\n", ""
    )
    (specs / "overload.coh").write_text(relaxed, encoding="utf-8")
    (specs / "gone.coh").unlink()
    (specs / "new.coh").write_text(OVERLOAD.replace("system overload", "system new"), "utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    return tmp_path


def test_a_folder_against_a_revision_flags_what_was_relaxed(repo: Path) -> None:
    code, out, err = cli("diff", "specs", "--rev", "HEAD", *FAST)
    assert code == 1, err  # nothing regressed, but an objective was relaxed: not a pass
    assert "coherence diff: specs/gone.coh@HEAD: deleted" in out
    assert "coherence diff: specs/new.coh: new spec" in out
    assert "coherence diff: specs/overload.coh@HEAD -> specs/overload.coh" in out
    assert "objective `autoscaler.latency`: bound loosened from <= 2 s to <= 20 s  RELAXED" in out
    assert "`require always latency <= 60 s for 120 ticks`: removed  RELAXED" in out
    assert "system `gone`: removed, with its requirements  RELAXED" in out
    assert "- warning[COH506]" in out  # the latency violation went away with the bound
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("result: no regression") is False
    assert "relaxed objectives or requirements" in last and "not a pass" in last
    assert cli("diff", "specs", "--rev", "HEAD", *FAST, "--exit-zero")[0] == 0


def test_an_unchanged_folder_is_no_change(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    code, out, _ = cli("diff", "specs", "--rev", "HEAD", *FAST)
    assert code == 0
    assert out.splitlines() == ["2 specs unchanged", "result: no regression, nothing relaxed"]


def test_the_folder_diff_as_json_is_valid(repo: Path) -> None:
    code, out, _ = cli("diff", "specs", "--rev", "HEAD", *FAST, "--format", "json")
    doc = json.loads(out)
    validator("diff-set-1.schema.json").validate(doc)
    assert code == 1 and doc["kind"] == "diff-set" and doc["relaxed"] == 3
    status = {d["new"] if d["status"] != "deleted" else d["old"]: d["status"] for d in doc["specs"]}
    assert status == {
        "specs/gone.coh@HEAD": "deleted",
        "specs/new.coh": "added",
        "specs/overload.coh": "changed",
    }


def test_the_folder_diff_as_a_pull_request_comment(repo: Path) -> None:
    _, out, _ = cli("diff", "specs", "--rev", "HEAD", *FAST, "--format", "markdown")
    lines = out.splitlines()
    assert lines[0] == "## coherence diff: `specs@HEAD` -> `specs`"
    assert lines[2].startswith(":warning: **") and "relaxed" in lines[2]
    assert "| `specs/new.coh` (new) | unchanged | 0 | 0 | +1 / -0 |" in lines
    assert "| `specs/gone.coh@HEAD` (deleted) | unchanged | 0 | 1 | +0 / -1 |" in lines
    assert any(
        line.startswith("- :warning: **relaxed**: `overload`: objective `autoscaler.latency`")
        for line in lines
    )


def test_a_tolerance_raised_is_relaxed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    old, new = tmp_path / "old.coh", tmp_path / "new.coh"
    old.write_text(OVERLOAD.replace("objective keep latency <= slo", "objective keep latency <= slo tolerance 5%"), "utf-8")  # fmt: skip
    new.write_text(OVERLOAD.replace("objective keep latency <= slo", "objective keep latency <= slo tolerance 20%"), "utf-8")  # fmt: skip
    code, out, err = cli("diff", "old.coh", "new.coh", *FAST)
    assert code == 1, err
    assert "tolerance raised from 5% to 20%  RELAXED" in out
    code, out, _ = cli("diff", "new.coh", "old.coh", *FAST)  # tightened: nothing to flag
    assert "RELAXED" not in out


def test_a_violation_that_moved_earlier_is_a_regression(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More demand: the same latency finding (same fingerprint), violated sooner."""
    monkeypatch.chdir(tmp_path)
    old, new = tmp_path / "old.coh", tmp_path / "new.coh"
    old.write_text(OVERLOAD, encoding="utf-8")
    new.write_text(OVERLOAD.replace("init 8", "init 4"), encoding="utf-8")
    code, out, _ = cli("diff", "old.coh", "new.coh", *FAST, "--format", "json")
    doc = json.loads(out)
    validator("diff-1.schema.json").validate(doc)
    assert code == 1
    (earlier,) = doc["earlier"]
    assert earlier["finding"]["code"] == "COH506"
    assert earlier["new_time_s"] < earlier["old_time_s"]
    assert doc["regressions"] >= 1
    _, text, _ = cli("diff", "old.coh", "new.coh", *FAST)
    assert "violations that moved earlier" in text
    assert f"violated at t={earlier['new_time_s']:g}s, was t={earlier['old_time_s']:g}s" in text


def test_a_reviewer_sees_the_spectral_radius_and_margins_not_internals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    old, new = tmp_path / "old.coh", tmp_path / "new.coh"
    old.write_text(OVERLOAD, encoding="utf-8")
    new.write_text(OVERLOAD.replace("ceil(2 * (latency", "ceil(6 * (latency"), "utf-8")
    _, out, _ = cli("diff", "old.coh", "new.coh", "--no-smt", "--color", "never", "--no-cache")
    assert "stability, margins and alignment" in out
    numbers = out.split("stability, margins and alignment\n", 1)[1]
    assert "Margins[autoscaler]" in numbers or "spectral radius (coupled)" in numbers
    for internal in ("eigenvalues", "solver", "operating_point", "modes[", "Nominal scenario"):
        assert internal not in out
