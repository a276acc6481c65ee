"""Hypothesis strategies of policy changes, and the requirement assertions."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings

from coherence.pipeline import CheckOptions
from coherence.results import Status
from coherence.strategies import (
    Limit,
    PolicyChange,
    RequirementFailed,
    assert_coherent,
    assert_requirement,
    knobs,
    load_spec,
    policy_changes,
    requirement_outcome,
    requirements_named,
)
from tests.ci.util import DATA, ROOT

TIPPING = load_spec(ROOT / "specs" / "seed" / "tipping_point.coh")
OVERLOAD = load_spec(DATA / "overload.coh")
SIM = CheckOptions(linear=False, smt=False)  # deterministic and fast
QUICK = settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_knobs_know_the_spec_values_and_ranges() -> None:
    ks = knobs(
        TIPPING,
        params={"budget": 0.1},
        gains=["router"],
        periods={"router": Limit(lo=1, hi=10)},
        delays={"router": Limit(abs=2)},
        windows=["cost_controller"],
        bounds={"queue.hi": Limit(rel=0.5)},
    )
    got = {(k.kind, k.target): (k.current, k.lo, k.hi, k.unit) for k in ks}
    assert got[("param", "budget")] == (900.0, 810.0, 990.0, "$/h")
    assert got[("gain", "router")] == (1.0, 0.8, 1.2, "")
    assert got[("period", "router")] == (5.0, 1, 10, "")
    assert got[("delay", "router")] == (5.0, 3, 7, "")
    assert got[("window", "cost_controller")] == (30.0, 24, 36, "")
    assert got[("bound", "queue.hi")] == (100000.0, 50000.0, 150000.0, "req")
    with pytest.raises(KeyError):
        knobs(TIPPING, params=["no_such_param"])
    with pytest.raises(KeyError):
        knobs(TIPPING, bounds=["queue"])


def test_apply_changes_parameters_gains_timing_and_bounds() -> None:
    ks = knobs(
        TIPPING,
        params=["budget"],
        gains=["router"],
        periods=["router"],
        delays=["router"],
        bounds=["queue.hi"],
    )
    values = {"budget": 1000.0, "router": 1.5, "queue.hi": 5000.0}
    timing = {"period": 3.0, "delay": 2.0}
    change = PolicyChange(
        TIPPING, tuple((k, timing.get(k.kind, values.get(k.target, 0.0))) for k in ks)
    )
    ts = change.apply()
    assert ts.param("budget").value == pytest.approx(1000.0 * TIPPING.ts.param("budget").scale)
    gain = ts.loop("router").actions[0].gain
    assert ts.param(gain).value == 1.5
    assert ts.loop("router").period == 3 and ts.loop("router").sensors[0].delay == 2
    assert ts.state("queue").hi == 5000.0
    assert ts.loop("router").span.path == TIPPING.path  # spans still point at the spec
    assert TIPPING.ts.loop("router").period == 5  # the spec is not changed
    assert "router gain x1.5" in repr(change) and "router period 3 ticks" in repr(change)


def test_structural_changes_need_the_spec() -> None:
    (k,) = knobs(TIPPING.ts, periods=["router"])
    with pytest.raises(TypeError, match="load_spec"):
        PolicyChange(TIPPING.ts, ((k, 3.0),)).apply()


def test_draws_shrink_to_the_spec_as_written() -> None:
    strategy = policy_changes(TIPPING, gains=["router", "cost_controller"], periods=["router"])
    smallest = find(strategy, lambda c: True, settings=settings(database=None))
    assert repr(smallest) == "PolicyChange(as written)"


def test_a_property_that_holds() -> None:
    @QUICK
    @given(policy_changes(TIPPING, gains={"router": 0.2, "cost_controller": 0.2}))
    def latency_stays_bounded(change: PolicyChange) -> None:
        assert_requirement(change.apply(), "always", options=SIM, scenarios=["nominal"])

    latency_stays_bounded()


def test_a_property_that_a_policy_change_clearly_breaks() -> None:
    # two thirds of the capacity or less cannot serve the nominal demand: latency explodes
    @QUICK
    @given(policy_changes(TIPPING, params={"fast_capacity": Limit(lo=60, hi=90)}))
    def latency_stays_bounded(change: PolicyChange) -> None:
        assert_requirement(change.apply(), "always", options=SIM, scenarios=["nominal"])

    with pytest.raises(RequirementFailed) as info:
        latency_stays_bounded()
    text = str(info.value)
    assert "falsified by simulation" in text and "error[COH501]" in text
    assert "<-- violated" in text  # the counterexample trace


def test_requirements_by_kind_text_or_index() -> None:
    ts = TIPPING.ts
    assert [r.kind for r in requirements_named(ts, "stable")] == ["stable"]
    assert requirements_named(ts, "no bad equilibrium")[0].kind == "no_bad_equilibrium"
    assert requirements_named(ts, "always latency <= 10 s for 300 ticks")[0].kind == "always"
    assert requirements_named(ts, "require always latency <= 10 s for 300 ticks")[0].horizon == 300
    assert requirements_named(ts, 0)[0].kind == "stable"
    with pytest.raises(KeyError, match="it has: require stable"):
        requirements_named(ts, "flapping")


def test_undecided_requirements_pass_unless_strict() -> None:
    (outcome,) = assert_requirement(TIPPING.ts, "stable", options=SIM)
    assert outcome.status == Status.SKIPPED and not outcome.decided
    with pytest.raises(RequirementFailed, match="require stable: skipped"):
        assert_requirement(TIPPING.ts, "stable", options=SIM, strict=True)


def test_bounded_requirements_are_replayed_under_input_extremes() -> None:
    (req,) = requirements_named(TIPPING.ts, "always")
    outcome = requirement_outcome(TIPPING.ts, req, options=SIM)
    # the tipping point: demand held at the top of its range tips the fleet over
    assert outcome.status == Status.FALSIFIED and outcome.by == ("simulation",)
    (f,) = outcome.findings
    assert f.code == "COH501" and "demand held at 140 req/s (hi)" in f.message
    assert f.trace is not None and f.trace.violation_tick is not None
    nominal = requirement_outcome(TIPPING.ts, req, options=SIM, scenarios=["nominal"])
    assert nominal.status == Status.HOLDS and "1 simulated scenarios" in nominal.reason


def test_assert_coherent() -> None:
    report = assert_coherent(OVERLOAD.ts, options=SIM)  # a warning (COH506): degraded
    assert report.coherence.value == "degraded"
    with pytest.raises(RequirementFailed, match="COH506"):
        assert_coherent(OVERLOAD.ts, options=SIM, allow_degraded=False)
    with pytest.raises(RequirementFailed, match="demand held at 140"):
        assert_coherent(TIPPING.ts, options=SIM)


def test_the_documented_example_runs_with_a_fixed_seed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # in a subprocess: the analyses import SymPy lazily, and pytester's in-process runs
    # forget the modules they import, which leaves the rest of the session with broken copies
    monkeypatch.setenv("COHERENCE_EXAMPLES", "3")
    example = ROOT / "examples" / "test_policy_change.py"
    result = pytester.runpytest_subprocess(
        str(example), "--hypothesis-seed=0", "-p", "no:cacheprovider", "-q"
    )
    result.assert_outcomes(passed=2)
