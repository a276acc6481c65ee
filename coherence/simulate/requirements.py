"""Requirement semantics on simulated traces: the reference every backend is judged by.

- ``always φ for H``: φ holds at every tick t = 0..H-1.
- ``after τ then φ within N`` (horizon H): for every tick t <= H-1-N at which τ holds, φ
  holds at some tick in t..t+N. Triggers whose window runs past the horizon are not judged.
- ``no flapping of x max r within W`` (horizon H): let d(t) = x(t+1) - x(t) for t = 0..H-1.
  A *reversal* happens at tick t when d(t) != 0 and its sign differs from the sign of the
  last non-zero d before t. Violated when some window of W consecutive ticks holds more than
  r reversals.
- objectives: ``keep e <= b tolerance T`` is violated at tick t when e > b + T (T relative
  to |b| if given in %); ``>=`` symmetrically.

Each check returns, per scenario, the first tick at which the requirement is seen to fail
(-1 if it holds on the trace).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import ObjectiveIR, Requirement, TransitionSystem
from coherence.simulate.engine import Trace, evaluate

IntArray = NDArray[np.int64]


def _first_true(mask: NDArray[np.bool_]) -> IntArray:
    """Index of the first True along axis 1, -1 where none."""
    any_ = mask.any(axis=1)
    first = mask.argmax(axis=1)
    return np.where(any_, first, -1).astype(np.int64)


def check_always(req: Requirement, trace: Trace) -> IntArray:
    assert req.cond is not None
    h = min(req.horizon, trace.ticks)
    holds = evaluate(req.cond, trace)[:, :h] != 0
    return _first_true(~holds)


def check_response(req: Requirement, trace: Trace) -> IntArray:
    assert req.cond is not None and req.trigger is not None
    h = min(req.horizon, trace.ticks)
    trig = evaluate(req.trigger, trace)[:, :h] != 0
    resp = evaluate(req.cond, trace)[:, :h] != 0
    n = req.within
    S = trace.scenarios
    out = np.full(S, -1, dtype=np.int64)
    for s in range(S):
        for t in range(0, h - n):
            if trig[s, t] and not resp[s, t : t + n + 1].any():
                out[s] = t + n  # the tick at which the deadline passes
                break
    return out


def reversals(x: NDArray[np.float64], eps: float = 1e-12) -> NDArray[np.bool_]:
    """Reversal flags r[s, t] for t = 0..T-1 of a series x[s, t] with T+1 points."""
    d = np.diff(x, axis=1)
    sign = np.where(d > eps, 1, np.where(d < -eps, -1, 0))
    S, T = sign.shape
    out = np.zeros((S, T), dtype=bool)
    last = np.zeros(S, dtype=np.int64)
    for t in range(T):
        cur = sign[:, t]
        out[:, t] = (cur != 0) & (last != 0) & (cur != last)
        last = np.where(cur != 0, cur, last)
    return out


def check_flapping(req: Requirement, trace: Trace) -> IntArray:
    assert req.state is not None
    h = min(req.horizon, trace.ticks)
    x = trace.state(req.state)[:, : h + 1]
    rev = reversals(x).astype(np.int64)
    w = req.within
    csum = np.concatenate(
        [np.zeros((rev.shape[0], 1), dtype=np.int64), np.cumsum(rev, axis=1)], axis=1
    )
    S, T = rev.shape
    out = np.full(S, -1, dtype=np.int64)
    for s in range(S):
        for end in range(1, T + 1):
            start = max(0, end - w)
            if csum[s, end] - csum[s, start] > req.max_reversals:
                out[s] = end - 1
                break
    return out


def check_requirement(req: Requirement, trace: Trace) -> IntArray | None:
    """First failing tick per scenario, or None for requirements that traces cannot judge."""
    if req.kind == "always":
        return check_always(req, trace)
    if req.kind == "response":
        return check_response(req, trace)
    if req.kind == "flapping":
        return check_flapping(req, trace)
    return None


def objective_slack(obj: ObjectiveIR, trace: Trace) -> NDArray[np.float64]:
    """For a keep objective: how far inside (>0) or outside (<0) its bound, per tick [S, T]."""
    assert obj.kind == "keep" and obj.bound is not None
    e = evaluate(obj.expr, trace)
    b = evaluate(obj.bound, trace)
    tol = obj.tolerance * np.abs(b) if obj.relative else obj.tolerance
    if obj.cmp in ("<=", "<"):
        return b + tol - e
    return e - (b - tol)


def objective_violations(ts: TransitionSystem, trace: Trace) -> dict[str, IntArray]:
    """First violation tick per scenario of every keep objective."""
    out: dict[str, IntArray] = {}
    for o in ts.objectives:
        if o.kind != "keep":
            continue
        slack = objective_slack(o, trace)
        strict = o.cmp in ("<", ">")
        bad = slack <= 0 if strict else slack < 0
        out[o.name] = _first_true(bad)
    return out
