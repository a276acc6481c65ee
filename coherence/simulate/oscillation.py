"""Sustained oscillations measured on a replayed run, and the describing-function prediction.

Takes a signal of a run (one state over ticks) and returns its limit cycle, if it has one:
the period and amplitude measured after the transient (the first quarter of the run is left
out), and whether the swing still grows, holds or decays from one cycle to the next. A
linearization at the operating point cannot see this (its modes are those of the origin);
the measured cycle is what the reports show.

For a loop with one relay or saturation the harmonic-balance prediction goes beside it: the
describing function N(A) of the nonlinearity and the frequency response G(i w) of the rest of
the loop meet where G(i w) N(A) = -1 (Slotine & Li, *Applied Nonlinear Control*, 1991, ch. 5;
Gelb & Vander Velde, *Multiple-Input Describing Functions and Nonlinear System Design*, 1968):

- ideal relay of output +/-M: N(A) = 4 M / (pi A);
- relay with hysteresis h: N(A) = 4 M / (pi A) * exp(-i asin(h / A)), A >= h;
- saturation of slope k and limit delta: N(A) = (2 k / pi) (asin(d) + d sqrt(1 - d^2)),
  d = delta / A, for A > delta (k below).

>>> import numpy as np
>>> y = np.sin(2 * np.pi * np.arange(400) / 20.0)
>>> lc = measure(y, 0.5)
>>> round(lc.period_s, 3), round(lc.amplitude, 3), lc.growth
(10.0, 1.0, 'sustained')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

GROWTH_TOL = 0.02
"""Per-cycle change of the swing below which an oscillation counts as sustained."""


@dataclass(frozen=True, slots=True)
class LimitCycle:
    """A measured oscillation: ``period_s``, ``amplitude`` (half the peak-to-peak swing of
    the last full cycle, in the signal's units), ``growth`` ("growing", "sustained",
    "decaying"), ``ratio`` (the swing's mean change per cycle) and how many full ``cycles``
    were measured."""

    period_s: float
    amplitude: float
    growth: str
    ratio: float
    cycles: int

    @property
    def sustained(self) -> bool:
        return self.growth == "sustained"


def measure(y: NDArray[np.float64], tick: float, skip: float = 0.25) -> LimitCycle | None:
    """The oscillation of ``y`` (one value per tick) after the first ``skip`` of the run; None
    where it does not cross its mean upwards at least three times there (no cycle to
    measure) or does not move at all."""
    tail = np.asarray(y, dtype=float)[int(len(y) * skip) :]
    if len(tail) < 4 or float(np.ptp(tail)) <= 1e-12 * max(1.0, float(np.max(np.abs(tail)))):
        return None
    c = tail - 0.5 * (float(tail.max()) + float(tail.min()))
    up = np.flatnonzero((c[:-1] < 0) & (c[1:] >= 0))
    if len(up) < 3:
        return None
    # interpolated upward crossings of the mid-level
    at = up + c[up] / (c[up] - c[up + 1])
    periods = np.diff(at)
    swings = np.array(
        [0.5 * float(np.ptp(tail[up[i] : up[i + 1] + 1])) for i in range(len(up) - 1)]
    )
    n = len(swings)
    ratio = (swings[-1] / swings[0]) ** (1.0 / (n - 1)) if n > 1 and swings[0] > 0 else 1.0
    growth = (
        "growing"
        if ratio > 1 + GROWTH_TOL
        else ("decaying" if ratio < 1 - GROWTH_TOL else "sustained")
    )
    return LimitCycle(float(np.median(periods)) * tick, float(swings[-1]), growth, ratio, n)


# ---- describing functions ------------------------------------------------------------------


def relay(A: float, M: float, h: float = 0.0) -> complex:
    """N(A) of a relay of output +/-``M`` with hysteresis ``h`` (Slotine & Li, sec. 5.3)."""
    if h >= A:
        return complex(0.0)
    return 4 * M / (math.pi * A) * complex(math.cos(math.asin(h / A)), -h / A)


def saturation(A: float, k: float, delta: float) -> float:
    """N(A) of a saturation of slope ``k`` and limit ``delta`` (Slotine & Li, eq. 5.24)."""
    if delta >= A:
        return k
    d = delta / A
    return 2 * k / math.pi * (math.asin(d) + d * math.sqrt(1 - d * d))


@dataclass(frozen=True, slots=True)
class Prediction:
    """The harmonic-balance limit cycle: period (s) and amplitude at the relay's input."""

    period_s: float
    amplitude: float


def relay_integrator(k: float, M: float, h: float, tau: float) -> Prediction | None:
    """A relay (output +/-``M``, hysteresis ``h``) around an integrator of gain ``k`` with a
    dead time ``tau``: G(s) = k e^{-s tau} / s. Harmonic balance: |G| |N| = 1 gives
    A = 4 k M / (pi w); the phases, w tau + asin(h / A) = pi / 2. None where no cycle
    balances (no dead time and no hysteresis: the relay chatters)."""
    if tau <= 0 and h <= 0:
        return None

    def amp(w: float) -> float:
        return 4 * k * M / (math.pi * w)

    def phase(w: float) -> float:
        return w * tau + math.asin(min(1.0, h / amp(w))) - math.pi / 2

    hi = 4 * k * M / (math.pi * h) if h > 0 else math.pi / (2 * tau)
    lo = 1e-9 * hi
    if phase(lo) * phase(hi) > 0:
        return None
    w = float(brentq(phase, lo, hi, xtol=1e-14))
    return Prediction(2 * math.pi / w, amp(w))
