"""Conflict witnesses from a warm start (``SmtOptions(warm_start=True)``).

The reachable enclosure is a box: its corners pair values no run pairs. With the warm start
a witness starts one tick after a state of the box (or at the initial state), so a state
that copies another with a lag agrees with it.

Closed form (``lagged`` below): ``x`` moves by at most 1 a tick, ``copy`` sets ``y`` to ``x``
and ``shadow`` sets ``w`` to ``y``, so one tick after ``copy`` acts ``y - w`` is the ``x - y``
of the tick before, at most 1 on every run, and ``shadow``'s objective ``y - w <= 3`` is
never violated whatever ``copy`` does. The box of the enclosure still holds ``x = 10,
y = 0``, from which ``copy``'s action violates it while holding ``y`` would not: a witness
no run can reach. The cold search leaves it as a candidate (the pair is not found: not a
conflict, not proved); the warm search proves the pair aligned.
"""

from __future__ import annotations

from fractions import Fraction

from coherence.compile import compile_text
from coherence.formal.conflicts import ALIGNED, CONFLICT, NOT_FOUND, PairResult, check_all
from coherence.ir.nodes import TransitionSystem
from coherence.smt import SmtOptions
from coherence.smt.alignment import Encoding, initial_values, start_ranges
from coherence.smt.encode import Encoder
from coherence.smt.solver import SolverStats, own_context
from coherence.smt.unroll import param_values
from tests.helpers import assert_replays, copy_and_shadow


def lagged() -> TransitionSystem:
    return copy_and_shadow(3.0)


def pairs(
    ts: TransitionSystem, warm: bool, recheck: bool = False
) -> dict[tuple[str, str], PairResult]:
    with own_context():
        options = SmtOptions(warm_start=warm, warm_recheck=recheck)
        found = check_all(ts, options, SolverStats())
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
    # the cold solver's witness is only a candidate: the pair is not found, never conflicting
    assert cold.verdict == NOT_FOUND and cold.witness is None
    assert cold.candidate is not None
    start = cold.candidate.scenario.init
    assert abs(start["x"] - start["y"]) > 3  # a corner of the box no run reaches
    assert warm.verdict == ALIGNED
    assert warm.witness is None and warm.candidate is None


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


def test_the_default_search_rechecks_a_cold_witness_from_the_warm_start() -> None:
    # the cold search's witness starts at a corner no run reaches; the recheck (on by
    # default) proves the pair aligned from the warm start
    ts = lagged()
    with own_context():
        found = {(p.actor, p.affected): p for p in check_all(ts, SmtOptions(), SolverStats())}
    p = found[("copy", "shadow")]
    assert p.verdict == "aligned" and p.witness is None
    assert "warm start" in p.reason


def test_a_real_conflict_survives_the_recheck() -> None:
    # ``shadow`` wants y - w <= 0.5 while x moves by up to 1 a tick: from a reachable state
    # (x = y = w = 5, then u = 1 twice) copy's action opens a lag of 1 that holding does not;
    # the run from the initial state is found and replayed, and the warm recheck (which
    # looks again only at what the solver found in the box) does not take it back
    ts = copy_and_shadow(0.5)
    with own_context():
        found = {(p.actor, p.affected): p for p in check_all(ts, SmtOptions(), SolverStats())}
    p = found[("copy", "shadow")]
    assert p.verdict == CONFLICT and p.witness is not None
    assert_replays(ts, p.witness)
    assert p.witness.objective == "shadow.lag" and p.witness.acting > 0.5


def test_the_warm_up_tick_is_taken_only_for_the_starts_a_goal_reads() -> None:
    # z's update is a product no goal of the pair reads: its warm-up stays out of the query
    text = """system s { tick 1s
  input u : 1 in [-1, 1] nominal 0
  state x : 1 in [0, 10] init 5
  state y : 1 in [0, 10] init 5
  state z : 1 in [0, 10] init 1
  next x = x + u
  next z = min(10, z * x / 5)
  loop copy { every 1s actuates y to x }
  require coherent
}"""
    ts = compile_text("t.coh", text).systems[0]
    with own_context():
        ranges, _ = start_ranges(ts, param_values(Encoder(ts, "exact", "t."), ts))
        e = Encoding(ts, "exact", ranges, warm=True)
        seen: set[tuple[str, int, str]] = set()
        for_y = e.warm_cone(["y"], seen)
        again = e.warm_cone(["y"], seen)
        for_z = e.warm_cone(["z"], seen)
    text_y = " ".join(str(c) for c in for_y)
    assert for_y and not again  # each constraint is handed over once
    assert "y@0" in text_y and "z@0" not in text_y
    assert any("z@0" in str(c) for c in for_z)
