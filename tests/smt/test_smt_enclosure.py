"""The reachable enclosure and the interval proof of alignment that conflict witnesses use.

The enclosure must hold every simulated run (soundness), be tight where the closed form is
known (a first-order filter's limit), close by widening where a queue creeps to its bound,
and narrow the conflict search so that witnesses from unreachable states disappear.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coherence.compile import compile_path
from coherence.formal import SmtOptions, analyze
from coherence.formal.conflicts import ALIGNED, CONFLICT, check_all, scope_text
from coherence.intervals.alignment import IntervalRuns, aligned_by_intervals, holds_still
from coherence.intervals.reach import interval_frames, reachable_enclosure
from coherence.ir.nodes import TransitionSystem
from coherence.simulate.engine import simulate
from coherence.smt import induction
from coherence.smt.solver import SolverStats
from tests.helpers import assert_replays
from tests.smt.conftest import compile_spec
from tests.smt.test_smt_reach import INVARIANT_NEEDED

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "specs").rglob("*.coh"))


def test_first_order_filter_encloses_its_limit(system: Callable[[str], TransitionSystem]) -> None:
    # x(t+1) = x/2 + u, u in [0, 1], x(0) = 0: the reachable set is [0, 2) (geometric series)
    ts = system("input u in [0, 1] nominal 0.5\nstate x in [0, 100] init 0\nnext x = 0.5 * x + u\n")
    enc = reachable_enclosure(ts)
    assert enc is not None
    lo, hi = enc.box["x"]
    assert lo == 0.0
    assert 2.0 - 1e-9 <= hi <= 2.0 + 1e-9


def test_a_creeping_queue_closes_by_widening(system: Callable[[str], TransitionSystem]) -> None:
    # the queue grows by at most 3 per tick towards its bound 100000: 33,000 ticks without
    # widening, a few hundred with it
    ts = system(
        "input u in [0, 5] nominal 1\nstate q in [0, 100000] init 0\nnext q = max(0, q + u - 2)\n"
    )
    enc = reachable_enclosure(ts)
    assert enc is not None and enc.ticks < 1000
    assert enc.box["q"] == (0.0, 100000.0)


def test_a_state_that_never_moves_is_pinned(system: Callable[[str], TransitionSystem]) -> None:
    # the cold queue drains faster than anything can fill it: it stays at 0 for all time
    ts = system(
        "input u in [0, 10] nominal 5\n"
        "state cold in [0, 1000] init 0\n"
        "state hot in [0, 1000] init 0\n"
        "next cold = max(0, cold + 0.2 * u - 3)\n"
        "next hot = max(0, hot + u - 3)\n"
    )
    enc = reachable_enclosure(ts)
    assert enc is not None
    assert enc.box["cold"] == (0.0, 0.0)
    assert enc.box["hot"] == (0.0, 1000.0)


def test_undefined_operations_give_no_enclosure(system: Callable[[str], TransitionSystem]) -> None:
    ts = system("input u in [-1, 1] nominal 0.5\nstate x in [-10, 10] init 1\nnext x = 1 / u\n")
    assert reachable_enclosure(ts) is None


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_simulated_run_stays_inside(path: Path) -> None:
    for ts in compile_path(path).systems:
        enc = reachable_enclosure(ts)
        if enc is None:
            continue
        rng = np.random.default_rng(7)
        n, ticks = 64, 400
        lo = np.array([u.lo for u in ts.inputs])
        hi = np.array([u.hi for u in ts.inputs])
        # piecewise-constant random inputs, held for a random 1..20 ticks, plus the corners
        inputs = np.empty((n, ticks, len(ts.inputs)))
        for s in range(n):
            t = 0
            while t < ticks:
                w = int(rng.integers(1, 21))
                inputs[s, t : t + w] = lo + (hi - lo) * rng.random(len(ts.inputs))
                t += w
        inputs[0], inputs[1] = lo, hi
        params = {
            p.name: p.lo + (p.hi - p.lo) * rng.random(n)
            for p in ts.params
            if not p.internal and p.lo < p.hi
        }
        with np.errstate(all="ignore"):
            trace = simulate(ts, ticks, inputs=inputs, params=params or None)
        for i, name in enumerate(ts.state_names):
            blo, bhi = enc.box[name]
            xs = trace.states[:, :, i]
            pad = 1e-9 * (1.0 + max(abs(blo), abs(bhi)))
            assert xs.min() >= blo - pad, (name, float(xs.min()), blo)
            assert xs.max() <= bhi + pad, (name, float(xs.max()), bhi)


def test_interval_frames_follow_the_loop_period(system: Callable[[str], TransitionSystem]) -> None:
    # a loop every 2 ticks: from phase 0 it acts at once, from phase 1 a tick later
    ts = system("state x in [0, 10] init 0\nloop l { every 2s actuates x by 1 }\n")
    box = {n: (0.0, 0.0) for n in ts.state_names}
    at0 = interval_frames(ts, box, 3, 0, [ts.state("x").update])
    at1 = interval_frames(ts, box, 3, 1, [ts.state("x").update])
    assert at0 is not None and at1 is not None
    assert [r[0] for r in at0] != [r[0] for r in at1]


def test_a_narrow_objective_is_aligned_by_intervals(
    system: Callable[[str], TransitionSystem],
) -> None:
    # B's objective moves by at most 2% of its value anywhere: within its 10% tolerance
    ts = system(
        "input u in [0, 1] nominal 0.5\n"
        "state a in [0.98, 1] init 1\n"
        "state b in [0, 1] init 0\n"
        "loop la { every 1s actuates a to 0.98 + 0.02 * u }\n"
        "loop lb { every 1s actuates b to 0.5 * b + 0.1 * u\n"
        "  objective maximize a tolerance 10% }\n"
    )
    enc = reachable_enclosure(ts)
    assert enc is not None
    assert aligned_by_intervals(IntervalRuns(ts, enc.box, 2), "la", "lb", 2)
    stats = SolverStats()
    pairs = {(p.actor, p.affected): p for p in check_all(ts, SmtOptions(), stats)}
    assert pairs[("la", "lb")].verdict == ALIGNED
    assert "interval" in pairs[("la", "lb")].reason
    assert stats.calls == 0  # no solver call was needed


def test_a_wide_objective_is_not_proved_and_its_conflict_is_found(
    system: Callable[[str], TransitionSystem],
) -> None:
    # a real conflict: la's action lowers lb's objective by up to 100%; the intervals cannot
    # prove the pair, and a run from the initial state shows it (a = 1, la sets it to u)
    ts = system(
        "input u in [0, 1] nominal 0.5\n"
        "state a in [0, 1] init 1\n"
        "state b in [0, 1] init 0\n"
        "loop la { every 1s actuates a to u }\n"
        "loop lb { every 1s actuates b to 0.5 * b + 0.1 * u\n"
        "  objective maximize a tolerance 10% }\n"
    )
    enc = reachable_enclosure(ts)
    assert enc is not None
    assert not aligned_by_intervals(IntervalRuns(ts, enc.box, 2), "la", "lb", 2)
    pairs = {(p.actor, p.affected): p for p in check_all(ts, SmtOptions(), SolverStats())}
    p = pairs[("la", "lb")]
    assert p.verdict == CONFLICT and p.witness is not None
    assert_replays(ts, p.witness)
    w = p.witness
    # holding, a keeps its value; acting, it is the u of the tick la acted at
    assert w.tick == 1 and w.objective == "lb.a"
    assert w.acting == pytest.approx(w.run.inputs[0, w.start_tick, 0])
    assert w.holding == pytest.approx(w.run.states[0, w.start_tick, ts.state_names.index("a")])


def test_the_fixed_tipping_point_router_is_aligned(spec: Callable[[str], TransitionSystem]) -> None:
    # the context floor, the retry budget and the router's limit keep the queue at 0 for all
    # time: the router's keep-objective on latency is never violated, so nothing the other
    # loops do can make it worse (a witness from a queue of 5000 requests was unreachable)
    ts = spec("specs/conflicts/tipping_point_fixed.coh")
    enc = reachable_enclosure(ts)
    assert enc is not None and enc.box["queue"] == (0.0, 0.0)
    r = analyze(ts, SmtOptions(analyses=("conflicts",)))
    table = next(t for t in r.tables if t.title == "Objective alignment")
    cols = table.columns[1:]
    m = {(str(row[0]), c): str(v) for row in table.rows for c, v in zip(cols, row[1:], strict=True)}
    assert m[("cost_controller", "router")].startswith(ALIGNED)
    assert m[("agent_retries", "router")].startswith(ALIGNED)
    assert "reachable enclosure" in scope_text(ts)
    assert "reachable enclosure" in (table.note or "")


def test_a_loop_pinned_at_its_bound_is_aligned(spec: Callable[[str], TransitionSystem]) -> None:
    # spec_decode_broken's speculation starts at 5 drafts and only ever adds one (acceptance
    # 0.6): clamped at 5, its action never changes anything, so it cannot hurt the scheduler;
    # the harm of that spec is the setting (5 drafts at large batches: COH501), not the action
    ts = spec("specs/conflicts/spec_decode_broken.coh")
    enc = reachable_enclosure(ts)
    assert enc is not None and enc.box["spec_len"] == (5.0, 5.0)
    runs = IntervalRuns(ts, enc.box, 11)
    assert holds_still(runs, "speculation", "scheduler", 11)
    assert not holds_still(runs, "scheduler", "speculation", 11)
    stats = SolverStats()
    pairs = {(p.actor, p.affected): p for p in check_all(ts, SmtOptions(), stats)}
    assert pairs[("speculation", "scheduler")].verdict == ALIGNED
    assert "never moves" in pairs[("speculation", "scheduler")].reason
    # the largest batch raises TPOT, but not past the SLO: at 256 sequences and 5 drafts a
    # step takes 10.4 + 0.024 * 256 + 0.058 * 256 * 6 + 1.5 * 5 ms for 2.375 tokens
    worst = (10.4 + 0.024 * 256 + 0.058 * 256 * 6 + 1.5 * 5) / (1 + 0.055 * 5 * 5)
    assert 47.0 < worst < 50.0
    assert pairs[("scheduler", "speculation")].verdict == ALIGNED


def test_k_induction_starts_within_the_enclosure(monkeypatch: pytest.MonkeyPatch) -> None:
    # y <= 10 is not k-inductive from the declared bounds (x may be 1000, so y jumps past 10);
    # from the enclosure (x in [0, 2]) it is 1-inductive: y' <= 0.5 * 10 + 2
    ts = compile_spec(INVARIANT_NEEDED)
    enc = reachable_enclosure(ts)
    assert enc is not None and enc.box["x"][1] <= 2.0 + 1e-9
    req = next(r for r in ts.requirements if r.kind == "always")
    k, why = induction.k_induction(ts, req, SmtOptions(), SolverStats())
    assert k == 1, why
    # without the enclosure the same step is not inductive at any k tried
    monkeypatch.setattr(induction, "enclosure_box", lambda ts: None)
    k2, _ = induction.k_induction(ts, req, SmtOptions(), SolverStats())
    assert k2 is None


@st.composite
def tanks(draw: st.DrawFn) -> str:
    """A leaky tank that a controller with a lagged, windowed level sensor drains further
    through a valve, with random inflow range, leak, period, gain and delay; the valve is
    integer or real."""
    umax = draw(st.integers(2, 12))
    leak = draw(st.sampled_from([0.1, 0.2, 0.5]))
    period = draw(st.sampled_from([1, 2, 3]))
    gain = draw(st.sampled_from([0.05, 0.1, 0.2, 0.5]))
    setpoint = draw(st.integers(5, 30))
    delay = draw(st.integers(0, 3))
    window = draw(st.integers(1, 3))
    integer = draw(st.booleans())
    valve = "1 integer in [0, 3]" if integer else "1 in [0, 3]"
    law = f"valve + {gain} * (level - {setpoint})"
    if integer:
        law = f"round({law})"
    return f"""
input inflow in [0, {umax}] nominal {umax / 2}
state level in [0, 200] init 0
state valve : {valve} init 1
next level = max(0, level * (1 - {leak}) + inflow - valve)
loop ctl {{ every {period}s
  senses level delay {delay}s window {window}s
  actuates valve to {law} }}
"""


@settings(max_examples=25, deadline=None, derandomize=True)
@given(tanks(), st.integers(0, 2**16))
def test_random_tanks_stay_inside_their_enclosure(
    system: Callable[[str], TransitionSystem], body: str, seed: int
) -> None:
    ts = system(body)
    enc = reachable_enclosure(ts)
    assert enc is not None
    # the leak bounds the level by inflow / leak: the enclosure must see that much
    assert enc.box["level"][1] <= 120.0 + 1e-9
    rng = np.random.default_rng(seed)
    lo, hi = ts.inputs[0].lo, ts.inputs[0].hi
    inputs = lo + (hi - lo) * rng.random((32, 300, 1))
    inputs[0], inputs[1] = lo, hi
    trace = simulate(ts, 300, inputs=inputs)
    for i, name in enumerate(ts.state_names):
        blo, bhi = enc.box[name]
        pad = 1e-9 * (1.0 + max(abs(blo), abs(bhi)))
        assert trace.states[:, :, i].min() >= blo - pad, name
        assert trace.states[:, :, i].max() <= bhi + pad, name
