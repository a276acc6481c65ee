"""Conflict witnesses: aligned pairs proved, conflicting pairs found and replayed in both runs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from coherence.ir.nodes import TransitionSystem
from coherence.ir.transform import hold_loop
from coherence.results import Status
from coherence.smt import SmtOptions, analyze
from coherence.smt.conflicts import (
    ALIGNED,
    CONFLICT,
    GLOBAL,
    REGIONAL,
    UNCOUPLED,
    check_all,
    coupling,
    influence_cycles,
)
from coherence.smt.objectives import trace_worse
from coherence.smt.replay import replay
from coherence.smt.solver import SolverStats


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
    keys = sorted(f.key for f in r.findings)
    assert keys == ["conflict:power_cap->scaler", "conflict:scaler->power_cap"]
    for f in r.findings:
        assert f.code == "COH401" and f.trace is not None
        actor = f.key.split(":")[1].split("->")[0]
        assert f.span == ts.loop(actor).span
        acting, holding = dict(f.data)["acting"], dict(f.data)["holding"]
        assert len(acting) == len(holding) and acting != holding


def test_witnesses_replay_in_both_runs(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("power_fight.coh")
    for p in check_all(ts, SmtOptions(), SolverStats()):
        if p.verdict != CONFLICT:
            continue
        w = p.witness
        assert w is not None
        acting = replay(ts, w.scenario)
        holding = replay(hold_loop(ts, p.actor), w.scenario)
        worse = trace_worse(ts.objective(w.objective), acting, holding)
        assert worse[w.tick]
        # the same start, the same inputs: the runs differ only by the loop's action
        assert np.array_equal(acting.states[0, 0], holding.states[0, 0])
        assert np.array_equal(acting.inputs, holding.inputs)


def test_regional_conflicts(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("regional.coh")
    r = analyze(ts)
    (v,) = r.verdicts
    assert v.status is Status.HOLDS and "away from the operating point" in v.reason
    assert {f.code for f in r.findings} == {"COH402"}
    m = _matrix(r)
    assert m[("budget_cap", "scaler")].startswith(REGIONAL)


def test_tipping_point_alignment(spec: Callable[[str], TransitionSystem]) -> None:
    ts = spec("specs/seed/tipping_point.coh")
    r = analyze(ts, SmtOptions(analyses=("conflicts",)))
    m = _matrix(r)
    assert m[("cost_controller", "agent_retries")].startswith(CONFLICT)
    assert m[("router", "cost_controller")] == UNCOUPLED
    (f,) = [f for f in r.findings if f.key == "conflict:cost_controller->agent_retries"]
    assert "success" in f.message


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
    cycles = influence_cycles(ts)
    assert ("agent_retries", "cost_controller") in cycles
