"""Margins of one loop from its frequency response on the unit circle (a Nyquist argument).

The margin search of :mod:`.margins` asks, for a gain factor or an extra delay, whether the
coupled system is still stable: a dense eigen-solve per question, of a matrix that grows with
the delay (a 280-tick measurement delay is 280 shift-register states). Where the loop's part
of the linearization is one matrix (a single-rate system: every tick's Jacobian is the same),
one actuator row and one sensor, the questions have exact answers on the unit circle instead:

- Gain. The variant with factor f is ``A + (f - 1) p e`` (``p`` the actuator's row as a
  column of the identity, ``e`` the change of that row per unit of factor). With A stable,
  det(zI - A - g p e) = det(zI - A) (1 - g m(z)), m(z) = e (zI - A)^{-1} p, so a root is on
  the circle |z| = r exactly where ``g = 1 / m(r e^{i theta})`` is real: the factors where the
  system stops being stable are ``1 + 1/m`` at the phase crossings of m (root locus / Nyquist:
  Franklin, Powell & Workman, *Digital Control of Dynamic Systems*, 3rd ed., sec. 7.2).
- Delay. With e more ticks at the sensor (``s x`` read e ticks later, entering through the
  column ``v``), det(zI - A - (z^{-e} - 1) v s) = det(zI - A) (1 - (z^{-e} - 1) n(z)),
  n(z) = s (zI - A)^{-1} v. The loop broken at its sensor has the transfer L = n / (1 + n),
  and a root is on the unit circle exactly where |L(e^{i theta})| = 1 (a gain crossover) and
  ``e theta = arg L (mod 2 pi)``: the delay margin is the phase margin over the crossover
  frequency, in ticks (Åström & Murray, *Feedback Systems*, 2nd ed., sec. 10.3). No
  crossover and |L| < 1 everywhere: no delay destabilises the loop (small-gain theorem).

The resolvent is evaluated through one complex Schur form of A (A = U T U^H: a triangular
solve per frequency), on a grid of ``max(1024, 8 q)`` frequencies in [0, pi] (m and L are
rational of degree at most q, so their crossings are at most ~2q), each crossing refined by
Brent's method. :mod:`.margins` checks every answer with two eigen-solves either side of
it and falls back to the eigenvalue bisection where they disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from numpy.typing import NDArray
from scipy.optimize import brentq


class Resolvent:
    """``row (z I - A)^{-1} col`` for scalar row/column vectors, z on a circle of ``radius``."""

    def __init__(
        self,
        A: NDArray[np.float64],
        row: NDArray[np.float64],
        col: NDArray[np.float64],
        radius: float = 1.0,
        schur: tuple[NDArray[np.complex128], NDArray[np.complex128]] | None = None,
    ) -> None:
        T, U = schur if schur is not None else schur_of(A)
        self.T = T
        self.b = U.conj().T @ col.astype(complex)
        self.c = row.astype(complex) @ U
        self.radius = radius
        self.eye = np.eye(A.shape[0], dtype=complex)

    def at(self, theta: float) -> complex:
        z = self.radius * complex(math.cos(theta), math.sin(theta))
        y = sla.solve_triangular(z * self.eye - self.T, self.b, check_finite=False)
        return complex(self.c @ y)

    def grid(self, n: int) -> tuple[NDArray[np.float64], NDArray[np.complex128]]:
        """The values on ``n`` frequencies in [0, pi]: one back substitution through T for
        all of them at once (row by row, each a matrix-vector product over the grid)."""
        th = np.linspace(0.0, math.pi, n)
        z = self.radius * np.exp(1j * th)
        q = self.T.shape[0]
        Y = np.zeros((q, n), dtype=complex)
        for i in range(q - 1, -1, -1):
            acc = self.b[i] + self.T[i, i + 1 :] @ Y[i + 1 :] if i + 1 < q else self.b[i]
            Y[i] = acc / (z - self.T[i, i])
        return th, self.c @ Y


def schur_of(A: NDArray[np.float64]) -> tuple[NDArray[np.complex128], NDArray[np.complex128]]:
    T, U = sla.schur(A.astype(complex), output="complex")
    return T, U


def _root(fn: Callable[[float], float], a: float, b: float) -> float:
    """Brent's method on [a, b]; where rounding puts both ends on one side (the grid said
    otherwise), the interpolated point."""
    fa, fb = fn(a), fn(b)
    if fa == 0.0:
        return a
    if fa * fb > 0.0 or fb == 0.0:
        return a if fb != 0.0 and abs(fa) < abs(fb) else b
    return float(brentq(fn, a, b, xtol=1e-13))


REFINE = 8
"""How many of the best-looking crossings (by linear interpolation on the grid) are refined
with Brent's method: the margin is the extreme one, and the eigen-solve checks of
:mod:`.margins` catch a grid that was too coarse."""


def grid_size(q: int) -> int:
    return max(1024, 8 * q)


@dataclass(frozen=True, slots=True)
class GainCrossings:
    """The gain increments g = f - 1 at which a root reaches the circle: the smallest
    positive (``up``) and the largest negative (``down``); None where there is none."""

    up: float | None
    down: float | None


def gain_crossings(
    A: NDArray[np.float64],
    e: NDArray[np.float64],
    p: NDArray[np.float64],
    radius: float,
    schur: tuple[NDArray[np.complex128], NDArray[np.complex128]] | None = None,
) -> GainCrossings:
    """Where ``A + g p e`` stops having every root inside ``radius`` (A's roots are)."""
    res = Resolvent(A, e, p, radius, schur)
    th, m = res.grid(grid_size(A.shape[0]))
    cands: list[float] = []
    for v in (m[0], m[-1]):  # theta = 0 and pi: m is real there (a real system)
        if v.real != 0.0:
            cands.append(1.0 / v.real)
    im = m.imag
    idx = np.flatnonzero(im[:-1] * im[1:] < 0.0)
    if len(idx):
        w = im[idx] / (im[idx] - im[idx + 1])
        est = 1.0 / (m[idx].real + w * (m[idx + 1].real - m[idx].real))
        order = np.argsort(np.where(est > 0, est, np.inf))[:REFINE].tolist()
        order += np.argsort(np.where(est < 0, -est, np.inf))[:REFINE].tolist()
        for j in sorted(set(order)):
            a, b = float(th[idx[j]]), float(th[idx[j] + 1])
            t = _root(lambda x: res.at(x).imag, a, b)
            v = res.at(t)
            if v.real != 0.0:
                cands.append(1.0 / v.real)
    up = [g for g in cands if g > 0 and math.isfinite(g)]
    down = [g for g in cands if g < 0 and math.isfinite(g)]
    return GainCrossings(min(up) if up else None, max(down) if down else None)


@dataclass(frozen=True, slots=True)
class DelayCrossing:
    """The smallest real extra delay (ticks) at which a root reaches the unit circle
    (``critical``; None: no gain crossover), the crossover frequency there (rad/tick),
    and the largest loop gain |L| over the frequencies (below 1: small gain)."""

    critical: float | None
    theta: float | None
    peak: float


def delay_crossing(
    A: NDArray[np.float64],
    s: NDArray[np.float64],
    v: NDArray[np.float64],
    schur: tuple[NDArray[np.complex128], NDArray[np.complex128]] | None = None,
) -> DelayCrossing:
    """The critical extra delay of the sensor read ``s x`` that enters through ``v``."""
    res = Resolvent(A, s, v, 1.0, schur)

    def loop(theta: float) -> complex:
        n = res.at(theta)
        return n / (1.0 + n) if n != -1.0 else complex(math.inf)

    def critical(theta: float) -> float:
        L = loop(theta)
        return (math.atan2(L.imag, L.real) % (2 * math.pi)) / theta

    th, n = res.grid(grid_size(A.shape[0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        L = n / (1.0 + n)  # infinite where the open loop has a pole on the circle (z = 1)
    L = np.where(np.isfinite(L), L, np.inf)
    mag = np.abs(L) - 1.0
    peak = float(np.max(np.abs(L)))
    idx = np.flatnonzero((mag[:-1] * mag[1:] < 0.0) & (th[1:] > 0))
    if not len(idx):
        return DelayCrossing(None, None, peak)
    w = mag[idx] / (mag[idx] - mag[idx + 1])
    t_est = th[idx] + w * (th[idx + 1] - th[idx])
    ph = np.angle(np.where(np.isfinite(L[idx]), L[idx], 1.0)) % (2 * math.pi)
    est = ph / np.maximum(t_est, 1e-300)
    best: tuple[float, float] | None = None
    for j in np.argsort(est)[:REFINE].tolist():
        a, b = float(th[idx[j]]), float(th[idx[j] + 1])
        t = _root(lambda x: abs(loop(x)) - 1.0, a, b)
        if t <= 0.0:
            continue  # at z = 1, z^-e = 1 for every e: the nominal root set
        crit = critical(t)
        if best is None or crit < best[0]:
            best = (crit, t)
    if best is None:
        return DelayCrossing(None, None, peak)
    return DelayCrossing(best[0], best[1], peak)
