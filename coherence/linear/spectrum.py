"""Lifting and eigen-analysis: the monodromy matrix, block by block.

The linearized periodic system ``dx(t+1) = A_t dx(t)`` with period H is lifted over one
hyperperiod into the monodromy matrix ``M = A_{H-1} ... A_1 A_0`` (Bittanti & Colaneri,
*Periodic Systems: Filtering and Control*, Springer 2009, ch. 3, "the monodromy matrix");
the periodic system is asymptotically stable iff the spectral radius of M is below 1, and
each eigenvalue lambda of M is a characteristic multiplier, the per-hyperperiod growth factor
of a mode.

The product is never formed for the whole state. The union over t of the sparsity patterns of
the A_t is a directed graph; ordering the states by its strongly connected components (SCCs)
makes every A_t, hence M, block triangular with the same blocks, so the spectrum of M is the
union of the spectra of the diagonal blocks' products. Delay registers and held actuators are
singleton blocks (a product of scalars); a fleet of cells coupled through a few shared
resources is a set of small blocks. A variant of the system that changes a few rows (one loop
acting alone, one loop's gain scaled, a few extra delay registers) only needs the blocks
through which those rows close a cycle: :meth:`Spectrum.variant_radius`.
"""

from __future__ import annotations

import cmath
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sps
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

Csr: TypeAlias = Any  # scipy.sparse.csr_matrix (SciPy is untyped here)
Complex = NDArray[np.complex128]


@dataclass(frozen=True, slots=True)
class Mode:
    """One eigenvalue of the monodromy matrix and what it means in time and in the spec."""

    eigenvalue: complex
    magnitude: float
    damping: float  # damping ratio of the continuous equivalent (1: no oscillation)
    period: float | None  # oscillation period in seconds (None: not oscillatory)
    time_constant: float | None  # e-folding time in seconds (decay, or growth if unstable)
    states: tuple[tuple[str, float], ...]  # participation by state (shares, largest first)
    loops: tuple[tuple[str, float], ...]  # participation by loop ("plant" for plant states)

    def to_data(self) -> dict[str, object]:
        return {
            "eigenvalue": [self.eigenvalue.real, self.eigenvalue.imag],
            "magnitude": self.magnitude,
            "damping": self.damping,
            "period_s": self.period,
            "time_constant_s": self.time_constant,
            "states": {k: v for k, v in self.states},
            "loops": {k: v for k, v in self.loops},
        }


def continuous(lam: complex, seconds: float) -> tuple[float, float | None, float | None]:
    """Damping ratio, oscillation period and e-folding time of a multiplier ``lam`` over a
    hyperperiod of ``seconds``: s = log(lam) / seconds (principal branch)."""
    if abs(lam) == 0:
        return 1.0, None, 0.0
    s = cmath.log(lam) / seconds
    omega = abs(s.imag)
    mag = abs(s)
    damping = -s.real / mag if mag > 0 else 0.0
    period = 2 * math.pi / omega if omega > 1e-12 else None
    tau = 1.0 / abs(s.real) if abs(s.real) > 1e-15 else None
    return damping, period, tau


class Spectrum:
    """The SCC-decomposed monodromy of per-tick matrices ``mats`` (n x n, period H)."""

    def __init__(self, mats: Sequence[Csr], dense_limit: int = 2000) -> None:
        self.mats = list(mats)
        self.n = self.mats[0].shape[0] if self.mats else 0
        self.dense_limit = dense_limit
        n = self.n
        distinct: dict[int, Csr] = {}
        for a in self.mats:
            distinct.setdefault(id(a), a)
        self._distinct = distinct
        pattern = sps.csr_matrix((n, n), dtype=bool)
        for a in distinct.values():
            pattern = pattern + (abs(a) > 0)
        self.pattern = pattern.tocsr()
        self.pattern.eliminate_zeros()
        self.pattern_in = self.pattern  # row i: the states that drive state i
        self.pattern_out = self.pattern.tocsc()  # column j: the states that j drives
        ncomp, labels = connected_components(self.pattern, directed=True, connection="strong")
        self.labels = labels
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(ncomp + 1))
        self.blocks = [order[bounds[k] : bounds[k + 1]] for k in range(ncomp)]
        # singletons: the product of the diagonal entries over the hyperperiod
        diag = np.ones(n)
        for a in self.mats:
            diag = diag * a.diagonal()
        self._diag = diag
        radius = np.zeros(ncomp)
        self.partial = False  # True when a big block's spectrum came from ARPACK (top only)
        self.eigs: dict[int, Complex] = {}
        for k, idx in enumerate(self.blocks):
            if len(idx) == 1:
                lam = np.array([complex(diag[idx[0]])])
            else:
                lam = self._block_eigvals(idx)
            self.eigs[k] = lam
            radius[k] = float(np.max(np.abs(lam))) if len(lam) else 0.0
        self.block_radius = radius
        self._by_radius = np.argsort(-radius, kind="stable")
        self.radius = float(radius.max()) if ncomp else 0.0
        self._vectors: dict[int, tuple[Complex, Complex, Complex]] = {}

    # ---- blocks -----------------------------------------------------------------------------

    def block_product(self, idx: NDArray[np.intp]) -> NDArray[np.float64]:
        """The dense product over the hyperperiod of the A_t restricted to ``idx``."""
        cache: dict[int, NDArray[np.float64]] = {}
        out = np.eye(len(idx))
        for a in self.mats:
            sub = cache.get(id(a))
            if sub is None:
                sub = a[idx][:, idx].toarray()
                cache[id(a)] = sub
            out = sub @ out
        return out

    def _block_eigvals(self, idx: NDArray[np.intp]) -> Complex:
        if len(idx) > self.dense_limit:
            top = _arpack(self.mats, idx)
            if top is not None:
                self.partial = True
                return top
        return np.asarray(np.linalg.eigvals(self.block_product(idx)), dtype=complex)

    def eigenvalues(self) -> Complex:
        """Every multiplier (only the dominant ones of blocks solved by ARPACK), largest
        magnitude first."""
        if not self.eigs:
            return np.zeros(0, dtype=complex)
        lam = np.concatenate([self.eigs[k] for k in sorted(self.eigs)])
        return np.asarray(lam[np.argsort(-np.abs(lam), kind="stable")], dtype=complex)

    # ---- modes ------------------------------------------------------------------------------

    def dominant(self, count: int, exclude: set[int] | None = None) -> list[tuple[complex, int]]:
        """The ``count`` largest-magnitude eigenvalues (a conjugate pair counted once), each
        with its block, sorted by magnitude, then block, then phase; singleton blocks of the
        states in ``exclude`` are left out."""
        cands: list[tuple[float, int, float, int, complex]] = []
        skip = exclude or set()
        order = [
            k
            for k in self._by_radius
            if not (len(self.blocks[int(k)]) == 1 and int(self.blocks[int(k)][0]) in skip)
        ]
        for k in order[: max(count * 4, 16)]:
            for j, lam in enumerate(self.eigs[int(k)]):
                if lam.imag < -1e-12 * max(1.0, abs(lam)):
                    continue
                cands.append(
                    (-round(abs(lam), 12), int(k), -abs(cmath.phase(lam)), j, complex(lam))
                )
        cands.sort()
        return [(c[4], c[1]) for c in cands[:count]]

    def participation(self, lam: complex, block: int) -> NDArray[np.float64]:
        """Participation factors of ``lam`` over the states of ``block`` (Pérez-Arriaga,
        Verghese & Schweppe 1982: p_k = w_k v_k / (w^T v) with right and left eigenvectors),
        as magnitudes normalised to sum 1; indexed like ``self.blocks[block]``."""
        idx = self.blocks[block]
        if len(idx) == 1:
            return np.ones(1)
        if len(idx) > self.dense_limit:
            return np.full(len(idx), 1.0 / len(idx))
        vecs = self._vectors.get(block)
        if vecs is None:
            import scipy.linalg

            w, vl, vr = scipy.linalg.eig(self.block_product(idx), left=True, right=True)
            vecs = (
                np.asarray(w, dtype=complex),
                np.asarray(vl, dtype=complex),
                np.asarray(vr, dtype=complex),
            )
            self._vectors[block] = vecs
        w, vl, vr = vecs
        i = int(np.argmin(np.abs(w - lam)))
        p = np.conj(vl[:, i]) * vr[:, i]
        denom = np.vdot(vl[:, i], vr[:, i])
        p = np.abs(p / denom) if abs(denom) > 1e-300 else np.abs(p)
        total = p.sum()
        return p / total if total > 0 else np.full(len(idx), 1.0 / len(idx))

    def sensitivity(self, lam: complex, block: int) -> list[tuple[int, int, float]]:
        """Log-sensitivity of |lam| to each entry of the A_t inside ``block``, summed over
        the hyperperiod: sum_t a_ij(t) * d|lam| / d a_ij(t) / |lam|, as (row, col, value)
        in state indices. Relative change of |lam| per relative change of the coupling term
        (first-order eigenvalue perturbation: d lam = w^H dM v / w^H v)."""
        idx = self.blocks[block]
        if len(idx) > self.dense_limit or abs(lam) == 0:
            return []
        import scipy.linalg

        subs = [a[idx][:, idx].toarray() for a in self.mats]
        M = np.eye(len(idx))
        for s in subs:
            M = s @ M
        w, vl, vr = scipy.linalg.eig(M, left=True, right=True)
        i = int(np.argmin(np.abs(w - lam)))
        v = vr[:, i]
        u = vl[:, i]  # u^H M = lam u^H
        denom = np.vdot(u, v)
        if abs(denom) < 1e-300:
            return []
        H = len(subs)
        right = [v]
        for t in range(H - 1):
            right.append(subs[t] @ right[-1])
        acc = np.zeros((len(idx), len(idx)))
        left = u.conj()
        for t in range(H - 1, -1, -1):
            # d lam / d A_t[i, j] = (left)_i (right_t)_j / denom, left = u^H A_{H-1}..A_{t+1}
            g = np.outer(left, right[t]) / denom
            dabs = np.real(np.conj(lam) * g) / abs(lam)
            acc += subs[t] * dabs / abs(lam)
            left = left @ subs[t]
        rows, cols = np.nonzero(acc)
        return [
            (int(idx[r]), int(idx[c]), float(acc[r, c])) for r, c in zip(rows, cols, strict=True)
        ]

    # ---- variants ---------------------------------------------------------------------------

    def region(
        self, rows: Sequence[int], mats: Sequence[Csr]
    ) -> tuple[NDArray[np.intp], float, dict[int, int]]:
        """The states whose blocks a variant changes, and the radius of the others.

        The variant's rows ``rows`` are ``mats[t]`` (len(rows) x width, width >= n; rows
        >= n are extra states); its other rows are this system's. Returns the sorted states
        on a cycle through a changed row or in a block that contains one (extra states
        included), the largest radius of the untouched blocks, and the position of each
        changed row in ``rows``."""
        n = self.n
        rows = list(rows)
        pos = {r: i for i, r in enumerate(rows)}
        in_over: list[set[int]] = [set() for _ in rows]
        for m in {id(x): x for x in mats}.values():
            for i in range(len(rows)):
                lo, hi = m.indptr[i], m.indptr[i + 1]
                in_over[i].update(m.indices[lo:hi][m.data[lo:hi] != 0].tolist())
        out_over: dict[int, list[int]] = {}
        for i, cols in enumerate(in_over):
            for c in cols:
                out_over.setdefault(c, []).append(rows[i])
        changed = set(rows)
        pin, pout = self.pattern_in, self.pattern_out

        def preds(i: int) -> list[int]:
            if i in pos:
                return list(in_over[pos[i]])
            return pin.indices[pin.indptr[i] : pin.indptr[i + 1]].tolist()  # type: ignore[no-any-return]

        def succs(j: int) -> list[int]:
            out: list[int] = []
            if j < n:
                col = pout.indices[pout.indptr[j] : pout.indptr[j + 1]].tolist()
                out = [i for i in col if i not in changed]
            return out + out_over.get(j, [])

        region = _reach(rows, succs) & _reach(rows, preds)
        touched = {int(self.labels[r]) for r in rows if r < n}
        touched |= {int(self.labels[r]) for r in region if r < n}
        q: set[int] = set(region)
        for k in touched:
            q.update(int(x) for x in self.blocks[k])
        best = 0.0
        for k in self._by_radius:
            if int(k) not in touched:
                best = float(self.block_radius[k])
                break
        return np.array(sorted(q), dtype=np.intp), best, pos

    def variant_radius(self, rows: Sequence[int], mats: Sequence[Csr]) -> tuple[float, float]:
        """The spectral radius of the variant whose rows ``rows`` are ``mats[t]`` (see
        :meth:`region`), and the *local* radius: over the blocks through which the changed
        rows close a cycle, or that contain them. Only those blocks are solved again."""
        qs, best, pos = self.region(rows, mats)
        if not len(qs):
            return best, 0.0
        qpos = {int(x): i for i, x in enumerate(qs)}
        subs = self._variant_subs(qs, qpos, pos, mats)
        local = radius_of(subs)
        return max(best, local), local

    def radius_without(self, states: set[int]) -> float:
        """The spectral radius over the blocks that are not singletons in ``states``."""
        for k in self._by_radius:
            idx = self.blocks[int(k)]
            if len(idx) == 1 and int(idx[0]) in states:
                continue
            return float(self.block_radius[k])
        return 0.0

    def _variant_subs(
        self,
        qs: NDArray[np.intp],
        qpos: dict[int, int],
        pos: dict[int, int],
        mats: Sequence[Csr],
    ) -> list[NDArray[np.float64]]:
        """Dense per-tick matrices over the states ``qs``: the changed rows from ``mats``,
        the others from this system (gathered row by row: ``qs`` is small)."""
        size = len(qs)
        out: list[NDArray[np.float64]] = []
        cache: dict[tuple[int, int], NDArray[np.float64]] = {}
        for a, m in zip(self.mats, mats, strict=True):
            key = (id(a), id(m))
            hit = cache.get(key)
            if hit is None:
                hit = np.zeros((size, size))
                for x in qs.tolist():
                    src, r = (m, pos[x]) if x in pos else (a, x)
                    lo, hi = src.indptr[r], src.indptr[r + 1]
                    cols = src.indices[lo:hi].tolist()
                    vals = src.data[lo:hi].tolist()
                    row = hit[qpos[x]]
                    for c, v in zip(cols, vals, strict=True):
                        j = qpos.get(c)
                        if j is not None:
                            row[j] += v
                cache[key] = hit
            out.append(hit)
        return out


def radius_of(subs: Sequence[NDArray[np.float64]]) -> float:
    """The spectral radius of the product of dense per-tick matrices (``subs[t]`` may repeat
    one object for ticks that look the same), block by block."""
    if not subs:
        return 0.0
    pattern = np.zeros(subs[0].shape, dtype=bool)
    for s in {id(x): x for x in subs}.values():
        pattern |= s != 0
    ncomp, labels = connected_components(
        sps.csr_matrix(pattern), directed=True, connection="strong"
    )
    out = 0.0
    for k in range(ncomp):
        loc = np.flatnonzero(labels == k)
        M: NDArray[np.float64] | None = None
        cache: dict[int, NDArray[np.float64]] = {}
        for s in subs:
            sub = cache.get(id(s))
            if sub is None:
                sub = s[np.ix_(loc, loc)]
                cache[id(s)] = sub
            M = sub if M is None else sub @ M
        assert M is not None
        lam = np.linalg.eigvals(M) if len(loc) > 1 else np.array([M[0, 0]])
        out = max(out, float(np.max(np.abs(lam))))
    return out


def _reach(starts: Sequence[int], nxt: object) -> set[int]:
    step = nxt  # a callable: node -> neighbours
    seen = set(starts)
    todo = deque(starts)
    while todo:
        v = todo.popleft()
        for w in step(v):  # type: ignore[operator]
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def _arpack(mats: Sequence[Csr], idx: NDArray[np.intp], k: int = 6) -> Complex | None:
    """The largest-magnitude eigenvalues of a big block's product, without forming it."""
    from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigs

    subs = [a[idx][:, idx].tocsr() for a in mats]

    def mv(v: NDArray[np.float64]) -> NDArray[np.float64]:
        for s in subs:
            v = s @ v
        return v

    op = LinearOperator((len(idx), len(idx)), matvec=mv, dtype=float)
    try:
        vals = eigs(
            op,
            k=min(k, len(idx) - 2),
            which="LM",
            return_eigenvectors=False,
            maxiter=5000,
            tol=1e-10,
        )
    except (ArpackNoConvergence, ArpackError):
        return None
    return np.asarray(vals, dtype=complex)


def monodromy(mats: Sequence[Csr]) -> Csr:
    """The sparse product A_{H-1} ... A_0 (for root solves and steady-state gains)."""
    n = mats[0].shape[0]
    out = sps.identity(n, format="csr")
    for a in mats:
        out = (a @ out).tocsr()
    return out
