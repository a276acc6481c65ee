"""``no flapping`` for all time from dwell times: :func:`coherence.smt.induction.prove_dwell`.

Closed forms (the shaping alone, whatever the control law recommends; period ``p`` ticks):

- scale-down stabilization over ``n`` periods: a scale-down needs every recommendation of
  the last ``n`` periods below the replicas, and the scale-up's own recommendation stays in
  the window for ``n - 1`` further periods; so no move down within ``n p - 1`` ticks after a
  move up, and a move up may come at the next period after a move down (``p - 1``);
- scale-up stabilization over ``m`` periods: the same with the directions exchanged;
- a cooldown of ``c`` ticks: no move of either direction within ``c - 1`` ticks.

Each dwell time is capped at the window less a tick, which is all a window can use.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coherence.compile import compile_text
from coherence.formal.bounded import check_bounded
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import Status
from coherence.simulate.engine import simulate
from coherence.simulate.requirements import check_requirement
from coherence.smt import SmtOptions
from coherence.smt.induction import dwell_times, max_reversals, prove_dwell
from coherence.smt.solver import SolverStats

ROOT = Path(__file__).resolve().parents[2]


def actuator(
    w: int,
    r: int,
    *,
    period: int = 1,
    down: int = 0,
    up: int = 0,
    cooldown: int = 0,
    rate: str = "",
) -> TransitionSystem:
    """An integer actuator that follows its input, shaped as given (durations in ticks)."""
    shaping = [rate]
    if down:
        shaping.append(f"stabilize down {down * period}s")
    if up:
        shaping.append(f"stabilize up {up * period}s")
    if cooldown:
        shaping.append(f"cooldown {cooldown}s")
    body = "\n    ".join(s for s in shaping if s)
    text = f"""system s {{ tick 1s
  input u : 1 in [0, 20] nominal 5
  state x : 1 integer in [0, 20] init 5
  loop c {{ every {period}s
    actuates x to u
    {body}
  }}
  require no flapping of x max {r} within {w}s
}}"""
    return compile_text("t.coh", text).systems[0]


def flapping(ts: TransitionSystem) -> Requirement:
    return next(q for q in ts.requirements if q.kind == "flapping")


def spec(rel: str) -> TransitionSystem:
    path = ROOT / rel
    return compile_text(str(path), path.read_text()).systems[0]


# ---- the packing bound ----------------------------------------------------------------------


def brute_force(window: int, after_up: int, after_down: int) -> int:
    """The most reversal ticks in ``0..window-1`` whose kinds alternate, each gap at least
    the one its earlier reversal's kind asks: every subset and both first kinds tried."""
    best = 0
    for n in range(window, 0, -1):
        for ticks in itertools.combinations(range(window), n):
            for first_up in (True, False):
                up, ok = first_up, True
                for a, b in itertools.pairwise(ticks):
                    if b - a < (after_up if up else after_down):
                        ok = False
                        break
                    up = not up
                if ok:
                    return n
    return best


@pytest.mark.parametrize(
    ("window", "after_up", "after_down"),
    [(w, a, b) for w in (1, 2, 5, 9) for a in (1, 2, 4, 9) for b in (1, 3, 8)],
)
def test_max_reversals_is_the_tightest_packing(window: int, after_up: int, after_down: int) -> None:
    assert max_reversals(window, after_up, after_down) == brute_force(window, after_up, after_down)


# ---- closed forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "w"), [(3, 6), (5, 6), (8, 6), (2, 3)])
def test_scale_down_stabilization_gives_n_periods_less_a_tick(n: int, w: int) -> None:
    ts = actuator(w, 0, down=n)
    assert dwell_times(ts, flapping(ts), SmtOptions(), SolverStats()) == (min(n - 1, w - 1), 0)


@pytest.mark.parametrize(("p", "n", "w"), [(2, 3, 12), (3, 2, 12), (3, 5, 12)])
def test_a_period_spaces_the_moves(p: int, n: int, w: int) -> None:
    ts = actuator(w, 0, period=p, down=n)
    got = dwell_times(ts, flapping(ts), SmtOptions(), SolverStats())
    assert got == (min(n * p - 1, w - 1), p - 1)


def test_scale_up_stabilization_is_the_mirror_image() -> None:
    ts = actuator(8, 0, up=4)
    assert dwell_times(ts, flapping(ts), SmtOptions(), SolverStats()) == (0, 3)


def test_a_cooldown_holds_both_directions() -> None:
    ts = actuator(8, 0, cooldown=4)
    assert dwell_times(ts, flapping(ts), SmtOptions(), SolverStats()) == (3, 3)


def test_no_shaping_gives_no_dwell_time() -> None:
    ts = actuator(6, 0)
    assert dwell_times(ts, flapping(ts), SmtOptions(), SolverStats()) == (0, 0)


# ---- proofs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "w", "r", "proved"),
    [
        (10, 10, 2, True),  # up->down needs 10 ticks: two reversals in any 10
        (10, 11, 2, True),  # down, up, then a down 10 ticks after that up: 12 ticks
        (10, 12, 2, False),
        (5, 4, 1, False),  # down then up at once: two reversals in two ticks
        (5, 20, 6, False),  # down/up pairs 5 ticks apart: 0,1 | 6,7 | 12,13 | 18,19: eight
        (5, 20, 8, True),
    ],
)
def test_proof_follows_the_packing_bound(n: int, w: int, r: int, proved: bool) -> None:
    ts = actuator(w, r, down=n)
    res, why = prove_dwell(ts, flapping(ts), SmtOptions(), SolverStats())
    assert (res is not None) is proved, why
    if res is not None:
        assert res.status is Status.PROVED
        assert "dwell-time lemmas" in res.reason and "stabilization window" in res.reason
    else:  # the bound is tight: where it allows too many reversals, a run has them
        # up at 0, down once the window forgets it (tick n), up at once: the packing
        ticks = 4 * (n + 1) + w
        u = np.where(np.arange(ticks) % (n + 1) == 0, 20.0, 0.0).reshape(1, ticks, 1)
        fail = check_requirement(flapping(ts), simulate(ts, ticks, inputs=u))
        assert fail is not None and fail[0] >= 0


def test_hpa_lag_fixed_is_proved_for_all_time_within_the_default_budget() -> None:
    ts = spec("specs/conflicts/hpa_lag_fixed.coh")
    stats = SolverStats()
    res = check_bounded(ts, flapping(ts), SmtOptions(), stats)
    assert res.status is Status.PROVED, res.reason
    assert "no move down within" in res.reason
    assert stats.unknown == 0 and stats.rlimit <= SmtOptions().budget


def test_hpa_lag_broken_gets_no_dwell_proof() -> None:
    ts = spec("specs/conflicts/hpa_lag_broken.coh")
    res, why = prove_dwell(ts, flapping(ts), SmtOptions(), SolverStats())
    assert res is None and "allow" in why


def test_a_window_too_long_to_unroll_is_declined() -> None:
    ts = actuator(500, 2, down=3)
    res, why = prove_dwell(ts, flapping(ts), SmtOptions(), SolverStats())
    assert res is None and "too long" in why


# ---- soundness: what simulation shows never beats a proved dwell time ------------------------


@settings(max_examples=10, deadline=None, derandomize=True)
@given(
    period=st.integers(1, 3),
    down=st.integers(0, 4),
    up=st.integers(0, 3),
    cooldown=st.integers(0, 3),
    rate=st.sampled_from(["", "rate up 3", "rate down 2", "rate up 100%"]),
)
def test_simulated_moves_respect_the_dwell_times(
    period: int, down: int, up: int, cooldown: int, rate: str
) -> None:
    w = 10
    ts = actuator(w, 0, period=period, down=down, up=up, cooldown=cooldown, rate=rate)
    got = dwell_times(ts, flapping(ts), SmtOptions(), SolverStats())
    assert not isinstance(got, str), got
    du, dd = got
    rng = np.random.default_rng(period * 1000 + down * 100 + up * 10 + cooldown)
    ticks = 120
    u = rng.choice([0.0, 20.0], size=(64, ticks, 1))
    u[32:] = rng.uniform(0.0, 20.0, size=(32, ticks, 1))
    trace = simulate(ts, ticks, inputs=u)
    x = trace.state("x")
    moves = np.sign(np.round(np.diff(x, axis=-1), 9))
    for run in moves:
        last = None  # (tick, direction) of the last move
        for t, m in enumerate(run):
            if m == 0:
                continue
            if last is not None and m != last[1]:
                gap = t - last[0]
                assert gap > (du if last[1] > 0 else dd), (period, down, up, cooldown, rate)
            last = (t, m)
    # and the packing bound the proof uses is never exceeded either
    bound = max_reversals(w, du + 1, dd + 1)
    shaped = actuator(w, bound, period=period, down=down, up=up, cooldown=cooldown, rate=rate)
    fail = check_requirement(flapping(shaped), trace)
    assert fail is not None and np.all(fail < 0)
