"""Linearization: per-tick Jacobians at the operating orbit, and their loop structure.

For each tick t of the hyperperiod the engine builds the *local* partial derivatives of every
let and update with respect to the names it mentions (:mod:`coherence.linear.symbolic`,
evaluated vectorised per template) and assembles them with the chain rule through the lets in
evaluation order (lets form a DAG, so ``D = (I - L)^-1 K`` is a finite sum of sparse products,
one per let level):

    K  = d let / d state          L  = d let / d let
    G  = d next / d state         Gd = d next / d let
    D  = K + L D                  (total derivative of every let)
    U  = G + Gd D                 (A_t, before the state clamps)

Two kinds of lets are *cuts*: downstream of them, derivatives stop at a column of their own.
The sensed value of each sensor (what a loop's law reads), and each action's recommendation
``rec = actuator + gain * change`` (the one place where a loop's law and gain enter). So
``A_t = U @ Map_t`` where ``Map_t`` substitutes the sensed values' and the recommendations'
own derivatives. That keeps the loop structure visible: an extra measurement delay on a loop
is a shift register inserted at its sensed cut, exactly what
:func:`coherence.ir.transform.with_extra_delay` does to the nonlinear system, and a loop's
gain scales the law's part of its recommendation.

Rows of states whose raw next value lies beyond their bounds are zero (the clamp saturates);
a raw next value on a bound is a switching surface.

**The linearization view.** At an equilibrium a loop's target equals its actuator, so the
lowered condition ``target != actuator`` is false and the loop's update is "hold". Under any
small perturbation it is true, so the linearization evaluates every action's ``changes``
condition with that comparison taken as true: the loop acts, with a zero change to first
order. Cooldown counters are taken as idle (the loop may act every period; COH307 says so when
the cooldown is longer than the period).

**Loop structure.** Every actuator row is ``e_a + sum_k ch_k (tau_k - e_a)`` over the actions
k on it (``ch_k`` the action's ``changes`` flag at t, ``tau_k`` the total derivative of its
target). :class:`LoopModel` keeps these pieces, so that "only these loops act", "this loop's
gain times f" and "this loop's sensors d ticks later" are rows and columns to replace, not
systems to re-linearize (the equivalence with :func:`~coherence.ir.transform.hold_loop`,
:func:`~coherence.ir.transform.with_params` and :func:`~coherence.ir.transform.with_extra_delay`
is tested).

**Gain.** A loop's gain is the gain of its control law: for ``actuates x by law`` the
recommendation is ``x + g law`` and scaling the gain by f is scaling g (the internal gain
parameter, :func:`~coherence.ir.transform.loop_gain_params`); for ``actuates x to law`` it
is ``x + g (law - x)``, and scaling the gain by f scales the law's slope around the operating
point, ``d rec = (1 - g) e_x + f g d law``. (Scaling g itself would only measure how far the
loop may overshoot its target: a step factor of 2 puts a multiplier at -1 whatever the law.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sps
from numpy.typing import NDArray

from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    TransitionSystem,
    Unary,
    Var,
    names_in,
)
from coherence.linear.program import Array, Group, Program
from coherence.linear.structure import Structure
from coherence.linear.symbolic import Derivatives, Node, derivatives

Csr: TypeAlias = Any  # scipy.sparse.csr_matrix (SciPy is untyped here)


class LinearizationError(Exception):
    """The system cannot be linearized here (non-finite derivative, unknown structure)."""


# ---- the linearization view --------------------------------------------------------------


def linearization_view(ts: TransitionSystem) -> dict[str, Expr]:
    """Let overrides: each action's ``target != actuator`` comparison taken as true."""
    out: dict[str, Expr] = {}
    for lp in ts.loops:
        for a in lp.actions:
            e = ts.let(a.changes).expr
            out[a.changes] = _generic_changes(e, a.target, a.state)
    return out


def _generic_changes(e: Expr, target: str, state: str) -> Expr:
    match e:
        case Binary("!=", Var(x), Var(y)) if x == target and y == state:
            return Const(1.0)
        case Binary(op, left, right):
            return Binary(
                op, _generic_changes(left, target, state), _generic_changes(right, target, state)
            )
        case Unary(op, a):
            return Unary(op, _generic_changes(a, target, state))
        case _:
            return e


# ---- corners -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Corner:
    """The operating point on a switching surface: ``construct`` in ``item`` at ``tick``."""

    loop: str | None
    construct: str
    item: str
    tick: int
    values: tuple[float, ...]


# ---- the per-tick engine -------------------------------------------------------------------


@dataclass(slots=True)
class _Part:
    """Where one derivative output of one group goes: matrix (K, L, G or Gd), rows, cols."""

    matrix: int  # 0 K, 1 L, 2 G, 3 Gd
    out: int  # position in the group's derivative outputs
    mask: NDArray[np.bool_]
    rows: NDArray[np.intp]
    cols: NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class TickJacobian:
    """The linearization at one tick.

    Columns of ``U``, ``targets`` and ``recs``: the n states, then the cuts: the s sensed
    values, then the recommendation of each action. ``U`` is n x (n + s + a): next states;
    ``targets``/``recs`` the total derivative of each action's target/recommendation;
    ``sigma`` the sensed values against states (s x n); ``ch`` each action's ``changes``
    flag; ``clamped`` the rows zeroed by a saturated state bound.
    """

    U: Csr
    targets: Csr
    recs: Csr
    sigma: Csr
    ch: NDArray[np.float64]
    clamped: NDArray[np.bool_]

    def A(self) -> Csr:
        n = self.U.shape[0]
        return (self.U @ nominal_map(self, n)).tocsr()


def nominal_map(jac: TickJacobian, n: int) -> Csr:
    """(n + s + a) x n: states to themselves, each cut to its own derivative."""
    s = jac.sigma.shape[0]
    smap = sps.vstack([sps.identity(n, format="csr"), jac.sigma]).tocsr()
    rmap = (jac.recs[:, : n + s] @ smap).tocsr() if jac.recs.shape[0] else sps.csr_matrix((0, n))
    return sps.vstack([smap, rmap]).tocsr()


class Engine:
    """Per-tick Jacobians of one system (templates compiled once)."""

    def __init__(self, ts: TransitionSystem, st: Structure | None = None) -> None:
        self.ts = ts
        self.st = st or Structure(ts)
        st = self.st
        self.exact = Program(ts, st)
        self.view = Program(ts, st, linearization_view(ts), share=self.exact)
        p = self.view
        self.n, self.m = p.n, p.m
        self.sensed = tuple(sorted(st.sensed, key=st.let_index.__getitem__))
        self.s = len(self.sensed)
        self.actions = tuple((lp.name, a) for lp in ts.loops for a in lp.actions)
        self.rec_names = tuple(_rec_name(ts, a.target) for _, a in self.actions)
        self.cuts = self.s + len(self.actions)
        cut_col = {st.let_index[x]: self.n + j for j, x in enumerate(self.sensed)}
        for k, r in enumerate(self.rec_names):
            cut_col[st.let_index[r]] = self.n + self.s + k
        self.rec_rows = np.array([st.let_index[r] for r in self.rec_names], np.intp)
        self.target_rows = np.array([st.let_index[a.target] for _, a in self.actions], np.intp)
        self.changes_slots = np.array(
            [p.let0 + st.let_index[a.changes] for _, a in self.actions], np.intp
        )
        self.sensed_rows = np.array([st.let_index[x] for x in self.sensed], np.intp)
        self.groups: list[tuple[Group, Derivatives, list[_Part], bool]] = []
        for g in [g for wave in p.let_waves for g in wave] + p.update_groups:
            d = derivatives(g.template)
            is_update = g.items[0] >= self.m
            rows = g.out_arr if is_update else g.out_arr - p.let0
            parts: list[_Part] = []
            for j, w in enumerate(d.wrt):
                slots = g.var_arr[:, w]
                is_let = slots >= p.let0
                let_idx = slots - p.let0
                cut = np.array(
                    [
                        bool(il) and int(li) in cut_col
                        for il, li in zip(is_let, let_idx, strict=True)
                    ],
                    dtype=bool,
                )
                to_state = ~is_let
                to_let = is_let & ~cut
                base = 2 if is_update else 0
                if to_state.any() or cut.any():
                    mask = to_state | cut
                    cols = np.where(
                        cut,
                        np.array([cut_col.get(int(li), -1) for li in let_idx], np.intp),
                        slots,
                    )
                    parts.append(_Part(base, j, mask, rows[mask], cols[mask]))
                if to_let.any():
                    parts.append(_Part(base + 1, j, to_let, rows[to_let], let_idx[to_let]))
            self.groups.append((g, d, parts, is_update))
        self.item_names = tuple(d.name for d in ts.lets) + tuple(ts.state_names)

    # ---- values at a tick -----------------------------------------------------------------

    def view_values(
        self, x: NDArray[np.float64], tick: int, params: Mapping[str, float] | None = None
    ) -> Array:
        """Slots of the linearization view at states ``x`` (one scenario)."""
        vals = self.view.base_values(1, params)
        vals[0, : self.n] = x
        self.view.eval_lets(vals, tick)
        return vals

    # ---- the Jacobian at a tick -------------------------------------------------------------

    def jacobian(
        self,
        vals: Array,
        tick: int,
        corner_tol: float | None = None,
        memo: dict[tuple[int, int, bytes], Any] | None = None,
    ) -> tuple[TickJacobian, list[Corner]]:
        """The linearization at one tick; ``vals`` from :meth:`view_values`.

        ``memo`` keeps each group's derivatives by what they read (the group's variables and
        the phase of the tick), for ticks of one orbit that look alike to a group."""
        n, m, s = self.n, self.m, self.cuts
        data: list[list[NDArray[np.float64]]] = [[], [], [], []]
        rows: list[list[NDArray[np.intp]]] = [[], [], [], []]
        cols: list[list[NDArray[np.intp]]] = [[], [], [], []]
        corners: list[Corner] = []
        for k, (g, d, parts, _is_update) in enumerate(self.groups):
            if not d.wrt and corner_tol is None:
                continue
            key = None
            if memo is not None:
                phase = tick % g.cycle if g.names[2] else 0
                key = (k, phase, np.ascontiguousarray(vals[:, g.var_arr]).tobytes())
            hit = memo.get(key) if memo is not None and key is not None else None
            if hit is None:
                hit = d.evaluate(g.env(vals, tick), len(g.outputs))
                if memo is not None and key is not None:
                    memo[key] = hit
            outs, nodes = hit
            for part in parts:
                v = outs[part.out][part.mask]
                data[part.matrix].append(v)
                rows[part.matrix].append(part.rows)
                cols[part.matrix].append(part.cols)
            if corner_tol is not None and nodes:
                corners += self._ties(g, nodes, tick, corner_tol)
        shapes = [(m, n + s), (m, m), (n, n + s), (n, m)]
        K, L, G, Gd = (_csr(data[i], rows[i], cols[i], shapes[i]) for i in range(4))
        D = K
        for _ in range(self.view.depth):
            if L.nnz == 0:
                break
            D_next = (K + L @ D).tocsr()
            if D_next.nnz == D.nnz and abs(D_next - D).max() == 0:
                D = D_next
                break
            D = D_next
        U = (G + Gd @ D).tocsr()
        raw = self.view.eval_updates(vals, tick)[0]
        lo, hi = self.view.lo, self.view.hi
        clamped = (raw < lo) | (raw > hi)
        if clamped.any():
            U = (sps.diags((~clamped).astype(float)) @ U).tocsr()
        if not np.all(np.isfinite(U.data)):
            bad = sorted(
                {self.ts.states[i].name for i in U.tocoo().row[~np.isfinite(U.tocoo().data)]}
            )
            raise LinearizationError(
                "the derivative is not finite at the operating point (in the update of "
                + ", ".join(f"`{b}`" for b in bad[:3])
                + ")"
            )
        if corner_tol is not None:
            corners += self._bound_ties(raw, U, tick, corner_tol)
        na = len(self.actions)
        targets = D[self.target_rows] if na else sps.csr_matrix((0, n + s))
        recs = D[self.rec_rows] if na else sps.csr_matrix((0, n + s))
        ns = self.s
        sigma = D[self.sensed_rows][:, :n] if ns else sps.csr_matrix((0, n))
        if ns and D[self.sensed_rows][:, n:].nnz:
            raise LinearizationError("a sensed value depends on another sensed value")
        if na and recs[:, n + ns :].nnz:
            raise LinearizationError("a loop's recommendation depends on another's")
        ch = vals[0, self.changes_slots].astype(float) if na else np.zeros(0)
        return TickJacobian(U, targets.tocsr(), recs.tocsr(), sigma.tocsr(), ch, clamped), corners

    # ---- switching surfaces ---------------------------------------------------------------

    def _ties(
        self,
        g: Group,
        nodes: list[tuple[Node, list[NDArray[np.float64]]]],
        tick: int,
        tol: float,
    ) -> list[Corner]:
        out: list[Corner] = []
        for node, vals in nodes:
            if node.kind in ("ite", "bool"):
                continue
            hit = _tie(node, vals, tol)
            for k in np.flatnonzero(hit):
                item = g.items[k]
                name = self.item_names[item]
                expr = (
                    self.view.let_exprs[item]
                    if item < self.m
                    else self.view.update_exprs[item - self.m]
                )
                loop, construct = describe_site(self.ts, self.st, name, item >= self.m, expr, node)
                out.append(Corner(loop, construct, name, tick, tuple(float(v[k]) for v in vals)))
        return out

    def _bound_ties(self, raw: NDArray[np.float64], U: Csr, tick: int, tol: float) -> list[Corner]:
        out: list[Corner] = []
        lo, hi = self.view.lo, self.view.hi
        nz = np.diff(U.indptr) > 0
        for i in np.flatnonzero(nz):
            for bound, label in ((lo[i], "lower"), (hi[i], "upper")):
                if (
                    np.isfinite(bound)
                    and abs(raw[i] - bound) <= tol * max(abs(bound), abs(raw[i]), 1e-300) + 1e-12
                ):
                    s = self.ts.states[i]
                    owners = self.st.owners[i]
                    loop = owners[0] if owners[0] != "plant" else None
                    out.append(
                        Corner(
                            loop,
                            f"the {label} bound {bound:g} of `{s.name}`",
                            s.name,
                            tick,
                            (float(raw[i]), float(bound)),
                        )
                    )
        return out


def _rec_name(ts: TransitionSystem, target: str) -> str:
    """The recommendation let of an action (lowering names it ``<loop>.<state>.rec``)."""
    if not target.endswith(".target"):
        raise LinearizationError(f"unexpected action target `{target}`")
    name = target[: -len(".target")] + ".rec"
    ts.let(name)
    return name


def _csr(
    data: list[NDArray[np.float64]],
    rows: list[NDArray[np.intp]],
    cols: list[NDArray[np.intp]],
    shape: tuple[int, int],
) -> Csr:
    if not data:
        return sps.csr_matrix(shape)
    return sps.csr_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    )


def _tie(node: Node, vals: list[NDArray[np.float64]], tol: float) -> NDArray[np.bool_]:
    if node.kind in ("min", "max"):
        v = np.sort(np.stack(vals), axis=0)
        a, b = (v[0], v[1]) if node.kind == "min" else (v[-1], v[-2])
        gap = np.abs(a - b)
        return np.asarray(
            np.isfinite(gap) & (gap <= tol * np.maximum(np.abs(a), np.abs(b)) + 1e-12), bool
        )
    if node.kind == "abs":
        return np.abs(vals[0]) <= tol
    a, b = vals
    gap = np.abs(a - b)
    return np.isfinite(gap) & (gap <= tol * np.maximum(np.abs(a), np.abs(b)) + 1e-12)


def describe_site(
    ts: TransitionSystem, st: Structure, item: str, is_update: bool, expr: Expr, node: Node
) -> tuple[str | None, str]:
    """The loop a switching site belongs to and the construct, in the spec's words."""
    sub = _at(expr, node.path)
    lp_name: str | None = None
    if not is_update and item in st.let_index:
        owner = ts.let(item).owner
        lp_name = owner
    elif is_update:
        owners = st.owners[st.state_index[item]]
        lp_name = owners[0] if owners[0] != "plant" else None
    if lp_name is not None and item.startswith(lp_name + "."):
        rest = item[len(lp_name) + 1 :]
        lp = ts.loop(lp_name)
        for a in lp.actions:
            if item == a.target:
                return lp_name, _describe_target(ts, a.state, set(a.history), a.target, sub, node)
            if item == a.changes:
                if node.kind == "cmp" and node.op == "<=":
                    kind = "deadband" if isinstance(_at(sub, (1,)), Var | Const) else "tolerance"
                    return lp_name, f"the {kind} of `{a.state}`"
                return lp_name, f"a condition on `{a.state}`"
        if item == lp.fires:
            if lp.cooldown_state and lp.cooldown_state in _names(sub):
                return lp_name, "its cooldown"
            return lp_name, "its guard (`when`)"
        if item == lp.cooldown_state:
            return lp_name, "its cooldown"
        return lp_name, f"`{rest}`"
    what = (
        "min/max"
        if node.kind in ("min", "max")
        else ("abs" if node.kind == "abs" else f"the comparison `{node.op}`")
    )
    where = f"`next {item}`" if is_update else f"`let {item}`"
    if lp_name is None and not is_update:
        readers = [x for x in st.loop_names if _reads_name(st, x, item)]
        lp_name = readers[0] if readers else None
    elif lp_name is None:
        readers = [x for x in st.loop_names if item in st.sees[x]]
        lp_name = readers[0] if readers else None
    return lp_name, f"{what} in {where}"


def _reads_name(st: Structure, loop: str, let: str) -> bool:
    deps = st.let_deps.get(let, frozenset())
    states = {d for d in deps if d in st.state_index}
    return bool(states & st.sees[loop])


def _describe_target(
    ts: TransitionSystem, state: str, history: set[str], target: str, sub: Expr, node: Node
) -> str:
    s = ts.state(state)
    if node.kind == "abs":
        return f"the relative rate limit of `{state}`"
    args = sub.args if isinstance(sub, Call) else ()
    names = set().union(*(_names(x) for x in args)) if args else set()
    if names & history or (
        len(args) >= 2
        and sum(isinstance(x, Var) for x in args) >= 2
        and any(isinstance(x, Var) and x.name.endswith(".rec") for x in args)
    ):
        return f"the stabilization window of `{state}`"
    for x in args:
        if isinstance(x, Binary) and x.op in ("+", "-") and Var(state) in (x.left, x.right):
            return f"the rate limit of `{state}`"
    for x in args:
        if isinstance(x, Const):
            if x.value in (s.lo, s.hi):
                side = "lower" if (node.kind == "max") else "upper"
                return f"the {side} bound {x.value:g} of `{state}`"
            return f"the limit {x.value:g} of `{state}`"
    return f"the shaping of `{state}`"


def _at(e: Expr, path: tuple[int, ...]) -> Expr:
    for i in path:
        match e:
            case Unary(_, a):
                e = a
            case Binary(_, left, right):
                e = left if i == 0 else right
            case Call(_, args):
                e = args[i]
            case Ite(c, a, b):
                e = (c, a, b)[i]
            case _:
                return e
    return e


def _names(e: Expr) -> set[str]:
    return set(names_in(e))


# ---- the orbit and the model ---------------------------------------------------------------


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
        basew = np.where(self.to_law, 1.0 - self.gain0, 1.0)
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
                k0 = self.hist_action.get(r)
                if k0 is not None and factors.get(self.action_loop[k0], 1.0) != 1.0:
                    c, v = _row(b.dU, r)
                    cols.append(c)
                    vals.append((factors[self.action_loop[k0]] - 1.0) * v)
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
        shares them) and their history states."""
        out: set[int] = set()
        for lp in loops:
            for k in self.loop_actions.get(lp, []):
                out.add(int(self.action_state[k]))
            out.update(self.loop_history.get(lp, []))
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
    )
    return model, corners
