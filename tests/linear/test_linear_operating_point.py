"""The operating point, the vectorised evaluator, the symbolic Jacobians and the switching
surfaces (COH305, COH306, COH307)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from coherence.ir.nodes import TransitionSystem
from coherence.linear import LinearOptions, analyze, linearize, operating_point
from coherence.linear.linearize import Engine
from coherence.linear.oppoint import find_operating_point
from coherence.results import Status
from coherence.simulate import simulate

Spec = Callable[[str], TransitionSystem]
ROOT = Path(__file__).resolve().parents[2]
ALL = [
    "integral",
    "delayed_integrator",
    "proportional",
    "fight",
    "multirate",
    "bistable",
    "flipflop",
    "twin_integrators",
    "shaped",
    "hpa",
]


def tipping_point(compile_ts: Callable[[str], TransitionSystem]) -> TransitionSystem:
    return compile_ts((ROOT / "specs/seed/tipping_point.coh").read_text())


@pytest.mark.parametrize("name", ALL)
def test_vectorised_evaluator_is_the_reference_semantics(spec: Spec, name: str) -> None:
    ts = spec(name)
    p = Engine(ts).exact
    x = p.initial_states()
    vals = p.base_values()
    states = [x[0].copy()]
    for t in range(40):
        x = p.step(vals, x, t)
        states.append(x[0].copy())
    ref = simulate(ts, 40).states[0]
    np.testing.assert_array_equal(np.array(states), ref)


def test_evaluator_on_the_tipping_point(compile_ts: Callable[[str], TransitionSystem]) -> None:
    ts = tipping_point(compile_ts)
    p = Engine(ts).exact
    x = p.initial_states()
    np.testing.assert_array_equal(x[0], simulate(ts, 1).states[0, 0])
    x = p.run(p.base_values(), x, 0, 30)
    np.testing.assert_array_equal(x[0], simulate(ts, 30).states[0, -1])


@pytest.mark.parametrize("name", ["shaped", "integral", "multirate", "proportional"])
def test_jacobians_match_finite_differences(spec: Spec, name: str) -> None:
    ts = spec(name)
    lin = linearize(ts, LinearOptions(starts=0))
    engine = lin.model.engine
    p = engine.exact
    x = lin.operating_point.x
    for t in range(ts.hyperperiod):
        scale = np.maximum(np.abs(x), 1.0)
        J = np.empty((len(x), len(x)))
        for j in range(len(x)):
            h = 1e-6 * scale[j]
            up, dn = x.copy(), x.copy()
            up[j] += h
            dn[j] -= h
            vals = p.base_values(2)
            nxt = p.step(vals, np.stack([up, dn]), t)
            J[:, j] = (nxt[0] - nxt[1]) / (2 * h)
        np.testing.assert_allclose(lin.matrices[t].toarray(), J, rtol=1e-5, atol=1e-7)
        x = p.step(p.base_values(), x[None, :], t)[0]


def test_no_operating_point(spec: Spec) -> None:
    r = analyze(spec("flipflop"))
    (f,) = [f for f in r.findings if f.code == "COH305"]
    assert "no equilibrium" in f.message
    (v,) = r.verdicts
    assert v.status == Status.UNKNOWN and "no operating point" in v.reason
    assert dict(r.data)["operating_point"]["found"] is False
    assert any(t.title == "Topology" for t in r.tables)


def test_multiple_equilibria(spec: Spec) -> None:
    ts = spec("bistable")
    op = operating_point(ts)
    assert op.found and op.x[0] == pytest.approx(1.0)
    assert [o[0] for o in op.others] == [pytest.approx(-1.0)]
    (f,) = [f for f in analyze(ts).findings if f.code == "COH306"]
    assert "2 different equilibria" in f.message and "`x` = 1 here, -1 there" in f.message
    assert not [f for f in analyze(ts, LinearOptions(starts=0)).findings if f.code == "COH306"]


def test_runaway_to_the_bounds_prefers_the_designed_equilibrium(spec: Spec) -> None:
    # `fight` is unstable: simulation runs to a corner of the bounds; the operating point the
    # loops are designed to hold (y1 = r1, y2 = r2) is the unsaturated one
    op = operating_point(spec("fight"))
    np.testing.assert_allclose(op.x, [1.0, 0.0], atol=1e-9)
    assert op.method == "root"
    assert any(abs(o[0]) == 100.0 for o in op.others)


def test_operating_point_replays_in_the_simulator(spec: Spec) -> None:
    op = operating_point(spec("shaped"))
    assert op.found and op.replay_residual is not None and op.replay_residual < 1e-8


def test_corners_of_the_tipping_point(compile_ts: Callable[[str], TransitionSystem]) -> None:
    ts = tipping_point(compile_ts)
    r = analyze(ts)
    corners = {f.span: f.message for f in r.findings if f.code == "COH307"}
    assert "the lower bound 0 of `retry`" in corners[ts.loop("agent_retries").span]
    assert "the upper bound 1 of `context`" in corners[ts.loop("cost_controller").span]
    assert "the lower bound 0 of `slow_share`" in corners[ts.loop("router").span]
    (v,) = r.verdicts
    assert v.status == Status.HOLDS and "local" in v.reason and "COH307" in v.reason


def test_corners_of_the_shaping(spec: Spec) -> None:
    r = analyze(spec("hpa"))
    (f,) = [f for f in r.findings if f.code == "COH307"]
    assert "loop `a`" in f.message
    assert "the stabilization window of `u`" in f.message
    assert "its cooldown" in f.message
    assert any("its cooldown (4 ticks) is longer than its period (2)" in n for n in f.notes)
    # at rest inside its deadband the loop does not act: the actuator holds, a neutral mode
    # that is reported, not counted (the verdict is the loop-free remainder)
    assert "a hold of `u`" in f.message
    assert "COH303" not in {x.code for x in r.findings}
    data = dict(r.data)
    assert data["neutral_actuators"] == {"u": ["a"]}
    assert r.verdicts[0].status == Status.HOLDS


def test_interior_operating_point_has_no_corner(spec: Spec) -> None:
    for name in ("shaped", "integral", "multirate", "fight"):
        assert "COH307" not in {f.code for f in analyze(spec(name)).findings}, name


def _solve_starts(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    import coherence.linear.oppoint as oppoint

    starts: list[np.ndarray] = []
    real = oppoint._solve

    def spy(engine, fmap, x0, scale, options):  # type: ignore[no-untyped-def]
        starts.append(np.array(x0, dtype=float))
        return real(engine, fmap, x0, scale, options)

    monkeypatch.setattr(oppoint, "_solve", spy)
    return starts


def test_an_unsettled_run_does_not_start_the_root_solve(
    compile_ts: Callable[[str], TransitionSystem], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the lagged HPA flaps: its settling run ends 0.2 of a scale from a fixed point, so the
    # root solve starts from the declared initial state, and converges there
    ts = compile_ts((ROOT / "specs/conflicts/hpa_lag_broken.coh").read_text())
    engine = Engine(ts)
    x0 = engine.exact.initial_states()[0]
    x0[engine.exact.cooldown] = 0.0
    starts = _solve_starts(monkeypatch)
    op = find_operating_point(engine, LinearOptions())
    assert op.found and op.method == "root"
    assert starts, "the root solve was not asked"
    free = np.isfinite(x0)
    np.testing.assert_array_equal(starts[0][free], x0[free])
    ref = simulate(ts, ts.hyperperiod, init=dict(zip(ts.state_names, op.x, strict=True)))
    np.testing.assert_allclose(ref.states[0, -1], op.x, atol=1e-9)


def test_a_settled_run_starts_the_root_solve(spec: Spec, monkeypatch: pytest.MonkeyPatch) -> None:
    # `shaped` comes close to its fixed point: the root solve starts where the run ended,
    # and the declared start is not asked
    ts = spec("shaped")
    engine = Engine(ts)
    x0 = engine.exact.initial_states()[0]
    starts = _solve_starts(monkeypatch)
    op = find_operating_point(engine, LinearOptions())
    assert op.found and starts
    assert all(not np.allclose(s, x0) for s in starts)
