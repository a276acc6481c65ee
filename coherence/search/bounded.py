"""Falsification of bounded requirements by simulated input patterns.

Before any solver, :func:`falsify_by_patterns` simulates structured input sequences
(:func:`pattern_inputs`: corners, steps, bursts, square waves, seeded random ones) under the
declared parameter values and each uncertain range's ends (:func:`param_settings`): deep
violations that would take the solver a hundred ticks of nonlinear arithmetic are often found
here. A violation counts only by more than a margin (:func:`robust`), so float rounding never
makes one; the earliest is replayed alone and returned as a :class:`Counterexample`, the same
kind of simulator trace the solver's models become (:func:`confirm`). NumPy only: nothing here
calls a solver.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from coherence.ir.limits import LIMIT_CODE, MAX_RUN_TICKS, MAX_TRACE_VALUES, max_ticks
from coherence.ir.nodes import Binary, Const, Expr, Requirement, TransitionSystem, Unary
from coherence.simulate.engine import Trace, simulate
from coherence.simulate.replay import Scenario, replay
from coherence.simulate.requirements import check_requirement


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A violation the simulator reproduced."""

    trace: Trace
    tick: int  # first failing tick, as coherence.simulate.requirements reports it
    source: str  # who proposed it: "solver (exact)", "solver (over-approximation)", "patterns"
    scenario: Scenario


def confirm(ts: TransitionSystem, req: Requirement, sc: Scenario) -> tuple[Trace, int]:
    """Replay a scenario and judge the requirement with the reference semantics."""
    trace = replay(ts, sc)
    fail = check_requirement(req, trace)
    assert fail is not None
    return trace, int(fail[0])


# ---- input patterns --------------------------------------------------------------------------


def pattern_inputs(ts: TransitionSystem, ticks: int, held: bool, seed: int) -> np.ndarray:
    """Structured adversarial input sequences ``[S, ticks, n_inputs]`` within the ranges."""
    n = len(ts.inputs)
    lo = np.array([u.lo for u in ts.inputs])
    hi = np.array([u.hi for u in ts.inputs])
    nom = np.array([u.nominal for u in ts.inputs])
    rng = np.random.default_rng(seed)
    pats: list[np.ndarray] = []

    def const_(v: np.ndarray) -> np.ndarray:
        return np.broadcast_to(v, (ticks, n)).copy()

    for v in (nom, lo, hi):
        pats.append(const_(v))
    for j in range(min(n, 4)):
        for side in (lo, hi):
            v = nom.copy()
            v[j] = side[j]
            pats.append(const_(v))
    if held:
        for _ in range(8):
            pats.append(const_(lo + (hi - lo) * rng.random(n)))
        return np.stack(pats)
    t = np.arange(ticks)[:, None]
    for start in sorted({ticks // 10, ticks // 4, ticks // 2}):
        for side in (hi, lo):
            pats.append(np.where(t >= start, side, nom))
    for width in (1, 2, 5, 10, 20, 50):
        if width < ticks:
            pats.append(np.where(t < width, hi, nom))
            pats.append(np.where(t < width, lo, nom))
    hyper = ts.hyperperiod
    for half in sorted({1, 2, 3, 5, 8, 13, hyper, 2 * hyper, max(1, hyper // 2)}):
        for shift in (0, half):
            phase = ((t + shift) // half) % 2 == 0
            pats.append(np.where(phase, hi, lo))
    for _ in range(12):
        pats.append(np.where(rng.random((ticks, n)) < 0.5, lo, hi))
    for _ in range(12):
        pats.append(lo + (hi - lo) * rng.random((ticks, n)))
    return np.stack(pats)


def param_settings(ts: TransitionSystem) -> list[dict[str, float]]:
    """The parameter values patterns are tried with: as declared, then each uncertain range's
    low and high ends together."""
    unc = [p for p in ts.params if not p.internal and p.lo < p.hi]
    out: list[dict[str, float]] = [{}]
    if unc:
        out.append({p.name: p.lo for p in unc})
        out.append({p.name: p.hi for p in unc})
    return out


def _shifted(e: Expr, margin: float, easier: bool) -> Expr:
    """``e`` with each comparison moved by ``margin`` so that it is easier to make true
    (``easier``) or harder; ``not`` turns the direction round, ``and``/``or`` keep it."""
    match e:
        case Binary("<=" | "<" as op, a, b):
            m = Const(margin if easier else -margin)
            return Binary(op, a, Binary("+", b, m), e.span)
        case Binary(">=" | ">" as op, a, b):
            m = Const(margin if easier else -margin)
            return Binary(op, Binary("+", a, m), b, e.span)
        case Binary("and" | "or" as op, a, b):
            return Binary(op, _shifted(a, margin, easier), _shifted(b, margin, easier), e.span)
        case Unary("not", a):
            return Unary("not", _shifted(a, margin, not easier), e.span)
    return e


def robust(req: Requirement, margin: float) -> Requirement:
    """``req`` as a float trace must violate it to count: a violation by more than
    ``margin``. Its condition is relaxed by ``margin`` and its trigger tightened, so a trace
    that violates the result violates ``req`` with room to spare, not by float rounding (an
    input ramped by its slew in floats reaches ``0.30000000000000004``)."""
    if margin <= 0:
        return req
    cond = _shifted(req.cond, margin, True) if req.cond is not None else None
    trig = _shifted(req.trigger, margin, False) if req.trigger is not None else None
    return replace(req, cond=cond, trigger=trig)


def falsify_by_patterns(
    ts: TransitionSystem, req: Requirement, ticks: int, seed: int, margin: float = 1e-6
) -> Counterexample | None:
    """Simulate the structured patterns; the earliest violation by more than ``margin``,
    replayed alone, or None."""
    judged = robust(req, margin)
    n_ticks = search_ticks(ts, req, ticks, seed)
    if not ts.inputs and not any(p.lo < p.hi for p in ts.params if not p.internal):
        pats = np.zeros((1, n_ticks, 0))
    else:
        pats = pattern_inputs(ts, n_ticks, req.inputs == "held", seed)
    best: tuple[int, Scenario] | None = None

    def decided(head: Trace) -> bool:
        # a violation a check reports on a prefix is the whole run's (each check's first
        # failing tick depends on the ticks up to it): the run can stop at one, and, for a
        # later setting, once it is past the earliest violation found so far
        if best is not None and head.ticks > best[0]:
            return True
        got = check_requirement(judged, head)
        return got is not None and bool(np.any(got >= 0))

    # the patterns run in batches that fit the simulator's limit on one run's values: the
    # same runs, in bounded memory
    batch = max(1, MAX_TRACE_VALUES // ((n_ticks + 1) * (len(ts.states) + len(ts.lets) or 1)))
    for setting in param_settings(ts):
        for c in range(0, pats.shape[0], batch):
            with np.errstate(all="ignore"):
                trace = simulate(
                    ts, n_ticks, inputs=pats[c : c + batch], params=setting or None, until=decided
                )
            fail = check_requirement(judged, trace)
            assert fail is not None
            hits = np.flatnonzero(fail >= 0)
            if hits.size == 0:
                continue
            s = int(hits[np.argmin(fail[hits])])
            tick = int(fail[s])
            if best is None or tick < best[0]:
                params = {p.name: float(trace.params[p.name][s]) for p in ts.params}
                names = enumerate(ts.state_names)
                init = {name: float(trace.states[s, 0, i]) for i, name in names}
                best = (tick, Scenario(pats[c + s].copy(), params, init))
    if best is None:
        return None
    tick, sc = best
    cut = min(sc.ticks, tick + 2)
    sc = Scenario(sc.inputs[:cut], sc.params, sc.init)
    trace, fail_tick = confirm(ts, req, sc)
    if fail_tick < 0:  # cannot happen: the same simulator; kept as a guard
        return None
    return Counterexample(trace, fail_tick, "simulation of input patterns", sc)


def _patterns(ts: TransitionSystem, req: Requirement, seed: int) -> int:
    """How many input patterns one parameter setting simulates."""
    if not ts.inputs and not any(p.lo < p.hi for p in ts.params if not p.internal):
        return 1
    # every pattern exists from 64 ticks on (the longest pulse is 50 ticks)
    return int(pattern_inputs(ts, 64, req.inputs == "held", seed).shape[0])


def search_ticks(ts: TransitionSystem, req: Requirement, ticks: int, seed: int) -> int:
    """How long the patterns run: ``ticks``, or the longest run of one pattern that fits the
    simulator's limits (the patterns run in batches) (:data:`~coherence.ir.limits.MAX_RUN_TICKS`,
    :data:`~coherence.ir.limits.MAX_TRACE_VALUES`). A violation on
    that prefix is a violation of the whole run; no violation there proves nothing beyond it."""
    width = len(ts.states) + len(ts.lets)
    return max(1, min(ticks, MAX_RUN_TICKS, max_ticks(1, width)))


def evidence(ts: TransitionSystem, req: Requirement, seed: int) -> str:
    """What :func:`falsify_by_patterns` simulated without finding a violation."""
    n = _patterns(ts, req, seed) * len(param_settings(ts))
    horizon = max(1, req.horizon)
    ran = search_ticks(ts, req, horizon, seed)
    if ran < horizon:
        return (
            f"not violated in {n} simulated input scenarios over the first {ran:,} of its "
            f"{horizon:,} ticks (the limits of {MAX_RUN_TICKS:,} ticks and "
            f"{MAX_TRACE_VALUES:,} values per simulated run, {LIMIT_CODE})"
        )
    return f"not violated in {n} simulated input scenarios over {horizon} ticks"
