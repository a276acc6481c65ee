"""Bad equilibria: the retry storm's self-sustaining overload and its trigger; the budget fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from coherence.formal import SmtOptions, analyze
from coherence.formal.equilibria import JOINT, find
from coherence.ir.nodes import TransitionSystem
from coherence.results import Status
from coherence.search.equilibria import keep_objectives, stay_ticks, stays_bad
from coherence.search.objectives import trace_violated
from coherence.simulate.engine import simulate
from coherence.smt.equilibria import FixedPointQuery, find_chains
from coherence.smt.solver import SolverStats


def test_retry_storm_has_a_bad_equilibrium_and_a_trigger(
    spec: Callable[[str], TransitionSystem],
) -> None:
    ts = spec("retry_storm.coh")
    eq = find(ts, SmtOptions(), SolverStats())
    assert eq.status is Status.FALSIFIED and eq.state is not None
    assert eq.objective == "clients.latency"
    obj = ts.objective(eq.objective)
    # the fixed point is one: a hyperperiod at nominal input returns to it
    one = simulate(ts, ts.hyperperiod, init=eq.state)
    for i, name in enumerate(ts.state_names):
        assert np.isclose(one.states[0, -1, i], eq.state[name], rtol=1e-9, atol=1e-9)
    # the good operating point is good: an empty queue at nominal demand
    assert eq.good is not None and eq.good["queue"] == 0
    trig = eq.trigger
    assert trig is not None and trig.input == "demand" and trig.level > 80
    # after the burst, nominal input forever: the system stays bad
    x = trig.trace.inputs[0, :, 0]
    assert np.all(x[: trig.ticks] == trig.level) and np.all(x[trig.ticks :] == 80)
    assert stays_bad(ts, obj, trig.trace)[0]
    assert trace_violated(obj, trig.trace)[0, trig.violation_tick]
    # and it is the smallest on the grid: one tick shorter does not do it
    if trig.ticks > 1:
        n = trig.ticks - 1 + stay_ticks(ts)
        inputs = np.full((1, n, 1), 80.0)
        inputs[0, : trig.ticks - 1, 0] = trig.level
        shorter = simulate(ts, n, inputs=inputs, init=eq.good)
        assert not stays_bad(ts, obj, shorter)[0]


def test_retry_storm_finding(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("retry_storm.coh")
    r = analyze(ts)
    (v,) = r.verdicts
    assert v.kind == "no_bad_equilibrium" and v.status is Status.FALSIFIED
    (f,) = r.findings
    assert f.code == "COH504" and f.key == "bad_equilibrium:clients.latency"
    assert f.trace is not None and any("trigger" in n for n in f.notes)


def test_retry_budget_is_proved_free_of_bad_equilibria(
    spec: Callable[[str], TransitionSystem],
) -> None:
    ts = spec("retry_budget.coh")
    for mode in ("exact", "overapprox", "auto"):
        eq = find(ts, SmtOptions(mode=mode), SolverStats())
        assert eq.status is Status.PROVED, mode
    r = analyze(ts)
    assert r.verdicts[0].status is Status.PROVED and not r.findings


def test_no_keep_objective_is_vacuous(system: Callable[[str], TransitionSystem]) -> None:
    ts = system("state x in [0, 1] init 0\nnext x = x\nrequire no bad equilibrium")
    assert analyze(ts).verdicts[0].status is Status.PROVED


def test_closed_form_fixed_point(system: Callable[[str], TransitionSystem]) -> None:
    # x' = x / 2 + 5 has the one fixed point x = 10: over a bound of 8, under one of 12
    body = "state x in [0, 20] init 0\nnext x = 0.5 * x + 5\nobjective keep x <= {}\n"
    bad = system(body.format(8) + "require no bad equilibrium")
    eq = find(bad, SmtOptions(), SolverStats())
    assert eq.status is Status.FALSIFIED and eq.state is not None
    assert abs(eq.state["x"] - 10) < 1e-6
    good = system(body.format(12) + "require no bad equilibrium")
    assert find(good, SmtOptions(), SolverStats()).status is Status.PROVED


WINDOWED = """
input u in [0, 10] nominal 4
state x in [0, 100] init 0
next x = 0.5 * x + u
loop watch {
  every 3s
  senses x delay 2s window 7s
  actuates a by 0.1 * (x - a)
  objective keep x <= {bound}
}
state a in [0, 100] init 0
require no bad equilibrium
"""


def test_registers_of_a_fixed_point_are_its_signal(
    system: Callable[[str], TransitionSystem],
) -> None:
    """Delay and window registers (9 of them, longer than the hyperperiod 3) are not free at a
    fixed point: each holds the value its signal had a whole number of shifts ago."""
    ts = system(WINDOWED.replace("{bound}", "7"))
    assert ts.hyperperiod == 3
    chains = find_chains(ts, set())
    (c,) = [c for c in chains if c.states[0].startswith("watch.")]
    assert len(c.states) == 8 and c.shifts == (0, 1, 2)
    q = FixedPointQuery(ts, keep_objectives(ts), "exact")
    assert len(q.w) <= 3  # three values, not eight free registers
    eq = find(ts, SmtOptions(), SolverStats())
    assert eq.status is Status.FALSIFIED and eq.state is not None  # x settles at 8 > 7
    # the state found, registers included, is a fixed point of the simulator
    one = simulate(ts, ts.hyperperiod, init=eq.state)
    for i, name in enumerate(ts.state_names):
        assert np.isclose(one.states[0, -1, i], eq.state[name], rtol=1e-9, atol=1e-9), name
    ok = system(WINDOWED.replace("{bound}", "9"))
    assert find(ok, SmtOptions(), SolverStats()).status is Status.PROVED


def test_tipping_point_seed_is_bistable_and_the_fix_is_proved(
    spec: Callable[[str], TransitionSystem],
) -> None:
    seed = spec("specs/seed/tipping_point.coh")
    eq = find(seed, SmtOptions(), SolverStats())
    assert eq.status is Status.FALSIFIED and eq.objective == "router.latency"
    assert eq.state is not None and eq.state["slow_share"] == 1.0
    assert eq.trigger is not None  # reachable from the good point by a demand burst
    fixed = spec("specs/conflicts/tipping_point_fixed.coh")
    assert find(fixed, SmtOptions(), SolverStats()).status is Status.PROVED


def test_power_cap_broken_has_its_bad_equilibrium(
    spec: Callable[[str], TransitionSystem],
) -> None:
    ts = spec("specs/conflicts/power_cap_broken.coh")
    eq = find(ts, SmtOptions(), SolverStats())
    assert eq.status is Status.FALSIFIED and eq.objective == "power_cap.power"
    assert eq.state is not None and eq.state["clock"] == 0.5 and eq.trigger is not None


def test_exact_mode_asks_one_objective_at_a_time_after_the_relaxation_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # every over-approximate query "runs out of its rlimit": the exact mode then skips the
    # query of all objectives at once and asks each objective alone (where a smaller query
    # may still be decided); the verdict stays unknown, with every objective open
    from coherence.compile import compile_text
    from coherence.smt.solver import Answer, Outcome

    text = """system s { tick 1s
  input u : 1 in [0, 1] nominal 0.5
  state x : 1 in [0, 10] init 1
  state y : 1 in [0, 10] init 1
  next x = 0.5 * x + 0.02 * x * y + u
  next y = 0.5 * y + u
  objective keep x <= 8
  objective keep y <= 9
  require no bad equilibrium
}"""
    ts = compile_text("t.coh", text).systems[0]
    asked: list[tuple[str, tuple[str, ...]]] = []

    def solve(self: Any, objectives: list[str], rlimit: int, stats: Any, near: Any = None) -> Any:
        asked.append((self.enc.mode, tuple(objectives)))
        return Answer(Outcome.UNKNOWN, "resource limit exceeded", limit_hit=True)

    monkeypatch.setattr(FixedPointQuery, "solve", solve)
    r = find(ts, SmtOptions(intervals=False), SolverStats())
    assert r.status == Status.UNKNOWN
    both = tuple(sorted(o.name for o in keep_objectives(ts)))
    exact = [tuple(sorted(objs)) for mode, objs in asked if mode == "exact"]
    over = [tuple(sorted(objs)) for mode, objs in asked if mode == "overapprox"]
    assert both in over  # the relaxation asks all at once first
    assert exact and both not in exact  # exact arithmetic only one by one
    assert sorted(exact) == sorted((o,) for o in both)


@pytest.mark.parametrize("part", [1, 3, 1000])
def test_a_lead_run_in_parts_ends_where_one_run_ends(
    part: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hints' lead run goes a few hyperperiods at a time: every state ends where one run
    of all its ticks ends, bit for bit, with loops of different periods (phases), windows,
    a stabilization history and an integer actuator, from starts inside, on and outside the
    declared ranges."""
    from coherence.compile import compile_path
    from coherence.search import equilibria

    ts = compile_path("specs/stacks/vllm_llmd_fleet.coh").systems[0]
    h = ts.hyperperiod
    assert h > 1 and {"sensor", "history"} <= {s.kind for s in ts.states}
    rng = np.random.default_rng(5)
    S = 9
    init = {}
    for s in ts.states:
        lo = s.lo if np.isfinite(s.lo) else -1e3
        hi = s.hi if np.isfinite(s.hi) else 1e3
        v = rng.uniform(lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo), S)
        v[:2] = [lo, hi]
        init[s.name] = v
    ticks = 7 * h
    with np.errstate(all="ignore"):
        whole = simulate(ts, ticks, init=init, scenarios=S)
        monkeypatch.setattr(equilibria, "LEAD_TICKS", part * h)
        got = equilibria.run_on(ts, init, ticks, S)
    for j, name in enumerate(ts.state_names):
        assert got[name].tobytes() == whole.states[:, -1, j].tobytes(), name


def test_the_query_of_several_objectives_at_once_is_a_fast_path_on_a_part_of_the_limit() -> None:
    """Several keep-objectives: the query of all at once gets ``rlimit // JOINT``, then each
    objective a share of the limit (over-approximation, then exact: every over-approximate
    query ran out, so exact asks the objectives one by one); one objective: the whole limit."""
    from coherence.compile import compile_path

    rlimit = 20_000
    opts = SmtOptions(rlimit=rlimit, intervals=False)
    many = compile_path("specs/conflicts/power_cap_fixed.coh").systems[0]
    n = len(keep_objectives(many))
    assert n == 2
    assert rlimit // JOINT < rlimit // n  # less than one objective's share
    stats = SolverStats()
    got = find(many, opts, stats)
    assert got.status is Status.UNKNOWN
    assert f"over-approximation: resource limit exceeded (rlimit {rlimit // JOINT})" in got.reason
    assert (stats.calls, stats.unknown) == (1 + 2 * n, 1 + 2 * n)
    assert stats.rlimit == rlimit // JOINT + 2 * n * (rlimit // n)
    one = compile_path("specs/stacks/knative_kpa.coh").systems[0]
    assert len(keep_objectives(one)) == 1
    got = find(one, opts, SolverStats())
    assert got.status is Status.UNKNOWN
    assert f"over-approximation: resource limit exceeded (rlimit {rlimit})" in got.reason
