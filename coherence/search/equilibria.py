"""Bad equilibria in simulation: where runs stay bad, and the burst that carries a system there.

No solver: everything here is a simulator run at nominal input (or a burst, then nominal
input). :func:`simulated_hints` starts nominal runs from the good operating point with one
state moved to an end of its range, and from corners of the declared box; a run that stays
bad and nearly repeats itself over a hyperperiod is a hint where the solver looks first
(:mod:`coherence.formal.equilibria`). :func:`confirm` judges a candidate: the objective must
still be violated in each of the last five hyperperiods of a long nominal run from it
(:func:`stays_bad`).

For a confirmed bad equilibrium the *trigger* (:func:`trigger`): from the good operating point
(the nominal run from the initial state, settled), a burst of one input to a fraction of the
way to its range's end, for a number of ticks, then nominal input again; the grid (10 levels
in each direction, 1..144 ticks) is simulated at once and the smallest burst (level x
duration) after which the system stays bad is the trigger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import ObjectiveIR, TransitionSystem
from coherence.search.objectives import trace_violated
from coherence.simulate.engine import Trace, simulate
from coherence.simulate.replay import Scenario
from coherence.simulate.settle import operating_point, settle_ticks
from coherence.smt.options import SmtOptions

F = NDArray[np.float64]

DURATIONS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)
LEVELS = tuple(k / 10 for k in range(1, 11))
HINTS = 3  # simulated hints the solver pins
HINT_RUNS = 64  # nominal runs that look for them
HINT_CELLS = 1e7  # at most this many state values simulated for them


@dataclass(frozen=True, slots=True)
class Trigger:
    """The smallest burst found: ``input`` at ``level`` for ``ticks`` ticks, from ``good``."""

    input: str
    level: float
    ticks: int
    trace: Trace  # from the good operating point: the burst, then nominal input
    violation_tick: int  # first tick after the burst at which the objective is violated


def keep_objectives(ts: TransitionSystem) -> list[ObjectiveIR]:
    return [o for o in ts.objectives if o.kind == "keep" and o.bound is not None]


def stay_ticks(ts: TransitionSystem) -> int:
    h = ts.hyperperiod
    return max(50 * h, 300) // h * h


def hint_ticks(ts: TransitionSystem) -> int:
    """How long the runs that look for hints are: as long as the operating point settles
    (:func:`coherence.simulate.settle.settle_ticks`). A hint only steers the solver; a bad
    equilibrium it leads to is confirmed over :func:`stay_ticks`."""
    h = ts.hyperperiod
    return max(20 * h, 300) // h * h


def stays_bad(ts: TransitionSystem, obj: ObjectiveIR, trace: Trace) -> np.ndarray:
    """Per scenario: the objective is violated in each of the last 5 hyperperiods."""
    h = ts.hyperperiod
    bad = trace_violated(obj, trace)
    n = trace.ticks
    ok = np.ones(bad.shape[0], dtype=bool)
    for p in range(1, 6):
        lo, hi = n - p * h, n - (p - 1) * h
        if lo < 0:
            break
        ok &= bad[:, lo:hi].any(axis=1)
    return ok


def nominal_run(ts: TransitionSystem, init: dict[str, float], ticks: int) -> Trace:
    with np.errstate(all="ignore"):
        return simulate(ts, ticks, init=init)


def hint_runs(ts: TransitionSystem) -> int:
    """How many nominal runs :func:`simulated_hints` simulates (each ``hint_ticks`` long)."""
    ticks = hint_ticks(ts)
    return max(4, min(HINT_RUNS, int(HINT_CELLS // (ticks * max(len(ts.states), 1)))))


def simulated_hints(
    ts: TransitionSystem, keeps: list[ObjectiveIR], options: SmtOptions
) -> list[tuple[str, dict[str, float]]]:
    """Where simulation says a bad equilibrium may be: (objective, state) pairs.

    Nominal runs start from the good operating point with one declared state moved to an end
    of its range, and from corners of the declared box (seeded); a run that stays bad and
    whose last two hyperperiods end close together (a fixed point, nearly) is a hint. Hints
    only steer the solver: a bad equilibrium is still a solver's fixed point, replayed.
    """
    main = [
        s
        for s in ts.states
        if s.kind in ("plant", "actuator") and math.isfinite(s.lo) and math.isfinite(s.hi)
    ]
    if not main:
        return []
    h = ts.hyperperiod
    ticks = hint_ticks(ts)
    cap = hint_runs(ts)
    good = dict(operating_point(ts, settle_ticks(ts, options.settle)).state)
    starts: list[dict[str, float]] = []
    for s in main:
        for end in (s.hi, s.lo):
            x = dict(good)
            x[s.name] = end
            starts.append(x)
    rng = np.random.default_rng(options.seed)
    while len(starts) < cap:
        x = dict(good)
        for s in main:
            x[s.name] = s.hi if rng.random() < 0.5 else s.lo
        starts.append(x)
    starts = starts[:cap]
    names = ts.state_names
    init = {n: np.array([x[n] for x in starts]) for n in names}
    with np.errstate(all="ignore"):
        init = run_on(ts, init, ticks - 5 * h, len(starts))
        tr = simulate(ts, 5 * h, init=init, scenarios=len(starts))  # the last 5 hyperperiods
    last, before = tr.states[:, -1, :], tr.states[:, -1 - h, :]
    span = np.array([s.hi - s.lo if math.isfinite(s.hi - s.lo) else 1.0 for s in ts.states])
    drift = np.nanmax(np.abs(last - before) / np.maximum(span, 1e-12), axis=1)
    out: list[tuple[str, dict[str, float]]] = []
    seen: set[tuple[float, ...]] = set()
    for o in keeps:
        bad = stays_bad(ts, o, tr)
        for i in sorted(np.flatnonzero(bad & (drift < 0.01)), key=lambda i: drift[i]):
            key = tuple(np.round(last[i] / np.maximum(span, 1e-12), 3))
            if key in seen or not np.all(np.isfinite(last[i])):
                continue
            seen.add(key)
            out.append((o.name, {n: float(last[i, j]) for j, n in enumerate(names)}))
            break
    return out[:HINTS]


LEAD_TICKS = 120  # ticks a lead run keeps at a time (rounded to whole hyperperiods)


def run_on(ts: TransitionSystem, init: Mapping[str, F], ticks: int, scenarios: int) -> dict[str, F]:
    """Every state after ``ticks`` ticks at nominal input from ``init`` (every state given),
    ``ticks`` a whole number of hyperperiods. The run goes a few hyperperiods at a time, each
    part from the state the last one ended in, so that only one part's trace is held (the
    hints' 18 runs of ``llm_serving``: a peak of 25 MB, 74 MB in one run). The same values
    as one run: a part starts at phase 0 as the run is there, and a state a tick ended in is
    one its clamp leaves as it is."""
    h = ts.hyperperiod
    step = h * max(1, LEAD_TICKS // h)
    names = ts.state_names
    state = dict(init)
    done = 0
    while done < ticks:
        n = min(step, ticks - done)
        tr = simulate(ts, n, init=state, scenarios=scenarios)
        state = {name: tr.states[:, -1, j].copy() for j, name in enumerate(names)}
        done += n
    return state


def confirm(
    ts: TransitionSystem, keeps: list[ObjectiveIR], init: Mapping[str, float]
) -> tuple[ObjectiveIR | None, Trace]:
    """The objective that stays violated in a long nominal run from ``init``, if any."""
    orbit = nominal_run(ts, dict(init), stay_ticks(ts))
    for o in keeps:
        if bool(stays_bad(ts, o, orbit)[0]):
            return o, orbit
    return None, orbit


def trigger(ts: TransitionSystem, obj: ObjectiveIR, good: dict[str, float]) -> Trigger | None:
    """The smallest burst that carries the system from ``good`` into a lasting violation."""
    cands: list[tuple[float, int, int, float]] = []  # (size, ticks, input, level)
    for j, u in enumerate(ts.inputs):
        for end in (u.hi, u.lo):
            span = end - u.nominal
            if span == 0:
                continue
            for f in LEVELS:
                for dur in DURATIONS:
                    cands.append((f * dur, dur, j, u.nominal + f * span))
    if not cands:
        return None
    rest = stay_ticks(ts)
    longest = max(c[1] for c in cands)
    n = longest + rest
    nominal = np.array([u.nominal for u in ts.inputs], dtype=float)
    inputs = np.broadcast_to(nominal, (len(cands), n, len(ts.inputs))).copy()
    for i, (_, dur, j, level) in enumerate(cands):
        inputs[i, :dur, j] = level
    init = {k: float(v) for k, v in good.items()}
    with np.errstate(all="ignore"):
        trace = simulate(ts, n, inputs=inputs, init=init)
    ok = stays_bad(ts, obj, trace)
    if not ok.any():
        return None
    best = min(np.flatnonzero(ok), key=lambda i: (cands[i][0], cands[i][1], i))
    _, dur, j, level = cands[int(best)]
    sc = Scenario(inputs[int(best)], {}, init)
    with np.errstate(all="ignore"):
        one = simulate(ts, n, inputs=sc.inputs[None], init=init)
    bad = trace_violated(obj, one)[0]
    after = np.flatnonzero(bad[dur:])
    tick = int(after[0]) + dur if after.size else dur
    return Trigger(ts.inputs[j].name, float(level), int(dur), one, tick)
