"""Fixed points of one hyperperiod at nominal input, enclosed by interval contraction.

It takes a transition system and a box of its states and returns where every fixed point of
one hyperperiod at nominal input (``F^H(x) = x``, inputs at their nominal values, parameters
at their declared values, from phase 0) within the box lies: the box contracted around them
(:func:`fixed_point_contraction`, the reachable enclosure's by :func:`contract`), with the
interval environments of each tick of a hyperperiod from it, or a proof that there is none;
the keep-objectives no tick of that hyperperiod can violate (:func:`never_violated`,
:func:`may_violate`); and a branch and bound over sub-boxes that proves objectives the
contraction of the whole box leaves open (:func:`cover`). The bad-equilibrium search
(:mod:`coherence.smt.equilibria`) asks the solver only about what this leaves undecided.

Sound by construction: a fixed point in a box ``B`` lies in ``F^H(B)`` too, and the interval
run (:mod:`coherence.intervals.reach`) encloses the orbit of every point of ``B``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from coherence.intervals.arith import B, Env, F, Iv, Unsupported, as_iv, const_interval, falses
from coherence.intervals.compile import Fn
from coherence.intervals.reach import WORK, Reach, evaluate_batch, reachable
from coherence.ir.integers import integer_states
from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    ObjectiveIR,
    Requirement,
    TransitionSystem,
    Var,
)

Mask = NDArray[np.bool_]

COVER_BATCH = 256  # boxes contracted at once by the branch and bound
COVER_ROUNDS = 5  # contraction rounds per box
COVER_WORK = 8_000  # batch-state-ticks the branch and bound may take (deterministic)
LEFT = 3  # centres of the boxes left undecided that a cover reports, smallest first


@dataclass(frozen=True, slots=True)
class Contraction:
    """Where every fixed point of one hyperperiod at nominal input within a box lies
    (:func:`fixed_point_contraction`): ``box`` per state, and the interval environment of
    each tick ``0..H`` of a hyperperiod from it (``envs``), or ``empty``: there is none."""

    box: dict[str, tuple[float, float]]
    envs: list[Env]
    rounds: int
    empty: bool = False


@dataclass(slots=True)
class Contracted:
    """Boxes of states contracted around the fixed points of one hyperperiod at nominal input
    (:meth:`FixedPoints.contract`), per box ``i``: ``lo[i]``, ``hi[i]`` (shape [N, D], the system's
    states in order), ``empty[i]`` (no fixed point in the box), ``undef[i]`` (an operation
    may be undefined in the box: it is not contracted and ``envs`` say nothing of it), and
    ``envs``, the interval environments of ticks ``0..H`` of a hyperperiod from the boxes."""

    lo: F
    hi: F
    empty: B
    undef: B
    envs: list[Env]
    rounds: int


def _drift(e: Expr, x: Var) -> Expr:
    """``e - x``, the subtraction pushed into the arms of a ``min``, ``max`` or ``if`` (the
    same value), so that ``x`` cancels in each arm where it occurs linearly:
    ``max(0, x + d) - x`` is ``max(-x, d)``."""
    match e:
        case Call("min" | "max" as fn, args):
            return Call(fn, tuple(_drift(a, x) for a in args), e.span)
        case Ite(c, a, b):
            return Ite(c, _drift(a, x), _drift(b, x), e.span)
    return Binary("-", e, x)


class FixedPoints:
    """The interval semantics of one hyperperiod at nominal input (inputs at their nominal
    values, parameters at their declared values, from phase 0), compiled once for batches of
    ``size`` boxes of states."""

    def __init__(self, ts: TransitionSystem, size: int) -> None:
        true_ = Requirement(kind="always", cond=Const(1.0), horizon=1)
        self.ts = ts
        self.size = size
        self.reach = Reach(ts, true_)  # Unsupported when an expression is not handled here
        unk = self.reach.unk
        value = {p.name: p.value for p in ts.params}
        plo = np.array([const_interval(value[n])[0] for n in unk.names])
        phi = np.array([const_interval(value[n])[1] for n in unk.names])
        self.base = self.reach.base(
            np.tile(plo[None, :], (size, 1)).reshape(size, len(unk.names)),
            np.tile(phi[None, :], (size, 1)).reshape(size, len(unk.names)),
        )
        for u in ts.inputs:
            nlo, nhi = const_interval(u.nominal)
            self.base[u.name] = Iv(np.full(size, nlo), np.full(size, nhi))
        # the drift of each plant state, ``next x - x``, with ``x`` cancelled where it occurs
        # linearly: its sign over a whole hyperperiod pins the fixed points (see run)
        self.drifts: list[tuple[int, Fn]] = []
        for i, st in enumerate(ts.states):
            if st.kind == "plant":
                f = self.reach.compile_expr(_drift(st.update, Var(st.name)), size)
                self.drifts.append((i, f))
        self.decl_lo = np.array([s.lo for s in ts.states], dtype=float)
        self.decl_hi = np.array([s.hi for s in ts.states], dtype=float)

    def run(self, lo: F, hi: F) -> tuple[list[Env], F, F, B]:
        """One hyperperiod from the boxes: the environments of ticks ``0..H``, the boxes of
        the states at its end (met with what the drifts allow), and per box whether an
        operation may be undefined.

        A plant state whose drift ``next x - x`` is negative at every tick of the
        hyperperiod over a box only falls along every orbit from it (its clamped update
        stays below it, or at its lower bound when it is already there), so a fixed point
        in the box has it at its declared lower bound at every tick; a positive drift, at
        its upper bound. The end box says so.
        """
        n = self.size
        reach = self.reach
        h = self.ts.hyperperiod
        state = [Iv(lo[:, i].copy(), hi[:, i].copy()) for i in range(lo.shape[1])]
        undef = falses(n)
        envs: list[Env] = []
        falls = np.ones((n, len(self.drifts)), dtype=bool)
        rises = np.ones((n, len(self.drifts)), dtype=bool)
        with np.errstate(all="ignore"):
            for t in range(h + 1):
                env, ul = reach.lets(self.base, state, t, n)
                envs.append(env)
                undef = undef | ul
                if t < h:
                    for k, (_, f) in enumerate(self.drifts):
                        v, u = f(env, t)
                        d = as_iv(v)
                        falls[:, k] &= ~u & (d.hi < 0.0)
                        rises[:, k] &= ~u & (d.lo > 0.0)
                    state, us = reach.step(env, t, n)
                    undef = undef | us
        end_lo = np.stack([np.broadcast_to(x.lo, (n,)) for x in state], axis=1).copy()
        end_hi = np.stack([np.broadcast_to(x.hi, (n,)) for x in state], axis=1).copy()
        for k, (i, _) in enumerate(self.drifts):
            end_hi[:, i] = np.where(
                falls[:, k], np.minimum(end_hi[:, i], self.decl_lo[i]), end_hi[:, i]
            )
            end_lo[:, i] = np.where(
                rises[:, k], np.maximum(end_lo[:, i], self.decl_hi[i]), end_lo[:, i]
            )
        undef = undef | ~np.all(np.isfinite(end_lo) & np.isfinite(end_hi), axis=1)
        return envs, end_lo, end_hi, undef

    def contract(self, lo: F, hi: F, max_rounds: int) -> Contracted:
        """Contract each box ``[lo[i], hi[i]]`` (shape [size, D]).

        A state ``x`` with ``F^H(x) = x`` that lies in a box ``B`` lies in ``F^H(B)`` too,
        so in ``B ∩ F^H(B)``; iterating keeps every fixed point of the first box (a Kleene
        iteration downwards, with the interval semantics of this module, sound by outward
        rounding). A box stops when no end moves by more than a millionth of its width (or
        of 1), when its meet is empty (no fixed point in it), or at the first run where an
        operation may be undefined (it keeps the box before that run). The environments are
        those of one more run from the final boxes.
        """
        n = self.size
        lo, hi = lo.copy(), hi.copy()
        active = np.ones(n, dtype=bool)
        empty = falses(n)
        undef_first = falses(n)
        rounds = 0
        for r in range(max_rounds):
            rounds = r + 1
            _, end_lo, end_hi, undef = self.run(lo, hi)
            if r == 0:
                undef_first = undef.copy()
            new_lo, new_hi = np.maximum(lo, end_lo), np.minimum(hi, end_hi)
            ok = active & ~undef
            gone = ok & np.any(new_lo > new_hi, axis=1)
            empty |= gone
            width = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
            tol = 1e-6 * np.maximum(width, 1.0)
            moved = np.any((new_lo - lo > tol) | (hi - new_hi > tol), axis=1)
            take = ok & ~gone
            lo = np.where(take[:, None], new_lo, lo)
            hi = np.where(take[:, None], new_hi, hi)
            active = take & moved
            if not active.any():
                break
        envs, _, _, undef = self.run(lo, hi)
        return Contracted(lo, hi, empty, (undef | undef_first) & ~empty, envs, rounds)


def fixed_point_contraction(
    ts: TransitionSystem, box: Mapping[str, tuple[float, float]], max_rounds: int = 200
) -> Contraction | None:
    """Contract ``box`` around the fixed points of one hyperperiod at nominal input
    (:meth:`FixedPoints.contract` of one box); an empty meet proves there is no fixed point
    in ``box``. None when an operation may be undefined in the first box or an expression is
    not handled here; the rounds stay within the work budget."""
    h = ts.hyperperiod
    names = ts.state_names
    try:
        fp = FixedPoints(ts, 1)
        lo = np.array([[float(box[n][0]) for n in names]])
        hi = np.array([[float(box[n][1]) for n in names]])
        rounds = max(1, min(max_rounds, WORK // max(1, h * len(names))))
        got = fp.contract(lo, hi, rounds)
    except Unsupported:
        return None
    if bool(got.empty[0]):
        return Contraction({}, [], got.rounds, empty=True)
    if bool(got.undef[0]):
        return None
    out = {n: (float(got.lo[0, i]), float(got.hi[0, i])) for i, n in enumerate(names)}
    return Contraction(out, got.envs, got.rounds)


# ---- the reachable enclosure's fixed points ------------------------------------------------------


def contract(ts: TransitionSystem) -> Contraction | None:
    """The reachable enclosure (:func:`coherence.intervals.reach.reachable`) contracted around its
    fixed points at nominal input (:func:`fixed_point_contraction`).

    Only fixed points within the enclosure matter: a state outside it is reached from the
    initial state by no admissible input sequence, so no trigger carries the system there.
    None when there is no enclosure or the contraction does not apply."""
    enc = reachable(ts)
    if enc is None:
        return None
    box = {
        s.name: (max(s.lo, enc.box[s.name][0]), min(s.hi, enc.box[s.name][1])) for s in ts.states
    }
    return fixed_point_contraction(ts, box)


def never_violated(ts: TransitionSystem, keeps: list[ObjectiveIR], con: Contraction) -> set[str]:
    """The keep-objectives that no tick ``0..H-1`` of the contraction's hyperperiod can
    violate (interval bounds of the objective and its bound, the tolerance at its least)."""
    got = may_violate(ts, keeps, con.envs[: ts.hyperperiod], 1)
    if got is None:
        return set()
    return {o.name for k, o in enumerate(keeps) if not got[k, 0]}


def may_violate(
    ts: TransitionSystem, keeps: Sequence[ObjectiveIR], envs: Sequence[Env], size: int
) -> NDArray[np.bool_] | None:
    """Per keep-objective and box (shape [objectives, size]): whether some tick of ``envs``
    (interval environments of batches of ``size`` boxes) may violate it; None when an
    objective is not handled on intervals."""
    exprs: list[Expr] = []
    for o in keeps:
        assert o.bound is not None
        exprs += [o.expr, o.bound]
    got = evaluate_batch(ts, envs, 0, exprs, size)
    if got is None:
        return None
    lo, hi, undef = got
    out = np.zeros((len(keeps), size), dtype=bool)
    with np.errstate(all="ignore"):
        for k, o in enumerate(keeps):
            elo, ehi = lo[:, 2 * k], hi[:, 2 * k]
            blo, bhi = lo[:, 2 * k + 1], hi[:, 2 * k + 1]
            finite = np.isfinite(elo) & np.isfinite(ehi) & np.isfinite(blo) & np.isfinite(bhi)
            least = np.where((blo <= 0.0) & (bhi >= 0.0), 0.0, np.minimum(abs(blo), abs(bhi)))
            tol = o.tolerance * least if o.relative else np.full_like(least, o.tolerance)
            if o.cmp in ("<=", "<"):
                lowest = blo + tol - ehi
            else:
                lowest = elo - (bhi - tol)
            slack = 1e-9 * (abs(lowest) + abs(blo) + abs(ehi) + 1e-9)
            bad = ~finite | ~(lowest - slack > 0.0)
            out[k] = np.any(bad, axis=0) | undef
    return out


@dataclass(frozen=True, slots=True)
class Cover:
    """What branch and bound over the fixed points established (:func:`cover`)."""

    proved: frozenset[str]  # keep-objectives no fixed point in the box violates
    boxes: int  # boxes contracted
    left: tuple[dict[str, float], ...]  # centres of the boxes left undecided, smallest first
    empty: bool  # no fixed point in the box at all


def _core(ts: TransitionSystem) -> NDArray[np.bool_]:
    """The states a box is cut across: plant, actuator and cooldown states (registers and
    histories follow them through the contraction)."""
    return np.array([s.kind in ("plant", "actuator", "cooldown") for s in ts.states])


class _Cutter:
    """Cuts boxes in two across their widest core state, relative to the first box's width;
    an integer state at an integer, so that no integer point is lost or kept twice."""

    def __init__(self, ts: TransitionSystem, lo0: F, hi0: F) -> None:
        ints = integer_states(ts)
        self.ints = np.array([n in ints for n in ts.state_names])
        self.core = _core(ts)
        self.span = np.where(np.isfinite(hi0 - lo0) & (hi0 > lo0), hi0 - lo0, 1.0)

    def cut(self, lo: F, hi: F, mask: Mask) -> tuple[F, F, Mask, Mask]:
        """The two halves of every box that can be cut (both halves' boxes stacked, with
        their masks), and which boxes could not be (points in every core state)."""
        width = hi - lo
        can_cut = self.core[None, :] & np.where(
            self.ints[None, :], width >= 1.0, width > 1e-9 * self.span
        )
        score = np.where(can_cut, width / self.span, -1.0)
        j = np.argmax(score, axis=1)
        ok = score[np.arange(len(j)), j] > 0.0
        lo, hi, mask, j = lo[ok], hi[ok], mask[ok], j[ok]
        rows = np.arange(len(j))
        mid = (lo[rows, j] + hi[rows, j]) / 2.0
        ints = self.ints[j]
        a_hi, b_lo = hi.copy(), lo.copy()
        a_hi[rows, j] = np.where(ints, np.floor(mid), mid)
        b_lo[rows, j] = np.where(ints, np.floor(mid) + 1.0, mid)
        both_lo = np.concatenate([lo, b_lo])
        both_hi = np.concatenate([a_hi, hi])
        return both_lo, both_hi, np.concatenate([mask, mask]), ~ok


def cover(
    ts: TransitionSystem, keeps: list[ObjectiveIR], box: Mapping[str, tuple[float, float]]
) -> Cover | None:
    """Branch and bound over the fixed points of one hyperperiod at nominal input in ``box``.

    Boxes are contracted (:meth:`FixedPoints.contract`) in batches; a
    box whose meet is empty holds no fixed point, a box where no tick of the hyperperiod may
    violate an objective holds no fixed point violating it, and either way it is dropped for
    that objective; the others are cut in two (:class:`_Cutter`) and queued, breadth first
    (a batch not yet full is filled by cutting its boxes before they are contracted), until
    none is left or the work budget (state-ticks of the batches run, deterministic) is
    spent. Sound: every fixed point of ``box`` lies in some box of the queue, each box's
    interval run encloses the orbit of every fixed point in it, and an objective is proved
    when no box left may violate it. None when the system is not handled on intervals.
    """
    names = ts.state_names
    d = len(names)
    h = ts.hyperperiod
    size = COVER_BATCH
    try:
        fp = FixedPoints(ts, size)
    except Unsupported:
        return None
    lo0 = np.array([float(box[n][0]) for n in names])
    hi0 = np.array([float(box[n][1]) for n in names])
    cutter = _Cutter(ts, lo0, hi0)
    q_lo, q_hi = lo0[None, :], hi0[None, :]
    q_mask = np.ones((1, len(keeps)), dtype=bool)  # the objectives a box may still violate
    rest: list[tuple[F, F, Mask]] = []  # boxes left undecided
    boxes = work = 0
    no_point = True  # every box dropped so far held no fixed point at all
    while len(q_lo):
        if work >= COVER_WORK:
            rest.append((q_lo, q_hi, q_mask))
            break
        while 2 * len(q_lo) <= size:  # fill the batch
            c_lo, c_hi, c_mask, stuck = cutter.cut(q_lo, q_hi, q_mask)
            if stuck.any() or not len(c_lo):
                break
            q_lo, q_hi, q_mask = c_lo, c_hi, c_mask
        m = min(size, len(q_lo))
        pad = size - m
        b_lo = np.concatenate([q_lo[:m], np.repeat(q_lo[:1], pad, axis=0)])
        b_hi = np.concatenate([q_hi[:m], np.repeat(q_hi[:1], pad, axis=0)])
        mask = q_mask[:m]
        q_lo, q_hi, q_mask = q_lo[m:], q_hi[m:], q_mask[m:]
        got = fp.contract(b_lo, b_hi, COVER_ROUNDS)
        boxes += m
        work += got.rounds * h * d
        viol = may_violate(ts, keeps, got.envs[:h], size)
        if viol is None:
            return None
        undef = got.undef[:m]
        # an undefined box says nothing: it keeps its mask, and is cut again
        new_mask = np.where(undef[:, None], mask, mask & viol[:, :m].T)
        keep = ~got.empty[:m] & np.any(new_mask, axis=1)
        no_point = no_point and bool(np.all(got.empty[:m] | keep))
        c_lo, c_hi, c_mask, stuck = cutter.cut(got.lo[:m][keep], got.hi[:m][keep], new_mask[keep])
        if stuck.any():
            rest.append((got.lo[:m][keep][stuck], got.hi[:m][keep][stuck], new_mask[keep][stuck]))
        q_lo = np.concatenate([q_lo, c_lo])
        q_hi = np.concatenate([q_hi, c_hi])
        q_mask = np.concatenate([q_mask, c_mask])
    r_lo = np.concatenate([r[0] for r in rest]) if rest else np.zeros((0, d))
    r_hi = np.concatenate([r[1] for r in rest]) if rest else np.zeros((0, d))
    r_mask = np.concatenate([r[2] for r in rest]) if rest else np.zeros((0, len(keeps)), bool)
    proved = frozenset(o.name for k, o in enumerate(keeps) if not r_mask[:, k].any())
    order = np.argsort(np.max((r_hi - r_lo) / cutter.span, axis=1), kind="stable")
    centres = tuple(
        {n: float((r_lo[i, j] + r_hi[i, j]) / 2.0) for j, n in enumerate(names)}
        for i in order[:LEFT]
    )
    return Cover(proved, boxes, centres, no_point and not len(r_lo))
