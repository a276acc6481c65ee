"""The calibration profile: what was measured, on what, and the models fitted to it.

This module owns the profile's data model (frozen dataclasses), its JSON form, and reading and
writing it. ``write_profile`` refuses to write a profile that would not load back;
``load_profile`` checks the document against ``profile.schema.json`` (with the package's own
validator, so the runtime needs no ``jsonschema``), then checks what a schema cannot say (that
``cpu_run`` agrees with the backend, that every point has the size parameters of its kind, that
the primary model is present). Anything wrong is a ``ProfileError`` naming the file and field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coherence.calibrate.backend import DeviceInfo
from coherence.calibrate.errors import ProfileError
from coherence.calibrate.models import (
    COEFFICIENT_NAMES,
    FORMULAS,
    FitError,
    FittedModel,
)
from coherence.calibrate.schema import validate
from coherence.calibrate.workload import SIZE_KEYS, Point, StepShape

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "Profile",
    "Software",
    "Timing",
    "load_profile",
    "profile_from_json",
    "profile_to_json",
    "write_profile",
]

FORMAT: Final = "coherence-calibration-profile"
SCHEMA_VERSION: Final = 1

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Software:
    """Versions of the software that produced the profile."""

    coherence: str
    python: str
    numpy: str
    scipy: str
    platform: str


@dataclass(frozen=True, slots=True)
class Timing:
    """How hard each benchmark was timed (copied from the preset)."""

    warmup: int
    repeats: int
    min_repeat_s: float
    max_inner: int


@dataclass(frozen=True, slots=True)
class Profile:
    """A calibration profile. ``cpu_run`` is true when the points describe a CPU, not a GPU.

    ``models`` are the fitted models, ``primary_model`` names the one that ``step_time``,
    ``throughput`` and ``throughput_gain`` use; ``predict`` reaches any model by name.
    ``source`` is the file it was loaded from (not part of equality).

    >>> profile = load_profile("specs/profiles/h100.json")      # doctest: +SKIP
    >>> profile.predict("roofline", batch=[1, 8, 64], context=2048)  # doctest: +SKIP
    >>> profile.throughput_gain(32)                              # doctest: +SKIP
    """

    created_utc: str
    backend: str
    cpu_run: bool
    preset: str
    seed: int
    dtype: str
    device: DeviceInfo
    software: Software
    timing: Timing
    holdout_every: int
    shape: StepShape
    primary_model: str
    models: tuple[FittedModel, ...]
    points: tuple[Point, ...]
    schema_version: int = SCHEMA_VERSION
    source: str | None = field(default=None, compare=False)

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    def model(self, name: str | None = None) -> FittedModel:
        """The fitted model ``name`` (default: the primary one)."""
        wanted = self.primary_model if name is None else name
        for m in self.models:
            if m.name == wanted:
                return m
        raise ProfileError(
            f"no model named {wanted!r}; this profile has: {', '.join(self.model_names)}",
            path=self.source,
            field="models",
        )

    def predict(
        self,
        model_name: str,
        *,
        batch: ArrayLike,
        tokens: ArrayLike | None = None,
        context: ArrayLike | None = None,
    ) -> FloatArray:
        """Step time in seconds from the model ``model_name`` (see ``FittedModel.step_time``)."""
        return self.model(model_name).step_time(batch, tokens, context)

    def step_time(
        self,
        batch: ArrayLike,
        tokens: ArrayLike | None = None,
        context: ArrayLike | None = None,
    ) -> FloatArray:
        return self.model().step_time(batch, tokens, context)

    def throughput(self, batch: ArrayLike, context: ArrayLike | None = None) -> FloatArray:
        return self.model().throughput(batch, context)

    def throughput_gain(self, batch: ArrayLike, context: ArrayLike | None = None) -> FloatArray:
        return self.model().throughput_gain(batch, context)


# --- JSON form ---------------------------------------------------------------------------------


def _fit_error_json(e: FitError) -> dict[str, Any]:
    return {"n": e.n, "mape": e.mape, "max_rel": e.max_rel}


def profile_to_json(profile: Profile) -> dict[str, Any]:
    """The profile as a JSON-ready dict, in the key order of the schema."""
    d = profile.device
    return {
        "format": FORMAT,
        "schema_version": profile.schema_version,
        "created_utc": profile.created_utc,
        "cpu_run": profile.cpu_run,
        "backend": profile.backend,
        "preset": profile.preset,
        "seed": profile.seed,
        "dtype": profile.dtype,
        "device": {
            "name": d.name,
            "memory_bytes": d.memory_bytes,
            "cpu_model": d.cpu_model,
            "cpu_count": d.cpu_count,
            "compute_capability": d.compute_capability,
            "cuda_driver_version": d.cuda_driver_version,
            "cuda_runtime_version": d.cuda_runtime_version,
            "cupy_version": d.cupy_version,
        },
        "software": {
            "coherence": profile.software.coherence,
            "python": profile.software.python,
            "numpy": profile.software.numpy,
            "scipy": profile.software.scipy,
            "platform": profile.software.platform,
        },
        "timing": {
            "warmup": profile.timing.warmup,
            "repeats": profile.timing.repeats,
            "min_repeat_s": profile.timing.min_repeat_s,
            "max_inner": profile.timing.max_inner,
        },
        "holdout_every": profile.holdout_every,
        "shape": {"hidden": profile.shape.hidden, "itemsize": profile.shape.itemsize},
        "primary_model": profile.primary_model,
        "models": {
            m.name: {
                "formula": m.formula,
                "coefficients": dict(m.coefficients),
                "kinds": list(m.kinds),
                "fit_error": {
                    "train": _fit_error_json(m.train_error),
                    "held_out": _fit_error_json(m.held_out_error),
                },
            }
            for m in profile.models
        },
        "points": [
            {
                "kind": p.kind,
                "size": dict(p.size),
                "flops": p.flops,
                "bytes": p.bytes,
                "median_s": p.median_s,
                "p10_s": p.p10_s,
                "p90_s": p.p90_s,
                "iqr_s": p.iqr_s,
                "repeats": p.repeats,
                "inner": p.inner,
                "held_out": p.held_out,
            }
            for p in profile.points
        ],
    }


def _fit_error(data: Mapping[str, Any]) -> FitError:
    mape, max_rel = data["mape"], data["max_rel"]
    return FitError(
        n=int(data["n"]),
        mape=None if mape is None else float(mape),
        max_rel=None if max_rel is None else float(max_rel),
    )


def profile_from_json(data: object, *, source: str | None = None) -> Profile:
    """Check a decoded JSON document and build the ``Profile`` (``ProfileError`` if malformed)."""
    if isinstance(data, dict) and data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ProfileError(
            f"schema version {data['schema_version']!r} is not supported; this coherence "
            f"reads version {SCHEMA_VERSION} (re-run `coherence calibrate` to regenerate)",
            path=source,
            field="schema_version",
        )
    violations = validate(data)
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more problem(s))" if len(violations) > 1 else ""
        raise ProfileError(first.message + more, path=source, field=first.field)
    assert isinstance(data, dict)  # the schema says so

    backend = data["backend"]
    if data["cpu_run"] != (backend == "numpy"):
        raise ProfileError(
            f"cpu_run is {json.dumps(data['cpu_run'])} but backend is {backend!r} "
            "(a numpy profile is a CPU run, a cupy profile is not)",
            path=source,
            field="cpu_run",
        )
    if data["primary_model"] not in data["models"]:
        raise ProfileError(
            f"{data['primary_model']!r} is not among the models "
            f"({', '.join(data['models']) or 'none'})",
            path=source,
            field="primary_model",
        )
    points: list[Point] = []
    for i, p in enumerate(data["points"]):
        for key in SIZE_KEYS[p["kind"]]:
            if key not in p["size"]:
                raise ProfileError(
                    f"is required for a {p['kind']} point but missing",
                    path=source,
                    field=f"points[{i}].size.{key}",
                )
        points.append(
            Point(
                kind=p["kind"],
                size=tuple(sorted((str(k), int(v)) for k, v in p["size"].items())),
                flops=float(p["flops"]),
                bytes=float(p["bytes"]),
                median_s=float(p["median_s"]),
                p10_s=float(p["p10_s"]),
                p90_s=float(p["p90_s"]),
                iqr_s=float(p["iqr_s"]),
                repeats=int(p["repeats"]),
                inner=int(p["inner"]),
                held_out=bool(p["held_out"]),
            )
        )
    shape = StepShape(hidden=int(data["shape"]["hidden"]), itemsize=int(data["shape"]["itemsize"]))
    models = tuple(
        FittedModel(
            name=name,
            formula=FORMULAS[name],
            coefficients=tuple((c, float(m["coefficients"][c])) for c in COEFFICIENT_NAMES[name]),
            shape=shape,
            kinds=tuple(m["kinds"]),
            train_error=_fit_error(m["fit_error"]["train"]),
            held_out_error=_fit_error(m["fit_error"]["held_out"]),
        )
        for name, m in data["models"].items()
    )
    dev = data["device"]
    sw = data["software"]
    timing = data["timing"]
    return Profile(
        created_utc=data["created_utc"],
        backend=backend,
        cpu_run=bool(data["cpu_run"]),
        preset=data["preset"],
        seed=int(data["seed"]),
        dtype=data["dtype"],
        device=DeviceInfo(
            name=dev["name"],
            memory_bytes=None if dev["memory_bytes"] is None else int(dev["memory_bytes"]),
            cpu_model=dev["cpu_model"],
            cpu_count=None if dev["cpu_count"] is None else int(dev["cpu_count"]),
            compute_capability=dev["compute_capability"],
            cuda_driver_version=dev["cuda_driver_version"],
            cuda_runtime_version=dev["cuda_runtime_version"],
            cupy_version=dev["cupy_version"],
        ),
        software=Software(
            coherence=sw["coherence"],
            python=sw["python"],
            numpy=sw["numpy"],
            scipy=sw["scipy"],
            platform=sw["platform"],
        ),
        timing=Timing(
            warmup=int(timing["warmup"]),
            repeats=int(timing["repeats"]),
            min_repeat_s=float(timing["min_repeat_s"]),
            max_inner=int(timing["max_inner"]),
        ),
        holdout_every=int(data["holdout_every"]),
        shape=shape,
        primary_model=data["primary_model"],
        models=models,
        points=tuple(points),
        schema_version=int(data["schema_version"]),
        source=source,
    )


# --- files -------------------------------------------------------------------------------------


MAX_PROFILE_BYTES: Final = 4 * 1024 * 1024
"""A profile is a few kilobytes (points and fitted coefficients); more is not a profile."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text} is too large to represent")
    return value


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read and check a profile file; raises ``ProfileError`` naming the file and the field.

    >>> profile = load_profile("profiles/h100-sxm.json")   # doctest: +SKIP
    >>> profile.cpu_run, profile.device.name                # doctest: +SKIP
    (False, 'NVIDIA H100 80GB HBM3')
    """
    from coherence.source import SourceReadError, read_text_file

    where = os.fspath(path)
    if not os.path.lexists(where):
        raise ProfileError("no such file", path=where)
    try:
        # a regular file only (a FIFO or /dev/zero is refused unopened), read with a bound
        text = read_text_file(where, MAX_PROFILE_BYTES, "profile file")
    except SourceReadError as exc:
        at = f" (line {exc.line}, column {exc.column})" if exc.line > 1 or exc.column > 1 else ""
        raise ProfileError(f"cannot read the profile: {exc.message}{at}", path=where) from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ProfileError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", path=where
        ) from None
    except ValueError as exc:
        raise ProfileError(f"not valid JSON: {exc}", path=where) from None
    except RecursionError:
        raise ProfileError("not a profile: the JSON is nested too deeply", path=where) from None
    try:
        return profile_from_json(data, source=where)
    except ProfileError:
        raise
    except RecursionError:
        raise ProfileError("not a profile: the JSON is nested too deeply", path=where) from None
    except (KeyError, TypeError, ValueError, ArithmeticError, IndexError) as exc:
        # what the schema lets through but the models cannot use
        raise ProfileError(
            f"not a usable profile: {type(exc).__name__}: {exc}", path=where
        ) from None


def write_profile(profile: Profile, path: str | os.PathLike[str]) -> Path:
    """Write ``profile`` as JSON to ``path`` (atomically: a temporary file, then a rename).

    The document is checked against the schema first, so what is written always loads back.
    Raises ``OSError`` when the file cannot be written.
    """
    target = Path(path)
    data = profile_to_json(profile)
    violations = validate(data)
    if violations:
        first = violations[0]
        raise ProfileError(
            f"internal: refusing to write an invalid profile: {first.message}",
            path=str(target),
            field=first.field,
        )
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
