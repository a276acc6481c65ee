"""The rule catalog, the pre-commit hooks, the GitHub Action, and the plots."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from coherence.reports.rules import rules_markdown
from tests.ci.util import OVERLOAD, ROOT, TIPPING, cli


def test_the_rule_catalog_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert committed == rules_markdown(), (
        "docs/rules.md is stale: coherence rules --format markdown > docs/rules.md"
    )
    assert "### COH220 suppression-without-reason" in committed
    code, out, _ = cli("rules", "--format", "markdown")
    assert code == 0 and out == committed


def test_pre_commit_hooks() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["coherence-lint"]["entry"] == "coherence lint"
    assert hooks["coherence-check"]["entry"] == "coherence check"
    for h in hooks.values():
        assert h["language"] == "python" and h["files"] == r"\.coh$"


def _action() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    return action, action["runs"]["steps"]


def _step(steps: list[dict[str, Any]], uses: str) -> dict[str, Any]:
    (step,) = [s for s in steps if s.get("uses", "").startswith(uses + "@")]
    return step


def test_the_github_action() -> None:
    action, steps = _action()
    assert action["runs"]["using"] == "composite"
    script = "\n".join(s.get("run", "") for s in steps)
    assert '--output "sarif=$SARIF"' in script and "GITHUB_STEP_SUMMARY" in script
    assert "--format github" in script
    # the check step never fails the job itself: what follows it runs, then the last step
    # fails the job with coherence's exit code
    check = next(s for s in steps if s.get("id") == "check")
    assert check["run"].rstrip().endswith("exit 0")
    assert steps[-1]["name"] == "Fail on findings"
    assert steps[-1]["if"] == "${{ steps.check.outputs.exit-code != '0' }}"


def test_the_action_uploads_sarif_only_when_asked() -> None:
    """Uploading SARIF needs `security-events: write`: opt-in, off by default."""
    action, steps = _action()
    assert action["inputs"]["upload-sarif"]["default"] == "false"
    assert "security-events: write" in action["inputs"]["upload-sarif"]["description"]
    upload = _step(steps, "github/codeql-action/upload-sarif")
    assert "inputs.upload-sarif == 'true'" in upload["if"]


def test_the_action_saves_the_cache_even_when_the_check_fails() -> None:
    """actions/cache saves only after a successful job, so a pull request with findings
    would never warm it: restore and save are separate steps, the save under always()."""
    action, steps = _action()
    assert not any(s.get("uses", "").startswith("actions/cache@") for s in steps)
    restore = _step(steps, "actions/cache/restore")
    save = _step(steps, "actions/cache/save")
    names = [s.get("name") for s in steps]
    check = next(s for s in steps if s.get("id") == "check")
    assert names.index(restore["name"]) < names.index(check["name"]) < names.index(save["name"])
    assert save["if"].startswith("${{ always() &&")
    assert "inputs.cache == 'true'" in save["if"] and "inputs.cache == 'true'" in restore["if"]
    # the same directory the check writes
    assert restore["with"]["path"] == save["with"]["path"] == "${{ runner.temp }}/coherence-cache"
    assert 'COHERENCE_CACHE_DIR="$RUNNER_TEMP/coherence-cache"' in check["run"]
    # a key that does not change on every run: the specs' hash and coherence's version,
    # with restore keys for a cache of other specs or an older version
    key = restore["with"]["key"]
    assert "run_id" not in key and "run_attempt" not in key and "github.sha" not in key
    assert "hashFiles('**/*.coh'" in key and "steps.install.outputs.version" in key
    prefixes = restore["with"]["restore-keys"].splitlines()
    assert prefixes and all(key.startswith(p) for p in prefixes)
    assert save["with"]["key"] == "${{ steps.restore.outputs.cache-primary-key }}"
    assert action["inputs"]["cache"]["default"] == "true"


def test_the_action_keeps_the_jobs_python_unless_asked() -> None:
    action, steps = _action()
    assert action["inputs"]["python-version"]["default"] == ""
    setup = _step(steps, "actions/setup-python")
    assert setup["if"] == "${{ inputs.python-version != '' }}"
    install = next(s for s in steps if s.get("id") == "install")
    assert "python3 -m venv" in install["run"]  # the job's own packages are left alone


def test_the_action_uploads_the_full_report_the_summary_points_to() -> None:
    action, steps = _action()
    assert action["inputs"]["artifact"]["default"] == "coherence-report"
    upload = _step(steps, "actions/upload-artifact")
    assert upload["with"]["name"] == "${{ inputs.artifact }}"
    assert upload["if"].startswith("${{ always()")
    markdown = (ROOT / "coherence" / "reports" / "markdown.py").read_text()
    assert "`coherence-report` artifact" in markdown


@pytest.mark.usefixtures("in_root")
@pytest.mark.parametrize("suffix", ["dot", "mmd"])
def test_coupling_graph_as_text(golden, tmp_path: Path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / f"coupling.{suffix}"
    code, _, err = cli("plot", TIPPING, "--kind", "coupling", "--out", str(out))
    assert code == 0 and f"wrote {out}" in err
    golden.check(f"reports/tipping_point.coupling.{suffix}", out.read_text())


@pytest.mark.usefixtures("in_root")
def test_images_without_matplotlib_exit_2_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    code, _, err = cli("plot", TIPPING, "--kind", "trace", "--out", str(tmp_path / "t.svg"))
    assert code == 2
    assert "error: plotting needs Matplotlib" in err
    assert "pip install 'coherence[plot]'" in err


@pytest.mark.usefixtures("in_root")
def test_plot_usage_errors(tmp_path: Path) -> None:
    code, _, err = cli("plot", TIPPING, "--kind", "trace", "--out", str(tmp_path / "t.dot"))
    assert code == 2 and "for `--kind coupling` only" in err
    code, _, err = cli("plot", TIPPING, "--out", str(tmp_path / "t.txt"))
    assert code == 2 and "cannot tell the format" in err


@pytest.mark.usefixtures("in_root")
@pytest.mark.parametrize("kind", ["coupling", "trace"])
def test_svg_plots_are_deterministic(tmp_path: Path, kind: str) -> None:
    pytest.importorskip("matplotlib")
    a, b = tmp_path / "a.svg", tmp_path / "b.svg"
    for out in (a, b):
        assert cli("plot", OVERLOAD, "--kind", kind, "--out", str(out), "--ticks", "60")[0] == 0
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text()
    assert text.startswith("<?xml") and "<dc:date>" not in text


@pytest.mark.usefixtures("in_root")
def test_pole_plots_need_the_linear_analysis(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    try:
        from coherence.linear import analyze  # noqa: F401
    except ImportError:
        code, _, err = cli("plot", OVERLOAD, "--kind", "poles", "--out", str(tmp_path / "p.svg"))
        assert code == 2 and "need the linear analysis" in err
        return
    code, _, err = cli("plot", OVERLOAD, "--kind", "poles", "--out", str(tmp_path / "p.svg"))
    assert code == 0, err
