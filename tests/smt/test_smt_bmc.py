"""Bounded model checking and k-induction: flapping, the tipping-point cascade, proofs.

Every counterexample is checked here the way the analysis promises: replayed in the
simulator, it violates the requirement per coherence.simulate.requirements at the reported
tick. Solver limits are rlimits (deterministic), never timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from coherence.formal import SmtOptions, analyze
from coherence.formal.bounded import check_bounded
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import Status
from coherence.simulate.requirements import check_requirement
from coherence.smt.bmc import bmc
from coherence.smt.induction import k_induction
from coherence.smt.replay import replay
from coherence.smt.solver import SolverStats

SOLVER_ONLY = SmtOptions(patterns=False, intervals=False)


def _req(ts: TransitionSystem, kind: str) -> Requirement:
    return next(r for r in ts.requirements if r.kind == kind)


def _assert_replays(ts: TransitionSystem, req: Requirement, res: object) -> None:
    cex = getattr(res, "cex", None)
    assert cex is not None
    trace = replay(ts, cex.scenario)
    fail = check_requirement(replace(req, horizon=min(req.horizon, trace.ticks)), trace)
    assert fail is not None and int(fail[0]) == cex.tick


# ---- flapping ---------------------------------------------------------------------------------


def test_lagged_hpa_flaps(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("hpa_lag.coh")
    r = analyze(ts)
    (v,) = r.verdicts
    assert v.status is Status.FALSIFIED and v.codes == ("COH503",)
    (f,) = [f for f in r.findings if f.code == "COH503"]
    assert f.key == "flapping:replicas" and f.span == _req(ts, "flapping").span
    assert f.trace is not None and f.trace.violation_tick is not None
    assert any(s.violated for s in f.trace.steps)
    events = " ".join(e for s in f.trace.steps for e in s.events)
    assert "hpa" in events and "set replicas" in events


def test_lagged_hpa_flapping_found_by_the_solver_alone(
    spec: Callable[[str], TransitionSystem],
) -> None:
    ts = spec("hpa_lag.coh")
    req = _req(ts, "flapping")
    opts = SmtOptions(patterns=False, mode="exact", rlimit=4_000_000)
    res = bmc(ts, req, opts, SolverStats())
    assert res.status is Status.FALSIFIED
    assert res.cex is not None and res.cex.source.startswith("solver")
    _assert_replays(ts, req, res)


def test_stabilization_window_stops_the_flapping(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("hpa_stabilized.coh")
    r = analyze(ts)
    (v,) = r.verdicts
    assert v.status in (Status.HOLDS, Status.PROVED)
    assert v.depth == _req(ts, "flapping").horizon
    assert not r.findings


# ---- the tipping point ------------------------------------------------------------------------


def test_tipping_point_cascade_runs_through_all_four_stages(
    spec: Callable[[str], TransitionSystem],
) -> None:
    ts = spec("specs/seed/tipping_point.coh")
    r = analyze(ts, SmtOptions(analyses=("requirements",)))
    (f,) = [f for f in r.findings if f.code == "COH501"]
    assert f.key == "always:latency<=10"
    trace = f.trace
    assert trace is not None and trace.violation_tick is not None
    cols = list(trace.columns)
    queue = cols.index("queue [req]")

    def first(pred: Callable[[int], bool]) -> int:
        return next(i for i, _ in enumerate(trace.steps) if pred(i))

    def acted(loop: str, what: str) -> Callable[[int], bool]:
        return lambda i: any(e.startswith(loop) and what in e for e in trace.steps[i].events)

    cut = first(acted("cost_controller", "set context"))
    retry = first(acted("agent_retries", "set retry"))
    queued = first(lambda i: trace.steps[i].values[queue] > 0)
    demoted = first(acted("router", "set slow_share"))
    assert cut <= retry < queued < demoted <= trace.violation_tick
    # the cost controller cuts (down), the router demotes (up)
    step = trace.steps[cut].events
    assert any("context 1 -> 0.9" in e for e in step)


def test_tipping_point_cascade_replays(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("specs/seed/tipping_point.coh")
    req = _req(ts, "always")
    res = check_bounded(ts, req, SmtOptions(), SolverStats())
    assert res.status is Status.FALSIFIED
    _assert_replays(ts, req, res)


def test_a_horizon_cap_does_not_hide_a_simulated_violation_beyond_it(
    spec: Callable[[str], TransitionSystem],
) -> None:
    """``--horizon`` caps the solver's unrolling, not the requirement: the cascade at t=123
    of the requirement's 300 ticks is reported with a cap of 10, as it is without one (it
    was "holds to depth 10", after a k-induction that could not succeed)."""
    ts = spec("specs/seed/tipping_point.coh")
    req = _req(ts, "always")
    res = check_bounded(ts, req, SmtOptions(horizon=10), SolverStats())
    assert res.status is Status.FALSIFIED and res.cex is not None and res.cex.tick == 123
    _assert_replays(ts, req, res)


# ---- always, response, proofs -----------------------------------------------------------------


TANK = """
input inflow : req/s in [0, 10] nominal 5
param drain = 6 req/s
state level : req in [0, 100] init 0
next level = max(0, level + (inflow - drain) * tick)
"""


def test_always_falsified_by_the_solver(system: Callable[[str], TransitionSystem]) -> None:
    ts = system(TANK + "require always level <= 12 req for 30 ticks")
    req = _req(ts, "always")
    for mode in ("exact", "overapprox", "auto"):
        res = bmc(ts, req, SmtOptions(patterns=False, mode=mode), SolverStats())
        assert res.status is Status.FALSIFIED, mode
        assert res.cex is not None and res.cex.tick == 4  # +4 per tick at best: 4, 8, 12, 16
        _assert_replays(ts, req, res)


@pytest.mark.parametrize("cap", [1, 3, 4])
def test_a_capped_horizon_reports_the_requirements_violation(
    cap: int, system: Callable[[str], TransitionSystem]
) -> None:
    # +4 a tick at most: 0, 4, 8, 12, 16; the first violation of `<= 12` is at tick 4,
    # whatever the cap on the unrolling; `<= 100` (the level's range) is never violated
    ts = system(TANK + "require always level <= 12 req for 30 ticks")
    req = _req(ts, "always")
    res = check_bounded(ts, req, SmtOptions(horizon=cap), SolverStats())
    assert res.status is Status.FALSIFIED and res.cex is not None and res.cex.tick == 4
    _assert_replays(ts, req, res)
    ok = system(TANK + "require always level <= 100 req for 30 ticks")
    res = check_bounded(ok, _req(ok, "always"), SmtOptions(horizon=cap), SolverStats())
    assert res.status in (Status.HOLDS, Status.PROVED)


def test_always_proved_by_induction(system: Callable[[str], TransitionSystem]) -> None:
    ts = system(TANK + "require always level <= 100 req for 300 ticks")
    r = analyze(ts, SOLVER_ONLY)
    (v,) = r.verdicts
    assert v.status is Status.PROVED and "inductive" in v.reason
    k, _ = k_induction(ts, _req(ts, "always"), SOLVER_ONLY, SolverStats())
    assert k == 1


def test_inputs_held(system: Callable[[str], TransitionSystem]) -> None:
    """With the input held, the level only grows when inflow > drain: a constant 10 reaches
    13 at tick 4 (+4, +4, +4); chosen per tick it is the same, but held at 6.5 it is not."""
    ts = system(TANK + "require always level <= 12 req for 30 ticks inputs held")
    req = _req(ts, "always")
    res = bmc(ts, req, SOLVER_ONLY, SolverStats())
    assert res.status is Status.FALSIFIED and res.cex is not None
    x = res.cex.scenario.inputs[:, 0]
    assert np.all(x == x[0])
    _assert_replays(ts, req, res)


def test_response_requirement(system: Callable[[str], TransitionSystem]) -> None:
    ts = system(TANK + "require after level >= 8 req then level <= 2 req within 3s for 40 ticks")
    req = _req(ts, "response")
    res = bmc(ts, req, SOLVER_ONLY, SolverStats())
    assert res.status is Status.FALSIFIED
    _assert_replays(ts, req, res)
    ok = system(TANK + "require after level >= 8 req then level <= 200 req within 3s for 20 ticks")
    assert bmc(ok, _req(ok, "response"), SOLVER_ONLY, SolverStats()).status is Status.HOLDS


def test_multirate_phase_in_induction(system: Callable[[str], TransitionSystem]) -> None:
    """x climbs by 1 every 3 ticks and is reset every 6: x <= 2 holds but is not 1-inductive
    from a free phase; k-induction over a symbolic phase proves it."""
    ts = system(
        "state x in [0, 10] init 0\n"
        "loop up { every 3s\n actuates x by 1 }\n"
        "loop reset { every 6s\n phase 5s\n actuates x to 0 }\n"
        "require always x <= 2 for 60 ticks"
    )
    r = analyze(ts, SOLVER_ONLY)
    (v,) = r.verdicts
    assert v.status in (Status.PROVED, Status.HOLDS)
    assert v.status is Status.PROVED or v.depth == 60


def test_unknown_never_passes(spec: Callable[[str], TransitionSystem]) -> None:
    """A starved solver answers unknown; it is reported (COH901) and is not a pass."""
    ts = spec("hpa_stabilized.coh")
    r = analyze(ts, SmtOptions(patterns=False, rlimit=2_000, budget=10_000))
    (v,) = r.verdicts
    assert v.status is Status.UNKNOWN and not v.status.passed
    assert [f.code for f in r.findings] == ["COH901"]
    assert "resource" in r.findings[0].message or "budget" in r.findings[0].message


@pytest.mark.parametrize("mode", ["exact", "overapprox", "auto"])
def test_modes_agree_on_the_lagged_hpa(mode: str, spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("hpa_stabilized.coh")
    res = bmc(ts, _req(ts, "flapping"), SmtOptions(patterns=False, mode=mode), SolverStats())
    assert res.status in (Status.HOLDS, Status.UNKNOWN)  # never a confirmed flapping
