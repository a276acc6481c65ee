"""The linear model: the operating orbit and its Jacobians with the loop structure kept.

:func:`orbit` runs the system once over a hyperperiod from the operating point;
:func:`tick_jacobians` asks the per-tick engine (:class:`coherence.linear.linearize.Engine`)
for the Jacobian of every tick along it, once per distinct tick; :func:`build_model` keeps
them as a :class:`LoopModel`, which the spectrum, the margins and the interaction measures
read.

**Loop structure.** Every actuator row is ``e_a + sum_k ch_k (tau_k - e_a)`` over the actions
k on it (``ch_k`` the action's ``changes`` flag at t, ``tau_k`` the total derivative of its
target). :class:`LoopModel` keeps these pieces, so that "only these loops act", "this loop's
gain times f" and "this loop's sensors d ticks later" are rows and columns to replace, not
systems to re-linearize (the equivalence with :func:`~coherence.ir.transform.hold_loop`,
:func:`~coherence.ir.transform.with_params` and :func:`~coherence.ir.transform.with_extra_delay`
is tested).

**Gain.** A loop's gain margin is the factor on the loop broken at the actuator. The
recommendation ``rec`` of an action (``x + g law`` for ``by``, ``x + g (law - x)`` for ``to``)
has a derivative ``d rec``; its own coefficient in the actuator ``x`` with every other name
held, ``c = d rec / d x |direct``, is the controller's memory (1 for ``by K e``, and 1 for
``to x + K e`` as well: the two are the same controller), and a gain factor f scales the
rest: ``d rec(f) = c e_x + f (d rec - c e_x)``. So a law's reference to its own actuator's
previous value is not scaled, whichever way the law is written; what the loop reads through
the plant (a utilization computed from the replica count) is. (Scaling g itself would only
measure how far the loop may overshoot its target.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sps
from numpy.typing import NDArray

from coherence.linear.linearize import Corner, Csr, Engine, TickJacobian, linearization_view
from coherence.linear.program import Program


@dataclass(frozen=True, slots=True)
class Orbit:
    """The operating orbit over one hyperperiod: states at ticks 0..H-1 (x_0 = x*)."""

    states: NDArray[np.float64]  # [H, n]
    constant: bool


def orbit(engine: Engine, x_star: NDArray[np.float64]) -> Orbit:
    ts = engine.ts
    H = ts.hyperperiod
    p = engine.exact
    vals = p.base_values(1)
    x = x_star[None, :].copy()
    xs = np.empty((H, engine.n))
    for t in range(H):
        x[:, p.cooldown] = 0.0
        xs[t] = x[0]
        x = p.step(vals, x, t)
    scale = np.maximum(np.abs(xs).max(axis=0), 1e-300)
    constant = bool(np.all(np.abs(xs - xs[0]) <= 1e-12 * scale + 1e-300))
    return Orbit(xs, constant)


def _phase_pairs(p: Program) -> list[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    for ph in p.item_phases:
        pairs.update(ph)
    return sorted(pairs)


def tick_jacobians(
    engine: Engine,
    orb: Orbit,
    params: Mapping[str, float] | None = None,
    corner_tol: float | None = None,
) -> tuple[list[TickJacobian], list[Corner]]:
    """The Jacobian of every tick of the hyperperiod (shared where the tick looks the same)."""
    H = orb.states.shape[0]
    pairs = _phase_pairs(engine.view)
    cache: dict[tuple[bool, ...], TickJacobian] = {}
    memo: dict[tuple[int, int, bytes], Any] = {}
    out: list[TickJacobian] = []
    corners: list[Corner] = []
    for t in range(H):
        key = tuple(t % per == off for per, off in pairs) if orb.constant else None
        if key is not None and key in cache:
            out.append(cache[key])
            continue
        vals = engine.view_values(orb.states[t], t, params)
        jac, cs = engine.jacobian(vals, t, corner_tol, memo)
        corners += cs
        if key is not None:
            cache[key] = jac
        out.append(jac)
    return out, corners


@dataclass(frozen=True, slots=True)
class Bank:
    """Tick t's rows, mapped to state columns: ``A`` the coupled rows; ``C0[k]`` action k's
    contribution ch_k (tau_k - e_a) to its actuator's row; ``dC[k]`` its change per unit of
    gain factor; ``dU[r]`` the same for a row that reads a recommendation (a history state);
    ``clamped`` saturated rows."""

    A: Csr
    C0: Csr
    dC: Csr
    dU: Csr
    clamped: NDArray[np.bool_]


def _row(m: Csr, r: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    lo, hi = m.indptr[r], m.indptr[r + 1]
    return m.indices[lo:hi], m.data[lo:hi]


@dataclass(slots=True)
class LoopModel:
    """The linearization with its loop structure kept (see the module docstring)."""

    engine: Engine
    nominal: list[TickJacobian]
    gain0: NDArray[np.float64]  # nominal gain parameter value per action
    to_law: NDArray[np.bool_]  # per action: `to` (True) or `by`
    action_loop: tuple[str, ...]
    action_state: NDArray[np.intp]
    loop_actions: dict[str, list[int]]
    loop_history: dict[str, list[int]]
    sensor_loop: tuple[str, ...]
    actuator_actions: dict[int, list[int]]
    hist_action: dict[int, int]
    orbit: Orbit | None = None
    _A: dict[int, Csr] = field(default_factory=dict)
    _maps: dict[object, Csr] = field(default_factory=dict)
    _banks: dict[int, Bank] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.engine.n

    @property
    def H(self) -> int:
        return len(self.nominal)

    def A(self, t: int) -> Csr:
        """The coupled A_t (every loop acting, nominal gains)."""
        key = id(self.nominal[t])
        hit = self._A.get(key)
        if hit is None:
            hit = self.nominal[t].A()
            self._A[key] = hit
        return hit

    def holds(self, a: int) -> bool:
        """Whether actuator ``a`` holds at the operating point: its row of every A_t is the
        unit row (its loops sit in a deadband or tolerance band, a guard is false, or the
        law's active branch is the actuator itself)."""
        for t in range(self.H):
            row = self.A(t)[a].tocoo()
            keep = row.data != 0
            cols, vals = row.col[keep], row.data[keep]
            if len(cols) != 1 or cols[0] != a or abs(vals[0] - 1.0) > 1e-12:
                return False
        return True

    def matrices(self) -> list[Csr]:
        return [self.A(t) for t in range(self.H)]

    # ---- variants --------------------------------------------------------------------------

    def column_map(
        self, t: int, factors: Mapping[str, float], delays: Mapping[str, int], base: int
    ) -> Csr:
        """(n + s + a) x width: states map to themselves; a sensed cut to its value's
        derivative, or to the last register of its extra delay (registers from ``base``); a
        recommendation cut to its derivative with the loop's gain scaled."""
        jac = self.nominal[t]
        n, s = self.n, self.engine.s
        layout = {c: (e, first) for c, e, first in self.delay_layout(delays, base)}
        width = base + sum(e for e, _ in layout.values())
        fac = tuple(sorted((k, v) for k, v in factors.items() if v != 1.0))
        key = (id(jac), tuple(sorted(layout.items())), width, fac)
        hit = self._maps.get(key)
        if hit is not None:
            return hit
        sig = jac.sigma.tocoo()
        keep = np.array([c not in layout for c in range(s)], dtype=bool)
        sel = keep[sig.row] if s else np.zeros(0, dtype=bool)
        rows = [np.arange(n), n + sig.row[sel]]
        cols = [np.arange(n), sig.col[sel]]
        data = [np.ones(n), sig.data[sel]]
        for c, (e, first) in layout.items():
            rows.append(np.array([n + c]))
            cols.append(np.array([first + e - 1]))
            data.append(np.ones(1))
        smap = sps.csr_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n + s, width),
        )
        rmap = (self.rec_rows(t, factors) @ smap).tocsr()
        out = sps.vstack([smap, rmap]).tocsr()
        self._maps[key] = out
        return out

    def rec_rows(self, t: int, factors: Mapping[str, float]) -> Csr:
        """Each action's recommendation derivative (n + s columns) with gains scaled:
        ``base + f (rho - base)``, base = e_x (by) or (1 - g) e_x (to)."""
        jac = self.nominal[t]
        na = len(self.action_loop)
        n, s = self.n, self.engine.s
        rho = jac.recs[:, : n + s]
        if not na or not factors:
            return rho.tocsr()
        f = np.array([factors.get(lp, 1.0) for lp in self.action_loop])
        if np.all(f == 1.0):
            return rho.tocsr()
        # what the gain does not scale: the recommendation's own derivative in its actuator
        # with every other name held (the controller's memory, the same for `by K e` and
        # `to x + K e`); the rest of its derivative is the loop, broken at the actuator
        basew = jac.own if jac.own.shape == (na,) else np.where(self.to_law, 1.0 - self.gain0, 1.0)
        base = sps.csr_matrix((basew, (np.arange(na), self.action_state)), shape=(na, n + s))
        return (sps.diags(f) @ rho + sps.diags(1.0 - f) @ base).tocsr()

    def ext_rows(self, t: int, rows: Sequence[int], active: frozenset[str] | None = None) -> Csr:
        """Rows ``rows`` of a variant's U_t (states and cuts as columns) when only the loops
        in ``active`` act (all if None)."""
        jac = self.nominal[t]
        n, c = self.n, self.engine.cuts
        rows = list(rows)
        nr = len(rows)
        w_r: list[int] = []
        w_k: list[int] = []
        w_v: list[float] = []
        diag = np.zeros(nr)
        keep_r: list[int] = []
        keep_rows: list[int] = []
        for i, r in enumerate(rows):
            acts = self.actuator_actions.get(r)
            if acts is None:
                keep_r.append(i)
                keep_rows.append(r)
                continue
            if jac.clamped[r]:
                continue
            total = 0.0
            for k in acts:
                lp = self.action_loop[k]
                if (active is not None and lp not in active) or not jac.ch[k]:
                    continue
                w = float(jac.ch[k])
                total += w
                w_r.append(i)
                w_k.append(k)
                w_v.append(w)
            diag[i] = 1.0 - total
        na = len(self.action_loop)
        ext = sps.csr_matrix(
            (diag, (np.arange(nr), np.array(rows, dtype=np.intp))), shape=(nr, n + c)
        )
        if na and w_r:
            W = sps.csr_matrix((w_v, (w_r, w_k)), shape=(nr, na))
            ext = ext + W @ jac.targets
        if keep_r:
            P = sps.csr_matrix((np.ones(len(keep_r)), (keep_r, keep_rows)), shape=(nr, n))
            ext = ext + P @ jac.U
        return ext.tocsr()

    def sensed_rows(self, t: int, rows: Sequence[int]) -> Csr:
        """Rows ``rows`` of the coupled U_t with the recommendations substituted and the
        sensed values still as columns: len(rows) x (n + s)."""
        n, s = self.n, self.engine.s
        ext = self.ext_rows(t, rows)
        partial = sps.vstack([sps.identity(n + s, format="csr"), self.rec_rows(t, {})]).tocsr()
        return (ext @ partial).tocsr()

    def rows(
        self,
        t: int,
        rows: Sequence[int],
        active: frozenset[str] | None = None,
        factors: Mapping[str, float] | None = None,
        delays: Mapping[str, int] | None = None,
        base: int | None = None,
    ) -> Csr:
        """Rows ``rows`` of a variant's A_t: only the loops in ``active`` act (all if None),
        loop gains scaled by ``factors``, loop sensors delayed by ``delays`` extra ticks
        (registers laid out by :meth:`delay_layout` from ``base``, default n). The result is
        len(rows) x width, width = base + total extra ticks."""
        base = self.n if base is None else base
        ext = self.ext_rows(t, rows, active)
        return (ext @ self.column_map(t, factors or {}, delays or {}, base)).tocsr()

    def bank(self, t: int) -> Bank:
        """The mapped pieces of tick t's rows (shared between ticks that look the same)."""
        jac = self.nominal[t]
        hit = self._banks.get(id(jac))
        if hit is not None:
            return hit
        n, c = self.n, self.engine.cuts
        na = len(self.action_loop)
        m1 = self.column_map(t, {}, {}, n)
        m2 = self.column_map(t, {lp: 2.0 for lp in set(self.action_loop)}, {}, n)
        dmap = (m2 - m1).tocsr()
        if na:
            Ea = sps.csr_matrix(
                (np.ones(na), (np.arange(na), self.action_state)), shape=(na, n + c)
            )
            T = (sps.diags(jac.ch) @ (jac.targets - Ea)).tocsr()
            C0 = (T @ m1).tocsr()
            dC = (T @ dmap).tocsr()
        else:
            C0 = dC = sps.csr_matrix((0, n))
        dU = (jac.U @ dmap).tocsr()
        out = Bank(self.A(t), C0, dC, dU, jac.clamped)
        self._banks[id(jac)] = out
        return out

    def loop_dU(self, t: int, loop: str) -> Csr:
        """The change of tick t's U-rows (mapped to state columns) per unit of ``loop``'s gain
        factor: the part of every row that reads that loop's recommendations."""
        jac = self.nominal[t]
        key = ("dU", id(jac), loop)
        hit = self._maps.get(key)
        if hit is None:
            n = self.n
            m1 = self.column_map(t, {}, {}, n)
            m2 = self.column_map(t, {loop: 2.0}, {}, n)
            hit = (jac.U @ (m2 - m1)).tocsr()
            self._maps[key] = hit
        return hit

    def fast_rows(
        self,
        t: int,
        rows: Sequence[int],
        active: frozenset[str] | None = None,
        factors: Mapping[str, float] | None = None,
    ) -> Csr:
        """:meth:`rows` without delays, assembled from the tick's :class:`Bank`."""
        factors = factors or {}
        b = self.bank(t)
        cols: list[NDArray[np.intp]] = []
        vals: list[NDArray[np.float64]] = []
        rid: list[NDArray[np.intp]] = []
        for i, r in enumerate(rows):
            start = len(cols)
            acts = self.actuator_actions.get(r)
            if acts is not None:
                if b.clamped[r]:
                    continue
                cols.append(np.array([r], dtype=np.intp))
                vals.append(np.ones(1))
                for k in acts:
                    lp = self.action_loop[k]
                    if active is not None and lp not in active:
                        continue
                    c, v = _row(b.C0, k)
                    cols.append(c)
                    vals.append(v)
                    f = factors.get(lp, 1.0)
                    if f != 1.0:
                        c, v = _row(b.dC, k)
                        cols.append(c)
                        vals.append((f - 1.0) * v)
            else:
                c, v = _row(b.A, r)
                cols.append(c)
                vals.append(v)
                # a row that reads recommendations (a history state, a plant update under
                # `timing immediate`): each loop's part scales with its factor
                for lp, f in factors.items():
                    if f != 1.0 and lp in self.loop_actions:
                        c, v = _row(self.loop_dU(t, lp), r)
                        if len(c):
                            cols.append(c)
                            vals.append((f - 1.0) * v)
            rid += [np.full(len(x), i, dtype=np.intp) for x in cols[start:]]
        if not cols:
            return sps.csr_matrix((len(rows), self.n))
        return sps.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rid), np.concatenate(cols))),
            shape=(len(rows), self.n),
        )

    def delay_layout(self, delays: Mapping[str, int], base: int) -> list[tuple[int, int, int]]:
        """(sensor cut, extra ticks, first register index) for each delayed sensor."""
        out: list[tuple[int, int, int]] = []
        nxt = base
        for c, lp in enumerate(self.sensor_loop):
            e = delays.get(lp, 0)
            if e > 0:
                out.append((c, e, nxt))
                nxt += e
        return out

    def delay_rows(self, t: int, delays: Mapping[str, int], base: int) -> tuple[list[int], Csr]:
        """The rows of the extra delay registers: the first takes the sensed value, the others
        shift."""
        layout = self.delay_layout(delays, base)
        width = base + sum(e for _, e, _ in layout)
        sig = self.nominal[t].sigma
        rows: list[int] = []
        parts: list[Csr] = []
        for c, e, first in layout:
            r1 = sps.hstack([sig[c], sps.csr_matrix((1, width - self.n))]).tocsr()
            rows.append(first)
            parts.append(r1)
            for j in range(1, e):
                rows.append(first + j)
                parts.append(sps.csr_matrix(([1.0], ([0], [first + j - 1])), shape=(1, width)))
        mat = sps.vstack(parts).tocsr() if parts else sps.csr_matrix((0, width))
        return rows, mat

    def loop_rows(self, loops: Sequence[str]) -> list[int]:
        """The rows a change to these loops touches: their actuators (with every loop that
        shares them), their history states, and every other state whose update reads their
        sensed values or recommendations directly (a plant update under ``timing
        immediate`` reads the action of its own tick: ``x[k+1] = f(x[k], u[k])``)."""
        out: set[int] = set()
        n, s = self.n, self.engine.s
        cols: list[int] = []
        for lp in loops:
            for k in self.loop_actions.get(lp, []):
                out.add(int(self.action_state[k]))
                cols.append(n + s + k)
            out.update(self.loop_history.get(lp, []))
            cols += [n + c for c, x in enumerate(self.sensor_loop) if x == lp]
        if cols:
            for jac in {id(j): j for j in self.nominal}.values():
                sub = jac.U[:, cols].tocoo()
                out.update(int(r) for r in sub.row[sub.data != 0])
        return sorted(out)


def build_model(
    engine: Engine,
    orb: Orbit,
    corner_tol: float | None = None,
) -> tuple[LoopModel, list[Corner]]:
    """Linearize at the orbit and keep the loop structure."""
    ts = engine.ts
    nominal, corners = tick_jacobians(engine, orb, None, corner_tol)
    st = engine.st
    action_loop = tuple(lp for lp, _ in engine.actions)
    action_state = np.array([st.state_index[a.state] for _, a in engine.actions], np.intp)
    loop_actions: dict[str, list[int]] = {}
    actuator_actions: dict[int, list[int]] = {}
    for k, (lp, a) in enumerate(engine.actions):
        loop_actions.setdefault(lp, []).append(k)
        actuator_actions.setdefault(st.state_index[a.state], []).append(k)
    loop_history = {
        lp.name: [st.state_index[h] for a in lp.actions for h in a.history] for lp in ts.loops
    }
    gain0 = np.array([ts.param(a.gain).value for _, a in engine.actions], dtype=float)
    to_law = np.array([a.mode == "to" for _, a in engine.actions], dtype=bool)
    hist_action = {
        st.state_index[h]: k for k, (_, a) in enumerate(engine.actions) for h in a.history
    }
    sensor_loop = tuple(st.sensor_loop[x] for x in engine.sensed)
    model = LoopModel(
        engine,
        nominal,
        gain0,
        to_law,
        action_loop,
        action_state,
        loop_actions,
        loop_history,
        sensor_loop,
        actuator_actions,
        hist_action,
        orb,
    )
    return model, corners


def outside_band(model: LoopModel, loop: str) -> LoopModel | None:
    """The model with ``loop``'s law taken as it acts outside its tolerance band (its
    ``changes`` hold and the band tests of its lets taken as acting:
    :func:`~coherence.linear.linearize.linearization_view`), every other loop as it is, at
    the same operating orbit. None where that changes nothing (the loop has no band)."""
    engine = model.engine
    ts = engine.ts
    if model.orbit is None or loop in engine.active_branch:
        return None
    plain = linearization_view(ts, engine.active_branch)
    view = linearization_view(ts, engine.active_branch | {loop})
    if view == plain:
        return None
    other = Engine(ts, engine.st, engine.active_branch | {loop}, exact=engine.exact)
    out, _ = build_model(other, model.orbit)
    return out
