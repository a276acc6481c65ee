"""Linearization: the per-tick Jacobians at the operating orbit, and its switching surfaces.

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

The orbit these Jacobians are taken along, and the model that keeps their loop structure
(which loops act, each loop's gain and measurement delay), are :mod:`coherence.linear.model`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sps
from numpy.typing import NDArray

from coherence.ir.nodes import (
    Action,
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
from coherence.ir.topology import Structure
from coherence.linear.program import Array, Group, Program
from coherence.linear.symbolic import Derivatives, Node, derivatives

Csr: TypeAlias = Any  # scipy.sparse.csr_matrix (SciPy is untyped here)


class LinearizationError(Exception):
    """The system cannot be linearized here (non-finite derivative, unknown structure)."""


# ---- the linearization view --------------------------------------------------------------


def linearization_view(
    ts: TransitionSystem, active_branch: Collection[str] = ()
) -> dict[str, Expr]:
    """Let overrides: each action's ``target != actuator`` comparison taken as true.

    ``active_branch``: loops whose law is taken as it acts outside its tolerance band (the
    margins of :mod:`.margins` outside the band). A loop at rest inside
    its band (``tolerance``, ``deadband``, or a law written ``if abs(e) > c then ... else
    x``) has no linear effect at the operating point; this view drops the hold of the
    ``changes`` condition and takes the acting branch of every band test on ``abs`` in the
    loop's own lets (``abs(e) > c`` true, ``abs(e) < c`` false), so the linearization is the
    affine law that acts once the error leaves the band (quantizers such as ``ceil`` already
    have unit derivative: the unrounded expression)."""
    out: dict[str, Expr] = {}
    for lp in ts.loops:
        for a in lp.actions:
            e = ts.let(a.changes).expr
            if lp.name in active_branch:
                e = _drop_hold(e)
            out[a.changes] = _generic_changes(e, a.target, a.state)
    if active_branch:
        for d in ts.lets:
            if d.owner in active_branch and d.name not in out:
                e = _acting_branch(d.expr)
                if e is not d.expr:
                    out[d.name] = e
    return out


def _is_band(e: Expr) -> bool:
    """A band test ``abs(..) <= ..`` (an or of them)."""
    match e:
        case Binary("or", left, right):
            return _is_band(left) and _is_band(right)
        case Binary("<=" | "<", Call("abs", _), _):
            return True
        case _:
            return False


def _drop_hold(e: Expr) -> Expr:
    """The ``changes`` condition without its hold inside a tolerance band or deadband."""
    match e:
        case Unary("not", inner) if _is_band(inner):
            return Const(1.0)
        case Binary(_, left, right):
            lt, rt = _drop_hold(left), _drop_hold(right)
            return e if lt is left and rt is right else replace(e, left=lt, right=rt)
        case _:
            return e


def _acting_branch(e: Expr) -> Expr:
    """Every ``if abs(e) > c then A else B`` replaced by A (``abs(e) < c``: by B); the
    expression itself where there is none."""
    match e:
        case Ite(Binary(">" | ">=", Call("abs", _), _), then, _):
            return _acting_branch(then)
        case Ite(Binary("<" | "<=", _, Call("abs", _)), then, _):
            return _acting_branch(then)
        case Ite(Binary("<" | "<=", Call("abs", _), _), _, other):
            return _acting_branch(other)
        case Ite(Binary(">" | ">=", _, Call("abs", _)), _, other):
            return _acting_branch(other)
        case Ite(c, then, other):
            parts = (_acting_branch(c), _acting_branch(then), _acting_branch(other))
            if parts == (c, then, other) and all(
                x is y for x, y in zip(parts, (c, then, other), strict=True)
            ):
                return e
            return replace(e, cond=parts[0], then=parts[1], other=parts[2])
        case Binary(_, left, right):
            lt, rt = _acting_branch(left), _acting_branch(right)
            return e if lt is left and rt is right else replace(e, left=lt, right=rt)
        case Unary(_, a):
            at = _acting_branch(a)
            return e if at is a else replace(e, arg=at)
        case Call(_, args):
            new = tuple(_acting_branch(x) for x in args)
            return (
                e if all(x is y for x, y in zip(new, args, strict=True)) else replace(e, args=new)
            )
        case _:
            return e


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
    # per action: the recommendation's own derivative in its actuator, other names held: the
    # controller's memory (``x + g law`` has 1, ``x + g (u + K e - x)`` has 1 too), which a
    # gain margin does not scale (coherence.linear.model.LoopModel.rec_rows)
    own: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

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

    def __init__(
        self,
        ts: TransitionSystem,
        st: Structure | None = None,
        active_branch: Collection[str] = (),
        exact: Program | None = None,
    ) -> None:
        self.ts = ts
        self.st = st or Structure(ts)
        st = self.st
        self.active_branch = frozenset(active_branch)
        self.exact = exact if exact is not None else Program(ts, st)
        self.view = Program(ts, st, linearization_view(ts, active_branch), share=self.exact)
        p = self.view
        self.n, self.m = p.n, p.m
        self.sensed = tuple(sorted(st.sensed, key=st.let_index.__getitem__))
        self.s = len(self.sensed)
        self.actions = tuple((lp.name, a) for lp in ts.loops for a in lp.actions)
        self.rec_names = tuple(_rec_name(ts, a) for _, a in self.actions)
        self.cuts = self.s + len(self.actions)
        cut_col = {st.let_index[x]: self.n + j for j, x in enumerate(self.sensed)}
        for k, r in enumerate(self.rec_names):
            cut_col[st.let_index[r]] = self.n + self.s + k
        self.rec_rows = np.array([st.let_index[r] for r in self.rec_names], np.intp)
        self.action_cols = np.array([st.state_index[a.state] for _, a in self.actions], np.intp)
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
        own = (
            np.asarray(K[self.rec_rows, self.action_cols], dtype=float).ravel()
            if na
            else np.zeros(0)
        )
        return (
            TickJacobian(U, targets.tocsr(), recs.tocsr(), sigma.tocsr(), ch, clamped, own),
            corners,
        )

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


def _rec_name(ts: TransitionSystem, action: Action) -> str:
    """The recommendation let of an action (the IR names it: ``Action.recommendation``)."""
    if not action.recommendation:
        raise LinearizationError(f"the action on `{action.state}` has no recommendation")
    ts.let(action.recommendation)
    return action.recommendation


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


def _recommendations(ts: TransitionSystem) -> set[str]:
    return {a.recommendation for lp in ts.loops for a in lp.actions}


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
        and any(isinstance(x, Var) and x.name in _recommendations(ts) for x in args)
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
