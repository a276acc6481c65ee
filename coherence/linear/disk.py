"""Disk margins of loops broken at their actuators: each loop alone and all of them at once.

Seiler, Packard & Gahinet, "An Introduction to Disk Margins", IEEE Control Systems Magazine
40(5), 2020. A loop's gain f may vary in the disk of complex multipliers

    D(alpha) = { (1 + delta / 2) / (1 - delta / 2) : |delta| < alpha }      (balanced, sigma = 0)

which holds the real gains ``[(2 - alpha) / (2 + alpha), (2 + alpha) / (2 - alpha)]`` and the
phases ``+/- 2 arctan(alpha / 2)``. With S the input sensitivity at the actuators and T = I - S,
the closed loop stays stable for every such multiplier up to

    alpha_max = 1 / || S - I/2 ||_inf = 2 / || S - T ||_inf         (one loop, eq. 13 and 15)
    alpha_max = 1 / max_w mu_Delta(S - I/2)                            (every loop at once, sec. 6)

mu over the complex diagonal Delta = diag(delta_i) (each loop its own multiplier). In discrete
time the norm is the maximum over the unit circle z = e^{i theta}. Loop-at-a-time margins use
the diagonal entries S_ii (loop i perturbed, the others at their nominal gains).

Our loops enter the linearization as ``A(f) = A + sum_i (f_i - 1) p_i e_i`` (the gain of loop
i scales its recommendation: :class:`~.margins.LoopSet`), so at the factors f the closed loop
is ``A0 + P F E`` with ``A0 = A - P E``: the loops broken at the gain are u = E x (what each
gain multiplies) and x' = A0 x + P u. The input sensitivity at that break (u = E x + d) is

    S(z) = I + E (z I - A)^{-1} P,

read from the stable closed loop A alone. mu of a complex diagonal structure is bounded above
by min_D sigma_max(D M D^-1) (D positive diagonal; Doyle 1982) and equals it for up to three
blocks, so for two or three loops the simultaneous margin is exact; above, it is a safe lower
bound on alpha_max. Frequencies: a grid of ``max(512, 8 q)`` points on [0, pi] (for mu at most 2048), all
evaluated through one complex Schur form of A, and a bounded scalar refinement around the
peak.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from numpy.typing import NDArray
from scipy.optimize import minimize, minimize_scalar


@dataclass(frozen=True, slots=True)
class DiskMargin:
    """A balanced disk margin: ``alpha`` (inf: no disk of multipliers destabilises), the real
    gain factors it covers (``gain_low`` .. ``gain_high``), the phase in degrees it covers,
    and the frequency (rad/tick) where it is decided."""

    alpha: float
    theta: float | None

    @property
    def gain_low(self) -> float:
        a = self.alpha
        return 0.0 if a >= 2.0 else (2.0 - a) / (2.0 + a)

    @property
    def gain_high(self) -> float:
        a = self.alpha
        return math.inf if a >= 2.0 else (2.0 + a) / (2.0 - a)

    @property
    def phase_deg(self) -> float:
        return (
            math.degrees(2.0 * math.atan(self.alpha / 2.0)) if math.isfinite(self.alpha) else 180.0
        )

    @property
    def text(self) -> str:
        if not math.isfinite(self.alpha):
            return "disk: every gain and phase"
        hi = "inf" if not math.isfinite(self.gain_high) else f"{self.gain_high:.3g}"
        return f"disk x{self.gain_low:.3g} .. x{hi}, +/-{self.phase_deg:.1f} deg"

    def to_data(self) -> dict[str, object]:
        finite = math.isfinite(self.alpha)
        return {
            "alpha": self.alpha if finite else None,
            "gain_low": self.gain_low if finite else 0.0,
            "gain_high": self.gain_high if finite and math.isfinite(self.gain_high) else None,
            "phase_deg": self.phase_deg,
            "theta": self.theta,
        }


class Sensitivity:
    """S(e^{i theta}) = I + E (zI - A)^{-1} P through one complex Schur form of A (a
    triangular solve per frequency)."""

    def __init__(
        self,
        A: NDArray[np.float64],
        P: NDArray[np.float64],
        E: NDArray[np.float64],
        schur: tuple[NDArray[np.complex128], NDArray[np.complex128]] | None = None,
    ) -> None:
        T, U = schur if schur is not None else sla.schur(A.astype(complex), output="complex")
        self.A, self.P, self.E = A, P, E
        self.T = T
        self.Pt = U.conj().T @ P.astype(complex)
        self.Et = E.astype(complex) @ U
        self.eye = np.eye(A.shape[0], dtype=complex)
        self.k = P.shape[1]

    def grid(self, th: NDArray[np.float64]) -> NDArray[np.complex128]:
        """S on every frequency of ``th`` at once: [len(th), k, k] (one back substitution
        through the triangular factor, row by row, for all frequencies together)."""
        z = np.exp(1j * th)
        # the grid only locates the peak (the refinement and the value are Schur solves):
        # through the eigenvectors where they are well conditioned, sum_j (E v_j)(w_j P) /
        # (z - lambda_j), O(q k^2) per frequency instead of O(q^2 k)
        lam, V = np.linalg.eig(self.A)
        if np.linalg.cond(V) < 1e8:
            W = np.linalg.solve(V, self.P.astype(complex))
            EV = self.E.astype(complex) @ V
            R = 1.0 / (z[:, None] - lam[None, :])
            fast: NDArray[np.complex128] = np.eye(self.k)[None] + np.einsum(
                "aj,nj,jk->nak", EV, R, W
            )
            return fast
        q = self.T.shape[0]
        Y = np.zeros((q, self.k, len(z)), dtype=complex)
        for i in range(q - 1, -1, -1):
            acc = self.Pt[i][:, None] + np.einsum("j,jkn->kn", self.T[i, i + 1 :], Y[i + 1 :])
            Y[i] = acc / (z - self.T[i, i])[None, :]
        out: NDArray[np.complex128] = np.eye(self.k)[None] + np.einsum("aj,jkn->nak", self.Et, Y)
        return out

    def at(self, theta: float) -> NDArray[np.complex128]:
        z = complex(math.cos(theta), math.sin(theta))
        Y = sla.solve_triangular(z * self.eye - self.T, self.Pt, check_finite=False)
        out: NDArray[np.complex128] = np.eye(self.k) + self.Et @ Y
        return out


def mu_upper(M: NDArray[np.complex128]) -> float:
    """min over positive diagonal D of sigma_max(D M D^-1): mu of a complex diagonal
    structure for k <= 3 (Packard & Doyle, "The complex structured singular value",
    Automatica 29(1), 1993, sec. 9), an upper bound above."""
    k = M.shape[0]
    if k == 1:
        return float(abs(M[0, 0]))

    def scaled(logd: NDArray[np.float64]) -> float:
        d = np.exp(np.concatenate([[0.0], logd]))
        return float(np.linalg.norm((d[:, None] * M) / d[None, :], 2))

    if k == 2:
        one = minimize_scalar(
            lambda x: scaled(np.array([x])),
            bounds=(-20.0, 20.0),
            method="bounded",
            options={"xatol": 1e-9},
        )
        return float(min(float(one.fun), scaled(np.zeros(1))))
    best = minimize(
        scaled,
        np.zeros(k - 1),
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 2000},
    )
    return float(min(best.fun, scaled(np.zeros(k - 1))))


def _peak(
    vals: NDArray[np.float64], th: NDArray[np.float64], f: Callable[[float], float]
) -> tuple[float, float]:
    """The maximum over [0, pi] of f, given its values ``vals`` on the grid ``th``: the best
    grid point, refined by a bounded scalar search between its neighbours."""
    j = int(np.argmax(vals))
    a, b = float(th[max(j - 1, 0)]), float(th[min(j + 1, len(th) - 1)])
    res = minimize_scalar(
        lambda t: -f(float(t)), bounds=(a, b), method="bounded", options={"xatol": 1e-10}
    )
    if -float(res.fun) > vals[j]:
        return float(-res.fun), float(res.x)
    return float(vals[j]), float(th[j])


def loop_disk_margins(
    A: NDArray[np.float64],
    P: NDArray[np.float64],
    E: NDArray[np.float64],
    schur: tuple[NDArray[np.complex128], NDArray[np.complex128]] | None = None,
) -> list[DiskMargin]:
    """Each loop's balanced disk margin with the others at their nominal gains:
    alpha_i = 1 / max_theta |S_ii - 1/2|."""
    q, k = A.shape[0], P.shape[1]
    th = np.linspace(0.0, math.pi, max(512, 8 * q))
    out = []
    for i in range(k):
        sens = Sensitivity(A, P[:, [i]], E[[i]], schur)

        def g(t: float, sens: Sensitivity = sens) -> float:
            return float(abs(sens.at(t)[0, 0] - 0.5))

        vals = np.abs(sens.grid(th)[:, 0, 0] - 0.5)
        peak, theta = _peak(vals, th, g)
        out.append(DiskMargin(1.0 / peak if peak > 0 else math.inf, theta))
    return out


def multiloop_disk_margin(
    A: NDArray[np.float64], P: NDArray[np.float64], E: NDArray[np.float64]
) -> DiskMargin:
    """The simultaneous balanced disk margin of every loop at once:
    alpha = 1 / max_theta mu(S - I/2) (exact for up to three loops, else a lower bound)."""
    q, k = A.shape[0], P.shape[1]
    half = 0.5 * np.eye(k)
    sens = Sensitivity(A, P, E)
    th = np.linspace(0.0, math.pi, min(max(512, 8 * q), 2048))
    vals = np.array([mu_upper(m - half) for m in sens.grid(th)])

    def g(t: float) -> float:
        return mu_upper(sens.at(t) - half)

    peak, theta = _peak(vals, th, g)
    return DiskMargin(1.0 / peak if peak > 0 else math.inf, theta)
