"""The operating point: the equilibrium at nominal inputs.

1. *Settle*: run the system from its declared initial state, and from a few seeded
   perturbations of it within the state bounds, for several hyperperiods (vectorised over the
   starting points), watching the change over each hyperperiod.
2. *Root solve*: where that did not settle, solve ``F_H(x) = x`` for the hyperperiod map
   ``F_H`` (the composition of the H ticks) with ``scipy.optimize.root`` (MINPACK's hybrid
   method, with the lifted Jacobian ``M - I`` from :mod:`coherence.linear.linearize`), or, for
   very large systems, by Newton's method with a sparse LU of ``M - I``.
3. *Replay*: run the reference simulator (:func:`coherence.simulate.simulate`) for one
   hyperperiod from the point found; it must come back to it.

A fixed point of ``F_H`` may be a periodic orbit of the per-tick maps; the linearization
follows the orbit. Settling compares states once per hyperperiod, so a run that alternates
between two values every tick looks settled when the hyperperiod is even: a sustained
oscillation, not a rest point. Where the orbit found moves within the hyperperiod, a constant
equilibrium (a fixed point of every tick's map) is sought from the orbit's mean and from the
declared start, and analysed instead if there is one; other starting points that settled on
such a cycle are not counted as other equilibria. Cooldown counters are idle at an equilibrium (nothing changes), so they are
set to 0 and left out of the residual. Different starting points that settle at different
equilibria are reported (COH306): the linear verdict is local to the one analysed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from coherence.linear.linearize import Engine, LinearizationError
from coherence.linear.model import Orbit, orbit, tick_jacobians
from coherence.linear.options import LinearOptions
from coherence.linear.program import state_scale
from coherence.linear.spectrum import monodromy

Vec = NDArray[np.float64]

# a settling run whose last hyperperiod still moved a state by more than this (scaled) has
# not settled: its end is no better a start for the root solve than the declared one
UNSETTLED = 0.1


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Where the system rests at nominal input (``found``), and how that was established."""

    found: bool
    state: tuple[float, ...]
    residual: float
    method: str  # "settled", "root", "none"
    message: str = ""
    others: tuple[tuple[float, ...], ...] = ()
    replay_residual: float | None = None
    # where the point is not constant within the hyperperiod: the period (ticks) of its
    # per-tick orbit (a cycle, not a rest point); 0 for an equilibrium
    cycle: int = 0

    @property
    def x(self) -> Vec:
        return np.array(self.state, dtype=float)


class _Map:
    """The hyperperiod map and its residual, in the reference semantics (cooldowns idle)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.p = engine.exact
        self.H = engine.ts.hyperperiod
        self.free = ~self.p.cooldown
        self.lo = self.p.lo
        self.hi = self.p.hi
        # the last few points mapped: the root solve asks for some points more than once
        self._seen: dict[tuple[tuple[int, ...], bytes], Vec] = {}

    def apply(self, x: Vec) -> Vec:
        """F_H for a batch [S, n]."""
        key = (x.shape, np.ascontiguousarray(x, dtype=float).tobytes())
        hit = self._seen.get(key)
        if hit is not None:
            return hit.copy()
        vals = self.p.base_values(x.shape[0])
        x = x.copy()
        x[:, self.p.cooldown] = 0.0
        out = self.p.run(vals, x, 0, self.H, idle_cooldowns=True)
        if len(self._seen) >= 8:
            self._seen.pop(next(iter(self._seen)))
        self._seen[key] = out.copy()
        return out

    def residual(self, x: Vec, fx: Vec, scale: Vec) -> NDArray[np.float64]:
        d = np.abs(fx - x)[:, self.free] / scale[self.free]
        with np.errstate(invalid="ignore"):
            r = np.max(d, axis=1) if d.shape[1] else np.zeros(x.shape[0])
        return np.where(np.isfinite(r), r, np.inf)


def find_operating_point(engine: Engine, options: LinearOptions) -> OperatingPoint:
    """Settle, root-solve if needed, look for other equilibria, replay."""
    ts = engine.ts
    fmap = _Map(engine)
    H = fmap.H
    p = engine.exact
    x0 = p.initial_states()[0]
    starts = _starts(engine, x0, options)
    X = p.initial_states(starts) if starts is not None else x0[None, :]
    scale = state_scale(ts.states, X)
    ticks = int(
        np.clip(options.settle_hyperperiods * H, options.settle_min_ticks, options.settle_max_ticks)
    )
    periods = max(1, -(-ticks // H))
    vals = p.base_values(X.shape[0])
    x = X.copy()
    best = np.full(X.shape[0], np.inf)
    best_x = X.copy()
    res = np.full(X.shape[0], np.inf)
    for _ in range(periods):
        prev = x
        x = p.run(vals, x, 0, H)
        res = fmap.residual(prev, x, scale)
        better = res < best
        best[better] = res[better]
        best_x[better] = x[better]
        if np.all((res <= options.residual_tol) | ~np.isfinite(res)):
            break
    x[:, p.cooldown] = 0.0
    best_x[:, p.cooldown] = 0.0

    # where the run settled (or came closest), then the declared start; a run that came no
    # closer than UNSETTLED (a limit cycle, a drift) says nothing about where an
    # equilibrium is, and the declared start goes first
    settled = (x[0] if res[0] <= best[0] else best_x[0], "settled")
    candidates: list[tuple[Vec, str]] = [settled, (x0.copy(), "root")]
    if not min(res[0], best[0]) <= UNSETTLED:
        candidates.reverse()
    found: Vec | None = None
    method = "none"
    message = ""
    tried_x0 = False
    for cand, how in candidates:
        if not np.all(np.isfinite(cand)):
            continue
        tried_x0 = tried_x0 or how == "root"
        sol, msg = _equilibrium_near(engine, fmap, cand, scale, options)
        message = message or msg
        if sol is not None:
            found, method = sol, how if sol is cand else "root"
            break
    if found is None:
        return OperatingPoint(
            False,
            tuple(x0),
            float(best[0]),
            "none",
            message or "simulation did not settle and the root solve did not converge",
        )
    found = np.clip(found, p.lo, p.hi)
    if method == "settled" and engine.n <= options.root_dense_limit:
        # settling stops at the tolerance; a root solve from there lands on the point itself
        try:
            polished = _solve(engine, fmap, found, scale, options)
        except (LinearizationError, np.linalg.LinAlgError, ValueError):
            polished = None
        if polished is not None and _distance(polished, found, scale, fmap.free) < 1e-6:
            found = np.clip(polished, p.lo, p.hi)
    cycle = _cycle(engine, found, scale, fmap.free, options)
    if cycle:
        # a cycle that returns once per hyperperiod: analyse the constant equilibrium the
        # cycle swings around, if there is one
        alt = _constant_equilibrium(engine, fmap, found, x0, scale, options)
        if alt is not None:
            found, method, cycle = alt, "root", 0
        elif _self_sustained(engine, found, scale, fmap.free, options):
            # the states that cycle obey the same map on every tick of the hyperperiod: no
            # loop's schedule forces the cycle, the system oscillates by itself (a 2-cycle is
            # a fixed point of F_H for every even H); that is no operating point
            return OperatingPoint(
                False,
                tuple(found),
                0.0,
                "none",
                f"the nominal run settles on a cycle of {cycle} ticks, not on a rest point "
                f"(the cycle is not forced by the loops' schedules), and no constant "
                f"equilibrium was found",
            )
    others: list[Vec] = []
    # a run-away to the bounds settles at a saturated corner: the operating point the loops
    # are designed to hold is the equilibrium with the fewest saturated states, if any
    if _saturated(engine, found, scale) and not tried_x0:
        alt, _ = _equilibrium_near(engine, fmap, x0, scale, options)
        if (
            alt is not None
            and _distance(alt, found, scale, fmap.free) > 1e-4
            and not _cycle(engine, np.clip(alt, p.lo, p.hi), scale, fmap.free, options)
        ):
            alt = np.clip(alt, p.lo, p.hi)
            if _saturated(engine, alt, scale) < _saturated(engine, found, scale):
                found, alt = alt, found
                method = "root"
            others.append(alt)
    r_found = float(fmap.residual(found[None, :], fmap.apply(found[None, :]), scale)[0])

    # other equilibria: starting points that settled elsewhere
    for s in range(1, X.shape[0]):
        if not (np.isfinite(res[s]) and res[s] <= max(options.residual_tol * 100, 1e-6)):
            continue
        cand = x[s]
        if _distance(cand, found, scale, fmap.free) <= 1e-4:
            continue
        sol = cand
        r = float(fmap.residual(cand[None, :], fmap.apply(cand[None, :]), scale)[0])
        if r > options.residual_tol:
            try:
                polished = _solve(engine, fmap, cand, scale, options)
            except (LinearizationError, np.linalg.LinAlgError, ValueError):
                polished = None
            if polished is None:
                continue
            sol = polished
        if _distance(sol, found, scale, fmap.free) <= 1e-4:
            continue
        if any(_distance(sol, o, scale, fmap.free) <= 1e-4 for o in others):
            continue
        if _cycle(engine, sol, scale, fmap.free, options):
            continue  # a point of a cycle, not another rest point
        others.append(sol)

    replay: float | None = None
    if options.replay:
        replay = _replay(engine, found, scale, fmap)
        if replay > max(100 * options.residual_tol, 1e-6):
            return OperatingPoint(
                False,
                tuple(found),
                r_found,
                "none",
                f"the operating point does not replay in the reference simulator "
                f"(residual {replay:.3g})",
                (),
                replay,
            )
    return OperatingPoint(
        True,
        tuple(float(v) for v in found),
        r_found,
        method,
        message,
        tuple(tuple(float(v) for v in o) for o in others),
        replay,
        cycle,
    )


def _cycle(
    engine: Engine, x: Vec, scale: Vec, free: NDArray[np.bool_], options: LinearOptions
) -> int:
    """The period in ticks of the per-tick orbit from ``x`` over one hyperperiod, where it
    moves (scaled) by more than the settling tolerance; 0 where it is constant."""
    H = engine.ts.hyperperiod
    if H <= 1:
        return 0
    xs = orbit(engine, x).states
    tol = max(100 * options.residual_tol, 1e-6)
    if max(_distance(xs[t], xs[0], scale, free) for t in range(H)) <= tol:
        return 0
    for p in range(1, H):
        if H % p == 0 and all(
            _distance(xs[t], xs[(t + p) % H], scale, free) <= tol for t in range(H)
        ):
            return p
    return H


def _self_sustained(
    engine: Engine, x: Vec, scale: Vec, free: NDArray[np.bool_], options: LinearOptions
) -> bool:
    """Whether the per-tick orbit from ``x`` cycles by itself: the states that move along it
    take the same next value at every phase of the hyperperiod, from every point of the
    orbit, so the cycle is an orbit of one time-invariant map (an oscillation), not the
    response to the loops' schedules (which a multi-rate system's operating point may be)."""
    H = engine.ts.hyperperiod
    xs = orbit(engine, x).states[:H]
    tol = max(100 * options.residual_tol, 1e-6)
    moving = free & (np.max(np.abs(xs - xs[0]), axis=0) / scale > tol)
    if not np.any(moving):
        return False
    p = engine.exact
    vals = p.base_values(1)
    for t in range(H):
        at = [p.run(vals, xs[t][None, :].copy(), ph, 1, idle_cooldowns=True)[0] for ph in range(H)]
        for nxt in at[1:]:
            if np.max(np.abs(nxt - at[0])[moving] / scale[moving]) > tol:
                return False
    return True


def _constant_equilibrium(
    engine: Engine, fmap: _Map, on_cycle: Vec, x0: Vec, scale: Vec, options: LinearOptions
) -> Vec | None:
    """A root of F_H(x) - x whose per-tick orbit is constant, sought from the mean of the
    cycle through ``on_cycle`` and from the declared start ``x0``."""
    mean = orbit(engine, on_cycle).states.mean(axis=0)
    for start in (mean, x0):
        if not np.all(np.isfinite(start)):
            continue
        try:
            sol = _solve(engine, fmap, start, scale, options)
        except (LinearizationError, np.linalg.LinAlgError, ValueError):
            continue
        if sol is None:
            continue
        sol = np.clip(sol, engine.exact.lo, engine.exact.hi)
        if not _cycle(engine, sol, scale, fmap.free, options):
            return sol
    # the hyperperiod map's root solve is drawn to the cycle itself where the cycle attracts
    # (a 2-cycle is a fixed point of F_H for every even H); a constant equilibrium is a fixed
    # point of every tick's map, so ask for that directly
    for start in (mean, x0):
        if not np.all(np.isfinite(start)):
            continue
        sol = _fixed_every_tick(engine, fmap, start, scale, options)
        if sol is not None and not _cycle(engine, sol, scale, fmap.free, options):
            return sol
    return None


def _fixed_every_tick(
    engine: Engine, fmap: _Map, x0: Vec, scale: Vec, options: LinearOptions
) -> Vec | None:
    """A point that every tick's map of the hyperperiod leaves in place (within the declared
    bounds), by bounded least squares on the stacked residuals ``F_t(x) - x``, t = 0..H-1;
    None where there is none near ``x0`` (or the system is too large for a dense solve)."""
    free = fmap.free
    idx = np.flatnonzero(free)
    H = fmap.H
    if not len(idx) or len(idx) > options.root_dense_limit or H * len(idx) > 20_000:
        return None
    from scipy.optimize import least_squares

    p = engine.exact
    sc = scale[idx]
    lo, hi = fmap.lo[idx] / sc, fmap.hi[idx] / sc
    base = x0.copy()
    base[~free] = 0.0
    vals = p.base_values(1)

    def full(z: Vec) -> Vec:
        x = base.copy()
        x[idx] = z * sc
        return np.clip(x, fmap.lo, fmap.hi)

    def fun(z: Vec) -> Vec:
        x = full(z)[None, :]
        out = np.empty((H, len(idx)))
        for t in range(H):  # one step at each phase of the hyperperiod
            fx = p.run(vals, x.copy(), t, 1, idle_cooldowns=True)
            out[t] = (fx[0, idx] - x[0, idx]) / sc
        r = out.ravel()
        return np.where(np.isfinite(r), r, 1e6)

    z0 = np.clip(x0[idx] / sc, lo, hi)
    try:
        sol = least_squares(fun, z0, bounds=(lo, hi), xtol=1e-12, ftol=1e-12, max_nfev=200)
    except (ValueError, np.linalg.LinAlgError):
        return None
    x = full(np.asarray(sol.x, dtype=float))
    r = float(fmap.residual(x[None, :], fmap.apply(x[None, :]), scale)[0])
    return x if r <= options.residual_tol * 10 else None


def _equilibrium_near(
    engine: Engine, fmap: _Map, cand: Vec, scale: Vec, options: LinearOptions
) -> tuple[Vec | None, str]:
    """``cand`` if it is an equilibrium, else a root of F_H(x) - x from it (or None)."""
    r = float(fmap.residual(cand[None, :], fmap.apply(cand[None, :]), scale)[0])
    if r <= options.residual_tol:
        return cand, ""
    try:
        return _solve(engine, fmap, cand, scale, options), ""
    except (LinearizationError, np.linalg.LinAlgError, ValueError) as exc:
        return None, str(exc)


def _saturated(engine: Engine, x: Vec, scale: Vec) -> int:
    """How many plant and actuator states sit on a declared bound."""
    count = 0
    for i, s in enumerate(engine.ts.states):
        if s.kind not in ("plant", "actuator"):
            continue
        tol = 1e-9 * scale[i]
        if abs(x[i] - s.lo) <= tol or abs(x[i] - s.hi) <= tol:
            count += 1
    return count


def _starts(engine: Engine, x0: Vec, options: LinearOptions) -> NDArray[np.float64] | None:
    """Row 0: the declared start; then ``options.starts`` seeded perturbations of the plant
    and actuator states within their bounds (NaN: the state starts as declared)."""
    if options.starts <= 0:
        return None
    ts = engine.ts
    rng = np.random.default_rng(options.seed)
    out = np.full((options.starts + 1, engine.n), np.nan)
    out[0] = np.where(np.isnan(x0), np.nan, x0)
    for k in range(1, options.starts + 1):
        u = rng.uniform(-1.0, 1.0, engine.n)
        for i, s in enumerate(ts.states):
            if s.kind not in ("plant", "actuator") or not np.isfinite(x0[i]):
                continue
            rng_i = s.hi - s.lo
            if np.isfinite(rng_i):
                v = x0[i] + u[i] * options.perturbation * rng_i
            else:
                v = x0[i] * (1 + u[i] * options.perturbation) + u[i] * options.perturbation
            v = float(np.clip(v, s.lo, s.hi))
            out[k, i] = float(np.floor(v + 0.5)) if s.integer else v
    return out


def _distance(a: Vec, b: Vec, scale: Vec, free: NDArray[np.bool_]) -> float:
    d = np.abs(a - b)[free] / scale[free]
    return float(np.max(d)) if d.size else 0.0


def _jacobian(engine: Engine, x: Vec) -> NDArray[np.float64] | None:
    """An approximate lifted Jacobian for the root solve: every tick linearized at ``x``
    (one Jacobian per phase pattern); exact at an equilibrium, cheap away from it."""
    H = engine.ts.hyperperiod
    orb = Orbit(np.broadcast_to(x, (H, len(x))).copy(), True)
    jacs, _ = tick_jacobians(engine, orb)
    if not jacs:
        return None
    mats: dict[int, object] = {}  # ticks that look the same share one TickJacobian
    for j in jacs:
        if id(j) not in mats:
            mats[id(j)] = j.A()
    return np.asarray(monodromy([mats[id(j)] for j in jacs]).toarray())


def _solve(engine: Engine, fmap: _Map, x0: Vec, scale: Vec, options: LinearOptions) -> Vec | None:
    """A root of F_H(x) - x near ``x0`` (in the scaled variables z = x / scale)."""
    free = fmap.free
    idx = np.flatnonzero(free)
    sc = scale[idx]
    base = x0.copy()
    base[~free] = 0.0

    def full(z: Vec) -> Vec:
        x = base.copy()
        x[idx] = z * sc
        return np.clip(x, fmap.lo, fmap.hi)

    def fun(z: Vec) -> Vec:
        x = full(z)
        fx = fmap.apply(x[None, :])[0]
        out = (fx[idx] - z * sc) / sc
        return np.where(np.isfinite(out), out, 1e6)

    last: list[tuple[bytes, NDArray[np.float64]]] = []

    def jac(z: Vec) -> NDArray[np.float64]:
        key = np.asarray(z, dtype=float).tobytes()
        if last and last[0][0] == key:  # scipy checks the Jacobian at z0, then starts there
            return last[0][1].copy()
        M = _jacobian(engine, full(z))
        if M is None:
            J = -np.eye(len(idx))
        else:
            J = M[np.ix_(idx, idx)] * (sc[None, :] / sc[:, None]) - np.eye(len(idx))
        last[:] = [(key, J.copy())]
        return J

    z0 = x0[idx] / sc
    if len(idx) <= options.root_dense_limit:
        from scipy.optimize import root

        sol = root(fun, z0, jac=jac, method="hybr", options={"xtol": 1e-12, "maxfev": 100})
        z = np.asarray(sol.x, dtype=float)
    else:
        z = _newton_sparse(engine, fun, full, idx, sc, z0)
    x = full(z)
    r = float(fmap.residual(x[None, :], fmap.apply(x[None, :]), scale)[0])
    return x if r <= options.residual_tol * 10 else None


def _newton_sparse(
    engine: Engine,
    fun: object,
    full: object,
    idx: NDArray[np.intp],
    sc: Vec,
    z0: Vec,
    iterations: int = 30,
) -> Vec:
    """Damped Newton with a sparse LU of the lifted Jacobian (large systems)."""
    import scipy.sparse as sps
    from scipy.sparse.linalg import spsolve

    f = fun  # callables, typed loosely to keep the signature short
    z = z0.copy()
    g = f(z)  # type: ignore[operator]
    for _ in range(iterations):
        if np.max(np.abs(g)) < 1e-13:
            break
        x = full(z)  # type: ignore[operator]
        orb = Orbit(np.broadcast_to(x, (engine.ts.hyperperiod, len(x))).copy(), True)
        jacs, _ = tick_jacobians(engine, orb)
        M = monodromy([j.A() for j in jacs])[idx][:, idx]
        S = sps.diags(1.0 / sc) @ M @ sps.diags(sc)
        J = (S - sps.identity(len(idx))).tocsc()
        step = spsolve(J, -g)
        if not np.all(np.isfinite(step)):
            break
        t = 1.0
        while t > 1e-4:
            zn = z + t * step
            gn = f(zn)  # type: ignore[operator]
            if np.max(np.abs(gn)) < np.max(np.abs(g)):
                z, g = zn, gn
                break
            t /= 2
        else:
            break
    return z


def _replay(engine: Engine, x: Vec, scale: Vec, fmap: _Map) -> float:
    """The residual of one hyperperiod from ``x`` in the reference simulator."""
    from coherence.simulate.engine import simulate

    ts = engine.ts
    init = {s.name: float(v) for s, v in zip(ts.states, x, strict=True)}
    tr = simulate(ts, fmap.H, init=init)
    end = tr.states[0, -1, :]
    return float(fmap.residual(x[None, :], end[None, :], scale)[0])
