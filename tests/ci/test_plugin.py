"""The pytest plugin: opt-in collection of spec files, one item per requirement."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.ci.util import DATA, ROOT

FAILING = (
    (DATA / "overload.coh")
    .read_text()
    .replace(
        "require always latency <= 60 s for 120 ticks", "require always latency <= 1 s for 60 ticks"
    )
)
BROKEN = "system broken {\n  tick 1s\n  let x = y + 1\n}\n"


@pytest.fixture(scope="module", autouse=True)
def engine_imported() -> None:
    """Import the engine (NumPy and its C extensions) in this process first: pytester's
    in-process runs forget the modules they import, and NumPy cannot be imported twice."""
    from coherence.pipeline import CheckOptions, analyses_for
    from coherence.strategies import evaluate, load_spec

    evaluate(load_spec(DATA / "overload.coh").ts, CheckOptions(linear=False, smt=False))
    analyses_for(CheckOptions())


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run pytest in-process with only this plugin (whatever is installed)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def go(*args: str) -> pytest.RunResult:
        return pytester.runpytest("-p", "coherence.pytest_plugin", "-p", "no:cacheprovider", *args)

    return go


def test_spec_files_are_not_collected_without_opting_in(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makefile(".coh", fleet=FAILING)
    result = run()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_one_item_per_requirement_and_one_for_diagnostics(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makefile(".coh", fleet=FAILING)
    result = run("--coherence", "--coherence-analyses", "simulate", "-v", "-rs")
    result.stdout.fnmatch_lines(
        [
            "fleet.coh::diagnostics PASSED*",
            "fleet.coh::overload::require stable SKIPPED*",
            "fleet.coh::overload::require always latency <= 1 s for 60 ticks FAILED*",
        ]
    )
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    # the failure shows the finding and its trace
    result.stdout.fnmatch_lines(
        [
            "*require always latency <= 1 s for 60 ticks: falsified by simulation*",
            "error?COH501?: `require always latency <= 1 s for 60 ticks` fails at t=1s with *",
            "*fleet.coh:28:3*",
            "simulation: demand held at 150 req/s (hi)",
            "*<-- violated",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*SKIPPED*require stable: no analysis in this install decides it*"]
    )


def test_the_ini_option_turns_collection_on(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makefile(".coh", fleet=(DATA / "overload.coh").read_text())
    pytester.makeini("[pytest]\ncoherence_specs = true\ncoherence_analyses = simulate\n")
    result = run()
    result.assert_outcomes(passed=2, skipped=1)


def test_front_end_errors_fail_the_diagnostics_item(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makefile(".coh", broken=BROKEN)
    result = run("--coherence")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["error?COH201?: unknown name `y`", "*broken.coh:3:11*"])


def test_inline_suppressions_apply_to_the_diagnostics_item(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makefile(".coh", spec=(DATA / "suppressed.coh").read_text())
    result = run("--coherence", "--coherence-analyses", "simulate", "-k", "diagnostics")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["error?COH220?: the suppression of COH218 gives no reason"])
    assert "COH218]: param `spare`" not in result.stdout.str()


def test_unknown_analyses_are_a_usage_error(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makefile(".coh", fleet=(DATA / "overload.coh").read_text())
    result = run("--coherence", "--coherence-analyses", "simulate,magic")
    assert result.ret != 0
    assert "unknown coherence analysis `magic`" in result.stdout.str() + result.stderr.str()


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert doc["project"]["entry-points"]["pytest11"] == {"coherence": "coherence.pytest_plugin"}
    from importlib.metadata import entry_points

    installed = [ep.value for ep in entry_points(group="pytest11") if ep.name == "coherence"]
    assert installed in ([], ["coherence.pytest_plugin"])  # [] until the package is reinstalled


def test_the_plugin_imports_no_engine_at_load_time() -> None:
    import subprocess
    import sys

    code = (
        "import sys, coherence.pytest_plugin; "
        "print(any(m.startswith(('coherence.pipeline', 'numpy', 'z3')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_this_suite_does_not_collect_its_own_spec_fixtures() -> None:
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert not ini.get("coherence_specs", False)
    assert Path(ROOT / "tests" / "diagnostics").is_dir()  # full of deliberate errors


def test_spec_files_go_through_the_results_cache(  # type: ignore[no-untyped-def]
    pytester: pytest.Pytester, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import coherence.simulate.nominal as nominal

    monkeypatch.delenv("COHERENCE_NO_CACHE")
    monkeypatch.setenv("COHERENCE_CACHE_DIR", str(pytester.path / "cache"))
    pytester.makefile(".coh", fleet=FAILING)
    args = ("--coherence", "--coherence-analyses", "simulate")
    run(*args).assert_outcomes(passed=1, failed=1, skipped=1)
    assert len(list((pytester.path / "cache" / "results").glob("*/*.pickle"))) == 1

    def analysed(*_: object) -> None:
        raise AssertionError("analysed although the report was cached")

    monkeypatch.setattr(nominal, "nominal_analysis", analysed)
    run(*args).assert_outcomes(passed=1, failed=1, skipped=1)  # the same, read back
