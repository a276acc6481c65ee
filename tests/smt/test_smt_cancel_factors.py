"""Shared factors of products and quotients cancelled before interval evaluation.

Closed form: an HPA on a per-pod metric computes ``ceil(replicas * (demand / replicas) /
target)``, which is ``ceil(demand / target)``: with demand in [10, 30] and a target of 0.7
the recommendation lies in [15, 43] whatever the replica count. Interval arithmetic that
evaluates each occurrence of ``replicas`` on its own encloses it in [1, 540] instead (the
dependency problem), and the reachable enclosure then keeps the declared [4, 72].
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from coherence.compile import compile_text
from coherence.intervals.reach import reachable_enclosure
from coherence.ir.nodes import Binary, Const, Expr, Var
from coherence.ir.simplify import cancel_factors, nonzero_names
from coherence.simulate.engine import compile_expr

HPA = """system s { tick 15s
  input demand : req/s in [10, 30] nominal 20
  param target = 0.7 req/s
  state replicas : 1 integer in [4, 72] init 30
  let per_pod = demand / replicas
  loop hpa {
    every 15s
    senses per_pod
    actuates replicas to ceil(replicas * per_pod / target)
  }
}"""


def test_the_enclosure_of_a_per_pod_hpa_is_its_closed_form() -> None:
    ts = compile_text("t.coh", HPA).systems[0]
    enc = reachable_enclosure(ts)
    assert enc is not None
    lo, hi = enc.box["replicas"]
    assert hi == math.ceil(30 / 0.7) == 43
    assert lo == min(30, math.ceil(10 / 0.7)) == 15


def test_a_factor_cancels_through_lets() -> None:
    lets: dict[str, Expr] = {"per_pod": Binary("/", Var("demand"), Var("replicas"))}
    lets["sensed"] = Var("per_pod")
    e = Binary("/", Binary("*", Var("replicas"), Var("sensed")), Const(0.7))
    assert cancel_factors(e, lets, {"replicas"}) == Binary("/", Var("demand"), Const(0.7))


def test_a_factor_that_may_be_zero_is_kept() -> None:
    # x * (y / x) is undefined at x = 0, y is not: the rewrite would lose that
    e = Binary("*", Var("x"), Binary("/", Var("y"), Var("x")))
    assert cancel_factors(e, {}, set()) == e
    text = """system s { tick 1s
  input u : 1 in [-1, 1] nominal 0
  input v : 1 in [1, 2] nominal 1
  state x : 1 in [0, 10] init 1
  state y : 1 in [1, 10] init 1
  next x = x
  next y = y
}"""
    ts = compile_text("t.coh", text).systems[0]
    assert nonzero_names(ts) == {"v", "y"}


def test_nothing_to_cancel_leaves_the_chain_as_it_is() -> None:
    e = Binary("*", Var("a"), Binary("/", Var("b"), Var("c")))
    assert cancel_factors(e, {}, {"a", "b", "c"}) == e


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.floats(0.5, 100.0),
    st.floats(-50.0, 50.0),
    st.floats(0.5, 100.0),
)
def test_the_cancelled_form_has_the_same_value(x: float, y: float, z: float) -> None:
    # (x * y / z) * (z / x) / y * y ... : a chain with repeated factors, evaluated both ways
    lets: dict[str, Expr] = {"q": Binary("/", Var("z"), Var("x"))}
    e = Binary("*", Binary("/", Binary("*", Var("x"), Var("y")), Var("z")), Var("q"))
    out = cancel_factors(e, lets, {"x", "z"})
    assert out == Var("y")
    env = {"x": x, "y": y, "z": z, "q": z / x}
    assert math.isclose(compile_expr(e)(env), compile_expr(out)(env), rel_tol=1e-12, abs_tol=1e-12)


def test_the_solver_encodings_take_the_cancelled_form() -> None:
    from coherence.ir.nodes import names_in
    from coherence.ir.simplify import for_solver

    ts = compile_text("t.coh", HPA).systems[0]
    rec = next(d for d in ts.lets if d.name.endswith("replicas.rec"))
    assert "hpa.per_pod" in names_in(rec.expr) or "per_pod" in names_in(rec.expr)
    solver_ts = for_solver(ts)
    rec2 = next(d for d in solver_ts.lets if d.name == rec.name)
    reads = names_in(rec2.expr)
    assert "demand" in reads and not {"per_pod", "hpa.per_pod"} & reads


def test_the_solver_form_is_computed_once_per_system() -> None:
    """Every query asks for the rewritten system: a second ask of the same system, or of an
    equal one (the caches are keyed by content), gets the same object; a different system
    its own; a cached form is the form computed afresh."""
    from coherence.ir import simplify

    ts = compile_text("t.coh", HPA).systems[0]
    twin = compile_text("t.coh", HPA).systems[0]
    elsewhere = compile_text("u.coh", HPA).systems[0]  # another file: another system
    first = simplify.for_solver(ts)
    assert simplify.for_solver(ts) is first
    assert simplify.for_solver(twin) is first
    other = simplify.for_solver(elsewhere)
    assert other is not first and other != first
    assert simplify._rewritten(ts) == first
    for i in range(simplify._SOLVER_FORMS.size):  # pushed out by other systems, then made again
        simplify.for_solver(compile_text(f"t{i}.coh", HPA).systems[0])
    again = simplify.for_solver(ts)
    assert again is not first and again == first
