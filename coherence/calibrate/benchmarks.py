"""Micro-benchmarks that stand in for an LLM serving step, and the presets that size them.

This stage owns *what* is measured and *how* it is timed. It takes an ``ArrayBackend`` and a
``Preset`` and returns measured ``Point`` values; it never fits and never prints. The code is
written once against ``backend.xp`` and runs unchanged on NumPy and CuPy.

Benchmarks (sizes from the preset):

``overhead``      a one-element in-place add: the fixed per-step cost (launch, dispatch).
``copy``          a large device-to-device copy: attainable memory bandwidth.
``decode_gemm``   ``(batch x hidden) @ (hidden x hidden)`` over a geometric grid of batch sizes.
``prefill_gemm``  the same GEMM over prompt token counts.
``attention``     batched ``q @ K^T`` then ``p @ V`` over KV lengths (heads = hidden / head_dim).

Each benchmark is warmed up, then auto-ranged (enough back-to-back calls per repeat to last
``min_repeat_s``, so clock resolution and launch jitter do not dominate), then timed
``repeats`` times with the device synchronised around every repeat. A point records the median
time per call and its spread (10th/90th percentiles and interquartile range).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from coherence.calibrate.backend import ArrayBackend
from coherence.calibrate.errors import CalibrationError
from coherence.calibrate.workload import (
    Point,
    attention_cost,
    copy_cost,
    gemm_cost,
)

__all__ = [
    "PRESETS",
    "Case",
    "Preset",
    "ProgressCallback",
    "geometric",
    "get_preset",
    "measure",
    "plan",
]

ProgressCallback = Callable[[int, int, str], None]
"""Called after each benchmark as ``callback(done, total, label)``."""


def geometric(lo: int, hi: int, factor: int = 2) -> tuple[int, ...]:
    """``lo, lo*factor, ...`` up to and including ``hi``: ``geometric(1, 8) == (1, 2, 4, 8)``."""
    out: list[int] = []
    value = lo
    while value <= hi:
        out.append(value)
        value *= factor
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Preset:
    """Benchmark sizes and timing effort. The last of ``hiddens`` is the predicted width."""

    name: str
    hiddens: tuple[int, ...]
    decode_batches: tuple[int, ...]
    prefill_tokens: tuple[int, ...]
    attention_batch: int
    kv_lens: tuple[int, ...]
    head_dim: int
    copy_elements: tuple[int, ...]
    warmup: int
    repeats: int
    min_repeat_s: float
    max_inner: int


PRESETS: Final[dict[str, Preset]] = {
    # A few seconds on a 2-core CPU; what the tests run.
    "quick": Preset(
        name="quick",
        hiddens=(256,),
        decode_batches=geometric(1, 64),
        prefill_tokens=geometric(128, 1024),
        attention_batch=4,
        kv_lens=geometric(64, 1024),
        head_dim=64,
        copy_elements=geometric(1 << 18, 1 << 21),
        warmup=2,
        repeats=5,
        min_repeat_s=1e-3,
        max_inner=1000,
    ),
    # About a minute on a laptop CPU, seconds on a GPU.
    "standard": Preset(
        name="standard",
        hiddens=(1024,),
        decode_batches=geometric(1, 256),
        prefill_tokens=geometric(256, 2048),
        attention_batch=8,
        kv_lens=geometric(256, 4096),
        head_dim=128,
        copy_elements=geometric(1 << 22, 1 << 25),
        warmup=3,
        repeats=9,
        min_repeat_s=5e-3,
        max_inner=2000,
    ),
    # For a real GPU: LLM-sized layers. Needs about 20 GB of device memory.
    "full": Preset(
        name="full",
        hiddens=(4096, 8192),
        decode_batches=geometric(1, 512),
        prefill_tokens=geometric(512, 16384),
        attention_batch=16,
        kv_lens=geometric(512, 16384),
        head_dim=128,
        copy_elements=geometric(1 << 26, 1 << 30),
        warmup=5,
        repeats=15,
        min_repeat_s=2e-2,
        max_inner=10000,
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise CalibrationError(
            f"unknown preset {name!r}", hint=f"choose one of: {', '.join(PRESETS)}"
        ) from None


@dataclass(frozen=True, slots=True)
class Case:
    """One benchmark to run: its kind, sorted size parameters and roofline features."""

    kind: str
    size: tuple[tuple[str, int], ...]
    flops: float
    bytes: float

    @property
    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.size if k != "itemsize")
        return f"{self.kind} ({shown})"

    def param(self, name: str) -> int:
        return dict(self.size)[name]


def plan(preset: Preset, itemsize: int) -> tuple[Case, ...]:
    """Every benchmark of ``preset``, in run order: overhead, copies, then per width the GEMMs
    and attention, each series in increasing size."""
    cases: list[Case] = []

    def add(kind: str, flops: float, traffic: float, **size: int) -> None:
        cases.append(Case(kind, tuple(sorted(size.items())), float(flops), float(traffic)))

    f, b = copy_cost(1, itemsize)
    add("overhead", float(f), float(b), elements=1, itemsize=itemsize)
    for n in preset.copy_elements:
        f, b = copy_cost(n, itemsize)
        add("copy", float(f), float(b), elements=n, itemsize=itemsize)
    for h in preset.hiddens:
        for batch in preset.decode_batches:
            f, b = gemm_cost(batch, h, itemsize)
            add("decode_gemm", float(f), float(b), batch=batch, hidden=h, itemsize=itemsize)
        for tokens in preset.prefill_tokens:
            f, b = gemm_cost(tokens, h, itemsize)
            add("prefill_gemm", float(f), float(b), tokens=tokens, hidden=h, itemsize=itemsize)
        for kv in preset.kv_lens:
            f, b = attention_cost(preset.attention_batch, kv, h, itemsize)
            add(
                "attention",
                float(f),
                float(b),
                batch=preset.attention_batch,
                kv_len=kv,
                hidden=h,
                head_dim=preset.head_dim,
                itemsize=itemsize,
            )
    return tuple(cases)


def _build(backend: ArrayBackend, case: Case, seed: int) -> Callable[[], Any]:
    """Allocate the operands of ``case`` and return the call to time (written against ``xp``)."""
    xp = backend.xp
    seeds = np.random.SeedSequence(seed).generate_state(4)
    p = case.param
    if case.kind == "overhead":
        tiny = backend.zeros((1,))
        return lambda: xp.add(tiny, 1, out=tiny)
    if case.kind == "copy":
        src = backend.random((p("elements"),), int(seeds[0]))
        dst = backend.zeros((p("elements"),))
        return lambda: xp.copyto(dst, src)
    if case.kind in ("decode_gemm", "prefill_gemm"):
        rows = p("batch") if case.kind == "decode_gemm" else p("tokens")
        h = p("hidden")
        x = backend.random((rows, h), int(seeds[0]))
        w = backend.random((h, h), int(seeds[1]))
        out = backend.zeros((rows, h))
        return lambda: xp.matmul(x, w, out=out)
    if case.kind == "attention":
        n = p("batch") * (p("hidden") // p("head_dim"))  # sequences x heads
        d, kv = p("head_dim"), p("kv_len")
        q = backend.random((n, 1, d), int(seeds[0]))
        k_t = backend.random((n, d, kv), int(seeds[1]))  # keys stored transposed
        v = backend.random((n, kv, d), int(seeds[2]))
        scores = backend.zeros((n, 1, kv))
        out = backend.zeros((n, 1, d))

        def attend() -> Any:
            xp.matmul(q, k_t, out=scores)
            return xp.matmul(scores, v, out=out)

        return attend
    raise CalibrationError(f"internal: no benchmark for kind {case.kind!r}")


def _time_case(backend: ArrayBackend, case: Case, preset: Preset, seed: int) -> Point:
    fn = _build(backend, case, seed)
    for _ in range(preset.warmup):
        fn()
    backend.synchronize()
    # Auto-range: enough calls per repeat that one repeat lasts min_repeat_s.
    once = max(backend.time_call(fn, 1), 1e-9)
    inner = min(preset.max_inner, max(1, math.ceil(preset.min_repeat_s / once)))
    samples = np.empty(preset.repeats)
    for i in range(preset.repeats):
        backend.synchronize()
        samples[i] = backend.time_call(fn, inner) / inner
    del fn
    backend.release()
    p10, p25, p50, p75, p90 = np.percentile(samples, [10, 25, 50, 75, 90])
    return Point(
        kind=case.kind,
        size=case.size,
        flops=case.flops,
        bytes=case.bytes,
        median_s=float(p50),
        p10_s=float(p10),
        p90_s=float(p90),
        iqr_s=float(p75 - p25),
        repeats=preset.repeats,
        inner=inner,
    )


def measure(
    backend: ArrayBackend,
    preset: Preset,
    seed: int,
    progress: ProgressCallback | None = None,
) -> tuple[Point, ...]:
    """Run every benchmark of ``preset`` on ``backend``; operand data is seeded by ``seed``."""
    cases = plan(preset, backend.itemsize)
    points: list[Point] = []
    for index, case in enumerate(cases):
        try:
            points.append(_time_case(backend, case, preset, seed * 100_003 + index))
        except CalibrationError:
            raise
        except Exception as exc:  # e.g. cupy.cuda.memory.OutOfMemoryError, MemoryError
            backend.release()
            raise CalibrationError(
                f"benchmark {case.label} failed on {backend.name}: {type(exc).__name__}: {exc}",
                hint="try a smaller --preset (quick or standard)",
            ) from exc
        if progress is not None:
            progress(index + 1, len(cases), case.label)
    return tuple(points)
