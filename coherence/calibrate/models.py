"""Fitted step-time models: from measured points to ``step_time``, ``throughput`` and its gain.

This stage owns the fitting. It takes measured points (see ``workload.Point``), fits three small
models by nonnegative least squares on relative error, scores each on held-back points, and
returns frozen ``FittedModel`` values whose methods are vectorised over NumPy arrays. It uses
NumPy and SciPy only; nothing here touches a device.

The models (``docs/calibration.md`` has the derivations and citations):

``roofline`` (the primary model)
    ``t = t0 + flops * s_per_flop + bytes * s_per_byte``: the smooth *sum* form of the roofline
    (Williams, Waterman, Patterson, CACM 2009), with ``1/s_per_flop`` the attained compute rate
    and ``1/s_per_byte`` the attained bandwidth. Chosen as primary because it is linear in its
    coefficients (so the nonnegative least-squares fit has one global optimum, needs no start
    point and is reproducible), smooth in the batch size (so the plant gain that linear analysis
    needs exists everywhere), and never faster than the max form (it errs on the slow side by at
    most 2x, at the ridge point).
``roofline_max``
    ``t = t0 + max(flops * s_per_flop, bytes * s_per_byte)``: the classic roofline, fitted by
    bounded least squares from the ``roofline`` solution. Sharper at the ridge, but its gain
    jumps there; reported for comparison.
``linear_tokens``
    ``t = a + s_per_token * tokens + s_per_kv_token * kv_tokens``: the empirical form of the
    decode-step model of DistServe's simulator (Zhong et al., OSDI 2024: intercept, a term in
    the batch's new tokens, a term in the total context). The intercept of a GEMM step includes
    reading the weights; attention points get their own intercept ``a_attention_s``, which is
    used only to score them, because one step pays its fixed cost once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coherence.calibrate.errors import CalibrationError
from coherence.calibrate.workload import Point, StepShape, point_features, step_features

__all__ = [
    "DEFAULT_HOLDOUT_EVERY",
    "MODEL_NAMES",
    "PRIMARY_MODEL",
    "FitError",
    "FittedModel",
    "assign_holdout",
    "fit_error",
    "fit_models",
    "fit_step_time",
    "infer_shape",
]

FloatArray = NDArray[np.float64]

PRIMARY_MODEL: Final = "roofline"
MODEL_NAMES: Final[tuple[str, ...]] = ("roofline", "roofline_max", "linear_tokens")
DEFAULT_HOLDOUT_EVERY: Final = 4

COEFFICIENT_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "roofline": ("t0_s", "s_per_flop", "s_per_byte"),
    "roofline_max": ("t0_s", "s_per_flop", "s_per_byte"),
    "linear_tokens": ("a_s", "a_attention_s", "s_per_token", "s_per_kv_token"),
}
FORMULAS: Final[dict[str, str]] = {
    "roofline": "t = t0_s + flops*s_per_flop + bytes*s_per_byte",
    "roofline_max": "t = t0_s + max(flops*s_per_flop, bytes*s_per_byte)",
    "linear_tokens": "t = a_s + s_per_token*tokens + s_per_kv_token*kv_tokens",
}
MODEL_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "roofline": ("overhead", "copy", "decode_gemm", "prefill_gemm", "attention"),
    "roofline_max": ("overhead", "copy", "decode_gemm", "prefill_gemm", "attention"),
    "linear_tokens": ("decode_gemm", "prefill_gemm", "attention"),
}
_GEMM_KINDS: Final = ("decode_gemm", "prefill_gemm")


@dataclass(frozen=True, slots=True)
class FitError:
    """Relative prediction error over ``n`` points: mean (MAPE) and maximum of |pred - meas| / meas.

    Both are ``None`` when ``n`` is zero (no point to score).
    """

    n: int
    mape: float | None
    max_rel: float | None


def fit_error(predicted: ArrayLike, measured: ArrayLike) -> FitError:
    """Score predictions against measurements (relative to the measurement).

    >>> e = fit_error([1.1, 2.0], [1.0, 2.0])
    >>> e.n, round(e.mape, 6), round(e.max_rel, 6)
    (2, 0.05, 0.1)
    """
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    if p.shape != m.shape:
        raise ValueError(f"predicted and measured differ in shape: {p.shape} vs {m.shape}")
    if m.size == 0:
        return FitError(0, None, None)
    rel = np.abs(p - m) / m
    return FitError(int(m.size), float(np.mean(rel)), float(np.max(rel)))


@dataclass(frozen=True, slots=True)
class FittedModel:
    """A fitted step-time model, bound to the layer shape it predicts for.

    ``coefficients`` are ``(name, value)`` pairs in seconds, seconds per flop, per byte, per
    token. ``kinds`` are the benchmark kinds the model was fitted on and scored against.
    ``train_error`` scores the fitted points, ``held_out_error`` the held-back ones.

    Inputs of a step: ``batch`` sequences, ``tokens`` new tokens (defaults to ``batch``: a pure
    decode step), ``context`` cached tokens per sequence (defaults to 0: no attention term).
    All methods broadcast over NumPy arrays and return float64 arrays (0-d for scalars).

    >>> model.step_time([1, 8, 64])            # doctest: +SKIP
    >>> model.throughput(32), model.throughput_gain(32)   # doctest: +SKIP
    """

    name: str
    formula: str
    coefficients: tuple[tuple[str, float], ...]
    shape: StepShape
    kinds: tuple[str, ...]
    train_error: FitError
    held_out_error: FitError

    def coefficient(self, name: str) -> float:
        for key, value in self.coefficients:
            if key == name:
                return value
        known = ", ".join(k for k, _ in self.coefficients)
        raise KeyError(f"model {self.name!r} has no coefficient {name!r} (it has: {known})")

    def _coef(self) -> FloatArray:
        return np.array([self.coefficient(n) for n in COEFFICIENT_NAMES[self.name]])

    def step_time(
        self,
        batch: ArrayLike,
        tokens: ArrayLike | None = None,
        context: ArrayLike | None = None,
    ) -> FloatArray:
        """Seconds per step for ``batch`` sequences, ``tokens`` new tokens, ``context`` KV length."""
        b = np.asarray(batch, dtype=np.float64)
        tok = b if tokens is None else np.asarray(tokens, dtype=np.float64)
        ctx = np.zeros_like(b) if context is None else np.asarray(context, dtype=np.float64)
        c = self._coef()
        if self.name == "linear_tokens":
            return np.asarray(c[0] + c[2] * tok + c[3] * b * ctx, dtype=np.float64)
        flops, traffic = step_features(self.shape, b, tok, ctx)
        if self.name == "roofline":
            return np.asarray(c[0] + flops * c[1] + traffic * c[2], dtype=np.float64)
        return np.asarray(c[0] + np.maximum(flops * c[1], traffic * c[2]), dtype=np.float64)

    def step_time_slope(self, batch: ArrayLike, context: ArrayLike | None = None) -> FloatArray:
        """d(step_time)/d(batch) of a decode step (``tokens == batch``) at fixed ``context``.

        For ``roofline_max`` this is the slope of the active branch (one-sided at the ridge).
        """
        b = np.asarray(batch, dtype=np.float64)
        ctx = np.zeros_like(b) if context is None else np.asarray(context, dtype=np.float64)
        c = self._coef()
        if self.name == "linear_tokens":
            return np.asarray(c[2] + c[3] * ctx + 0.0 * b, dtype=np.float64)
        h, s = float(self.shape.hidden), float(self.shape.itemsize)
        # From workload.step_features with tokens = batch: both features are affine in batch.
        d_flops = 2.0 * h * h + 4.0 * ctx * h + 0.0 * b
        d_bytes = 2.0 * s * h + 2.0 * s * ctx * h + 0.0 * b
        if self.name == "roofline":
            return np.asarray(d_flops * c[1] + d_bytes * c[2], dtype=np.float64)
        flops, traffic = step_features(self.shape, b, b, ctx)
        compute_bound = flops * c[1] >= traffic * c[2]
        return np.asarray(np.where(compute_bound, d_flops * c[1], d_bytes * c[2]), np.float64)

    def throughput(self, batch: ArrayLike, context: ArrayLike | None = None) -> FloatArray:
        """Decode throughput in tokens per second: ``batch / step_time(batch)``."""
        b = np.asarray(batch, dtype=np.float64)
        return np.asarray(b / self.step_time(b, b, context), dtype=np.float64)

    def throughput_gain(self, batch: ArrayLike, context: ArrayLike | None = None) -> FloatArray:
        """d(throughput)/d(batch), the plant gain of the batching loop, in tokens/s per sequence.

        With T(b) = b / t(b): T'(b) = (t(b) - b * t'(b)) / t(b)^2.
        """
        b = np.asarray(batch, dtype=np.float64)
        t = self.step_time(b, b, context)
        return np.asarray((t - b * self.step_time_slope(b, context)) / (t * t), np.float64)

    def predict_points(self, points: Sequence[Point]) -> FloatArray:
        """Predicted seconds per call for measured points (each must be of a kind in ``kinds``)."""
        for p in points:
            if p.kind not in self.kinds:
                raise ValueError(f"model {self.name!r} does not predict {p.kind!r} points")
        return _predict(self.name, self._coef(), points)


# --- fitting -----------------------------------------------------------------------------------


def assign_holdout(points: Iterable[Point], every: int) -> tuple[Point, ...]:
    """Mark every ``every``-th point of each series as held out (``every <= 1``: none).

    A series is the points of one kind (and one hidden size) in measurement order, which is
    increasing size. The last point of a series is never held out, so held-out error measures
    interpolation, not extrapolation: with ``every = 4``, indices 3, 7, 11... are held.
    """
    pts = tuple(points)
    series: dict[tuple[str, int], list[int]] = {}
    for i, p in enumerate(pts):
        hidden = p.param("hidden") if p.has_param("hidden") else 0
        series.setdefault((p.kind, hidden), []).append(i)
    held: set[int] = set()
    if every > 1:
        for members in series.values():
            for j, idx in enumerate(members[:-1]):
                if (j + 1) % every == 0:
                    held.add(idx)
    return tuple(replace(p, held_out=i in held) for i, p in enumerate(pts))


def infer_shape(points: Iterable[Point]) -> StepShape:
    """The layer shape of the largest GEMM among ``points``."""
    gemm = [p for p in points if p.kind in _GEMM_KINDS]
    if not gemm:
        raise CalibrationError(
            "cannot infer the layer shape: there is no decode_gemm or prefill_gemm point",
            hint="pass shape=StepShape(hidden=..., itemsize=...)",
        )
    widest = max(gemm, key=lambda p: p.param("hidden"))
    return StepShape(hidden=widest.param("hidden"), itemsize=widest.param("itemsize"))


def fit_step_time(
    points: Sequence[Point],
    *,
    model: str = PRIMARY_MODEL,
    shape: StepShape | None = None,
    holdout_every: int | None = DEFAULT_HOLDOUT_EVERY,
) -> FittedModel:
    """Fit one step-time model to measured points and score it on held-back points.

    ``holdout_every=None`` keeps the points' own ``held_out`` flags; an integer re-assigns them
    with ``assign_holdout``. Coefficients come from the training points only.

    >>> m = fit_step_time(profile.points)                # doctest: +SKIP
    >>> m.coefficient("s_per_byte"), m.held_out_error.mape  # doctest: +SKIP
    """
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODEL_NAMES)}")
    pts = tuple(points) if holdout_every is None else assign_holdout(points, holdout_every)
    shape = shape if shape is not None else infer_shape(pts)
    start = None
    if model == "roofline_max":
        start = fit_step_time(pts, model="roofline", shape=shape, holdout_every=None)
    return _fit(model, pts, shape, start)


def fit_models(
    points: Sequence[Point],
    *,
    shape: StepShape | None = None,
    holdout_every: int | None = DEFAULT_HOLDOUT_EVERY,
) -> tuple[tuple[Point, ...], tuple[FittedModel, ...]]:
    """Fit every model in ``MODEL_NAMES``; returns the points (with hold-out flags) and models."""
    pts = tuple(points) if holdout_every is None else assign_holdout(points, holdout_every)
    shape = shape if shape is not None else infer_shape(pts)
    roofline = _fit("roofline", pts, shape, None)
    models = (
        roofline,
        _fit("roofline_max", pts, shape, roofline),
        _fit("linear_tokens", pts, shape, None),
    )
    return pts, models


def _applicable(model: str, points: Sequence[Point], shape: StepShape) -> list[Point]:
    kinds = MODEL_KINDS[model]
    out = [p for p in points if p.kind in kinds]
    if model == "linear_tokens":
        # An empirical, shape-specific model: only the points measured at the predicted width.
        out = [p for p in out if not p.has_param("hidden") or p.param("hidden") == shape.hidden]
    return out


def _fit(
    model: str, points: Sequence[Point], shape: StepShape, start: FittedModel | None
) -> FittedModel:
    usable = _applicable(model, points, shape)
    train = [p for p in usable if not p.held_out]
    held = [p for p in usable if p.held_out]
    if not train:
        raise CalibrationError(
            f"no points to fit the {model} model on",
            hint=f"it needs points of kind {', '.join(MODEL_KINDS[model])}",
        )
    measured = np.array([p.median_s for p in train])
    if model == "roofline_max":
        x0 = (
            start._coef()
            if start is not None
            else _nnls_relative(_design("roofline", train), measured)
        )
        coef = _fit_max(train, measured, x0)
    else:
        coef = _nnls_relative(_design(model, train), measured)
    names = COEFFICIENT_NAMES[model]
    present = {p.kind for p in usable}
    return FittedModel(
        name=model,
        formula=FORMULAS[model],
        coefficients=tuple((n, float(v)) for n, v in zip(names, coef, strict=True)),
        shape=shape,
        kinds=tuple(k for k in MODEL_KINDS[model] if k in present),
        train_error=fit_error(_predict(model, coef, train), measured),
        held_out_error=fit_error(_predict(model, coef, held), [p.median_s for p in held]),
    )


def _design(model: str, points: Sequence[Point]) -> FloatArray:
    """The regression matrix: one row per point, one column per coefficient."""
    rows: list[list[float]] = []
    for p in points:
        if model == "linear_tokens":
            tokens, kv = point_features(p)
            is_attention = 1.0 if p.kind == "attention" else 0.0
            rows.append([1.0 - is_attention, is_attention, tokens, kv])
        else:
            rows.append([1.0, p.flops, p.bytes])
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(COEFFICIENT_NAMES[model]))


def _predict(model: str, coef: FloatArray, points: Sequence[Point]) -> FloatArray:
    if not points:
        return np.zeros(0)
    if model == "roofline_max":
        f = np.array([p.flops for p in points])
        b = np.array([p.bytes for p in points])
        return np.asarray(coef[0] + np.maximum(f * coef[1], b * coef[2]), dtype=np.float64)
    return np.asarray(_design(model, points) @ coef, dtype=np.float64)


def _nnls_relative(design: FloatArray, measured: FloatArray) -> FloatArray:
    """Nonnegative least squares on relative error: minimise sum((A x / t - 1)^2), x >= 0.

    Rows are divided by the measured time (times span several decades; absolute error would
    fit only the slowest points) and columns are scaled to unit norm for conditioning.
    """
    weighted = design / measured[:, None]
    scale = np.linalg.norm(weighted, axis=0)
    scale[scale == 0.0] = 1.0
    from scipy.optimize import nnls  # imported here: SciPy's optimizers are slow to import

    x, _ = nnls(weighted / scale, np.ones(len(measured)), maxiter=50 * design.shape[1])
    return np.asarray(x / scale, dtype=np.float64)


def _fit_max(train: Sequence[Point], measured: FloatArray, x0: FloatArray) -> FloatArray:
    """Bounded least squares (``scipy.optimize.least_squares``, TRF) for the max form."""
    f = np.array([p.flops for p in train])
    b = np.array([p.bytes for p in train])
    # Work in units of the starting point so the three unknowns are of order one.
    typical = np.array(
        [
            np.median(measured),
            np.median(measured) / max(float(np.max(f)), 1.0),
            np.median(measured) / max(float(np.max(b)), 1.0),
        ]
    )
    unit = np.where(x0 > 0.0, x0, typical)

    def residual(z: FloatArray) -> FloatArray:
        x = z * unit
        pred = x[0] + np.maximum(f * x[1], b * x[2])
        return np.asarray(pred / measured - 1.0, dtype=np.float64)

    fun: Callable[[FloatArray], FloatArray] = residual
    from scipy.optimize import least_squares

    result = least_squares(fun, np.ones(3), bounds=(0.0, np.inf), method="trf")
    return np.asarray(result.x * unit, dtype=np.float64)
