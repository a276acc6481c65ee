"""Auxiliary invariants (Houdini) for k-induction.

The system below keeps ``x == y`` (both advance by the same input and reset together when
``y`` would reach 10), so ``x <= 10.5`` holds for all time. It is not k-inductive for any
small k (from ``x = 10, y = 0`` one step violates it), and interval enclosures widen ``x``
at every tick (the reset is undecided on boxes): only the relation ``x <= y`` with ``y``'s
bound proves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction

from coherence.formal.bounded import check_bounded
from coherence.intervals.reach import check_reach
from coherence.ir.nodes import TransitionSystem
from coherence.results import Status
from coherence.simulate.requirements import check_requirement
from coherence.smt import SmtOptions
from coherence.smt.induction import k_induction, k_induction_with_invariants
from coherence.smt.invariants import Candidate, houdini, mine
from coherence.smt.replay import replay
from coherence.smt.solver import SolverStats, fresh_context

RESET = """
  input u : 1 in [0.5, 1] nominal 0.7
  state y : 1 in [0, 100] init 0
  state x : 1 in [0, 100] init 0
  next y = if y + u >= 10 then 0 else y + u
  next x = if y + u >= 10 then 0 else x + u
  require always x <= {bound} for 100 ticks
"""

Build = Callable[[str], TransitionSystem]


def test_relational_invariant_proves_what_plain_induction_cannot(system: Build) -> None:
    ts = system(RESET.format(bound="10.5"))
    (req,) = ts.requirements
    opts = SmtOptions(intervals=False, invariants=True)
    k, _why = k_induction(ts, req, opts, SolverStats())
    assert k is None  # the state x = 10, y = 0 breaks every short induction step
    assert check_reach(ts, req, req.horizon).status != "proved"
    res = check_bounded(ts, req, opts, SolverStats())
    assert res.status is Status.PROVED
    assert res.induction_k is not None
    assert "auxiliary invariants" in res.reason
    # with interval reachability on (the default) the verdict is the same proof
    res2 = check_bounded(ts, req, SmtOptions(invariants=True), SolverStats())
    assert res2.status is Status.PROVED and "auxiliary invariants" in res2.reason
    # invariants are opt-in: without them the requirement stays undecided
    res3 = check_bounded(ts, req, SmtOptions(), SolverStats())
    assert res3.status is not Status.PROVED


def test_the_proof_needs_the_relation(system: Build) -> None:
    ts = system(RESET.format(bound="10.5"))
    (req,) = ts.requirements
    cands = mine(ts, req, SmtOptions(), 200)
    texts = [c.text for c in cands]
    assert any("x <= 1*y" in t for t in texts), texts
    with fresh_context():
        inv = houdini(ts, req, cands, SmtOptions(), SolverStats())
    kept = [c for c in inv.cands if len(c.coeffs) == 2]
    assert kept, [c.text for c in inv.cands]
    # without relations (bounds and the requirement only) Houdini cannot keep the property
    alone = [c for c in cands if len(c.coeffs) < 2]
    with fresh_context():
        inv2 = houdini(ts, req, alone, SmtOptions(), SolverStats())
    assert not any(c.expr is not None for c in inv2.cands)


def test_a_false_property_is_never_proved(system: Build) -> None:
    ts = system(RESET.format(bound="8"))
    (req,) = ts.requirements
    for opts in (
        SmtOptions(invariants=True),
        SmtOptions(patterns=False, intervals=False, invariants=True),
    ):
        res = check_bounded(ts, req, opts, SolverStats())
        assert res.status is Status.FALSIFIED
        assert res.cex is not None
        trace = replay(ts, res.cex.scenario)
        fail = check_requirement(replace(req, horizon=trace.ticks), trace)
        assert fail is not None and int(fail[0]) == res.cex.tick
    # and the invariant-assisted step alone never claims it
    k, inv = k_induction_with_invariants(ts, req, SmtOptions(), SolverStats())
    assert k is None and inv is None


def test_houdini_drops_what_is_not_inductive_or_not_initial(system: Build) -> None:
    ts = system(RESET.format(bound="10.5"))
    (req,) = ts.requirements
    one = Fraction(1)
    rel = Candidate((("x", one), ("y", -one)), Fraction(0), "x <= y")
    ybound = Candidate((("y", one),), Fraction(10), "y <= 10")
    loose = Candidate((("x", one),), Fraction(5), "x <= 5")  # initial, not inductive
    late = Candidate((("x", -one),), Fraction(-1), "x >= 1")  # false at the start
    with fresh_context():
        inv = houdini(ts, req, [rel, ybound, loose, late], SmtOptions(), SolverStats())
    assert [c.text for c in inv.cands] == ["x <= y", "y <= 10"]
    assert inv.box["y"].hi == 10.0
    # the relation is inductive alone (x and y move and reset together); x <= 5 is not
    with fresh_context():
        inv2 = houdini(ts, req, [loose, rel], SmtOptions(), SolverStats())
    assert [c.text for c in inv2.cands] == ["x <= y"]


def test_houdini_is_deterministic(system: Build) -> None:
    ts = system(RESET.format(bound="10.5"))
    (req,) = ts.requirements
    cands = mine(ts, req, SmtOptions(), 200)
    assert cands == mine(ts, req, SmtOptions(), 200)
    with fresh_context():
        a = houdini(ts, req, cands, SmtOptions(), SolverStats())
    with fresh_context():
        b = houdini(ts, req, cands, SmtOptions(), SolverStats())
    assert a == b
