"""``no flapping`` for all time: k-induction of the localization abstraction.

The control laws are abstracted (a fresh value per tick within a sound enclosure) and only
the shaping (stabilization window, rate limits, limits, rounding) is kept exact; an ``unsat``
of the abstraction is a proof for the system, a model proves nothing and falls back to BMC.

Closed form (the argument of :func:`coherence.smt.induction.prove_localized`): with scale-down
stabilization over ``n`` periods and immediate scale-up, a scale-down comes at least ``n``
periods after the last scale-up; so a window of ``W <= n`` ticks (period 1) holds at most two
reversals (an up->down needs the up ``n`` ticks before it). Without stabilization an
adversarial input reverses the actuator every tick.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from coherence.compile import compile_text
from coherence.formal.bounded import check_bounded
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import Status
from coherence.simulate.engine import simulate
from coherence.simulate.requirements import check_requirement
from coherence.smt import SmtOptions
from coherence.smt.bmc import Result, bmc
from coherence.smt.induction import prove_localized
from coherence.smt.localize import localize
from coherence.smt.replay import replay
from coherence.smt.solver import SolverStats

ROOT = Path(__file__).resolve().parents[2]


def hpa(n: int, w: int, r: int, rate: str = "", law: str = "u") -> TransitionSystem:
    """An HPA-like integer actuator following ``law``, scale-down stabilized over ``n`` ticks."""
    stab = f"stabilize down {n}s" if n > 1 else ""
    text = f"""system s {{ tick 1s
  input u : 1 in [0, 20] nominal 5
  state x : 1 integer in [0, 20] init 5
  loop c {{ every 1s
    actuates x to {law}
    {rate}
    {stab}
  }}
  require no flapping of x max {r} within {w}s
}}"""
    return compile_text("t.coh", text).systems[0]


def spec(rel: str) -> TransitionSystem:
    path = ROOT / rel
    return compile_text(str(path), path.read_text()).systems[0]


def flapping(ts: TransitionSystem) -> Requirement:
    return next(r for r in ts.requirements if r.kind == "flapping")


def reproduces(ts: TransitionSystem, res: Result) -> bool:
    assert res.cex is not None
    trace = replay(ts, res.cex.scenario)
    fail = check_requirement(flapping(ts), trace)
    assert fail is not None
    return int(fail[0]) == res.cex.tick


# ---- the shipped HPA specs ------------------------------------------------------------------


def test_hpa_lag_fixed_localizes_to_the_shaping() -> None:
    ts = spec("specs/conflicts/hpa_lag_fixed.coh")
    loc = localize(ts, {"replicas"})
    assert loc is not None
    assert loc.loops == ("hpa",)
    assert set(loc.laws) == {"hpa.replicas.rec"}
    iv = loc.laws["hpa.replicas.rec"]
    assert iv.lo <= 1 and iv.hi >= 40  # a sound enclosure, not the actuator's range
    names = {s.name for s in loc.system.states}
    # the actuator and its 19 recommendations; the lagged metric's registers are cut
    assert names == {"replicas", *(f"hpa.replicas.h{k}" for k in range(1, 20))}


def test_hpa_lag_fixed_is_never_falsified_by_the_abstract_step() -> None:
    ts = spec("specs/conflicts/hpa_lag_fixed.coh")
    # the abstract step needs about 130M of rlimit here (the dwell-time proof, tried
    # before it, needs 5M: tests/smt/test_smt_dwell.py); within the default budget it
    # proves nothing, and it never claims a counterexample
    res, why = prove_localized(ts, flapping(ts), SmtOptions(), SolverStats())
    assert res is None and "budget" in why


def test_hpa_lag_broken_stays_falsified_with_a_replayed_trace() -> None:
    ts = spec("specs/conflicts/hpa_lag_broken.coh")
    res = check_bounded(ts, flapping(ts), SmtOptions(), SolverStats())
    assert res.status is Status.FALSIFIED
    assert reproduces(ts, res)


# ---- closed form ----------------------------------------------------------------------------


def test_stabilization_of_n_periods_proves_windows_up_to_n() -> None:
    for n, w, r in [(3, 3, 2), (4, 4, 2), (5, 4, 2), (4, 3, 3)]:
        ts = hpa(n, w, r)
        res, why = prove_localized(ts, flapping(ts), SmtOptions(), SolverStats())
        assert res is not None and res.status is Status.PROVED, (n, w, r, why)
        assert "control laws abstracted (`c`)" in res.reason
        assert "stabilization window" in res.reason
        assert res.induction_k is not None and res.induction_k >= w - 1


def test_stabilization_with_a_rate_limit_is_proved() -> None:
    ts = hpa(4, 4, 2, rate="rate up 2")
    res = check_bounded(ts, flapping(ts), SmtOptions(), SolverStats())
    assert res.status is Status.PROVED, res.reason


def test_without_stabilization_an_adversarial_input_flaps() -> None:
    ts = hpa(1, 4, 2)
    proof, why = prove_localized(ts, flapping(ts), SmtOptions(), SolverStats())
    assert proof is None and "not k-inductive" in why
    res = check_bounded(ts, flapping(ts), SmtOptions(), SolverStats())
    assert res.status is Status.FALSIFIED
    assert reproduces(ts, res)


def test_a_window_longer_than_the_stabilization_flaps() -> None:
    # up, down n ticks later, up at once: three reversals in n + 2 ticks
    ts = hpa(4, 8, 2)
    res = check_bounded(ts, flapping(ts), SmtOptions(), SolverStats())
    assert res.status is Status.FALSIFIED
    assert reproduces(ts, res)


def test_a_property_of_the_law_falls_back_to_bmc_unchanged() -> None:
    # a law that only counts up never reverses; with the law abstracted the shaping alone
    # allows flapping, so the proof attempt fails and BMC decides as before
    ts = hpa(1, 4, 1, law="min(20, x + 1)")
    opts = SmtOptions(horizon=12)
    proof, _why = prove_localized(ts, flapping(ts), opts, SolverStats())
    assert proof is None
    res = check_bounded(ts, flapping(ts), opts, SolverStats())
    before = bmc(ts, flapping(ts), opts, SolverStats())
    assert res.status is before.status is Status.HOLDS
    assert res.depth == before.depth


# ---- soundness: a proof is never contradicted by simulation -----------------------------


@settings(max_examples=8, deadline=None, derandomize=True)
@given(
    n=st.integers(2, 5),
    w=st.integers(2, 6),
    r=st.integers(1, 3),
    rate=st.sampled_from(["", "rate up 3", "rate down 2", "rate up 100%"]),
)
def test_proofs_survive_random_simulation(n: int, w: int, r: int, rate: str) -> None:
    ts = hpa(n, w, r, rate)
    req = flapping(ts)
    res = check_bounded(ts, req, SmtOptions(patterns=False), SolverStats())
    if res.status is not Status.PROVED:
        return
    rng = np.random.default_rng(n * 100 + w * 10 + r)
    ticks = 80
    u = rng.choice([0.0, 20.0], size=(64, ticks, 1))
    u[32:] = rng.uniform(0.0, 20.0, size=(32, ticks, 1))
    trace = simulate(ts, ticks, inputs=u)
    fail = check_requirement(req, trace)
    assert fail is not None
    assert np.all(fail < 0), (n, w, r, rate)
