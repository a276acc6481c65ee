"""Conflict witnesses from a warm start (``SmtOptions(warm_start=True)``).

The reachable enclosure is a box: its corners pair values no run pairs. With the warm start
a witness starts one tick after a state of the box (or at the initial state), so a state
that copies another with a lag agrees with it.

Closed form (``lagged`` below): ``x`` moves by at most 1 a tick, ``copy`` sets ``y`` to ``x``
and ``shadow`` sets ``w`` to ``y``, so one tick after ``copy`` acts ``y - w`` is the ``x - y``
of the tick before, at most 1 on every run, and ``shadow``'s objective ``y - w <= 3`` is
never violated whatever ``copy`` does. The box of the enclosure still holds ``x = 10,
y = 0``, from which ``copy``'s action violates it while holding ``y`` would not: a witness
no run can reach. The cold search reports it; the warm search proves the pair aligned.
"""

from __future__ import annotations

from fractions import Fraction

from coherence.compile import compile_text
from coherence.ir.nodes import TransitionSystem
from coherence.smt import SmtOptions
from coherence.smt.conflicts import (
    Encoding,
    PairResult,
    check_all,
    initial_values,
    start_ranges,
)
from coherence.smt.encode import Encoder, param_values
from coherence.smt.solver import SolverStats, own_context


def lagged() -> TransitionSystem:
    text = """system s { tick 1s
  input u : 1 in [-1, 1] nominal 0
  state x : 1 in [0, 10] init 5
  state y : 1 in [0, 10] init 5
  state w : 1 in [0, 10] init 5
  next x = x + u
  loop copy {
    every 1s
    actuates y to x
  }
  loop shadow {
    every 1s
    actuates w to y
    objective keep lag = y - w <= 3
  }
  require coherent
}"""
    return compile_text("t.coh", text).systems[0]


def pairs(ts: TransitionSystem, warm: bool) -> dict[tuple[str, str], PairResult]:
    with own_context():
        found = check_all(ts, SmtOptions(warm_start=warm), SolverStats())
    return {(p.actor, p.affected): p for p in found}


def test_the_initial_state_is_known_exactly() -> None:
    assert initial_values(lagged()) == {n: Fraction(5) for n in ("x", "y", "w")}


def test_the_warm_encoding_has_a_start_for_every_state() -> None:
    ts = lagged()
    with own_context():
        ranges, reachable = start_ranges(ts, param_values(Encoder(ts, "overapprox", "t."), ts))
        e = Encoding(ts, "overapprox", ranges, warm=True)
    assert reachable and e.warm
    assert set(e.start) == {s.name for s in ts.states}


def test_a_witness_from_an_unreachable_corner_goes_away() -> None:
    ts = lagged()
    cold = pairs(ts, warm=False)[("copy", "shadow")]
    warm = pairs(ts, warm=True)[("copy", "shadow")]
    assert cold.verdict.startswith("conflicting") and cold.witness is not None
    start = cold.witness.scenario.init
    assert abs(start["x"] - start["y"]) > 3  # a corner of the box no run reaches
    assert warm.verdict == "aligned"
    assert warm.witness is None


def test_an_uncertain_parameter_keeps_the_cold_start() -> None:
    text = """system s { tick 1s
  input u : 1 in [-1, 1] nominal 0
  param g = 1 in [0.5, 1.5]
  state x : 1 in [0, 10] init 5
  state y : 1 in [0, 10] init 5
  next x = x + g * u
  loop copy { every 1s actuates y to x }
  require coherent
}"""
    ts = compile_text("t.coh", text).systems[0]
    assert initial_values(ts) is None
