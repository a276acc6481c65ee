"""Does the nominal run settle? The sustained oscillation that a local verdict cannot see.

The linear verdict describes small deviations from the operating point. Whether the system
comes to rest there is a question for the reference semantics: the nominal run (the
simulator from the declared initial state at nominal input, the run the nominal simulation
shows, computed once per system: :func:`coherence.simulate.engine.nominal_trace`).

The last quarter of that run (at least four hyperperiods) has a *sustained oscillation* when a
plant or actuator state swings in it by more than ``SWING`` of its scale and either

- the tail repeats exactly with some period p (a limit cycle: an integer state flapping
  between two values, a relay cycle around a deadband, a 2-cycle through a bound), or
- the state keeps reversing direction (at least ``REVERSALS`` times) and its swing in the
  second half of the tail is no smaller than ``KEEP`` of the first half's.

A damped oscillation repeats only approximately and its swing shrinks, so it is not one; a
drift to a bound does not reverse. Nothing here is linearized: the evidence is a run of the
reference simulator, and the finding built on it carries that run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import TransitionSystem
from coherence.simulate.engine import Trace, nominal_trace
from coherence.simulate.nominal import default_ticks
from coherence.simulate.oscillation import LimitCycle, measure

SWING = 1e-3  # of the state's scale: smaller swings are numerical noise, not an oscillation
REPEAT = 1e-6  # of the swing: how exactly a limit cycle repeats
REVERSALS = 4  # reversals in the tail, for a swing that does not repeat exactly
KEEP = 0.99  # the second half's swing over the first half's, for one that does not repeat


@dataclass(frozen=True, slots=True)
class Oscillation:
    """A sustained oscillation of the nominal run.

    ``period`` is in ticks where the run repeats exactly (None where it does not repeat but
    does not die out either); ``onset`` the first tick from which it repeats (or the first tick
    inspected); ``states`` the swinging states, largest swing first, as (name, low, high) in
    canonical units over the tail.
    """

    period: int | None
    onset: int
    ticks: int
    states: tuple[tuple[str, float, float], ...]
    reversals: int
    trace: Trace
    cycle: LimitCycle | None = None

    def to_data(self) -> dict[str, object]:
        c = self.cycle
        return {
            "period_ticks": self.period,
            "onset_tick": self.onset,
            "ticks": self.ticks,
            "states": [{"state": n, "low": lo, "high": hi} for n, lo, hi in self.states],
            "reversals": self.reversals,
            "limit_cycle": None
            if c is None
            else {"period_s": c.period_s, "amplitude": c.amplitude, "growth": c.growth},
        }

    def measured(self, unit: str = "", scale: float = 1.0) -> str:
        """The cycle measured on the run (:func:`coherence.simulate.oscillation.measure`), in
        words: "measured period 28 s, amplitude 7, sustained"; empty where it has no full
        cycle to measure."""
        c = self.cycle
        if c is None:
            return ""
        u = "" if unit in ("", "1") else f" {unit}"
        return (
            f"measured period {c.period_s:.4g} s, amplitude {c.amplitude / (scale or 1.0):.4g}"
            f"{u}, {c.growth}"
        )


def nominal_oscillation(
    ts: TransitionSystem, ticks: int | None = None, skip_periods_of: int = 0
) -> Oscillation | None:
    """The sustained oscillation of the nominal run of ``ts``, or None if it settles (or
    drifts, or becomes non-finite: other findings say so). Periods that divide
    ``skip_periods_of`` are not reported (the operating point analysed is that cycle).

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", "system s { tick 1s state x in [-10, 10] init 1 "
    ...                   "next x = 1 - x }").systems[0]
    >>> nominal_oscillation(ts).period
    2
    """
    T = ticks or default_ticks(ts)
    tr = nominal_trace(ts, T)
    X = np.asarray(tr.states[0], dtype=float)  # [T + 1, n]
    idx = [i for i, s in enumerate(ts.states) if s.kind in ("plant", "actuator")]
    if not idx or not np.all(np.isfinite(X[:, idx])):
        return None
    H = max(1, ts.hyperperiod)
    L = min(max(T // 4, 4 * H), T // 2)
    if L < 8:
        return None
    scale = np.array([_scale(ts, i, X[:, i]) for i in idx])
    Y = X[-L:, idx] / scale  # the tail, scaled
    swing = Y.max(axis=0) - Y.min(axis=0)
    if float(swing.max()) <= SWING:
        return None
    period = _period(Y, float(swing.max()))
    if period is not None and skip_periods_of and skip_periods_of % period == 0:
        return None
    main = int(np.argmax(swing))
    reversals = _reversals(Y[:, main], float(swing[main]))
    if period is None:
        half = L // 2
        first = Y[:half].max(axis=0) - Y[:half].min(axis=0)
        second = Y[half:].max(axis=0) - Y[half:].min(axis=0)
        if reversals < REVERSALS or second[main] < KEEP * first[main]:
            return None
        onset = T + 1 - L
    else:
        onset = _onset(X[:, idx] / scale, period, float(swing.max()))
    order = np.argsort(-swing, kind="stable")
    states = tuple(
        (
            ts.states[idx[k]].name,
            float(X[-L:, idx[k]].min()),
            float(X[-L:, idx[k]].max()),
        )
        for k in order
        if swing[k] > SWING
    )
    # the swinging state's cycle measured on the whole run after its transient: the
    # period and swing of the run itself, not the linearization's modes at the origin
    cycle = measure(X[:, idx[main]], ts.tick)
    return Oscillation(period, onset, T, states, reversals, tr, cycle)


def _scale(ts: TransitionSystem, i: int, x: NDArray[np.float64]) -> float:
    """The state's largest magnitude in the run, at least min(its range, 1)."""
    s = ts.states[i]
    rng = s.hi - s.lo
    floor = min(rng, 1.0) if np.isfinite(rng) and rng > 0 else 1.0
    return max(float(np.max(np.abs(x))), floor)


def _period(Y: NDArray[np.float64], swing: float) -> int | None:
    """The smallest p with Y[t + p] == Y[t] (within REPEAT of the swing) over the tail,
    seen at least three times over."""
    for p in range(1, Y.shape[0] // 3 + 1):
        if float(np.max(np.abs(Y[p:] - Y[:-p]))) <= REPEAT * swing:
            return p
    return None


def _onset(Z: NDArray[np.float64], period: int, swing: float) -> int:
    """The first tick from which the run repeats with ``period``."""
    same = np.max(np.abs(Z[period:] - Z[:-period]), axis=1) <= REPEAT * swing
    t = len(same)
    while t > 0 and same[t - 1]:
        t -= 1
    return t


def _reversals(y: NDArray[np.float64], swing: float) -> int:
    """How often ``y`` changes direction (steps below REPEAT of the swing do not count)."""
    d = np.diff(y)
    d = d[np.abs(d) > REPEAT * swing]
    return int(np.count_nonzero(np.sign(d[1:]) != np.sign(d[:-1])))
