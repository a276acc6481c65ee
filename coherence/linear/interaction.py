"""Interaction measures: steady-state gains, relative gain array, Niederlinski index.

Each loop that senses something and actuates something is *paired*: its first actuator u
with its first sensed value y. With every loop holding its actuator (the open loop), a
constant offset of the paired actuators drives the rest of the state to a periodic steady
state; the steady-state gain matrix is

    G[i, j] = d mean_t y_i(t) / d u_j,    z = (I - M_zz)^-1 M_zu u

on the lifted open-loop system (M the monodromy with every loop holding, z the states that
no loop actuates), the sensed values averaged over the hyperperiod.

From G (square over a group of paired loops):
- the relative gain array RGA = G o (G^-1)^T (Bristol, "On a new measure of interaction for
  multivariable process control", IEEE Trans. Automatic Control 11(1), 1966): lambda_ii near
  1 is a good pairing; negative means the loop's steady-state effect reverses when the others
  close; much larger than 1 means strong interaction (COH310);
- the Niederlinski index NI = det(G) / prod_i G[i, i] (Niederlinski, "A heuristic approach
  to the design of linear multivariable interacting control systems", Automatica 7, 1971):
  NI < 0 means the pairing is unstable under integral control for any tuning (COH311).

A singular ``I - M_zz`` means the open loop integrates (a mode at 1): the steady-state gain
is not defined. A singular G means the actuators cannot set the sensed values independently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps
from numpy.typing import NDArray

from coherence.linear.model import LoopModel
from coherence.linear.spectrum import monodromy


@dataclass(frozen=True, slots=True)
class Interaction:
    """The steady-state interaction of a group of paired loops."""

    loops: tuple[str, ...]
    actuators: tuple[str, ...]
    sensed: tuple[str, ...]
    gain: tuple[tuple[float, ...], ...] | None
    rga: tuple[tuple[float, ...], ...] | None
    niederlinski: float | None
    note: str = ""

    def to_data(self) -> dict[str, object]:
        return {
            "loops": list(self.loops),
            "actuators": list(self.actuators),
            "sensed": list(self.sensed),
            "gain": None if self.gain is None else [list(r) for r in self.gain],
            "rga": None if self.rga is None else [list(r) for r in self.rga],
            "niederlinski": self.niederlinski,
            "note": self.note,
        }


def held_matrices(model: LoopModel) -> list[sps.csr_matrix]:
    """The per-tick A_t with every loop holding its actuators (the open loop)."""
    m = model
    rows = np.array(sorted(m.actuator_actions), dtype=np.intp)
    keep = np.ones(m.n)
    keep[rows] = 0.0
    cache: dict[int, sps.csr_matrix] = {}
    out = []
    for t in range(m.H):
        key = id(m.nominal[t])
        hit = cache.get(key)
        if hit is None:
            a = m.A(t)
            if len(rows):
                sub = m.rows(t, list(rows), active=frozenset()).tocoo()
                repl = sps.csr_matrix((sub.data, (rows[sub.row], sub.col)), shape=a.shape)
                a = (sps.diags(keep) @ a + repl).tocsr()
            hit = a
            cache[key] = hit
        out.append(hit)
    return out


def steady_state_gains(
    model: LoopModel,
    held: Sequence[sps.csr_matrix],
    pairs: Sequence[tuple[str, int, int]],
) -> tuple[NDArray[np.float64] | None, str]:
    """G[i, j]: the mean sensed value of pair i per unit offset of pair j's actuator.

    ``pairs``: (loop, actuator state index, sensor cut index)."""
    n = model.n
    act = np.zeros(n, dtype=bool)
    act[list(model.actuator_actions)] = True
    z = np.flatnonzero(~act)
    k = len(pairs)
    us = np.array([u for _, u, _ in pairs], dtype=np.intp)
    X0 = np.zeros((n, k))
    X0[us, np.arange(k)] = 1.0
    if len(z):
        from scipy.sparse.linalg import splu

        M = monodromy(held)
        Mz = M[z]
        Mzz = Mz[:, z]
        Iz = sps.identity(len(z), format="csc")
        try:
            lu = splu((Iz - Mzz).tocsc())
        except RuntimeError:
            return None, "the open loop integrates (a mode at 1): no steady-state gain"
        rhs = Mz[:, us].toarray()
        Z = lu.solve(rhs)
        if not np.all(np.isfinite(Z)) or np.max(np.abs(Z), initial=0.0) > 1e12:
            return None, "the open loop integrates (a mode at 1): no steady-state gain"
        X0[z] = Z
    G = np.zeros((k, k))
    X = X0
    cuts = np.array([c for _, _, c in pairs], dtype=np.intp)
    for t in range(model.H):
        G += np.asarray(model.nominal[t].sigma[cuts] @ X)
        X = held[t] @ X
    G /= model.H
    return G, ""


def rga(G: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Bristol's relative gain array G o (G^-1)^T (None if G is singular)."""
    if np.linalg.cond(G) > 1e12:
        return None
    return np.asarray(G * np.linalg.inv(G).T, dtype=float)


def niederlinski(G: NDArray[np.float64]) -> float | None:
    d = np.prod(np.diag(G))
    if abs(d) < 1e-300:
        return None
    return float(np.linalg.det(G) / d)
