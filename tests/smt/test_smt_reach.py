"""Interval reachability (coherence.intervals.reach): sound enclosures, proofs, never a false proof.

Soundness is checked the way the module promises it: every concrete simulator run whose
unknowns (held input, uncertain parameter) lie in a box stays inside the box's enclosure at
every tick. Closed-form systems check the verdicts by hand.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from coherence.compile import compile_text
from coherence.formal.bounded import check_bounded
from coherence.intervals.arith import Iv, const_interval
from coherence.intervals.compile import Lin, normalize
from coherence.intervals.reach import Reach, check_reach
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import Status
from coherence.simulate.engine import simulate
from coherence.smt import SmtOptions
from coherence.smt.solver import SolverStats


def compile_spec(text: str) -> TransitionSystem:
    return compile_text("t.coh", text).systems[0]


def _req(ts: TransitionSystem) -> Requirement:
    return next(r for r in ts.requirements if r.kind in ("always", "response"))


# a queue drained by a proportional autoscaler with a ceil, a product and a division
QUEUE = """system s {
tick 1s
input demand : req/s in [10, 60] nominal 40
param per = 4 req/s/replica
state pods : replica integer in [1, 40] init 10
state queue : req in [0, 100000] init 0
let capacity = pods * per
let wait = queue / max(1 req/s, capacity)
next queue = max(0, queue + (demand - capacity) * tick)
loop hpa {
  every 2s
  senses demand delay 2s window 3s
  actuates pods to ceil(demand / per * 1.1)
}
%s
}
"""


def test_normal_form_cancels_the_actuator_contribution() -> None:
    ts = compile_spec(QUEUE % "require always wait <= 20s for 50 ticks inputs held")
    pods = ts.state("pods")
    n = normalize(pods.update, {p.name: p.value for p in ts.params})
    # pods + if(changes, target - pods, 0)  ==>  if(changes, target, pods)
    assert not isinstance(n, Lin)
    assert "Ite" in type(n).__name__


def test_constants_that_are_not_binary_floats_are_intervals() -> None:
    assert const_interval(0.5) == (0.5, 0.5)
    lo, hi = const_interval(0.1)
    assert lo < 0.1 < hi or (lo < hi and lo <= 0.1 <= hi)


@settings(max_examples=25, deadline=None)
@given(
    a=st.floats(10, 60),
    b=st.floats(10, 60),
    fracs=st.lists(st.floats(0, 1), min_size=8, max_size=8),
)
def test_enclosure_contains_every_run_with_a_held_input_in_the_box(
    a: float, b: float, fracs: list[float]
) -> None:
    ts = compile_spec(QUEUE % "require always wait <= 1000s for 40 ticks inputs held")
    req = _req(ts)
    lo, hi = min(a, b), max(a, b)
    reach = Reach(ts, req)
    n = 1
    base = reach.base(np.array([[lo]]), np.array([[hi]]))
    state, _ = reach.initial(base, n)
    # inside the box: lo + (hi - lo) * 1.0 may round one ulp past hi
    demands = np.clip(np.array([lo + (hi - lo) * f for f in fracs] + [lo, hi]), lo, hi)
    ticks = 40
    trace = simulate(ts, ticks, inputs=np.broadcast_to(demands[:, None, None], (10, ticks, 1)))
    for t in range(ticks):
        for i in range(len(ts.states)):
            x = trace.states[:, t, i]
            assert np.all(x >= state[i].lo[0]) and np.all(x <= state[i].hi[0]), (t, i)
        env, _ = reach.lets(base, state, t, n)
        for k, d in enumerate(ts.lets):
            v = env[d.name]
            vals = trace.lets[:, t, k]
            if isinstance(v, Iv):
                assert np.all(vals >= v.lo[0]) and np.all(vals <= v.hi[0]), (t, d.name)
        state, _ = reach.step(env, t, n)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_enclosure_contains_runs_with_free_inputs(seed: int) -> None:
    ts = compile_spec(QUEUE % "require always wait <= 1000s for 30 ticks")
    reach = Reach(ts, _req(ts))
    base = reach.base(np.zeros((1, 0)), np.zeros((1, 0)))
    state, _ = reach.initial(base, 1)
    rng = np.random.default_rng(seed)
    ticks = 30
    inputs = 10 + 50 * rng.random((16, ticks, 1))
    trace = simulate(ts, ticks, inputs=inputs)
    for t in range(ticks):
        for i in range(len(ts.states)):
            x = trace.states[:, t, i]
            assert np.all(x >= state[i].lo[0]) and np.all(x <= state[i].hi[0]), (t, i)
        env, _ = reach.lets(base, state, t, 1)
        state, _ = reach.step(env, t, 1)


def test_held_input_requirement_proved() -> None:
    """With the input held, pods settle at ceil(1.1 d / 4) >= d / 4 and the queue drains:
    the wait stays small. Splitting the demand range proves it for all time."""
    ts = compile_spec(QUEUE % "require always wait <= 20s for 200 ticks inputs held")
    out = check_reach(ts, _req(ts), 200)
    assert out.status == "proved", out.detail
    res = check_bounded(ts, _req(ts), SmtOptions(), SolverStats())
    assert res.status is Status.PROVED and "interval reachability" in res.reason


def test_false_requirement_is_never_proved() -> None:
    """wait <= 0.2 s fails: at 60 req/s the first tick queues 20 requests before the pods
    catch up (17 pods serve 68 req/s: a wait of 0.29 s at tick 1). wait <= 1 s holds."""
    ts = compile_spec(QUEUE % "require always wait <= 0.2s for 50 ticks inputs held")
    out = check_reach(ts, _req(ts), 50)
    assert out.status == "unknown"
    assert out.depth <= 1
    res = check_bounded(ts, _req(ts), SmtOptions(), SolverStats())
    assert res.status is Status.FALSIFIED and res.cex is not None and res.cex.tick == 1
    res = check_bounded(ts, _req(ts), SmtOptions(patterns=False), SolverStats())
    assert res.status is Status.FALSIFIED and res.cex is not None  # the solver's trace
    trace = simulate(ts, 50, inputs=np.full((1, 50, 1), 60.0))
    assert trace.let("wait")[0, 1] > 0.2
    ok = compile_spec(QUEUE % "require always wait <= 1s for 50 ticks inputs held")
    assert check_reach(ok, _req(ok), 50).status == "proved"


def test_a_property_true_on_nominal_but_false_at_a_corner_is_not_proved() -> None:
    ts = compile_spec(QUEUE % "require always queue <= 5 req for 30 ticks")
    assert check_reach(ts, _req(ts), 30).status == "unknown"


INVARIANT_NEEDED = """system s {
tick 1s
input u : 1 in [0, 1] nominal 0.5
state x in [-1000, 1000] init 0
state y in [-1000, 1000] init 0
next x = 0.5 * x + u
next y = 0.5 * y + x
require always y <= 10 for 100 ticks
}
"""


def test_needs_an_invariant_the_spec_does_not_state() -> None:
    """``y <= 10`` is not k-inductive over the declared bounds (x may be 1000); with
    ``x in [0, 2]`` (what the enclosure finds) it is: y <= 0.5 * 10 + 2. Interval
    reachability proves it for all time."""
    ts = compile_spec(INVARIANT_NEEDED)
    out = check_reach(ts, _req(ts), 100)
    assert out.status == "proved", out.detail
    res = check_bounded(ts, _req(ts), SmtOptions(patterns=False), SolverStats())
    assert res.status is Status.PROVED


def test_response_requirement_on_intervals() -> None:
    ts = compile_spec(
        QUEUE % "require after queue >= 1000 req then queue <= 10 req within 5s for 60 ticks"
    )
    out = check_reach(ts, _req(ts), 60)
    assert out.status in ("holds", "unknown")
    if out.status == "holds":  # the trigger is out of reach of the enclosure
        trace = simulate(ts, 60, inputs=np.full((1, 60, 1), 60.0))
        assert trace.state("queue").max() < 1000


def test_flapping_is_not_handled() -> None:
    ts = compile_spec(
        "system s {\ntick 1s\nstate x in [0, 10] init 0\nnext x = x\n"
        "require no flapping of x max 2 within 10s\n}\n"
    )
    req = next(r for r in ts.requirements if r.kind == "flapping")
    assert check_reach(ts, req, 10).status == "unknown"


# ---- the arithmetic's fast path against its definition ------------------------------------------

_ENDS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 1e308, -1e308, 1e200, -1e200]),
)


def _ref_dn(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):  # the greatest float's neighbour is the infinity
        r = np.nextafter(x, -np.inf)
    return np.where(np.isnan(x), -np.inf, np.where(np.isinf(x), x, r))


def _ref_up(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        r = np.nextafter(x, np.inf)
    return np.where(np.isnan(x), np.inf, np.where(np.isinf(x), x, r))


def _ref_mul(a: Iv, b: Iv) -> Iv:
    """The product as the module defines it: the four products of the ends, ``0 * x = 0``
    for every ``x``, the least and greatest rounded outward."""
    ea = np.stack((a.lo, a.lo, a.hi, a.hi))
    eb = np.stack((b.lo, b.hi, b.lo, b.hi))
    with np.errstate(all="ignore"):
        p = ea * eb
    p[(ea == 0.0) | (eb == 0.0)] = 0.0
    return Iv(_ref_dn(p.min(axis=0)), _ref_up(p.max(axis=0)))


def _iv(ends: list[tuple[float, float]]) -> Iv:
    lo = np.array([min(x, y) if x == x and y == y else x for x, y in ends], dtype=float)
    hi = np.array([max(x, y) if x == x and y == y else y for x, y in ends], dtype=float)
    return Iv(lo, hi)


def _bits(x: np.ndarray) -> list[int]:
    return np.asarray(x, dtype=float).view(np.int64).tolist()


@settings(max_examples=400, derandomize=True, deadline=None)
@given(
    st.lists(st.tuples(_ENDS, _ENDS, _ENDS, _ENDS), min_size=1, max_size=5),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda k: k != 0.0),
)
def test_fast_arithmetic_is_bit_for_bit_its_definition(
    ends: list[tuple[float, float, float, float]], k: float
) -> None:
    """add, sub, mul, div and a product by a constant coefficient take a fast path when
    every end is finite; whatever the ends (infinities, NaN, signed zeros, overflow), the
    result is the definition's, bit for bit."""
    from coherence.intervals import arith

    a = _iv([(w, x) for w, x, _, _ in ends])
    b = _iv([(y, z) for _, _, y, z in ends])
    with np.errstate(all="ignore"):
        want_add = Iv(_ref_dn(a.lo + b.lo), _ref_up(a.hi + b.hi))
        want_sub = Iv(_ref_dn(a.lo - b.hi), _ref_up(a.hi - b.lo))
        recip = Iv(
            _ref_dn(np.where(np.isinf(b.hi), 0.0, 1.0 / b.hi)),
            _ref_up(np.where(np.isinf(b.lo), 0.0, 1.0 / b.lo)),
        )
    zero = (b.lo <= 0.0) & (b.hi >= 0.0)
    q = _ref_mul(a, recip)
    want_div = Iv(np.where(zero, -np.inf, q.lo), np.where(zero, np.inf, q.hi))
    point = Iv(np.full(a.lo.shape, k), np.full(a.lo.shape, k))
    with np.errstate(all="raise"):  # the public forms keep NumPy's warnings to themselves
        got = {
            "add": arith.add(a, b),
            "sub": arith.sub(a, b),
            "mul": arith.mul(a, b),
            "div": arith.div(a, b)[0],
        }
    with np.errstate(all="ignore"):
        got["scale"] = arith.scale_r(k, a)
    want = {
        "add": want_add,
        "sub": want_sub,
        "mul": _ref_mul(a, b),
        "div": want_div,
        "scale": _ref_mul(point, a),
    }
    for name, w in want.items():
        assert _bits(got[name].lo) == _bits(w.lo), name
        assert _bits(got[name].hi) == _bits(w.hi), name
