"""Hardware calibration: measure the serving plant, fit its step-time model, write a profile.

This stage owns turning a machine into numbers a spec can bind to. The pipeline, one module per
step:

    backend      pick the array module: CuPy on a CUDA GPU, NumPy on the CPU (``auto`` chooses)
    benchmarks   time the stand-in serving step (GEMMs, attention, copy, overhead) per preset
    models       fit ``roofline`` (primary), ``roofline_max`` and ``linear_tokens`` by
                 nonnegative least squares; score them on held-back points
    profile      the profile (frozen dataclasses) and its JSON form, checked against
                 ``profile.schema.json`` on load
    command      ``coherence calibrate``: options, progress bar, summary, exit code

This is the only code in the project that imports CuPy, and it does so lazily, inside
``backend.resolve_backend``; importing this package never does.

>>> from coherence.calibrate import run_calibration, write_profile, load_profile
>>> profile = run_calibration("numpy", "quick", seed=0)       # a CPU run, a second or so
>>> path = write_profile(profile, "cpu.json")                 # doctest: +SKIP
>>> load_profile(path).throughput_gain([8, 64])               # doctest: +SKIP
"""

from __future__ import annotations

from coherence.calibrate.backend import ArrayBackend, DeviceInfo, resolve_backend
from coherence.calibrate.benchmarks import PRESETS, Preset, ProgressCallback
from coherence.calibrate.calibration import run_calibration
from coherence.calibrate.errors import BackendUnavailableError, CalibrationError, ProfileError
from coherence.calibrate.models import (
    MODEL_NAMES,
    PRIMARY_MODEL,
    FitError,
    FittedModel,
    assign_holdout,
    fit_error,
    fit_models,
    fit_step_time,
)
from coherence.calibrate.profile import (
    Profile,
    Software,
    Timing,
    load_profile,
    profile_from_json,
    profile_to_json,
    write_profile,
)
from coherence.calibrate.workload import Point, StepShape

__all__ = [
    "MODEL_NAMES",
    "PRESETS",
    "PRIMARY_MODEL",
    "ArrayBackend",
    "BackendUnavailableError",
    "CalibrationError",
    "DeviceInfo",
    "FitError",
    "FittedModel",
    "Point",
    "Preset",
    "Profile",
    "ProfileError",
    "ProgressCallback",
    "Software",
    "StepShape",
    "Timing",
    "assign_holdout",
    "fit_error",
    "fit_models",
    "fit_step_time",
    "load_profile",
    "profile_from_json",
    "profile_to_json",
    "resolve_backend",
    "run_calibration",
    "write_profile",
]
