"""Objectives as formulas: when a keep-objective is violated, when one run is worse than another.

The meanings match :mod:`coherence.simulate.requirements` and are shared by the encoding
(Z3 terms over a frame) and by the replay check (NumPy over simulator traces: the slack and
violation of a keep-objective in :mod:`coherence.search.objectives`, worse here):

- a keep objective ``e <= b tolerance T`` has slack ``b + T' - e`` with ``T' = T * |b|`` when
  the tolerance is relative; it is violated at a tick when the slack is negative (``<= 0`` for
  a strict ``<``); ``>=`` symmetrically. Its *violation amount* is ``max(0, -slack)``.
- run 1 is *worse* than run 2 for an objective when, at the same tick: minimize,
  ``v1 - v2 > T'`` (``T' = T * |v2|`` if relative: the tolerance is relative to the
  counterfactual); maximize, ``v2 - v1 > T'``; keep, the violation amount of run 1 exceeds
  that of run 2 (the keep's tolerance is already inside its slack).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import ObjectiveIR
from coherence.search.objectives import trace_slack
from coherence.simulate.engine import Trace, evaluate
from coherence.smt.encode import Encoder, Frame
from coherence.smt.terms import Cond, Num, const, rational


def _num(enc: Encoder, obj_expr: object, frame: Frame) -> Num:
    return enc.num(enc.expr(obj_expr, frame))  # type: ignore[arg-type]


def slack(enc: Encoder, obj: ObjectiveIR, frame: Frame) -> Num:
    """How far inside (> 0) or outside (< 0) its bound a keep objective is."""
    assert obj.kind == "keep" and obj.bound is not None
    e = _num(enc, obj.expr, frame)
    b = _num(enc, obj.bound, frame)
    tol = const(rational(obj.tolerance))
    if obj.relative:
        tol = enc.mul(tol, enc.call("abs", [b], frame))
    if obj.cmp in ("<=", "<"):
        return enc.sub(enc.add(b, tol), e)
    return enc.sub(e, enc.sub(b, tol))


def violated(enc: Encoder, obj: ObjectiveIR, frame: Frame, margin: Fraction) -> Cond:
    """The keep objective is violated at this frame (by at least ``margin`` when > 0)."""
    s = slack(enc, obj, frame)
    zero = const(0)
    if margin > 0:
        return enc.compare("<=", s, enc.neg(const(margin)))
    return enc.compare("<=" if obj.cmp in ("<", ">") else "<", s, zero)


def amount(enc: Encoder, obj: ObjectiveIR, frame: Frame) -> Num:
    return enc.maximum(const(0), enc.neg(slack(enc, obj, frame)))


def worse(enc: Encoder, obj: ObjectiveIR, f1: Frame, f2: Frame, margin: Fraction) -> Cond:
    """Run 1 is worse than run 2 for ``obj`` at these frames (by ``margin`` more)."""
    m = const(margin)
    if obj.kind == "keep":
        return enc.compare(
            ">=" if margin else ">", amount(enc, obj, f1), enc.add(amount(enc, obj, f2), m)
        )
    v1, v2 = _num(enc, obj.expr, f1), _num(enc, obj.expr, f2)
    tol = const(rational(obj.tolerance))
    if obj.relative:
        tol = enc.mul(tol, enc.call("abs", [v2], f2))
    diff = enc.sub(v1, v2) if obj.kind == "minimize" else enc.sub(v2, v1)
    return enc.compare(">=" if margin else ">", diff, enc.add(tol, m))


# ---- the same on simulator traces ------------------------------------------------------------


def trace_worse(obj: ObjectiveIR, t1: Trace, t2: Trace) -> NDArray[np.bool_]:
    """Per tick: run 1 worse than run 2 (scenario 0 of each), with the float semantics."""
    if obj.kind == "keep":
        a1 = np.maximum(0.0, -trace_slack(obj, t1)[0])
        a2 = np.maximum(0.0, -trace_slack(obj, t2)[0])
        return np.asarray(a1 > a2)
    v1 = evaluate(obj.expr, t1)[0]
    v2 = evaluate(obj.expr, t2)[0]
    tol = obj.tolerance * np.abs(v2) if obj.relative else obj.tolerance
    diff = v1 - v2 if obj.kind == "minimize" else v2 - v1
    return np.asarray(diff > tol)
