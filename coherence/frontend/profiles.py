"""Calibration profiles in specs: binding parameters and plant functions to measurements.

A spec declares ``profile h100 = "profiles/h100.json"`` (relative to the spec file). Then:

- ``param step_base = 12 ms from h100.step_time(1)``: the spec keeps its own value (what it
  assumes); the measured value is recorded as a binding, which ``coherence validate``
  compares and substitutes.
- ``let step = h100.step_time(batch)``: a plant function of the profile's primary model,
  lowered to a continuous piecewise-linear function of its argument (hinge form over a
  geometric grid of batch sizes). Because it is an ordinary IR expression, the simulator, the
  linearization (its slope is the slope of the active segment, which follows the fitted
  model's derivative) and the SMT encoding (``max(0, x - x_i)`` terms are linear) all read
  the same binding, and the SMT encoding of it is exact, not an approximation of a curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coherence.frontend.units import TIME, Dim
from coherence.ir import nodes as ir

TOK_PER_S = Dim.base("tok") / TIME

# function -> (dimension of the result, doc)
PROFILE_FUNCTIONS: dict[str, tuple[Dim, str]] = {
    "step_time": (TIME, "seconds per decode step with `batch` running sequences"),
    "throughput": (TOK_PER_S, "decode tokens per second: batch / step_time(batch)"),
    "throughput_gain": (TOK_PER_S, "d throughput / d batch, tokens per second per sequence"),
    "step_time_slope": (TIME, "d step_time / d batch: seconds per additional running sequence"),
}
# keys usable as `from PROFILE.KEY` without arguments
PROFILE_KEYS: dict[str, tuple[Dim, str]] = {
    "overhead": (TIME, "the fixed per-step overhead of the primary model"),
}

GRID = tuple(float(round(2 ** (k / 2), 6)) for k in range(0, 25))  # 1 .. 4096, sqrt(2) steps


@dataclass(frozen=True, slots=True)
class LoadedProfile:
    name: str
    path: str
    profile: Any  # coherence.calibrate.Profile (imported lazily: it pulls in SciPy)


def load(path: Path) -> Any:
    """Load a profile; raises ProfileError (from coherence.calibrate) with a clear message."""
    from coherence.calibrate import load_profile

    return load_profile(path)


def evaluate(profile: Any, fn: str, x: np.ndarray) -> np.ndarray:
    model = profile.model()
    if fn == "step_time":
        return np.asarray(model.step_time(x), dtype=float)
    if fn == "throughput":
        return np.asarray(model.throughput(x), dtype=float)
    if fn == "throughput_gain":
        return np.asarray(model.throughput_gain(x), dtype=float)
    if fn == "step_time_slope":
        return np.asarray(model.step_time_slope(x), dtype=float)
    raise KeyError(fn)


def key_value(profile: Any, key: str, args: tuple[float, ...]) -> float:
    if key in PROFILE_FUNCTIONS:
        if len(args) != 1:
            raise ValueError(f"`{key}` takes one argument (the batch size)")
        return float(evaluate(profile, key, np.array([args[0]]))[0])
    if key == "overhead":
        model = profile.model()
        return float(model.coefficient(model.coefficients[0][0]))
    raise KeyError(key)


def pwl(profile: Any, fn: str, arg: ir.Expr) -> ir.Expr:
    """The profile function as a continuous piecewise-linear expression of ``arg``.

    y(x) = y0 + s0 (x - x0) + sum_i (s_i - s_{i-1}) max(0, x - x_i), exact at the grid points.
    """
    xs = np.array(GRID)
    ys = evaluate(profile, fn, xs)
    if not np.all(np.isfinite(ys)):
        raise ValueError(f"`{fn}` is not finite over batch sizes 1 to {GRID[-1]:g}")
    slopes = np.diff(ys) / np.diff(xs)
    expr: ir.Expr = ir.Binary(
        "+",
        ir.Const(float(ys[0])),
        ir.Binary("*", ir.Const(float(slopes[0])), ir.Binary("-", arg, ir.Const(float(xs[0])))),
    )
    for i in range(1, len(slopes)):
        ds = float(slopes[i] - slopes[i - 1])
        if ds == 0.0:
            continue
        hinge = ir.Call("max", (ir.Const(0.0), ir.Binary("-", arg, ir.Const(float(xs[i])))))
        expr = ir.Binary("+", expr, ir.Binary("*", ir.Const(ds), hinge))
    return expr
