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

from coherence.ir.nodes import TransitionSystem
from coherence.simulate.engine import simulate
from coherence.smt.encode import (
    EXACT,
    OVERAPPROX,
    Encoder,
    Inputs,
    Num,
    Path,
    integer_states,
    param_values,
)
from coherence.smt.intervals import Interval
from coherence.smt.solver import check, new_solver, to_float

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
