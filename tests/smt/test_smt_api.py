"""The entry point and the package's discipline: result shape, honesty rules, docstrings."""

from __future__ import annotations

import ast
import doctest
import importlib
from collections.abc import Callable
from pathlib import Path

import pytest
import z3

from coherence.formal import SmtOptions, analyze
from coherence.ir.nodes import TransitionSystem
from coherence.results import AnalysisResult, Finding, Status
from coherence.smt.solver import Outcome, SolverStats, check, new_solver, to_float

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "coherence" / "smt"


def test_result_shape(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("specs/seed/tipping_point.coh")
    r = analyze(ts)
    assert isinstance(r, AnalysisResult) and r.analysis == "smt" and r.seconds > 0
    kinds = [v.kind for v in r.verdicts]
    assert kinds == ["always", "coherent", "no_bad_equilibrium"]
    assert all(v.analysis == "smt" and v.status is Status.FALSIFIED for v in r.verdicts)
    assert {f.code for f in r.findings} == {"COH401", "COH501", "COH504"}
    assert list(r.findings) == sorted(r.findings, key=Finding.sort_key)
    titles = [t.title for t in r.tables]
    assert titles == ["Requirements", "Objective alignment"]
    for f in r.findings:
        assert f.key and f.span.path.endswith("tipping_point.coh") and f.span.line > 1
        assert f.trace is not None and f.trace.replayed
    data = dict(r.data)
    assert dict(data["solver"])["calls"] >= 0 and data["mode"] == "auto"


def test_keys_do_not_depend_on_lines(spec: Callable[[str], TransitionSystem]) -> None:
    path = ROOT / "specs/seed/tipping_point.coh"
    from tests.smt.conftest import compile_spec

    text = path.read_text()
    a = analyze(compile_spec(text, "x.coh"), SmtOptions(analyses=("requirements",)))
    b = analyze(
        compile_spec("\n\n# moved\n" + text, "x.coh"), SmtOptions(analyses=("requirements",))
    )
    assert [f.fingerprint for f in a.findings] == [f.fingerprint for f in b.findings]
    assert [f.span.line + 3 for f in a.findings] == [f.span.line for f in b.findings]


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        SmtOptions(mode="fast")
    with pytest.raises(ValueError):
        SmtOptions(rlimit=0)


def test_the_helper_maps_every_answer() -> None:
    x = z3.Real("x")
    s = new_solver()
    s.add(x * x == 2, x > 0)
    stats = SolverStats()
    ans = check(s, 1_000_000, stats=stats)
    assert ans.outcome is Outcome.SAT and abs(to_float(ans.model[x]) - 2**0.5) < 1e-12
    s.add(x < 1)
    assert check(s, 1_000_000, stats=stats).outcome is Outcome.UNSAT
    hard = new_solver()
    y, z = z3.Reals("y z")
    hard.add(x * x * x + y * y * y == z * z * z, x > 1, y > 1, z > 1, x * y * z > 7)
    ans = check(hard, 1, stats=stats)
    assert ans.outcome is Outcome.UNKNOWN and "resource" in ans.reason
    assert stats.calls == 3 and stats.unknown == 1


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_only_the_smt_package_imports_z3() -> None:
    for path in (ROOT / "coherence").rglob("*.py"):
        if PACKAGE in path.parents:
            continue
        assert "z3" not in _imports(path), path


def test_a_call_the_guard_stops_is_unknown_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import coherence.smt.solver as solver

    monkeypatch.setattr(solver, "GUARD_S", 0.001)
    x, y, z = z3.Ints("x y z")
    hard = new_solver()
    hard.add(x * x * x + y * y * y == z * z * z, x > 1, y > 1, z > 1)
    ans = check(hard, 10**9)
    assert ans.outcome is Outcome.UNKNOWN
    assert "guard" in ans.reason and "resource limit exceeded" not in ans.reason


def test_every_solver_call_goes_through_the_helper() -> None:
    """One place calls ``Solver.check``, sets the rlimit and the guard; nothing else sets a
    timeout or a global parameter."""
    for path in PACKAGE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "set_param" not in text, path
        if path.name != "solver.py":
            assert ".check(" not in text and '"timeout"' not in text, path


@pytest.mark.parametrize(
    "module",
    [
        "coherence.intervals.arith",
        "coherence.formal.analyze",
        "coherence.formal.bounded",
        "coherence.formal.findings",
        "coherence.smt.encode",
        "coherence.smt.solver",
    ],
)
def test_docstrings_run(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__doc__
    failures, _ = doctest.testmod(mod)
    assert failures == 0
