"""What an objective means, once, for every backend: slack, worse, by how much, and when an
effect is large enough to matter.

The definitions are elementwise functions of an objective's values (NumPy arrays of any
shape, or floats), so the simulator's requirement checks, the conflict search and the report
read the same meaning:

- a keep objective ``e <= b tolerance T`` has *slack* ``b + T' - e`` (``T' = T * |b|`` when
  the tolerance is relative); ``>=`` symmetrically. It is violated when the slack is negative
  (``<= 0`` for a strict comparison); its *violation* is ``max(0, -slack)``.
- the *effect* of one run against another (the run where a loop acts against the run where it
  holds), positive when the acting run is worse: ``acting - holding`` for minimize,
  ``holding - acting`` for maximize, the difference of the violations for keep.
- an effect is *material* when it exceeds the objective's threshold: the larger of its
  tolerance (relative to the counterfactual's value when the tolerance is relative; for keep
  the tolerance is already inside the slack) and its *floor*: the smallest change that
  matters at the operator's scale. The floor is the spec's ``floor`` where it declares one;
  otherwise :func:`default_floor`: 1% of the objective's typical magnitude on the nominal run
  (for keep: 1% of its bound), so that float dust and changes an operator cannot see
  (``465.8`` against ``465.8``) are never a finding.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import ObjectiveIR

Array = NDArray[np.float64]

FLOOR_SHARE = 0.01  # the default floor: this share of the objective's typical magnitude


def tolerance(o: ObjectiveIR, reference: Array | float) -> Array | float:
    """The objective's tolerance in its own units: ``T * |reference|`` when relative."""
    if o.relative:
        return o.tolerance * np.abs(reference)
    return o.tolerance


def keep_slack(o: ObjectiveIR, value: Array, bound: Array) -> Array:
    """How far inside (> 0) or outside (< 0) its bound a keep objective is."""
    tol = tolerance(o, bound)
    if o.cmp in ("<=", "<"):
        return np.asarray(bound + tol - value)
    return np.asarray(value - (bound - tol))


def violated(o: ObjectiveIR, slack: Array) -> NDArray[np.bool_]:
    """Whether a keep objective with this slack is violated."""
    return np.asarray(slack <= 0 if o.cmp in ("<", ">") else slack < 0)


def violation(o: ObjectiveIR, value: Array, bound: Array) -> Array:
    """How far past its bound (tolerance included) a keep objective is: 0 when it holds."""
    return np.maximum(0.0, -keep_slack(o, value, bound))


def effect(
    o: ObjectiveIR,
    acting: Array,
    holding: Array,
    acting_bound: Array | None = None,
    holding_bound: Array | None = None,
) -> Array:
    """How much worse the acting run is than the holding one, in the objective's units
    (positive: worse). Keep objectives compare their violations and need both bounds."""
    with np.errstate(all="ignore"):
        if o.kind == "keep":
            assert acting_bound is not None and holding_bound is not None
            return np.asarray(
                violation(o, acting, acting_bound) - violation(o, holding, holding_bound)
            )
        if o.kind == "minimize":
            return np.asarray(acting - holding)
        return np.asarray(holding - acting)


def threshold(o: ObjectiveIR, holding: Array, floor: float) -> Array:
    """The smallest material effect at each value of the counterfactual: the tolerance
    (minimize, maximize) or 0 (keep: its tolerance is in the slack), and at least ``floor``."""
    if o.kind == "keep":
        return np.full(np.shape(holding), floor, dtype=float)
    with np.errstate(all="ignore"):
        t = np.maximum(tolerance(o, holding), floor)
    return np.array(np.broadcast_to(t, np.shape(holding)), dtype=float)


def default_floor(o: ObjectiveIR, nominal: Array, nominal_bound: Array | None = None) -> float:
    """The objective's floor: the spec's own, or 1% of its typical magnitude on the nominal
    run (the median of ``|value|``; for keep, of ``|bound|``); where that is 0, 1% of the
    largest magnitude; where that is 0 too, 1% of the objective's display unit.

    >>> from coherence.ir.nodes import ObjectiveIR, Const
    >>> o = ObjectiveIR("cost", "ctl", "minimize", Const(0.0), None, None, 0.05, True)
    >>> default_floor(o, np.array([90.0, 100.0, 110.0]))
    1.0
    """
    if o.floor is not None:
        return float(o.floor)
    ref = nominal_bound if o.kind == "keep" and nominal_bound is not None else nominal
    mags = np.abs(np.asarray(ref, dtype=float))
    mags = mags[np.isfinite(mags)]
    typical = float(np.median(mags)) if mags.size else 0.0
    if typical == 0.0 and mags.size:
        typical = float(mags.max())
    if typical == 0.0:
        typical = o.scale or 1.0
    return FLOOR_SHARE * typical
