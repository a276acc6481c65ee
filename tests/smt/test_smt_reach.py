"""Interval reachability (coherence.smt.reach): sound enclosures, proofs, never a false proof.

Soundness is checked the way the module promises it: every concrete simulator run whose
unknowns (held input, uncertain parameter) lie in a box stays inside the box's enclosure at
every tick. Closed-form systems check the verdicts by hand.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from coherence.compile import compile_text
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import Status
from coherence.simulate.engine import simulate
from coherence.smt import SmtOptions
from coherence.smt.bmc import check_bounded
from coherence.smt.reach import Iv, Lin, Reach, check_reach, const_interval, normalize
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
    demands = np.array([lo + (hi - lo) * f for f in fracs] + [lo, hi])
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
