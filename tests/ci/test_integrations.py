"""The rule catalog, the pre-commit hooks, the GitHub Action, and the plots."""

from __future__ import annotations

import sys
from pathlib import Path

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


def test_the_github_action() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    script = "\n".join(s.get("run", "") for s in steps)
    assert '--output "sarif=$SARIF"' in script and "GITHUB_STEP_SUMMARY" in script
    assert "--format github" in script
    # the cache directory the check writes is the one actions/cache keeps
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert restore["with"]["path"] == "${{ runner.temp }}/coherence-cache"
    assert 'COHERENCE_CACHE_DIR="$RUNNER_TEMP/coherence-cache"' in script
    assert action["inputs"]["cache"]["default"] == "true"


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
