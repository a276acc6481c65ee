"""What one stand-in serving step costs: operation kinds, their work and traffic, and raw points.

This module owns the arithmetic that ties a benchmark size to the two roofline features of an
operation (floating-point operations and bytes moved) and to the two serving features of the
linear-in-tokens model (new tokens and KV tokens read). The benchmarks use it to label what they
measured; the fitted models use it to predict an unseen step. Both go through the same
functions, so a prediction and a measurement always count work the same way.

The stand-in for one transformer layer of an LLM serving step is:

* a GEMM of ``tokens`` rows against a ``hidden x hidden`` weight (the decode step has one row per
  sequence, a prefill chunk one row per prompt token);
* an attention-like batched product: for each of ``batch`` sequences, the new query against
  ``context`` cached keys, then the scores against ``context`` cached values;
* a fixed per-step overhead (kernel launch, dispatch).

Only dominant terms are counted (the query and output vectors of attention are left out), which
is what a roofline needs: Williams, Waterman and Patterson, "Roofline: an insightful visual
performance model for multicore architectures", CACM 52(4), 2009.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "KINDS",
    "SIZE_KEYS",
    "BenchmarkKind",
    "Point",
    "StepShape",
    "attention_cost",
    "copy_cost",
    "gemm_cost",
    "point_features",
    "step_features",
]

BenchmarkKind = Literal["overhead", "copy", "decode_gemm", "prefill_gemm", "attention"]

KINDS: Final[tuple[BenchmarkKind, ...]] = (
    "overhead",
    "copy",
    "decode_gemm",
    "prefill_gemm",
    "attention",
)

# The size parameters each kind records, in order.
SIZE_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "overhead": ("elements", "itemsize"),
    "copy": ("elements", "itemsize"),
    "decode_gemm": ("batch", "hidden", "itemsize"),
    "prefill_gemm": ("tokens", "hidden", "itemsize"),
    "attention": ("batch", "kv_len", "hidden", "head_dim", "itemsize"),
}

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StepShape:
    """The layer shape that predictions are made for.

    ``hidden`` is the model width, ``itemsize`` the bytes per element of the measured dtype.
    """

    hidden: int
    itemsize: int


def gemm_cost(rows: ArrayLike, hidden: int, itemsize: int) -> tuple[FloatArray, FloatArray]:
    """Work and traffic of ``(rows x hidden) @ (hidden x hidden)``.

    flops = 2 * rows * hidden^2; bytes = itemsize * (hidden^2 + 2 * rows * hidden): the weight
    is read once, the activations are read and the output written.
    """
    r = np.asarray(rows, dtype=np.float64)
    h = float(hidden)
    flops = 2.0 * r * h * h
    traffic = float(itemsize) * (h * h + 2.0 * r * h)
    return flops, traffic


def attention_cost(
    batch: ArrayLike, context: ArrayLike, hidden: int, itemsize: int
) -> tuple[FloatArray, FloatArray]:
    """Work and traffic of decode attention: ``batch`` queries over ``context`` cached tokens.

    Per sequence and head, q.K^T and p.V are two products of length ``context * head_dim``, so
    over all heads flops = 4 * batch * context * hidden; the K and V caches are read once:
    bytes = 2 * itemsize * batch * context * hidden. Both are zero when ``context`` is zero.
    """
    b = np.asarray(batch, dtype=np.float64)
    c = np.asarray(context, dtype=np.float64)
    h = float(hidden)
    flops = 4.0 * b * c * h
    traffic = 2.0 * float(itemsize) * b * c * h
    return flops, traffic


def copy_cost(elements: ArrayLike, itemsize: int) -> tuple[FloatArray, FloatArray]:
    """A device-to-device copy reads and writes every element: no flops, 2 * n * itemsize bytes."""
    n = np.asarray(elements, dtype=np.float64)
    return np.zeros_like(n), 2.0 * float(itemsize) * n


def step_features(
    shape: StepShape, batch: ArrayLike, tokens: ArrayLike, context: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Flops and bytes of one stand-in step: the GEMM over ``tokens`` plus attention."""
    gf, gb = gemm_cost(tokens, shape.hidden, shape.itemsize)
    af, ab = attention_cost(batch, context, shape.hidden, shape.itemsize)
    return gf + af, gb + ab


@dataclass(frozen=True, slots=True)
class Point:
    """One measured benchmark: what was run, how big, and how long it took.

    ``size`` holds the size parameters as sorted ``(name, value)`` pairs (see ``SIZE_KEYS``).
    ``flops`` and ``bytes`` are the roofline features of the operation, counted by the cost
    functions above. Times are in seconds per call: the median over ``repeats`` timed repeats,
    each of ``inner`` back-to-back calls, with the 10th and 90th percentiles and the
    interquartile range as the spread. ``held_out`` marks a point kept out of every fit and used
    only to measure prediction error.
    """

    kind: str
    size: tuple[tuple[str, int], ...]
    flops: float
    bytes: float
    median_s: float
    p10_s: float
    p90_s: float
    iqr_s: float
    repeats: int
    inner: int = 1
    held_out: bool = False

    def param(self, name: str) -> int:
        """The size parameter ``name`` (raises ``KeyError`` naming it if absent)."""
        for key, value in self.size:
            if key == name:
                return value
        raise KeyError(f"{self.kind} point has no size parameter {name!r}")

    def has_param(self, name: str) -> bool:
        return any(key == name for key, _ in self.size)


def point_features(point: Point) -> tuple[float, float]:
    """``(tokens, kv_tokens)`` of a point, the features of the linear-in-tokens model.

    A decode GEMM processes one new token per sequence; a prefill GEMM ``tokens`` tokens; the
    attention benchmark reads ``batch * kv_len`` cached tokens; overhead and copy neither.
    """
    if point.kind == "decode_gemm":
        return float(point.param("batch")), 0.0
    if point.kind == "prefill_gemm":
        return float(point.param("tokens")), 0.0
    if point.kind == "attention":
        return 0.0, float(point.param("batch") * point.param("kv_len"))
    return 0.0, 0.0
