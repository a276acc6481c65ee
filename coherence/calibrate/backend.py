"""The array backend: CuPy on a CUDA GPU, NumPy on the CPU, behind one small interface.

This module owns everything that differs between the two: importing CuPy (the only place in the
project that does, and only when asked, never at import time), choosing the dtype, filling
arrays with seeded random data, synchronising the device, timing a call, and describing the
device and its software. The benchmark code is written once against ``backend.xp``.

Timing: on the GPU a repeat is bracketed by two ``cupy.cuda.Event`` records on the current
stream and read with ``cupy.cuda.get_elapsed_time`` after the end event has completed, so it
measures device time, not launch time. On the CPU NumPy calls are synchronous and a repeat is
timed with ``time.perf_counter``.
"""

from __future__ import annotations

import importlib
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from coherence.calibrate.errors import BackendUnavailableError

__all__ = [
    "BACKEND_CHOICES",
    "ArrayBackend",
    "BackendName",
    "DeviceInfo",
    "resolve_backend",
]

BackendName = Literal["cupy", "numpy"]
BACKEND_CHOICES: Final[tuple[str, ...]] = ("auto", "cupy", "numpy")

_GPU_HINT: Final = (
    "install the GPU extra on a machine with an NVIDIA GPU (pip install 'coherence[gpu]'), "
    "or run a CPU calibration with --backend numpy"
)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the benchmarks ran on. Fields that do not apply to the backend are ``None``."""

    name: str
    memory_bytes: int | None
    cpu_model: str
    cpu_count: int | None
    compute_capability: str | None = None
    cuda_driver_version: str | None = None
    cuda_runtime_version: str | None = None
    cupy_version: str | None = None


@dataclass(frozen=True, slots=True)
class ArrayBackend:
    """One array module and the device behind it.

    ``xp`` is the ``numpy`` or ``cupy`` module (typed ``Any``: CuPy ships no stubs).
    """

    name: BackendName
    xp: Any = field(repr=False)
    dtype: str

    @property
    def cpu_run(self) -> bool:
        return self.name == "numpy"

    @property
    def itemsize(self) -> int:
        return int(np.dtype(self.dtype).itemsize)

    def random(self, shape: tuple[int, ...], seed: int) -> Any:
        """A device array of ``shape`` in the backend dtype, standard normal scaled by 0.1."""
        if self.name == "cupy":
            rs = self.xp.random.RandomState(seed)
            values = rs.standard_normal(shape, dtype=self.xp.float32) * 0.1
        else:
            rng = np.random.default_rng(seed)
            values = rng.standard_normal(shape, dtype=np.float32) * 0.1
        return values.astype(self.dtype)

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return self.xp.zeros(shape, dtype=self.dtype)

    def synchronize(self) -> None:
        if self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()

    def time_call(self, fn: Callable[[], object], inner: int) -> float:
        """Seconds for ``inner`` back-to-back calls of ``fn``, measured on the device clock."""
        if self.name == "cupy":
            cuda = self.xp.cuda
            start, end = cuda.Event(), cuda.Event()
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            return float(cuda.get_elapsed_time(start, end)) / 1000.0
        begin = time.perf_counter()
        for _ in range(inner):
            fn()
        return time.perf_counter() - begin

    def release(self) -> None:
        """Give cached device memory back (between large benchmarks)."""
        if self.name == "cupy":
            self.xp.get_default_memory_pool().free_all_blocks()

    def device_info(self) -> DeviceInfo:
        cpu = _cpu_model()
        if self.name == "numpy":
            return DeviceInfo(
                name=cpu, memory_bytes=_host_memory(), cpu_model=cpu, cpu_count=os.cpu_count()
            )
        runtime = self.xp.cuda.runtime
        props = runtime.getDeviceProperties(self.xp.cuda.Device().id)
        raw_name = props.get("name", b"CUDA device")
        name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
        return DeviceInfo(
            name=name,
            memory_bytes=int(props.get("totalGlobalMem", 0)) or None,
            cpu_model=cpu,
            cpu_count=os.cpu_count(),
            compute_capability=f"{props.get('major', '?')}.{props.get('minor', '?')}",
            cuda_driver_version=_cuda_version(runtime.driverGetVersion()),
            cuda_runtime_version=_cuda_version(runtime.runtimeGetVersion()),
            cupy_version=str(self.xp.__version__),
        )


def resolve_backend(name: str) -> ArrayBackend:
    """Choose the array backend: ``"cupy"``, ``"numpy"`` or ``"auto"``.

    ``auto`` takes CuPy when it imports and sees at least one CUDA device, NumPy otherwise.
    Asking for ``cupy`` where it cannot run raises ``BackendUnavailableError`` with a hint.

    >>> resolve_backend("numpy").dtype
    'float32'
    """
    if name not in BACKEND_CHOICES:
        raise BackendUnavailableError(
            f"unknown backend {name!r}", hint=f"choose one of: {', '.join(BACKEND_CHOICES)}"
        )
    if name == "numpy":
        return ArrayBackend(name="numpy", xp=np, dtype="float32")
    try:
        cupy = _load_cupy()
    except BackendUnavailableError:
        if name == "auto":
            return ArrayBackend(name="numpy", xp=np, dtype="float32")
        raise
    return ArrayBackend(name="cupy", xp=cupy, dtype="float16")


def _load_cupy() -> Any:
    """Import CuPy and check that a CUDA device answers. Imported here and nowhere else."""
    try:
        cupy = importlib.import_module("cupy")
    except Exception as exc:  # ImportError, or a broken CUDA install failing at import
        raise BackendUnavailableError(
            f"backend 'cupy' is not available: {exc}", hint=_GPU_HINT
        ) from exc
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # cupy.cuda.runtime.CUDARuntimeError: no driver, no device
        raise BackendUnavailableError(
            f"backend 'cupy' found no usable CUDA device: {exc}", hint=_GPU_HINT
        ) from exc
    if count < 1:
        raise BackendUnavailableError("backend 'cupy' found no CUDA device", hint=_GPU_HINT)
    return cupy


def _cuda_version(code: int) -> str:
    """CUDA encodes versions as 1000 * major + 10 * minor (12040 is 12.4)."""
    return f"{code // 1000}.{(code % 1000) // 10}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _host_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None
