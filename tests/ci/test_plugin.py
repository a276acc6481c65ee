"""The pytest plugin: opt-in collection of spec files, one item per requirement."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.ci.policy_run import ALWAYS, SPEC, check_all, spec_copy, system_report
from tests.ci.util import DATA, ROOT, cli

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
    assert len(list((pytester.path / "cache" / "results").glob("*/*.json"))) == 1

    def analysed(*_: object) -> None:
        raise AssertionError("analysed although the report was cached")

    monkeypatch.setattr(nominal, "nominal_analysis", analysed)
    run(*args).assert_outcomes(passed=1, failed=1, skipped=1)  # the same, read back


# ---- the plugin decides as `coherence check` does (tests/ci/policy_run.py) ------------------

_ITEM = re.compile(r"^policy\.coh::policy::(.+?) (PASSED|FAILED|SKIPPED|XFAIL)\b")


def _items(result: pytest.RunResult) -> dict[str, str]:
    out = {}
    for line in result.stdout.lines:
        m = _ITEM.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _expected(verdicts: list[dict[str, object]]) -> dict[str, str]:
    """What each requirement's item must be, from the verdicts of `coherence check --format
    json`: failed if one fails; skipped if unknown and not accepted; xfailed if accepted."""
    out: dict[str, str] = {}
    for requirement in dict.fromkeys(str(v["requirement"]) for v in verdicts):
        mine = [v for v in verdicts if v["requirement"] == requirement]
        if any(v["outcome"] == "fail" for v in mine):
            out[requirement] = "FAILED"
        elif any(v["status"] == "unknown" and v["outcome"] in ("warn", "ignored") for v in mine):
            out[requirement] = "SKIPPED"
        elif any(v["outcome"] in ("suppressed", "baselined") for v in mine):
            out[requirement] = "XFAIL"
        else:
            out[requirement] = "PASSED"
    return out


@pytest.mark.usefixtures("fake_analyses")
@pytest.mark.parametrize("unknown", ["fail", "warn", "ignore"])
@pytest.mark.parametrize("how", ["bare", "suppressed", "baseline"])
def test_spec_items_agree_with_coherence_check(  # type: ignore[no-untyped-def]
    pytester: pytest.Pytester, run, monkeypatch: pytest.MonkeyPatch, unknown: str, how: str
) -> None:
    import coherence.strategies

    spec = spec_copy(pytester.path, suppressed=how == "suppressed")
    spec = spec.rename(pytester.path / "policy.coh")
    monkeypatch.chdir(pytester.path)
    config = f'unknown = "{unknown}"\n'
    if how == "baseline":
        assert cli("check", "policy.coh", "--write-baseline", "base.json")[0] == 0
        config += 'baseline = "base.json"\n'
    (pytester.path / "coherence.toml").write_text(config)
    (pytester.path / "out").mkdir()
    checked = check_all(spec, pytester.path / "out")
    expected = _expected(checked.json["files"][0]["systems"][0]["verdicts"])

    monkeypatch.setattr(
        coherence.strategies,
        "evaluate",
        lambda ts, options=None: system_report(ts.path, spec.read_text(encoding="utf-8")),
    )
    result = run("--coherence", "--coherence-analyses", "simulate", "-v", "-rsx", "policy.coh")
    assert _items(result) == expected
    assert (result.ret == pytest.ExitCode.TESTS_FAILED) == (checked.code == 1)
    if how == "bare":
        assert expected["require coherent"] == "FAILED"
    elif unknown != "fail" or how == "baseline":
        assert checked.code == 0
    if how != "baseline" and unknown != "fail":
        label = "unknown (ignored)" if unknown == "ignore" else "unknown"
        result.stdout.fnmatch_lines([f"SKIPPED*{ALWAYS}: {label}: resource limit*"])


@pytest.mark.usefixtures("fake_analyses")
def test_the_plugin_option_overrides_the_configured_unknown_policy(  # type: ignore[no-untyped-def]
    pytester: pytest.Pytester, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import coherence.strategies

    spec = pytester.path / "policy.coh"
    spec.write_text(SPEC.read_text(encoding="utf-8"))
    (pytester.path / "coherence.toml").write_text('unknown = "ignore"\n')
    monkeypatch.setattr(
        coherence.strategies,
        "evaluate",
        lambda ts, options=None: system_report(ts.path, spec.read_text(encoding="utf-8")),
    )
    args = ("--coherence", "--coherence-analyses", "simulate", "-v", "-k", "always")
    assert _items(run(*args))[ALWAYS] == "SKIPPED"
    assert _items(run(*args, "--coherence-unknown", "fail"))[ALWAYS] == "FAILED"
    pytester.makeini("[pytest]\ncoherence_unknown = fail\n")
    assert _items(run(*args))[ALWAYS] == "FAILED"
