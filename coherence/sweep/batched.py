"""The lifted monodromy matrices of many parameter points at once.

The per-point path (:func:`coherence.sweep.evaluate.per_point_monodromies`) runs the linear analysis's
own :func:`~coherence.linear.analysis.linearize` once per point: a settling run, a root solve
that polishes the settled state, and the symbolic per-tick Jacobians, all for one scenario.
Here the same stages run for a batch of points together, each point a row of the slot arrays
(``[states | inputs | params | lets]``) with its own parameter values:

1. *Settle*: the nominal run of every point from its declared initial state, whole
   hyperperiods at a time, as :func:`coherence.linear.oppoint.find_operating_point` does with
   no extra starts (its residual, scale and tolerances);
2. *Polish*: Newton's method on ``F_H(x) = x`` over the free states (cooldowns idle), with the
   exact lifted Jacobian along each point's orbit, one stacked ``numpy.linalg.solve`` per
   step; the per-point path's root solve lands on the same root;
3. *Linearize*: at every tick of the hyperperiod the symbolic derivatives of each template
   group are evaluated for all points and instances in one call (the points flattened into
   the instance axis), assembled into dense stacked ``K, L, G, Gd`` and chained through the
   lets (``D = K + L D``, ``U = G + Gd D``), clamped rows zeroed, and mapped through the sensed
   values and recommendations as :class:`coherence.linear.linearize.TickJacobian` does;
4. the monodromy is the stacked product ``A_{H-1} ... A_0``; the replay of each operating
   point through the reference simulator is one vectorised simulation.

Where Newton finds no root from the declared start (the nominal run did not settle, or the
operating point is saturated and the per-point path compares it with the equilibrium the
start leads to), that point's root solve is the linear analysis's own
(``coherence.linear.oppoint``), run for it alone: no root from anywhere is no operating point,
decided here; the same point stands.

What this path does not cover, and leaves to the per-point path (the caller falls back
point by point): a polish that does not converge, a root solve from the declared start that
finds another equilibrium, an operating point whose orbit moves within the hyperperiod
(cycles: the per-point path looks for a constant equilibrium), a replay that does not
return, non-finite derivatives and the structural errors of the linearization (a sensed value
read by a sensed value, a recommendation read by another), and systems with more than
``DENSE_LIMIT`` states plus lets (the dense stacked matrices would be too large).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import Const, TransitionSystem

F = NDArray[np.float64]
B = NDArray[np.bool_]

BATCH = 64  # points per stacked evaluation: bounds the dense [B, lets, lets] arrays
DENSE_LIMIT = 600  # states + lets above which the batched path is not used
NEWTON_STEPS = 12
CONVERGED = 1e-12  # the polished residual (scaled) the per-point root solve reaches
NEAR = 1e-2  # how far (scaled) the polish may move a settled state and still be trusted

_ENGINES: OrderedDict[int, tuple[TransitionSystem, Any]] = OrderedDict()


def _engine(ts: TransitionSystem) -> Any:
    """The linear analysis's engine of ``ts`` (templates and derivatives), once per system."""
    from coherence.linear.linearize import Engine

    hit = _ENGINES.get(id(ts))
    if hit is None or hit[0] is not ts:
        hit = (ts, Engine(ts))
        _ENGINES[id(ts)] = hit
        while len(_ENGINES) > 16:
            _ENGINES.popitem(last=False)
    return hit[1]


def batched_monodromies(
    ts: TransitionSystem, names: list[str], pvals: F
) -> tuple[list[F | None], B]:
    """The monodromy of each point without its held actuators (as
    :func:`coherence.sweep.evaluate.per_point_monodromies` gives it), and the points this path could
    not settle or linearize (``todo``: their entries are None and the caller runs the
    per-point path on them)."""
    P = len(pvals)
    out: list[F | None] = [None] * P
    todo = np.ones(P, dtype=bool)
    if P == 0 or len(ts.states) + len(ts.lets) > DENSE_LIMIT:
        return out, todo
    try:
        eng = _engine(ts)
    except Exception:  # a system the engine cannot take: every point goes the per-point way
        return out, todo
    for a in range(0, P, BATCH):
        rows = slice(a, min(a + BATCH, P))
        with np.errstate(all="ignore"):
            mats, ok, none = _batch(eng, names, pvals[rows])
        for i, m in enumerate(mats):
            if ok[i] and m is not None:
                out[a + i] = m
                todo[a + i] = False
            elif none[i]:
                todo[a + i] = False  # no operating point: None, as the per-point path says
    return out, todo


# ---- one batch --------------------------------------------------------------------------------


def _batch(eng: Any, names: list[str], pvals: F) -> tuple[list[F | None], B, B]:
    """The monodromies of one batch, the points they are right for (``ok``) and the points
    that have no operating point (``none``: no monodromy, and no need for the per-point
    path)."""
    from coherence.linear.oppoint import UNSETTLED
    from coherence.linear.options import LinearOptions

    o = LinearOptions(starts=0)  # the options the per-point path linearizes with
    p = eng.exact
    ts = eng.ts
    n, H, k = eng.n, ts.hyperperiod, len(pvals)
    vals = p.base_values(k)
    for j, name in enumerate(names):
        vals[:, p.slot[name]] = pvals[:, j]
    free = ~p.cooldown
    ok = np.ones(k, dtype=bool)
    x0 = _initial(p, vals)
    scale = _scale(ts, x0)

    # 1. settle (find_operating_point, no extra starts)
    ticks = int(np.clip(o.settle_hyperperiods * H, o.settle_min_ticks, o.settle_max_ticks))
    x = x0.copy()
    best = np.full(k, np.inf)
    best_x = x0.copy()
    res = np.full(k, np.inf)
    for _ in range(max(1, -(-ticks // H))):
        prev = x
        x = p.run(vals, x, 0, H)
        res = _residual(prev, x, scale, free)
        better = res < best
        best[better] = res[better]
        best_x[better] = x[better]
        if np.all((res <= o.residual_tol) | ~np.isfinite(res)):
            break
    x[:, p.cooldown] = 0.0
    best_x[:, p.cooldown] = 0.0
    cand = np.where((res <= best)[:, None], x, best_x)
    # a run that came no closer than UNSETTLED (a drift, an unstable point): the per-point
    # path solves from the declared start first, and so does this one
    start = x0.copy()
    start[:, p.cooldown] = 0.0
    unsettled = ~(np.minimum(res, best) <= UNSETTLED)
    settled_cand = cand
    cand = np.where(unsettled[:, None], start, cand)
    ok &= np.isfinite(cand).all(axis=1)
    none = np.zeros(k, dtype=bool)  # points with no operating point, decided here

    # 2. polish: Newton on F_H(x) = x, from the settled state (or the declared start)
    found, conv = _newton(eng, vals, cand, scale, free)
    ok &= conv & (unsettled | (_dist(found, cand, scale, free) <= NEAR))
    found = np.clip(found, p.lo, p.hi)
    # where the nominal run did not settle and Newton found no root from the declared start,
    # the per-point path's own root solves (from the start, then from where the run came
    # closest) decide; where both fail there is no operating point, as there
    for q in np.flatnonzero(unsettled & ~conv):
        sols = [_exact_solve(ts, names, pvals[q], x0[q], scale[q])]
        if sols[0] is False or sols[0] is None:
            sols.append(_exact_solve(ts, names, pvals[q], settled_cand[q], scale[q]))
        none[q] = all(sol is None for sol in sols)

    # the orbit within the hyperperiod must be constant (cycles: the per-point path)
    xs = _orbit(eng, vals, found)
    tol = max(100 * o.residual_tol, 1e-6)
    for t in range(1, H):
        ok &= _dist(xs[:, t], xs[:, 0], scale, free) <= tol
    # a saturated operating point: the per-point path also solves from the declared start and
    # prefers the equilibrium with fewer saturated states; the same point from there is fine
    sat = _saturated(ts, found, scale) & ~unsettled  # (the start was tried first there)
    if np.any(sat & ok):
        alt, aconv = _newton(eng, vals, np.where(np.isfinite(start), start, found), scale, free)
        alt = np.clip(alt, p.lo, p.hi)
        same = aconv & (_dist(alt, found, scale, free) <= 1e-4)
        # no root from the start by Newton: the per-point path's root solve decides whether
        # there is another equilibrium there (none, or this one: the point stands)
        for q in np.flatnonzero(sat & ok & ~aconv):
            sol = _exact_solve(ts, names, pvals[q], x0[q], scale[q])
            same[q] = sol is None or (
                sol is not False
                and bool(_dist(sol[None, :], found[q : q + 1], scale[q : q + 1], free)[0] <= 1e-4)
            )
        ok &= ~sat | same
    # replay in the reference simulator
    ok &= _replay(eng, names, pvals, found, scale, free) <= max(100 * o.residual_tol, 1e-6)

    # 3. linearize along the orbit, 4. the monodromy
    A, good = _tick_matrices(eng, vals, xs)
    ok &= good
    M = np.broadcast_to(np.eye(n), (k, n, n)).copy()
    for t in range(H):
        M = A[t] @ M
    ok &= np.isfinite(M).all(axis=(1, 2))
    held = _held(eng, A)
    out: list[F | None] = []
    for i in range(k):
        if not ok[i]:
            out.append(None)
            continue
        keep = np.flatnonzero(~held[i])
        out.append(np.ascontiguousarray(M[i][np.ix_(keep, keep)]))
    return out, ok, none & ~ok


def _exact_solve(ts: TransitionSystem, names: list[str], row: F, x: F, scale: F) -> Any:
    """The linear analysis's own root solve of F_H(x) = x for one point, from ``x``
    (``coherence.linear.oppoint``): the root, None where it finds none, False where it could
    not be run (the caller then leaves the point to the per-point path)."""
    if not np.all(np.isfinite(x)):
        return None  # the per-point path skips a non-finite candidate
    try:
        from coherence.linear.linearize import Engine
        from coherence.linear.oppoint import _equilibrium_near, _Map
        from coherence.linear.options import LinearOptions
        from coherence.sweep.params import with_params

        eng = Engine(with_params(ts, {nm: float(row[j]) for j, nm in enumerate(names)}))
        sol, _ = _equilibrium_near(eng, _Map(eng), x.copy(), scale.copy(), LinearOptions(starts=0))
    except Exception:
        return False
    return sol


def _initial(p: Any, vals: F) -> F:
    """The declared initial states of every point, [k, n]: as ``Program.initial_states``,
    with each point's parameter values (an ``init`` expression may read them)."""
    k, n = vals.shape[0], p.n
    x = np.full((k, n), np.nan)
    pending = False
    for i, s in enumerate(p.ts.states):
        if isinstance(s.init, Const):
            x[:, i] = s.init.value
        else:
            pending = True
    if pending:
        v = vals.copy()
        v[:, :n] = np.nan_to_num(x)
        env: dict[str, Any] = {"__t": 0}
        for i, name in enumerate(p.slot_names):
            env[name] = v[:, i]
        for name, fn in p._user_let_fns():  # user lets only, as the simulator does
            env[name] = fn(env)
        for i, fn in p._inits():
            x[:, i] = np.broadcast_to(np.asarray(fn(env), dtype=float), (k,))
    return x


def _scale(ts: TransitionSystem, x: F) -> F:
    """``coherence.linear.program.state_scale`` of each point's start, [k, n]."""
    floor = np.array(
        [
            min(s.hi - s.lo, 1.0) if np.isfinite(s.hi - s.lo) and s.hi - s.lo > 0 else 1.0
            for s in ts.states
        ]
    )
    mag = np.where(np.isfinite(x), np.abs(x), 0.0)
    return np.asarray(np.maximum(mag, floor[None, :]), dtype=float)


def _residual(x: F, fx: F, scale: F, free: B) -> F:
    d = np.abs(fx - x)[:, free] / scale[:, free]
    r = np.max(d, axis=1) if d.shape[1] else np.zeros(x.shape[0])
    return np.asarray(np.where(np.isfinite(r), r, np.inf), dtype=float)


def _dist(a: F, b: F, scale: F, free: B) -> F:
    d = np.abs(a - b)[:, free] / scale[:, free]
    r = np.max(d, axis=1) if d.shape[1] else np.zeros(a.shape[0])
    return np.asarray(np.where(np.isfinite(r), r, np.inf), dtype=float)


def _fmap(eng: Any, vals: F, x: F) -> F:
    """F_H with cooldowns idle, for every point."""
    p = eng.exact
    x = x.copy()
    x[:, p.cooldown] = 0.0
    return np.asarray(p.run(vals, x, 0, eng.ts.hyperperiod, idle_cooldowns=True), dtype=float)


def _orbit(eng: Any, vals: F, x: F) -> F:
    """The per-tick states of each point's orbit over one hyperperiod, [k, H, n]
    (``coherence.linear.model.orbit``)."""
    p = eng.exact
    H = eng.ts.hyperperiod
    xs = np.empty((x.shape[0], H, eng.n))
    x = x.copy()
    for t in range(H):
        x[:, p.cooldown] = 0.0
        xs[:, t] = x
        x = p.step(vals, x, t)
    return xs


def _newton(eng: Any, vals: F, x: F, scale: F, free: B) -> tuple[F, B]:
    """Roots of F_H(x) - x from ``x`` (each point its own Newton steps, all stacked)."""
    idx = np.flatnonzero(free)
    x = x.copy()
    fx = _fmap(eng, vals, x)
    r = _residual(x, fx, scale, free)
    live = np.isfinite(r)
    for _ in range(NEWTON_STEPS):
        act = live & (r > CONVERGED)
        if not act.any():
            break
        ia = np.flatnonzero(act)
        A, good = _tick_matrices(eng, vals[ia], _orbit(eng, vals[ia], x[ia]))
        M = np.broadcast_to(np.eye(eng.n), (len(ia), eng.n, eng.n)).copy()
        for At in A:
            M = At @ M
        J = M[:, idx][:, :, idx] - np.eye(len(idx))[None]
        g = (fx[ia] - x[ia])[:, idx]
        good &= np.isfinite(J).all(axis=(1, 2)) & np.isfinite(g).all(axis=1)
        step = np.zeros_like(g)
        if good.any():
            try:
                step[good] = np.linalg.solve(J[good], -g[good][:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                good[:] = False
        xn = x[ia].copy()
        xn[:, idx] += step
        xn = np.clip(xn, eng.exact.lo, eng.exact.hi)
        fn = _fmap(eng, vals[ia], xn)
        rn = _residual(xn, fn, scale[ia], free)
        better = good & (rn < r[ia])
        upd = ia[better]
        x[upd], fx[upd], r[upd] = xn[better], fn[better], rn[better]
        live[ia[~better]] = False  # no progress: as converged as it gets
    return x, r <= CONVERGED * 1e3


def _saturated(ts: TransitionSystem, x: F, scale: F) -> B:
    """Points with a plant or actuator state on a declared bound."""
    out = np.zeros(x.shape[0], dtype=bool)
    for i, s in enumerate(ts.states):
        if s.kind not in ("plant", "actuator"):
            continue
        tol = 1e-9 * scale[:, i]
        out |= (np.abs(x[:, i] - s.lo) <= tol) | (np.abs(x[:, i] - s.hi) <= tol)
    return out


def _replay(eng: Any, names: list[str], pvals: F, x: F, scale: F, free: B) -> F:
    """The residual of one hyperperiod from each point's ``x`` in the reference simulator."""
    from coherence.simulate.engine import simulate

    ts = eng.ts
    init = {s.name: x[:, i] for i, s in enumerate(ts.states)}
    params = {nm: pvals[:, j] for j, nm in enumerate(names)}
    tr = simulate(ts, ts.hyperperiod, init=init, params=params, scenarios=len(x))
    return _residual(x, np.asarray(tr.states[:, -1, :], dtype=float), scale, free)


def _flat(env: dict[str, Any], k: int) -> dict[str, Any]:
    """A group's placeholder values with the points folded into the instance axis: every
    ``[..., k or 1, instances]`` array becomes ``[..., 1, k * instances]``."""
    out: dict[str, Any] = {}
    for name, a in env.items():
        if isinstance(a, np.ndarray) and a.ndim >= 2:
            shape = (*a.shape[:-2], k, a.shape[-1])
            out[name] = np.broadcast_to(a, shape).reshape(*a.shape[:-2], 1, k * a.shape[-1])
        else:
            out[name] = a
    return out


def _tick_matrices(eng: Any, vals0: F, xs: F) -> tuple[F, B]:
    """A_t of each point at each tick of its orbit ``xs`` [k, H, n]: [H, k, n, n], and the
    points whose derivatives are finite and structurally as the linearization expects."""
    view = eng.view
    n, m, c = eng.n, eng.m, eng.cuts
    k, H = xs.shape[0], xs.shape[1]
    ns = eng.s
    na = len(eng.actions)
    good = np.ones(k, dtype=bool)
    out = np.empty((H, k, n, n))
    eye = np.broadcast_to(np.eye(n), (k, n, n))
    for t in range(H):
        v = vals0.copy()
        v[:, :n] = xs[:, t]
        view.eval_lets(v, t)
        mats = [np.zeros((k, m, n + c)), np.zeros((k, m, m)), np.zeros((k, n, n + c))]
        mats.append(np.zeros((k, n, m)))
        for g, d, parts, _ in eng.groups:
            if not d.wrt:
                continue
            cnt = len(g.outputs)
            outs, _nodes = d.evaluate(_flat(g.env(v, t), k), k * cnt)
            for part in parts:
                val = np.asarray(outs[part.out], dtype=float).reshape(k, cnt)[:, part.mask]
                np.add.at(mats[part.matrix].transpose(1, 2, 0), (part.rows, part.cols), val.T)
        K, L, G, Gd = mats
        good &= np.all([np.isfinite(a).all(axis=(1, 2)) for a in mats], axis=0)
        D = K
        for _ in range(view.depth):
            if not L.any():
                break
            D = K + L @ D
        U = G + Gd @ D
        raw = view.eval_updates(v, t)
        clamped = (raw < view.lo) | (raw > view.hi)
        U = U * (~clamped)[:, :, None]
        sigma = D[:, eng.sensed_rows, :n]
        if ns:
            good &= ~np.any(D[:, eng.sensed_rows, n:] != 0, axis=(1, 2))
        smap = np.concatenate([eye, sigma], axis=1)  # [k, n + s, n]
        if na:
            recs = D[:, eng.rec_rows, :]
            good &= ~np.any(recs[:, :, n + ns :] != 0, axis=(1, 2))
            full = np.concatenate([smap, recs[:, :, : n + ns] @ smap], axis=1)
        else:
            full = smap
        A = U @ full
        good &= np.isfinite(A).all(axis=(1, 2))
        out[t] = np.where(np.isfinite(A), A, 0.0)
    return out, good


def _held(eng: Any, A: F) -> B:
    """[k, n]: the actuators whose row of every A_t is the unit row (held by design)."""
    _, k, n, _ = A.shape
    held = np.zeros((k, n), dtype=bool)
    for a in sorted({int(c) for c in eng.action_cols}):
        rows = A[:, :, a, :]  # [H, k, n]
        unit = np.abs(rows[:, :, a] - 1.0) <= 1e-12
        others = np.delete(rows, a, axis=2)
        held[:, a] = np.all(unit & np.all(others == 0, axis=2), axis=0)
    return held
