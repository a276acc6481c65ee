"""The encoder against the simulator: same values (exact mode), sound envelopes (over-approx).

Each expression is a `let` over two inputs. Exact mode: with the inputs fixed, the let's Z3
value is the simulator's (to float precision). Over-approximation: the simulator's value is
always admitted by the relaxation (soundness), and an `unsat` is therefore a proof.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from coherence.intervals.arith import Interval
from coherence.ir.integers import integer_states
from coherence.ir.nodes import TransitionSystem
from coherence.simulate.engine import simulate
from coherence.smt.encode import EXACT, OVERAPPROX, Encoder
from coherence.smt.solver import check, new_solver, to_float
from coherence.smt.terms import Num
from coherence.smt.unroll import Inputs, Path, param_values

EXPRESSIONS = [
    "x + 2 * y - 3",
    "x * y",
    "x / (y + 11)",
    "min(x, y, 3)",
    "max(x, -y) - abs(x - y)",
    "floor(x / 3)",
    "ceil(x / 3)",
    "round(x / 2)",
    "if x > y then x * 2 else y - 1",
    "(x + 11) ^ 2",
    "sqrt(x + 10)",
    "(x + 10) ^ 1.5",
]


def _ts(expr: str, compile_spec: Callable[[str], TransitionSystem]) -> TransitionSystem:
    return compile_spec(
        "input x in [-10, 10] nominal 0\ninput y in [-10, 10] nominal 0\n"
        f"let e = {expr}\nstate s in [-1000, 1000] init 0\nnext s = e"
    )


def _encode(ts: TransitionSystem, mode: str) -> tuple[Encoder, Path, Num]:
    enc = Encoder(ts, mode)
    path = Path(enc, param_values(enc, ts), Inputs(enc, ts, "free"), ints=integer_states(ts))
    e = path.lets(0).values["e"]
    assert isinstance(e, Num)
    return enc, path, e


def _sim(ts: TransitionSystem, x: float, y: float) -> float:
    tr = simulate(ts, 1, inputs=np.array([[[x, y]]]))
    return float(tr.let("e")[0, 0])


@pytest.mark.parametrize("expr", EXPRESSIONS)
@given(x=st.integers(-10, 10), y=st.integers(-10, 10))
@settings(max_examples=12, derandomize=True, deadline=None)
def test_exact_values_match_the_simulator(
    expr: str, x: int, y: int, system: Callable[[str], TransitionSystem]
) -> None:
    ts = _ts(expr, system)
    enc, path, e = _encode(ts, EXACT)
    s = new_solver()
    s.add(*enc.drain())
    inp = path.inputs.at(0)
    s.add(inp["x"].term == x, inp["y"].term == y)
    ans = check(s, 2_000_000)
    assert ans.sat
    got = to_float(ans.model.eval(e.term, model_completion=True))
    want = _sim(ts, x, y)
    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (expr, x, y, got, want)
    assert e.iv.lo - 1e-9 <= want <= e.iv.hi + 1e-9


@pytest.mark.parametrize("expr", [*EXPRESSIONS, "exp(x / 5)", "log(x + 11)"])
@given(x=st.floats(-10, 10), y=st.floats(-10, 10))
@settings(max_examples=10, derandomize=True, deadline=None)
def test_relaxations_admit_the_true_value(
    expr: str, x: float, y: float, system: Callable[[str], TransitionSystem]
) -> None:
    """Soundness of the over-approximation: the simulated value satisfies the envelope."""
    ts = _ts(expr, system)
    enc, path, e = _encode(ts, OVERAPPROX)
    want = _sim(ts, x, y)
    s = new_solver()
    s.add(*enc.drain())
    inp = path.inputs.at(0)
    s.add(inp["x"].term == Fraction(x), inp["y"].term == Fraction(y))
    # the true value, up to float rounding of the simulator
    slack = Fraction(1, 10**9) * (1 + abs(Fraction(want)))
    s.add(e.term >= Fraction(want) - slack, e.term <= Fraction(want) + slack)
    assert check(s, 2_000_000).sat, (expr, x, y, want)


@given(
    a=st.floats(-1e6, 1e6),
    b=st.floats(-1e6, 1e6),
    c=st.floats(-1e6, 1e6),
    d=st.floats(-1e6, 1e6),
)
@settings(max_examples=60, derandomize=True)
def test_interval_products_contain_their_points(a: float, b: float, c: float, d: float) -> None:
    x = Interval(min(a, b), max(a, b))
    y = Interval(min(c, d), max(c, d))
    for p in (x.lo, x.hi, (x.lo + x.hi) / 2):
        for q in (y.lo, y.hi, (y.lo + y.hi) / 2):
            assert (x * y).contains(p * q)
            assert (x + y).contains(p + q)
            assert (x - y).contains(p - q)
            if y.excludes_zero():
                assert (x / y).contains(p / q)


def test_integer_states_are_z3_integers(system: Callable[[str], TransitionSystem]) -> None:
    ts = system(
        "input d in [0, 100] nominal 50\nstate n : 1 integer in [1, 20] init 5\n"
        "loop l { every 1s\n actuates n to ceil(d / 10) }"
    )
    assert integer_states(ts) == {"n"}
    enc = Encoder(ts, EXACT)
    path = Path(enc, param_values(enc, ts), Inputs(enc, ts, "free"))
    path.extend()
    n1 = path.value(1, "n")
    assert isinstance(n1, Num)
    assert "to_real" in str(n1.term).lower() or z3.is_to_real(n1.term)


def test_phase_is_resolved_per_tick(system: Callable[[str], TransitionSystem]) -> None:
    ts = system("state x in [0, 100] init 0\nloop l { every 3s\n phase 1s\n actuates x by 1 }")
    enc = Encoder(ts, EXACT)
    path = Path(enc, param_values(enc, ts), Inputs(enc, ts, "free"))
    fires = [path.lets(t).values["l.fires"] for t in range(6)]
    assert [getattr(f, "value", None) for f in fires] == [False, True, False, False, True, False]


# ---- the C-API constructors build the operators' very terms -------------------------------

_ENDS = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.just(0.0),
    st.just(math.inf),
    st.just(-math.inf),
)


def _box(a: float, b: float) -> Interval:
    return Interval(min(a, b), max(a, b))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    _ENDS,
    _ENDS,
    _ENDS,
    _ENDS,
    st.floats(-50, 50, allow_nan=False),
    st.floats(0.01, 20, allow_nan=False),
)
def test_envelopes_and_bounds_are_the_terms_the_operators_build(
    a: float, b: float, c: float, d: float, p: float, width: float
) -> None:
    """Same formulas, same solver behaviour: every envelope, tangent, chord and bound built
    through Z3's C API is (structurally) the term the Python operators build."""
    from coherence.smt.terms import in_box, mccormick, q_down, q_up, rational, real, secant, tangent

    w, x, y = z3.Reals("w x y")
    n = z3.ToReal(z3.Int("n"))
    bx, by = _box(a, b), _box(c, d)
    ref = []
    xl, xu, yl, yu = bx.lo, bx.hi, by.lo, by.hi
    for op, fx, fy, ex, ey in (
        (">=", q_down, q_down, xl, yl),
        (">=", q_up, q_up, xu, yu),
        ("<=", q_up, q_down, xu, yl),
        ("<=", q_down, q_up, xl, yu),
    ):
        if math.isfinite(ex) and math.isfinite(ey):
            ra, rb = real(fx(ex)), real(fy(ey))
            rhs = ra * y + x * rb - ra * rb
            ref.append(w >= rhs if op == ">=" else w <= rhs)
    got = mccormick(w, x, y, bx, by)
    assert len(got) == len(ref) and all(z3.eq(g, r) for g, r in zip(got, ref, strict=True))
    for t in (x, n):
        boxed = in_box(t, bx)
        want = []
        if math.isfinite(bx.lo):
            want.append(t >= real(q_down(bx.lo)))
        if math.isfinite(bx.hi):
            want.append(t <= real(q_up(bx.hi)))
        assert len(boxed) == len(want)
        assert all(z3.eq(g, r) for g, r in zip(boxed, want, strict=True))
    # a tangent and a chord of x^2 (convex) over a finite box
    lo, hi = p, p + width
    box, dom = Interval(lo, hi), Interval(-math.inf, math.inf)
    (tan,) = tangent(w, x, lambda v: v * v, lambda v: 2 * v, True, p, box, dom)
    fp, sp = p * p, 2 * p
    slack = abs(fp) * 1e-9 + 1e-12 + (abs(sp) * 1e-9 + 1e-15) * ((hi - lo) + abs(p - lo))
    line = real(rational(fp)) + real(rational(sp)) * (x - real(rational(p)))
    assert z3.eq(tan, w >= line - real(q_up(slack)))
    (chord,) = secant(w, x, lambda v: v * v, True, lo, hi)
    flo, fhi = lo * lo, hi * hi
    slope = (fhi - flo) / (hi - lo)
    slack = (abs(flo) + abs(fhi)) * 1e-9 + 1e-12 + abs(slope) * 1e-9 * (hi - lo)
    line = real(rational(flo)) + real(rational(slope)) * (x - real(rational(lo)))
    assert z3.eq(chord, w <= line + real(q_up(slack)))


def test_rational_of_a_unit_conversion_is_the_fraction_it_denotes() -> None:
    from coherence.smt.terms import rational

    # 8 $/h in $/s: the float prints with 19 digits, the constant is 1/450
    assert rational(8 / 3600) == Fraction(1, 450)
    assert rational(1 / 3) == Fraction(1, 3)
    assert rational(0.1) == Fraction(1, 10)
    # a decimal literal comes back as itself, not as a nearby simpler fraction
    assert rational(0.3267) == Fraction(3267, 10000)
    assert rational(47.99) == Fraction(4799, 100)
    # no small fraction reads back as this one: the shortest decimal
    assert rational(2.221e-16) == Fraction("2.221e-16")
    assert rational(0.05 * 0.1) == Fraction(repr(0.05 * 0.1))
    with pytest.raises(__import__("coherence.smt.terms", fromlist=["EncodeError"]).EncodeError):
        rational(math.inf)


@settings(max_examples=300, derandomize=True)
@given(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
        st.builds(
            lambda p, q: p / q,
            st.integers(-(10**6), 10**6),
            st.integers(1, 10**6),
        ),
    )
)
def test_rational_reads_back_as_the_float(v: float) -> None:
    from coherence.smt.terms import rational

    fr = rational(v)
    assert float(fr) == v
    # never a longer denominator than the shortest decimal that reads back
    assert fr.denominator <= Fraction(repr(v)).denominator


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("var"), st.integers(0, 4)),
            st.tuples(st.just("int"), st.integers(0, 2)),
            st.tuples(st.just("num"), st.fractions(max_denominator=50)),
            st.tuples(st.just("scaled"), st.integers(0, 4)),
        ),
        min_size=2,
        max_size=12,
    )
)
def test_sums_are_the_terms_z3_sum_builds(spec: list[tuple[str, object]]) -> None:
    """``sum_of`` is ``z3.Sum``: the same term, and the same ids for the terms made after
    it (no term made on the way), so the solver's search is the same; a sum with an integer
    operand is ``z3.Sum``'s own (it wraps the operand in ``ToReal``)."""
    from coherence.smt.terms import sum_of

    def build(ctx: z3.Context, fast: bool) -> tuple[z3.ExprRef, int]:
        parts: list[z3.ArithRef] = []
        for kind, v in spec:
            if kind == "var":
                parts.append(z3.Real(f"x{v}", ctx))
            elif kind == "int":
                parts.append(z3.Int(f"n{v}", ctx))
            elif kind == "num":
                fr = Fraction(v)  # type: ignore[arg-type]
                parts.append(z3.RealVal(f"{fr.numerator}/{fr.denominator}", ctx))
            else:
                parts.append(z3.RealVal(3, ctx) * z3.Real(f"y{v}", ctx))
        term = sum_of(parts) if fast else z3.Sum(*parts)
        after = z3.Real("after", ctx)
        return term, after.get_id()

    a, b = z3.Context(), z3.Context()
    got, next_a = build(a, True)
    want, next_b = build(b, False)
    assert got.sexpr() == want.sexpr()
    assert got.get_id() == want.get_id() and next_a == next_b


def _q_down_definition(x: float) -> Fraction:
    """q_down as defined: the float converted exactly, rounded down to 4 significant digits."""
    if abs(x) < 1e-30:
        return Fraction(0) if x >= 0 else Fraction(-1, 10**30)
    if x == math.floor(x) and abs(x) < 2**53:
        return Fraction(int(x))
    unit = Fraction(10) ** (math.floor(math.log10(abs(x))) - 3)
    return math.floor(Fraction(x) / unit) * unit


@settings(max_examples=500, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
        st.integers(-(10**20), 10**20).map(float),
        st.integers(-(10**6), 10**6).map(lambda n: n / 1000),
    )
)
def test_short_rationals_are_their_definition(x: float) -> None:
    """q_down (in integer arithmetic) is the definition's rational, and q_up its mirror: the
    same value and hence the same numeral, at or below (above) ``x``, within 4 digits."""
    from coherence.smt.terms import q_down, q_up

    down, up = q_down(x), q_up(x)
    assert down == _q_down_definition(x)
    assert up == -_q_down_definition(-x)
    assert down <= Fraction(x) <= up
    if abs(x) >= 1e-30:
        assert Fraction(x) - down <= abs(Fraction(x)) / 1000
