"""Sound interval reachability from the initial state, vectorised over boxes of the unknowns.

It takes a transition system (and a requirement) and returns enclosures of every run from the
initial state: a proof of the requirement over a horizon or for all time
(:func:`check_reach`), the reachable enclosure, a box holding every state any run reaches
(:func:`reachable_enclosure`, kept per system by :func:`reachable`), and the interval
environments of every run from a box (:func:`interval_envs`, :func:`evaluate_envs`).

A run from the initial state is a function of the inputs (one value per input for the whole
run when the requirement says ``inputs held``, a value per tick otherwise) and of the
uncertain parameters. This module encloses every such run in intervals, tick by tick, with
exactly the simulator's meaning (lets in order, then every update, clamped to the state's
range), in exact real arithmetic: each expression is compiled by
:mod:`coherence.intervals.compile` (outward rounding, three-valued conditions, undefined
operations flagged); registers, history and cooldowns are states like the others (a register
copies its source); integer states whose update is integral by construction
(:func:`coherence.ir.integers.integer_states`) have their ends rounded inward to integers; an
operation that may be undefined counts as a possible violation, as in BMC.

The *unknowns* (held inputs and uncertain parameters) form a box; it is split into sub-boxes,
all propagated at once as NumPy arrays. Free inputs are their whole range at every tick (they
cannot be split over time). A box whose enclosure may violate the requirement is bisected along
its widest unknown (relative to its range) and run again, up to a budget of boxes. If every box
keeps the requirement at every tick up to the horizon, no run violates it there: a proof over
the horizon, never a sample.

**For all time.** Interval evaluation over a box encloses the image of every point of the
box (the fundamental property of interval arithmetic), and the step at tick ``t`` depends on
``t`` only through ``t mod H`` (held inputs and parameters are the same box at every tick, free
inputs their whole range). So when, for one box of the unknowns, the box of every state
(registers, history and cooldowns included) at tick ``t + H`` lies within the box at tick
``t``, the boxes of ticks ``t .. t + H - 1`` are an inductive invariant: every run in that box
is, at every tick ``s >= t``, inside the box of tick ``t + ((s - t) mod H)``. The requirement
was checked on exactly those boxes, so it holds for all time. When that happens for every box
of the cover (``always`` requirements) the verdict is ``proved``; otherwise a proof to the
horizon is ``holds`` at the horizon.

Not handled: ``no flapping`` (a reversal compares consecutive values of a state, which
independent intervals cannot relate), and the relational invariants that free-input feedback
loops often need (a box enclosure of a queue fed through a product of two actuators widens
at each tick); those requirements fall through to k-induction and BMC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from coherence.caches import Kept
from coherence.intervals.arith import (
    INF,
    B,
    Bv,
    Env,
    F,
    Interval,
    Iv,
    Unsupported,
    as_bv,
    as_iv,
    const_interval,
    falses,
)
from coherence.intervals.compile import Fn, compile_iv, normalize
from coherence.ir.integers import integer_states
from coherence.ir.nodes import Const, Expr, Requirement, TransitionSystem
from coherence.ir.simplify import cancel_factors, nonzero_names

# ---- the reachability run ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unknowns:
    """What a run from the initial state depends on: held inputs and uncertain parameters."""

    names: tuple[str, ...]
    lo: F  # the full range of each
    hi: F
    held: tuple[str, ...]  # the held inputs among names


def unknowns(ts: TransitionSystem, held: bool) -> Unknowns:
    names: list[str] = []
    lo: list[float] = []
    hi: list[float] = []
    heldn: list[str] = []
    if held:
        for u in ts.inputs:
            if u.lo < u.hi:
                names.append(u.name)
                lo.append(const_interval(u.lo)[0])
                hi.append(const_interval(u.hi)[1])
                heldn.append(u.name)
    for p in ts.params:
        if not p.internal and p.lo < p.hi:
            names.append(p.name)
            lo.append(const_interval(p.lo)[0])
            hi.append(const_interval(p.hi)[1])
    return Unknowns(tuple(names), np.array(lo), np.array(hi), tuple(heldn))


@dataclass(slots=True)
class Sweep:
    """The outcome of running a batch of boxes to the horizon."""

    fail: NDArray[np.int64]  # first tick at which the box may violate, -1 if none
    forever: B  # the box's enclosure returned into itself with no violation (see above)


Compiled = tuple[list[tuple[str, Fn]], list[Fn], list[Fn], Fn, Fn | None]


def _full(n: int, v: float) -> F:
    return np.full(n, v)


class Reach:
    """The interval semantics of one system and requirement, compiled for batches of boxes."""

    def __init__(self, ts: TransitionSystem, req: Requirement) -> None:
        if req.kind not in ("always", "response"):
            raise Unsupported(f"{req.kind} requirements are not checked on intervals")
        self.ts = ts
        self.req = req
        self.held = req.inputs == "held"
        self.unk = unknowns(ts, self.held)
        self.ints = integer_states(ts)
        self.free = tuple(u.name for u in ts.inputs if u.lo < u.hi and u.name not in self.unk.held)
        self._compiled: dict[int, Compiled] = {}
        self._lets = {d.name: d.expr for d in ts.lets}
        self._nonzero = nonzero_names(ts)
        self._consts = {p.name: p.value for p in ts.params if p.name not in self.unk.names}
        # each state's range, as the intervals of its two ends (an update is clamped to it)
        self._bounds = [(const_interval(s.lo), const_interval(s.hi)) for s in ts.states]
        # the same ends as columns, for clamping every state's [lo, hi] at once (:meth:`step`)
        ends = np.array([[lo[0], lo[1], hi[0], hi[1]] for lo, hi in self._bounds]).reshape(-1, 4)
        self._clamp = tuple(ends[:, j : j + 1] for j in range(4))
        self._int_rows = np.array(
            [i for i, s in enumerate(ts.states) if s.name in self.ints], dtype=np.intp
        )

    def compile_expr(self, e: Expr, n: int) -> Fn:
        """``e`` as an interval function of this system's environments for ``n`` boxes
        (shared factors cancelled, parameters other than the unknowns folded)."""
        return compile_iv(normalize(cancel_factors(e, self._lets, self._nonzero), self._consts), n)

    def _compile(self, n: int) -> Compiled:
        if n not in self._compiled:
            ts, req = self.ts, self.req

            def comp(e: Expr) -> Fn:
                return self.compile_expr(e, n)

            lets = [(d.name, comp(d.expr)) for d in ts.lets]
            ups = [comp(s.update) for s in ts.states]
            inits = [comp(s.init) for s in ts.states]
            assert req.cond is not None
            cond = comp(req.cond)
            trig = comp(req.trigger) if req.trigger is not None else None
            self._compiled[n] = (lets, ups, inits, cond, trig)
        return self._compiled[n]

    def base(self, blo: F, bhi: F) -> Env:
        """Parameters and inputs of boxes of the unknowns (free inputs: their whole range)."""
        ts, unk = self.ts, self.unk
        n = blo.shape[0]
        env: Env = {}
        for p in ts.params:
            if p.name in unk.names:
                j = unk.names.index(p.name)
                env[p.name] = Iv(blo[:, j].copy(), bhi[:, j].copy())
            else:
                lo, hi = const_interval(p.value)
                env[p.name] = Iv(_full(n, lo), _full(n, hi))
        for u in ts.inputs:
            if u.name in unk.held:
                j = unk.names.index(u.name)
                env[u.name] = Iv(blo[:, j].copy(), bhi[:, j].copy())
            else:
                lo, hi = const_interval(u.lo)[0], const_interval(u.hi)[1]
                env[u.name] = Iv(_full(n, lo), _full(n, hi))
        return env

    def initial(self, base: Env, n: int) -> tuple[list[Iv], B]:
        """The initial state, as the simulator computes it (registers from their signals)."""
        ts = self.ts
        lets, _, inits, _, _ = self._compile(n)
        env: Env = dict(base)
        undef = falses(n)
        pending = []
        for i, s in enumerate(ts.states):
            if isinstance(s.init, Const):
                v, _ = inits[i](env, 0)
                env[s.name] = v
            else:
                pending.append(i)
        if pending:
            for d, (name, f) in zip(ts.lets, lets, strict=True):
                if d.owner is None:
                    v, u = f(env, 0)
                    env[name] = v
                    undef = undef | u
            for i in pending:
                v, u = inits[i](env, 0)
                env[ts.states[i].name] = as_iv(v)
                undef = undef | u
        return [as_iv(env[nm]) for nm in ts.state_names], undef

    def lets(self, base: Env, state: list[Iv], t: int, n: int) -> tuple[Env, B]:
        """The environment of tick ``t``: the states, inputs, parameters and every let."""
        lets = self._compile(n)[0]
        env: Env = dict(base)
        for nm, sv in zip(self.ts.state_names, state, strict=True):
            env[nm] = sv
        undef = falses(n)
        for name, f in lets:
            v, u = f(env, t)
            env[name] = v
            undef = undef | u
        return env, undef

    def condition(self, env: Env, t: int, n: int) -> tuple[Bv, B, Bv | None]:
        """The requirement's condition (and trigger) at tick ``t``, with their undefinedness."""
        _, _, _, cond, trig = self._compile(n)
        c, uc = cond(env, t)
        tv: Bv | None = None
        if trig is not None:
            tr, ut = trig(env, t)
            tb = as_bv(tr)
            tv = Bv(tb.t | ut, tb.f)
        return as_bv(c), uc, tv

    def step(self, env: Env, t: int, n: int) -> tuple[list[Iv], B]:
        """Every state's update at tick ``t``, clamped to its range (integers rounded in)."""
        ups = self._compile(n)[1]
        undef = falses(n)
        m = len(ups)
        xlo, xhi = np.empty((m, n)), np.empty((m, n))
        for i, f in enumerate(ups):
            v, u = f(env, t)
            undef = undef | u
            x = as_iv(v)
            xlo[i], xhi[i] = x.lo, x.hi
        # every state clamped at once, row by row with its own ends (the same operations)
        lo0, lo1, hi0, hi1 = self._clamp
        xlo = np.minimum(np.maximum(xlo, lo0), hi0)
        xhi = np.minimum(np.maximum(xhi, lo1), hi1)
        rows = self._int_rows
        if rows.size:
            xlo[rows], xhi[rows] = np.ceil(xlo[rows]), np.floor(xhi[rows])
        return [Iv(xlo[i], xhi[i]) for i in range(m)], undef

    def sweep(self, blo: F, bhi: F, horizon: int) -> Sweep:
        """Run the boxes ``[blo, bhi]`` (shape [N, D]) for ``horizon`` ticks."""
        req = self.req
        n = blo.shape[0]
        base = self.base(blo, bhi)
        state, undef = self.initial(base, n)
        fail = np.full(n, -1, dtype=np.int64)
        forever = falses(n)
        h = self.ts.hyperperiod
        hist_lo: list[F] = []
        hist_hi: list[F] = []
        trig_hist: list[B] = []
        run = np.zeros(n, dtype=np.int64)  # ticks in a row the condition may be false
        for t in range(horizon):
            env, ul = self.lets(base, state, t, n)
            undef = undef | ul
            cb, uc, tv = self.condition(env, t, n)
            if req.kind == "always":
                bad = cb.f | undef | uc
            else:
                assert tv is not None
                trig_hist.append(np.broadcast_to(tv.t, (n,)))
                run = np.where(cb.f | uc, run + 1, 0)
                bad = undef | uc
                k = req.within
                if t >= k:
                    bad = bad | (trig_hist[t - k] & (run >= k + 1))
            bad = np.broadcast_to(bad, (n,))
            fail[bad & (fail < 0) & ~forever] = t
            # the box of every state within the box one hyperperiod back: an invariant
            lo_now = np.stack([x.lo for x in state], axis=1)
            hi_now = np.stack([x.hi for x in state], axis=1)
            if req.kind == "always" and t >= h:
                inside = np.all((lo_now >= hist_lo[t - h]) & (hi_now <= hist_hi[t - h]), axis=1)
                forever = forever | (inside & (fail < 0))
            hist_lo.append(lo_now)
            hist_hi.append(hi_now)
            if np.all((fail >= 0) | forever):
                break
            state, us = self.step(env, t, n)
            undef = undef | us
        return Sweep(fail, forever)


@dataclass(frozen=True, slots=True)
class ReachOutcome:
    """What interval reachability established."""

    status: str  # "proved" (all time), "holds" (to the horizon), "unknown"
    depth: int  # ticks established for every box
    boxes: int  # boxes in the final cover of the unknowns
    runs: int  # boxes run in all
    detail: str


def _bisect(blo: F, bhi: F, width: F) -> tuple[F, F]:
    """Each box cut in two across its widest unknown (relative to the unknown's range)."""
    rel = (bhi - blo) / width[None, :]
    axis = np.argmax(rel, axis=1)
    rows = np.arange(blo.shape[0])
    mid = (blo[rows, axis] + bhi[rows, axis]) / 2.0
    hi1, lo2 = bhi.copy(), blo.copy()
    hi1[rows, axis] = mid
    lo2[rows, axis] = mid
    return np.concatenate([blo, lo2]), np.concatenate([hi1, bhi])


def check_reach(
    ts: TransitionSystem, req: Requirement, horizon: int, max_boxes: int = 1024
) -> ReachOutcome:
    """Enclose every run from the initial state for ``horizon`` ticks, splitting the unknowns.

    ``max_boxes`` bounds the boxes in the cover (and so the work: a deterministic budget).
    A box that may violate is bisected; when every box holds, boxes whose enclosure did not
    return into itself are bisected too (within the budget) to try for all time.
    """
    try:
        reach = Reach(ts, req)
    except Unsupported as exc:
        return ReachOutcome("unknown", 0, 0, 0, str(exc))
    unk = reach.unk
    d = len(unk.names)
    width = np.where(unk.hi > unk.lo, unk.hi - unk.lo, 1.0)
    todo_lo, todo_hi = unk.lo[None, :].copy(), unk.hi[None, :].copy()
    done = 0  # boxes that hold to the horizon
    runs = 0
    open_lo: list[F] = []  # boxes that hold but whose enclosure did not return into itself
    open_hi: list[F] = []
    try:
        while todo_lo.shape[0]:
            sw = reach.sweep(todo_lo, todo_hi, horizon)
            runs += todo_lo.shape[0]
            ok = sw.fail < 0
            done += int(ok.sum())
            keep = ok & ~sw.forever
            open_lo.append(todo_lo[keep])
            open_hi.append(todo_hi[keep])
            bad = ~ok
            if not bad.any():
                break
            blo, bhi = todo_lo[bad], todo_hi[bad]
            first = int(sw.fail[bad].min())
            tiny = d > 0 and float(((bhi - blo) / width[None, :]).max(axis=1).min()) <= 1e-9
            if d == 0 or tiny or done + 2 * blo.shape[0] > max_boxes:
                return ReachOutcome(
                    "unknown",
                    first,
                    done + blo.shape[0],
                    runs,
                    f"the interval enclosure may violate at tick {first} "
                    f"({blo.shape[0]} of {done + blo.shape[0]} boxes of "
                    f"{', '.join(unk.names) or 'no unknowns'} undecided"
                    f"{', down to a tiny box' if tiny else ''})",
                )
            todo_lo, todo_hi = _bisect(blo, bhi, width)
        # every box holds over the horizon; try to show the rest returns into itself
        olo, ohi = np.concatenate(open_lo), np.concatenate(open_hi)
        total = done
        while req.kind == "always" and d > 0 and olo.shape[0] and total + olo.shape[0] <= max_boxes:
            olo, ohi = _bisect(olo, ohi, width)
            sw = reach.sweep(olo, ohi, horizon)
            runs += olo.shape[0]
            total += olo.shape[0] // 2
            if not np.all(sw.fail < 0):
                break
            olo, ohi = olo[~sw.forever], ohi[~sw.forever]
    except Unsupported as exc:
        return ReachOutcome("unknown", 0, 0, runs, str(exc))
    what = f"{total} boxes of {', '.join(unk.names)}" if d else "one box (nothing to split)"
    inputs = "inputs held" if reach.held else "inputs free per tick"
    if req.kind == "always" and olo.shape[0] == 0:
        return ReachOutcome(
            "proved",
            horizon,
            total,
            runs,
            f"proved for all time by interval reachability ({what}, {inputs}): each box's "
            "enclosure returns into itself one hyperperiod later",
        )
    return ReachOutcome(
        "holds",
        horizon,
        total,
        runs,
        f"no violation in {horizon} ticks by interval reachability ({what}, {inputs}; "
        f"{runs} box runs)",
    )


# ---- the reachable enclosure ----------------------------------------------------------------


WIDEN_STEPS = 6  # widenings of one end by growing steps before it goes to the declared bound
GEOMETRIC = 0.99  # moves shrinking by at most this ratio per hyperperiod are a converging series
WORK = 40_000  # state-ticks the reachable enclosure may take (a deterministic budget)


@dataclass(frozen=True, slots=True)
class Enclosure:
    """Boxes that hold every state of every run from the initial state, for all time."""

    box: dict[str, tuple[float, float]]  # per state (registers, history and cooldowns too)
    ticks: int  # the tick at which the enclosure returned into itself


def reachable_enclosure(
    ts: TransitionSystem, max_ticks: int = 2000, widen_after: int = 200
) -> Enclosure | None:
    """The hull of every state over all runs from the initial state (inputs free per tick
    within their ranges, uncertain parameters within theirs), or None.

    One box of the unknowns is run until the box of every state at tick ``t + H`` lies within
    its box at tick ``t`` (``H`` the hyperperiod). As in :func:`check_reach`, the boxes of
    ticks ``t .. t + H - 1`` are then an inductive invariant for every tick ``s >= t``, and
    the boxes of ticks ``0 .. t - 1`` hold the ticks before: their hull encloses every
    reachable state at every tick.

    *Widening* (Cousot and Cousot, POPL '77): from tick ``max(widen_after, 4 H)`` on, an end
    of a state's box that still moves outward from one hyperperiod to the next is set to that
    state's declared bound. This stays sound: the box only grows, every update is clamped to
    the declared range anyway, and interval evaluation over a larger box encloses the image
    of the smaller one. It makes a queue that creeps towards its bound over thousands of ticks
    close at once.

    None when the enclosure does not return into itself within ``max_ticks``, when an
    operation may be undefined on the way (an undefined run is not a run of the simulator's
    meaning), or when an expression is not handled here.
    """
    true_ = Requirement(kind="always", cond=Const(1.0), horizon=max_ticks)
    try:
        reach = Reach(ts, true_)
    except Unsupported:
        return None
    unk = reach.unk
    blo, bhi = unk.lo[None, :].copy(), unk.hi[None, :].copy()
    h = ts.hyperperiod
    decl_lo = np.array([s.lo for s in ts.states], dtype=float)
    decl_hi = np.array([s.hi for s in ts.states], dtype=float)
    start_widening = max(widen_after, 4 * h)
    widened_lo = np.zeros(len(ts.states), dtype=np.int64)
    widened_hi = np.zeros(len(ts.states), dtype=np.int64)
    max_ticks = min(max_ticks, WORK // max(1, len(ts.states)))
    if max_ticks <= 4 * h:
        return None  # too large a system to enclose within the budget
    hist: list[tuple[F, F]] = []
    lo_all = np.full(len(ts.states), INF)
    hi_all = np.full(len(ts.states), -INF)
    try:
        base = reach.base(blo, bhi)
        state, undef = reach.initial(base, 1)
        for t in range(max_ticks):
            lo_now = np.array([float(x.lo[0]) for x in state])
            hi_now = np.array([float(x.hi[0]) for x in state])
            if t >= h:
                plo, phi = hist[t - h]
                grow_lo, grow_hi = lo_now < plo, hi_now > phi
                if not (grow_lo.any() or grow_hi.any()):
                    names = ts.state_names
                    box = {n: (float(lo_all[i]), float(hi_all[i])) for i, n in enumerate(names)}
                    return Enclosure(box, t)
                if t >= start_widening and (t - start_widening) % h == 0:
                    # widening, once a hyperperiod (so that each move compared spans one): an
                    # end that still moves is pushed out by 2^j times its last move (j: how
                    # often it was widened), or, when its moves shrink geometrically (ratio
                    # q < 1), past the limit of that series (twice q / (1 - q) times its last
                    # move); after WIDEN_STEPS widenings, to its declared bound
                    wl = np.where(grow_lo, widened_lo, 0)
                    wh = np.where(grow_hi, widened_hi, 0)
                    far_lo = wl >= WIDEN_STEPS
                    far_hi = wh >= WIDEN_STEPS
                    glo, ghi = plo - lo_now, hi_now - phi
                    qlo, qhi = np.zeros_like(glo), np.zeros_like(ghi)
                    if t >= 2 * h:
                        pplo, pphi = hist[t - 2 * h]
                        with np.errstate(divide="ignore", invalid="ignore"):
                            qlo = np.nan_to_num(glo / (pplo - plo), nan=0.0, posinf=0.0)
                            qhi = np.nan_to_num(ghi / (phi - pphi), nan=0.0, posinf=0.0)
                    geo_lo = 2.0 * qlo / (1.0 - np.clip(qlo, 0.0, GEOMETRIC))
                    geo_hi = 2.0 * qhi / (1.0 - np.clip(qhi, 0.0, GEOMETRIC))
                    conv_lo = (qlo > 0.0) & (qlo < GEOMETRIC)
                    conv_hi = (qhi > 0.0) & (qhi < GEOMETRIC)
                    step_lo = glo * np.where(conv_lo, np.maximum(geo_lo, 2.0), np.exp2(wl + 1))
                    step_hi = ghi * np.where(conv_hi, np.maximum(geo_hi, 2.0), np.exp2(wh + 1))
                    lo_new = np.where(grow_lo, lo_now - step_lo, lo_now)
                    hi_new = np.where(grow_hi, hi_now + step_hi, hi_now)
                    fin_lo, fin_hi = np.isfinite(decl_lo), np.isfinite(decl_hi)
                    lo_new = np.where(fin_lo & (far_lo | (lo_new < decl_lo)), decl_lo, lo_new)
                    hi_new = np.where(fin_hi & (far_hi | (hi_new > decl_hi)), decl_hi, hi_new)
                    lo_now = np.where(grow_lo, lo_new, lo_now)
                    hi_now = np.where(grow_hi, hi_new, hi_now)
                    widened_lo = widened_lo + grow_lo
                    widened_hi = widened_hi + grow_hi
                    state = [
                        Iv(np.array([lo_now[i]]), np.array([hi_now[i]])) for i in range(len(state))
                    ]
            if not (np.all(np.isfinite(lo_now)) and np.all(np.isfinite(hi_now))):
                return None
            hist.append((lo_now, hi_now))
            lo_all = np.minimum(lo_all, lo_now)
            hi_all = np.maximum(hi_all, hi_now)
            env, ul = reach.lets(base, state, t, 1)
            undef = undef | ul
            if bool(np.any(undef)):
                return None
            state, us = reach.step(env, t, 1)
            undef = undef | us
    except Unsupported:
        return None
    return None


# a check of a whole library computes them all before its workers start: the last 64 kept,
# by the content of the system (a 1-tuple: no enclosure is an answer too)
_ENCLOSURES: Kept[tuple[Enclosure | None]] = Kept("intervals.enclosures", 64)


def reachable(ts: TransitionSystem) -> Enclosure | None:
    """:func:`reachable_enclosure` of ``ts``, computed once per system (it holds no solver
    terms, so one computation serves every analysis of the system; the last few are kept)."""
    got = _ENCLOSURES.get(ts.content_key)
    if got is None:
        remember_enclosure(ts, reachable_enclosure(ts))
        got = _ENCLOSURES.get(ts.content_key)
        assert got is not None
    return got[0]


def remember_enclosure(ts: TransitionSystem, enclosure: Enclosure | None) -> None:
    """Keep ``enclosure`` (:func:`reachable_enclosure` of ``ts``, computed elsewhere: in a
    worker process) for :func:`reachable`."""
    _ENCLOSURES.put(ts.content_key, (enclosure,))


def enclosure_box(ts: TransitionSystem) -> dict[str, Interval] | None:
    """The reachable enclosure as intervals per state, or None."""
    enc = reachable(ts)
    if enc is None:
        return None
    return {n: Interval(lo, hi) for n, (lo, hi) in enc.box.items()}


def interval_envs(
    ts: TransitionSystem, box: Mapping[str, tuple[float, float]], ticks: int, phase: int
) -> list[Env] | None:
    """The interval environment (states, inputs, parameters, every let) at ticks
    ``0..ticks`` of every run that starts in ``box`` at tick ``phase`` of the hyperperiod
    (inputs free per tick, uncertain parameters free). None when an operation may be
    undefined on the way or an expression is not handled here."""
    true_ = Requirement(kind="always", cond=Const(1.0), horizon=ticks + 1)
    try:
        reach = Reach(ts, true_)
        unk = reach.unk
        base = reach.base(unk.lo[None, :].copy(), unk.hi[None, :].copy())
        state = [Iv(np.array([box[n][0]]), np.array([box[n][1]])) for n in ts.state_names]
        out: list[Env] = []
        for t in range(ticks + 1):
            env, undef = reach.lets(base, state, phase + t, 1)
            if bool(np.any(undef)):
                return None
            out.append(env)
            if t < ticks:
                state, us = reach.step(env, phase + t, 1)
                if bool(np.any(us)):
                    return None
    except Unsupported:
        return None
    return out


def evaluate_envs(
    ts: TransitionSystem, envs: Sequence[Env], phase: int, exprs: Sequence[Expr]
) -> list[list[tuple[float, float]]] | None:
    """``exprs`` enclosed in each environment of :func:`interval_envs`: ``out[t][i]``; None
    when one may be undefined or is not handled here."""
    got = evaluate_batch(ts, envs, phase, exprs, 1)
    if got is None or bool(got[2][0]):
        return None
    lo, hi, _ = got
    return [
        [(float(lo[t, i, 0]), float(hi[t, i, 0])) for i in range(len(exprs))]
        for t in range(len(envs))
    ]


def evaluate_batch(
    ts: TransitionSystem, envs: Sequence[Env], phase: int, exprs: Sequence[Expr], size: int
) -> tuple[F, F, B] | None:
    """``exprs`` enclosed in environments of batches of ``size`` boxes: ``lo[t, i, k]`` and
    ``hi[t, i, k]`` (tick, expression, box), and per box whether one may be undefined; None
    when an expression is not handled here."""
    consts = {p.name: p.value for p in ts.params if p.lo == p.hi or p.internal}
    lo = np.full((len(envs), len(exprs), size), -INF)
    hi = np.full((len(envs), len(exprs), size), INF)
    undef = falses(size)
    try:
        let_exprs = {d.name: d.expr for d in ts.lets}
        nonzero = nonzero_names(ts)
        fns = [
            compile_iv(normalize(cancel_factors(e, let_exprs, nonzero), consts), size)
            for e in exprs
        ]
        with np.errstate(all="ignore"):
            for t, env in enumerate(envs):
                for i, f in enumerate(fns):
                    v, u = f(env, phase + t)
                    undef = undef | u
                    x = as_iv(v)
                    lo[t, i] = x.lo
                    hi[t, i] = x.hi
    except Unsupported:
        return None
    return lo, hi, undef


def interval_frames(
    ts: TransitionSystem,
    box: Mapping[str, tuple[float, float]],
    ticks: int,
    phase: int,
    exprs: Sequence[Expr],
) -> list[list[tuple[float, float]]] | None:
    """Enclosures of ``exprs`` at ticks ``0..ticks`` of every run that starts in ``box`` at
    tick ``phase`` (:func:`interval_envs`, :func:`evaluate_envs`)."""
    envs = interval_envs(ts, box, ticks, phase)
    return None if envs is None else evaluate_envs(ts, envs, phase, exprs)
