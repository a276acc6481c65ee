"""Cross-checks with Hypothesis (derandomized, few examples).

- every trace the solver reports replays in the simulator and violates the requirement there;
- exact arithmetic and the over-approximation never contradict each other: a proof (holds
  to the horizon, or proved) in one mode is never a confirmed counterexample in the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from coherence.ir.nodes import TransitionSystem
from coherence.results import Status
from coherence.simulate.requirements import check_requirement
from coherence.smt import SmtOptions
from coherence.smt.bmc import Result, bmc
from coherence.smt.replay import replay
from coherence.smt.solver import SolverStats

PASS = (Status.PROVED, Status.HOLDS)


@st.composite
def systems(draw: st.DrawFn) -> str:
    """A tank drained by a valve a controller opens: nonlinear (flow = level * valve)."""
    umax = draw(st.integers(2, 12))
    period = draw(st.sampled_from([1, 2, 3]))
    gain = draw(st.sampled_from([0.05, 0.1, 0.2, 0.5]))
    setpoint = draw(st.integers(5, 30))
    bound = draw(st.integers(10, 60))
    kind = draw(st.sampled_from(["always", "flapping", "response"]))
    integer = draw(st.booleans())
    valve = (
        "state valve : 1 integer in [0, 10] init 2"
        if integer
        else "state valve : 1 in [0, 10] init 2"
    )
    law = (
        f"round(valve + {gain} * (level - {setpoint}))"
        if integer
        else f"valve + {gain} * (level - {setpoint})"
    )
    req = {
        "always": f"require always level <= {bound} for 12 ticks",
        "flapping": "require no flapping of valve max 1 within 6s for 12 ticks",
        "response": f"require after level >= {bound} then level <= {setpoint} within 3s "
        "for 12 ticks",
    }[kind]
    return f"""
input inflow in [0, {umax}] nominal {umax / 2}
state level in [0, 200] init 0
{valve}
next level = max(0, level + inflow - level * valve / 20)
loop ctl {{ every {period}s
  actuates valve to {law} }}
{req}
"""


def _check(ts: TransitionSystem, mode: str) -> Result:
    req = ts.requirements[0]
    return bmc(
        ts,
        req,
        SmtOptions(patterns=False, mode=mode, rlimit=500_000, budget=3_000_000),
        SolverStats(),
    )


def _replays(ts: TransitionSystem, res: Result) -> None:
    assert res.cex is not None
    req = ts.requirements[0]
    trace = replay(ts, res.cex.scenario)
    fail = check_requirement(replace(req, horizon=min(req.horizon, trace.ticks)), trace)
    assert fail is not None and int(fail[0]) == res.cex.tick >= 0
    assert res.cex.source.startswith("solver")


@given(body=systems())
@settings(max_examples=14, derandomize=True, deadline=None)
def test_solver_traces_replay_and_modes_agree(
    body: str, system: Callable[[str], TransitionSystem]
) -> None:
    ts = system(body)
    exact = _check(ts, "exact")
    over = _check(ts, "overapprox")
    for res in (exact, over):
        if res.status is Status.FALSIFIED:
            _replays(ts, res)
    statuses = {exact.status, over.status}
    assert not (Status.FALSIFIED in statuses and statuses & set(PASS)), (
        exact.status,
        over.status,
        exact.reason,
        over.reason,
    )


@given(
    threshold=st.integers(1, 20),
    drain=st.integers(0, 10),
    period=st.sampled_from([1, 2, 5]),
    mode=st.sampled_from(["exact", "overapprox"]),
)
@settings(max_examples=12, derandomize=True, deadline=None)
def test_linear_counterexamples_are_exact(
    threshold: int,
    drain: int,
    period: int,
    mode: str,
    system: Callable[[str], TransitionSystem],
) -> None:
    """A linear tank: the shortest violation is known in closed form; the solver finds a
    trace at exactly that depth and the simulator reproduces it."""
    ts = system(
        f"input u in [0, 10] nominal 0\nstate x in [0, 1000] init 0\n"
        f"loop fill {{ every {period}s\n actuates x by u - {drain} }}\n"
        f"require always x <= {threshold} for 60 ticks"
    )
    res = _check(ts, mode)
    rate = 10 - drain
    if rate <= 0:
        assert res.status in PASS
        return
    fills = threshold // rate + 1  # firings needed to pass the threshold
    want = (fills - 1) * period + 1  # the tick after the last needed firing
    assert res.status is Status.FALSIFIED and res.cex is not None
    assert res.cex.tick == want
    _replays(ts, res)


@given(body=systems(), drain=st.sampled_from([10, 20, 40]))
@settings(max_examples=14, derandomize=True, deadline=None)
def test_patterns_stop_early_with_the_same_counterexample(
    system: Callable[[str], TransitionSystem], body: str, drain: int
) -> None:
    """The pattern search stops its runs at the first prefix that shows a violation (and,
    for a later parameter setting, past the earliest one found): the counterexample is the
    one the whole runs give, scenario, tick and all."""
    from unittest import mock

    import coherence.search.bounded as patterns
    import coherence.simulate.engine as engine
    from coherence.simulate.engine import simulate

    body = body.replace("for 12 ticks", "for 300 ticks").replace(
        "level * valve / 20", "level * valve / drain"
    )
    ts = system(f"param drain = {drain} in [{drain // 2}, {2 * drain}]\n{body}")
    req = ts.requirements[0]

    def whole(*args: object, **kwargs: object) -> object:
        kwargs.pop("until", None)
        return simulate(*args, **kwargs)  # type: ignore[arg-type]

    # prefixes of 2, 4, 8, ... ticks: the violations here come in the first few dozen
    with mock.patch.object(engine, "UNTIL_FIRST", 2):
        early = patterns.falsify_by_patterns(ts, req, req.horizon, seed=0)
    with mock.patch.object(patterns, "simulate", whole):
        ref = patterns.falsify_by_patterns(ts, req, req.horizon, seed=0)
    assert (early is None) == (ref is None)
    if early is not None and ref is not None:
        assert early.tick == ref.tick
        assert early.scenario.params == ref.scenario.params
        assert early.scenario.init == ref.scenario.init
        assert early.scenario.inputs.tolist() == ref.scenario.inputs.tolist()
