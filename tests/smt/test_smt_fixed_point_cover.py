"""Branch and bound over the fixed points at nominal input
(:func:`coherence.intervals.fixedpoint.cover`, after the contraction of the reachable enclosure).

Closed form: ``x' = x - c u (x - 1)(x - 2)(x - 3)`` has its fixed points at 1, 2 and 3 for
every ``u > 0``, and the interval image of the whole range ``[0, 4]`` is the whole range, so
the contraction alone proves nothing; cutting the box does. An objective that one of the
three fixed points violates is never proved, and the boxes left undecided lie on it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coherence.compile import compile_text
from coherence.formal.equilibria import find
from coherence.intervals.fixedpoint import cover, fixed_point_contraction
from coherence.ir.nodes import TransitionSystem
from coherence.results import Status
from coherence.search.equilibria import keep_objectives
from coherence.smt import SmtOptions
from coherence.smt.solver import SolverStats

ROOTS = (1.0, 2.0, 3.0)


def cubic(bound: float, init: float = 0.0, c: float = 0.1) -> TransitionSystem:
    text = f"""system s {{ tick 1s
  input u : 1 in [0.5, 1.5] nominal 1
  state x : 1 in [0, 4] init {init}
  next x = x - {c} * u * (x - 1) * (x - 2) * (x - 3)
  objective keep x <= {bound}
  require no bad equilibrium
}}"""
    return compile_text("t.coh", text).systems[0]


def test_the_contraction_alone_does_not_narrow_the_cubic() -> None:
    con = fixed_point_contraction(cubic(3.5), {"x": (0.0, 4.0)})
    assert con is not None and con.box["x"] == (0.0, 4.0)


@pytest.mark.parametrize("c", [0.05, 0.1, 0.2])
def test_no_fixed_point_above_the_largest_root_is_proved(c: float) -> None:
    ts = cubic(3.5, c=c)
    got = cover(ts, keep_objectives(ts), {"x": (0.0, 4.0)})
    assert got is not None
    assert got.proved == {"x"}
    assert not got.left and not got.empty


@pytest.mark.parametrize(("bound", "bad"), [(2.5, {3.0}), (1.5, {2.0, 3.0}), (0.5, set(ROOTS))])
def test_a_violating_fixed_point_is_never_proved_away(bound: float, bad: set[float]) -> None:
    ts = cubic(bound)
    got = cover(ts, keep_objectives(ts), {"x": (0.0, 4.0)})
    assert got is not None
    assert not got.proved
    assert got.left  # the smallest boxes left lie on violating fixed points
    for centre in got.left:
        assert min(abs(centre["x"] - r) for r in bad) < 1e-4


def test_a_box_without_fixed_points_is_empty() -> None:
    # x' = x + 0.2 + 0.1 (x - 1)^2 has no fixed point; below the clamp at 4 there is none
    text = """system s { tick 1s
  input u : 1 in [0.5, 1.5] nominal 1
  state x : 1 in [0, 4] init 0
  next x = x + 0.2 * u + 0.1 * (x - 1) * (x - 1)
  objective keep x <= 1
}"""
    ts = compile_text("t.coh", text).systems[0]
    got = cover(ts, keep_objectives(ts), {"x": (0.0, 3.5)})
    assert got is not None and got.empty and got.proved == {"x"}


def test_the_search_proves_it_without_a_solver_call() -> None:
    stats = SolverStats()
    res = find(cubic(3.5, init=3.9), SmtOptions(), stats)
    assert res.status is Status.PROVED
    assert "branch and bound" in res.reason
    assert stats.calls == 0


def test_the_search_still_finds_the_bad_equilibrium() -> None:
    res = find(cubic(2.5, init=3.9), SmtOptions(), SolverStats())
    assert res.status is Status.FALSIFIED
    assert res.state is not None and res.state["x"] == pytest.approx(3.0, abs=0.05)


@given(
    roots=st.lists(
        st.integers(min_value=1, max_value=35).map(lambda k: k / 10),
        min_size=3,
        max_size=3,
        unique=True,
    ),
    bound=st.integers(min_value=0, max_value=40).map(lambda k: k / 10 + 0.05),
)
@settings(max_examples=25, derandomize=True, deadline=None)
def test_the_cover_proves_exactly_the_bounds_above_every_root(
    roots: list[float], bound: float
) -> None:
    # x' = x - 0.05 u (x - a)(x - b)(x - c) on [0, 4]: fixed points a, b, c (the clamps add
    # none: the cubic's sign keeps 0 and 4 moving inwards); `keep x <= bound` holds at every
    # one iff bound >= max(a, b, c); bounds sit 0.05 off the roots' grid of 0.1
    a, b, c = sorted(roots)
    text = f"""system s {{ tick 1s
  input u : 1 in [0.5, 1.5] nominal 1
  state x : 1 in [0, 4] init 0
  next x = x - 0.05 * u * (x - {a}) * (x - {b}) * (x - {c})
  objective keep x <= {bound}
}}"""
    ts = compile_text("t.coh", text).systems[0]
    got = cover(ts, keep_objectives(ts), {"x": (0.0, 4.0)})
    assert got is not None
    if bound > c:
        assert got.proved == {"x"}
    else:  # a root above the bound violates it: never proved, and a box is left on one
        assert not got.proved
        assert got.left
        assert min(abs(x["x"] - r) for x in got.left for r in (a, b, c) if r > bound) < 1e-3
