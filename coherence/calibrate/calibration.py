"""The calibration pipeline: backend -> benchmarks -> fits -> profile.

This module owns running a whole calibration as one function call. It takes a backend name, a
preset and a seed and returns a ``Profile``; it does not print and does not write files (the
command does both).
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime

import numpy as np
import scipy

import coherence
from coherence.calibrate.backend import resolve_backend
from coherence.calibrate.benchmarks import Preset, ProgressCallback, get_preset, measure
from coherence.calibrate.errors import CalibrationError
from coherence.calibrate.models import DEFAULT_HOLDOUT_EVERY, PRIMARY_MODEL, fit_models
from coherence.calibrate.profile import Profile, Software, Timing
from coherence.calibrate.workload import StepShape

__all__ = ["run_calibration", "software_versions"]


def software_versions() -> Software:
    return Software(
        coherence=coherence.__version__,
        python=platform.python_version(),
        numpy=np.__version__,
        scipy=scipy.__version__,
        platform=platform.platform(),
    )


def run_calibration(
    backend: str = "auto",
    preset: str | Preset = "standard",
    seed: int = 0,
    progress_callback: ProgressCallback | None = None,
    *,
    holdout_every: int = DEFAULT_HOLDOUT_EVERY,
) -> Profile:
    """Measure this machine and fit the step-time models.

    ``backend`` is ``"cupy"``, ``"numpy"`` or ``"auto"``; ``preset`` is ``"quick"``,
    ``"standard"``, ``"full"`` or a ``Preset``; ``seed`` fixes the operand data (timings are
    measurements and vary from run to run). ``progress_callback(done, total, label)`` is called
    after each benchmark. Raises ``BackendUnavailableError`` when ``cupy`` is asked for and
    cannot run, ``CalibrationError`` for a bad preset or seed.

    >>> profile = run_calibration("numpy", "quick", seed=0)
    >>> profile.cpu_run, profile.primary_model
    (True, 'roofline')
    """
    if seed < 0:
        raise CalibrationError(f"seed must be >= 0, got {seed}")
    if holdout_every < 0:
        raise CalibrationError(f"holdout_every must be >= 0, got {holdout_every}")
    chosen = get_preset(preset) if isinstance(preset, str) else preset
    array_backend = resolve_backend(backend)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = measure(array_backend, chosen, seed, progress_callback)
    shape = StepShape(hidden=chosen.hiddens[-1], itemsize=array_backend.itemsize)
    points, models = fit_models(raw, shape=shape, holdout_every=holdout_every)
    return Profile(
        created_utc=created,
        backend=array_backend.name,
        cpu_run=array_backend.cpu_run,
        preset=chosen.name,
        seed=seed,
        dtype=array_backend.dtype,
        device=array_backend.device_info(),
        software=software_versions(),
        timing=Timing(
            warmup=chosen.warmup,
            repeats=chosen.repeats,
            min_repeat_s=chosen.min_repeat_s,
            max_inner=chosen.max_inner,
        ),
        holdout_every=holdout_every,
        shape=shape,
        primary_model=PRIMARY_MODEL,
        models=models,
        points=points,
    )
