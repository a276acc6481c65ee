"""Conflicts: aligned pairs proved, conflicting pairs found as runs from the initial state and
replayed in both runs; the solver's witnesses from the enclosure are candidates, never findings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import z3

from coherence.formal import SmtOptions, analyze
from coherence.formal.conflicts import (
    ALIGNED,
    CONFLICT,
    NO_OBJECTIVE,
    NOT_FOUND,
    UNCOUPLED,
    _to_finish,
    check_all,
)
from coherence.ir.deps import GLOBAL, coupling, influence, influence_cycles
from coherence.ir.nodes import Const, TransitionSystem
from coherence.ir.transform import hold_loop
from coherence.results import Status
from coherence.smt.alignment import ActorQuery, Encoding
from coherence.smt.encode import OVERAPPROX, Encoder
from coherence.smt.objectives import trace_worse
from coherence.smt.replay import replay
from coherence.smt.solver import SolverStats, fresh_context
from coherence.smt.unroll import param_values, signal_ranges
from tests.helpers import assert_replays

Pair = tuple[str, str]


def _matrix(r: object) -> dict[tuple[str, str], str]:
    table = next(t for t in r.tables if t.title == "Objective alignment")  # type: ignore[attr-defined]
    cols = table.columns[1:]
    return {
        (str(row[0]), c): str(v) for row in table.rows for c, v in zip(cols, row[1:], strict=True)
    }


def test_aligned_loops_are_proved_conflict_free(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("aligned.coh")
    r = analyze(ts)
    (v,) = r.verdicts
    assert v.kind == "coherent" and v.status is Status.PROVED
    assert not r.findings
    m = _matrix(r)
    assert m[("scaler", "batcher")].startswith(ALIGNED)
    assert m[("batcher", "scaler")].startswith(ALIGNED)
    assert "proved" in m[("scaler", "batcher")]


def test_fighting_loops_have_replayed_witnesses(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("power_fight.coh")
    r = analyze(ts)
    (v,) = r.verdicts
    assert v.status is Status.FALSIFIED and v.codes == ("COH401",)
    # one finding per acting loop
    keys = sorted(f.key for f in r.findings)
    assert keys == ["conflict:power_cap", "conflict:scaler"]
    for f in r.findings:
        assert f.code == "COH401" and f.trace is not None
        actor = f.key.split(":")[1]
        other = "scaler" if actor == "power_cap" else "power_cap"
        assert f.span == ts.loop(actor).span
        data = dict(f.data)
        assert data["affects"] == (other,)
        assert data["objective"] in ts.loop(other).objectives
        assert data["origin"] in ("initial", "nominal") and data["start_tick"] >= 0
        assert data["effect"] > data["threshold"] > 0
        acting, holding = data["acting"], data["holding"]
        assert len(acting) == len(holding) and acting != holding
        assert acting[0] == holding[0]  # both windows start from the same state


def test_witnesses_replay_in_both_runs(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("power_fight.coh")
    for p in check_all(ts, SmtOptions(), SolverStats()):
        if p.verdict != CONFLICT:
            continue
        w = p.witness
        assert w is not None and (w.actor, w.affected) == (p.actor, p.affected)
        assert_replays(ts, w)
        # the same start, the same inputs: the runs differ only by the loop's action
        s = w.start_tick
        assert np.array_equal(w.run.states[0, s], w.counterfactual.states[0, 0])
        assert np.array_equal(
            w.run.inputs[0, s : s + w.counterfactual.ticks], w.counterfactual.inputs[0]
        )


@pytest.fixture(scope="module")
def regional(spec: Callable[[str], TransitionSystem]) -> tuple[TransitionSystem, dict[Pair, Any]]:
    ts = spec("regional.coh")
    return ts, {(p.actor, p.affected): p for p in check_all(ts, SmtOptions(), SolverStats())}


def test_a_conflict_only_at_high_demand_is_a_run_from_the_initial_state(
    spec: Callable[[str], TransitionSystem], regional: tuple[TransitionSystem, dict[Pair, Any]]
) -> None:
    # the budget cap only cuts above 10 replicas, which the scaler asks for only above
    # 80 req/s of demand: the conflict is a run from the initial state under a demand
    # pattern, a COH401 like any other (no "regional" finding, no operating region)
    r = analyze(spec("regional.coh"))
    (v,) = r.verdicts
    assert v.status is Status.FALSIFIED and v.codes == ("COH401",)
    (f,) = r.findings
    assert f.key == "conflict:scaler"
    data = dict(f.data)
    assert data["objective"] == "budget_cap.spend" and data["affects"] == ("budget_cap",)
    assert data["origin"] == "initial" and "demand" in str(data["pattern"])
    m = _matrix(r)
    assert m[("scaler", "budget_cap")].startswith(CONFLICT)
    ts, pairs = regional
    w = pairs[("scaler", "budget_cap")].witness
    assert w is not None
    assert_replays(ts, w)
    assert w.acting > 10 >= w.holding  # the scaler's action goes over the budget, holding does not
    demand = w.run.inputs[0, : w.start_tick + 1, ts.input_names.index("demand")]
    assert demand.max() > 80


def test_solver_candidates_replay_but_are_not_findings(
    spec: Callable[[str], TransitionSystem], regional: tuple[TransitionSystem, dict[Pair, Any]]
) -> None:
    # the budget cap's cut never raises latency on a run (at 11+ replicas capacity exceeds
    # any demand); the solver's witness starts from a state of the enclosure's box no run
    # reaches: a candidate that replays from that state, not a conflict
    ts, pairs = regional
    p = pairs[("budget_cap", "scaler")]
    assert p.verdict == NOT_FOUND and p.witness is None
    assert "no simulated run reached" in p.reason and p.scenarios > 0 and p.ticks > 0
    c = p.candidate
    assert c is not None
    acting = replay(ts, c.scenario)
    holding = replay(hold_loop(ts, p.actor), c.scenario)
    assert trace_worse(ts.objective(c.objective), acting, holding)[c.tick]
    for s in ts.states:
        assert s.lo <= c.scenario.init[s.name] <= s.hi
    for j, u in enumerate(ts.inputs):
        assert np.all((u.lo <= c.scenario.inputs[:, j]) & (c.scenario.inputs[:, j] <= u.hi))
    r = analyze(spec("regional.coh"))
    assert not [f for f in r.findings if f.key == "conflict:budget_cap"]
    assert _matrix(r)[("budget_cap", "scaler")].startswith(NOT_FOUND)


def test_tipping_point_alignment(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("specs/seed/tipping_point.coh")
    r = analyze(ts, SmtOptions(analyses=("conflicts",)))
    m = _matrix(r)
    assert m[("cost_controller", "agent_retries")].startswith(CONFLICT)
    assert m[("router", "cost_controller")] == UNCOUPLED
    (f,) = [f for f in r.findings if f.key == "conflict:cost_controller"]
    assert "agent_retries" in dict(f.data)["affects"]
    assert "agent_retries" in f.message or any("agent_retries" in n for n in f.notes)


def test_global_objectives_are_a_column(system: Callable[[str], TransitionSystem]) -> None:
    ts = system(
        "input d in [0, 10] nominal 5\nstate x in [0, 100] init 0\n"
        "loop pump { every 1s\n actuates x by d }\n"
        "objective keep x <= 50\nrequire coherent"
    )
    r = analyze(ts)
    m = _matrix(r)
    assert m[("pump", GLOBAL)].split(" ")[0] in ("conflicting",)
    assert r.verdicts[0].status in (Status.FALSIFIED, Status.HOLDS)


def test_only_coupled_pairs_are_queried(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("specs/seed/tipping_point.coh")
    assert coupling(ts, "router", "cost_controller", 11) == ()
    assert "context" in coupling(ts, "cost_controller", "agent_retries", 11)
    cycles = {frozenset(c) for c in influence_cycles(ts)}  # one cycle, whichever loop first
    assert cycles == {frozenset({"agent_retries", "cost_controller"})}


def test_every_coupled_pair_gets_its_share_of_the_budget(
    spec: Callable[[str], TransitionSystem],
) -> None:
    # a budget the first pairs would use up if it were spent in pair order
    ts = spec("specs/seed/tipping_point.coh")
    pairs = check_all(ts, SmtOptions(patterns=False, conflict_budget=40_000), SolverStats())
    coupled = [p for p in pairs if p.verdict not in (UNCOUPLED, NO_OBJECTIVE)]
    assert len(coupled) >= 3
    for p in coupled:
        assert "analysis' resource budget" not in p.reason, (p.actor, p.affected, p.reason)


def test_the_search_is_deterministic(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("specs/seed/tipping_point.coh")
    runs = [check_all(ts, SmtOptions(), SolverStats()) for _ in range(2)]
    assert any(p.witness is not None for p in runs[0])
    for p, q in zip(*runs, strict=True):
        assert (p.verdict, p.reason, p.notes, p.scenarios, p.ticks) == (
            q.verdict, q.reason, q.notes, q.scenarios, q.ticks,
        )  # fmt: skip
        assert (p.witness is None) == (q.witness is None)
        if p.witness is not None and q.witness is not None:
            v, w = p.witness, q.witness
            assert (v.origin, v.start_tick, v.tick, v.objective, v.pattern) == (
                w.origin, w.start_tick, w.tick, w.objective, w.pattern,
            )  # fmt: skip
            assert (v.effect, v.threshold, v.acting, v.holding) == (
                w.effect, w.threshold, w.acting, w.holding,
            )  # fmt: skip
            assert np.array_equal(v.run.inputs, w.run.inputs)
        if p.candidate is not None:
            assert q.candidate is not None
            assert np.array_equal(p.candidate.scenario.inputs, q.candidate.scenario.inputs)
            assert p.candidate.scenario.init == q.candidate.scenario.init


def test_influence_reaches_lets_at_once_and_states_a_tick_later(
    system: Callable[[str], TransitionSystem],
) -> None:
    ts = system(
        "input u in [0, 1] nominal 0\nstate x in [0, 10] init 0\nstate y in [0, 10] init 0\n"
        "state z in [0, 10] init 0\nlet a = u + 1\nlet b = 2 * x\n"
        "next x = a\nnext y = b\nnext z = z"
    )
    reach = influence(ts, ["u"], 5)
    assert reach == {"u": 0, "a": 0, "x": 1, "b": 1, "y": 2}
    assert influence(ts, ["u"], 1) == {"u": 0, "a": 0, "x": 1, "b": 1}


def test_the_counterfactual_shares_what_the_actor_cannot_reach(
    spec: Callable[[str], TransitionSystem],
) -> None:
    ts = spec("power_fight.coh")
    with fresh_context():
        enc = Encoding(ts, OVERAPPROX, signal_ranges(ts, param_values(Encoder(ts), ts)))
        q = ActorQuery(enc, "power_cap", 4, SolverStats())
        q.goal("scaler", 2)  # latency at tick 2: the queue, through the capacity at tick 1
        # the clock is the power cap's: it differs from tick 1; the replicas do not
        act, hold = q.act.frames[1].values, q.hold.frames[1].values
        assert act["replicas"] is hold["replicas"]
        assert not z3.eq(act["clock"].term, hold["clock"].term)
        # only the cone of the goal is encoded: the power at tick 1 is read by nothing in it
        assert "capacity" in act and "power" not in act


def test_a_starved_pair_gets_more_only_at_the_rate_it_proved() -> None:
    assert _to_finish(0, 50_000, 0, 10) == 0  # proved nothing: no rate
    assert _to_finish(40_000, 50_000, 4, 10) == 60_000  # 10k a tick, 6 ticks left
    assert _to_finish(40_000, 200_000, 4, 10) == 0  # stuck on a tick costing far more


def test_the_conflict_search_rewrites_each_counterfactual_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A held loop's system is the same object at every query that holds it, so its solver
    form is computed once per loop held (and once for the system), not at every query."""
    from coherence.compile import compile_path
    from coherence.ir import simplify

    ts = compile_path("specs/seed/tipping_point.coh").systems[0]
    made: list[tuple[str, ...]] = []  # per rewrite: the loops the system holds
    rewrite = simplify._rewritten

    def counted(system: TransitionSystem) -> TransitionSystem:
        fires = {lp.fires: lp.name for lp in system.loops}
        made.append(
            tuple(fires[d.name] for d in system.lets if d.name in fires and d.expr == Const(0.0))
        )
        return rewrite(system)

    monkeypatch.setattr(simplify, "_rewritten", counted)
    simplify._SOLVER_FORMS.clear()
    check_all(ts, SmtOptions(), SolverStats())
    assert () in made and any(made)  # the system, and counterfactuals of it
    assert len(made) == len(set(made))  # each once
    assert len(made) <= len(ts.loops) + 1
