"""Interval contraction of the reachable enclosure around its fixed points at nominal input
(:func:`coherence.intervals.fixedpoint.fixed_point_contraction`, used by the bad-equilibrium
search).

Closed forms: ``x' = a x + b`` (``|a| < 1``) has the single fixed point ``b / (1 - a)``, and
the contraction of any box that holds it shrinks towards it geometrically (ratio ``|a|``);
``x' = x + 1`` has no fixed point below its upper bound, so a box below it contracts to
nothing.
"""

from __future__ import annotations

import pytest

from coherence.compile import compile_text
from coherence.formal.equilibria import find
from coherence.intervals.fixedpoint import contract, fixed_point_contraction, never_violated
from coherence.ir.nodes import TransitionSystem
from coherence.results import Status
from coherence.search.equilibria import keep_objectives
from coherence.smt import SmtOptions
from coherence.smt.solver import SolverStats


def affine(a: float, b: float, bound: float = 100.0, extra: str = "") -> TransitionSystem:
    text = f"""system s {{ tick 1s
  input u : 1 in [0, 2] nominal 1
  state x : 1 in [-{bound}, {bound}] init 0
  next x = {a} * x + {b} * u
  {extra}
}}"""
    return compile_text("t.coh", text).systems[0]


@pytest.mark.parametrize(("a", "b"), [(0.5, 1.0), (-0.5, 3.0), (0.9, 0.2), (0.0, 4.0)])
def test_an_affine_map_contracts_to_its_fixed_point(a: float, b: float) -> None:
    ts = affine(a, b)
    con = fixed_point_contraction(ts, {"x": (-50.0, 50.0)})
    assert con is not None and not con.empty
    lo, hi = con.box["x"]
    star = b / (1 - a)
    assert lo <= star <= hi
    assert hi - lo <= 1e-4 * 100  # the stopping rule: ends move by less than 1e-6 of 100


def test_no_fixed_point_in_the_box_empties_it() -> None:
    ts = affine(1.0, 1.0)
    con = fixed_point_contraction(ts, {"x": (0.0, 5.0)})
    assert con is not None and con.empty
    # the drift x' - x = u = 1 is positive everywhere: a fixed point sits at the upper bound
    # 100, outside the box, and the first round says so (the meets alone take 6 rounds:
    # [0,5] -> [1,5] -> ... -> [5,5] -> [6,6])
    assert con.rounds == 1


def drain(extra: str = "") -> TransitionSystem:
    text = f"""system s {{ tick 1s
  input u : 1 in [0, 2] nominal 1
  state x : 1 in [0, 100] init 0
  next x = max(0, x + u - 2)
  {extra}
}}"""
    return compile_text("t.coh", text).systems[0]


def test_a_draining_queue_has_its_fixed_point_at_zero() -> None:
    # x' = max(0, x - 1) at nominal input: the drift max(-x, -1) is negative wherever x > 0
    con = fixed_point_contraction(drain(), {"x": (1.0, 50.0)})
    assert con is not None and con.empty and con.rounds == 1
    con = fixed_point_contraction(drain(), {"x": (0.0, 50.0)})
    assert con is not None and not con.empty
    assert con.box["x"] == (0.0, 0.0)


def test_a_fixed_point_on_a_bound_stays() -> None:
    ts = affine(1.0, 1.0)  # x' = x + 1, clamped at 100: the fixed point is 100
    con = fixed_point_contraction(ts, {"x": (0.0, 100.0)}, max_rounds=400)
    assert con is not None and not con.empty
    assert con.box["x"] == (100.0, 100.0)


def test_objectives_the_contracted_box_cannot_violate() -> None:
    # fixed point 2 at nominal input: keep x <= 3 holds there, keep x <= 1 does not
    ts = affine(
        0.5,
        1.0,
        extra="objective keep fine = x <= 3\n  objective keep tight = x <= 1\n"
        "  require no bad equilibrium",
    )
    con = contract(ts)
    assert con is not None and not con.empty
    assert never_violated(ts, keep_objectives(ts), con) == {"fine"}
    res = find(ts, SmtOptions(), SolverStats())
    assert res.status is Status.FALSIFIED and res.objective == "tight"


def test_a_proof_by_contraction_needs_no_solver_call() -> None:
    ts = affine(0.5, 1.0, extra="objective keep fine = x <= 3\n  require no bad equilibrium")
    stats = SolverStats()
    res = find(ts, SmtOptions(), stats)
    assert res.status is Status.PROVED and "interval contraction" in res.reason
    assert stats.calls == 0
    # without intervals the solver proves it
    stats = SolverStats()
    res = find(ts, SmtOptions(intervals=False), stats)
    assert res.status is Status.PROVED and stats.calls >= 1
