"""Exact discretisation of linear continuous-time dynamics at the tick (zero-order hold).

For ``x'(t) = A x(t) + B u(t)`` with ``u`` held constant over each tick of length ``T``
(a zero-order hold, which is what a sampled plant sees from a digital controller), the
state at the next tick is exactly

    x[k+1] = Ad x[k] + Bd u[k],   Ad = e^{A T},   Bd = (integral_0^T e^{A s} ds) B.

Both come from one matrix exponential of the augmented matrix (Franklin, Powell & Workman,
*Digital Control of Dynamic Systems*, 3rd ed., section 4.3.3; Van Loan, "Computing
integrals involving the matrix exponential", IEEE TAC 23(3), 1978):

    expm([[A, B], [0, 0]] T) = [[Ad, Bd], [0, I]],

which needs no inverse of ``A`` (``A`` may be singular: an integrator).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]


def zoh(A: Matrix, B: Matrix, T: float) -> tuple[Matrix, Matrix]:
    """``(Ad, Bd)`` of ``x' = A x + B u`` sampled every ``T`` with a zero-order hold.

    >>> Ad, Bd = zoh(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[0.0], [1.0]]), 2.0)
    >>> Ad.tolist(), Bd.tolist()   # the double integrator: [[1, T], [0, 1]], [[T^2/2], [T]]
    ([[1.0, 2.0], [0.0, 1.0]], [[2.0], [2.0]])
    """
    from scipy.linalg import expm

    A = np.atleast_2d(np.asarray(A, dtype=float))
    B = np.asarray(B, dtype=float).reshape(A.shape[0], -1)
    n, m = B.shape
    M = np.zeros((n + m, n + m))
    M[:n, :n] = A
    M[:n, n:] = B
    E = np.asarray(expm(M * T), dtype=float)
    return E[:n, :n].copy(), E[:n, n:].copy()
