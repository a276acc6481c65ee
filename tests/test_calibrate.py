"""Tests for coherence.calibrate: fits, hold-out scoring, the profile format, the command.

Fits are tested on synthetic points with known coefficients and seeded noise; the NumPy backend
runs the quick preset once end to end. No assertion depends on how fast this machine is.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from coherence.calibrate import (
    ArrayBackend,
    BackendUnavailableError,
    CalibrationError,
    FittedModel,
    Point,
    Profile,
    ProfileError,
    StepShape,
    assign_holdout,
    fit_error,
    fit_models,
    fit_step_time,
    load_profile,
    profile_from_json,
    profile_to_json,
    resolve_backend,
    run_calibration,
    write_profile,
)
from coherence.calibrate import command as calibrate_command
from coherence.calibrate.benchmarks import PRESETS, Preset, measure, plan
from coherence.calibrate.schema import SUPPORTED_KEYWORDS, load_schema, validate
from coherence.calibrate.workload import point_features

# --- synthetic points ---------------------------------------------------------------------------

TRUTH = {"t0_s": 5e-6, "s_per_flop": 1 / 2e11, "s_per_byte": 1 / 5e10}
ITEMSIZE = 4


def _law_sum(flops: float, traffic: float, c: dict[str, float]) -> float:
    return c["t0_s"] + flops * c["s_per_flop"] + traffic * c["s_per_byte"]


def _law_max(flops: float, traffic: float, c: dict[str, float]) -> float:
    return c["t0_s"] + max(flops * c["s_per_flop"], traffic * c["s_per_byte"])


def synthetic_points(
    law: Callable[[Point], float], *, noise: float = 0.01, seed: int = 7, preset: str = "standard"
) -> list[Point]:
    """Points at the sizes of ``preset`` with times from ``law`` times lognormal noise."""
    rng = np.random.default_rng(seed)
    points = []
    for case in plan(PRESETS[preset], ITEMSIZE):
        bare = Point(case.kind, case.size, case.flops, case.bytes, 1.0, 1.0, 1.0, 0.0, 9)
        t = law(bare) * float(np.exp(rng.normal(0.0, noise)))
        points.append(
            Point(case.kind, case.size, case.flops, case.bytes, t, 0.97 * t, 1.03 * t, 0.03 * t, 9)
        )
    return points


def roofline_law(c: dict[str, float] = TRUTH) -> Callable[[Point], float]:
    return lambda p: _law_sum(p.flops, p.bytes, c)


def roofline_max_law(c: dict[str, float] = TRUTH) -> Callable[[Point], float]:
    return lambda p: _law_max(p.flops, p.bytes, c)


# --- fitting --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "law"), [("roofline", roofline_law()), ("roofline_max", roofline_max_law())]
)
def test_fit_recovers_known_coefficients_under_noise(
    model: str, law: Callable[[Point], float]
) -> None:
    fitted = fit_step_time(synthetic_points(law, noise=0.01), model=model)
    for name, true in TRUTH.items():
        # 1% multiplicative noise on ~20 points: each coefficient within 3%.
        assert fitted.coefficient(name) == pytest.approx(true, rel=0.03, abs=0), name
    assert fitted.train_error.mape is not None and fitted.train_error.mape < 0.02
    assert fitted.held_out_error.n > 0
    assert fitted.held_out_error.mape is not None and fitted.held_out_error.mape < 0.02


def test_wrong_model_is_caught_by_held_out_error() -> None:
    """Data from the max-form roofline: the max model fits it, the sum model visibly does not."""
    points = synthetic_points(roofline_max_law(), noise=0.005)
    right = fit_step_time(points, model="roofline_max")
    wrong = fit_step_time(points, model="roofline")
    assert right.held_out_error.mape is not None and wrong.held_out_error.mape is not None
    assert right.held_out_error.mape < 0.01
    assert wrong.held_out_error.mape > 0.05
    assert wrong.coefficient("s_per_flop") != pytest.approx(TRUTH["s_per_flop"], rel=0.03, abs=0)


def test_roofline_fit_separates_compute_from_bandwidth() -> None:
    """Swapping the two rates changes the data; the fit must follow, not average them."""
    swapped = {"t0_s": 2e-6, "s_per_flop": 1 / 5e10, "s_per_byte": 1 / 2e11}
    fitted = fit_step_time(synthetic_points(roofline_law(swapped)), model="roofline")
    assert fitted.coefficient("s_per_flop") == pytest.approx(swapped["s_per_flop"], rel=0.03, abs=0)
    assert fitted.coefficient("s_per_byte") == pytest.approx(swapped["s_per_byte"], rel=0.03, abs=0)


def test_linear_tokens_recovers_its_coefficients() -> None:
    c = {"a_s": 3e-4, "a_attention_s": 2e-5, "s_per_token": 4e-6, "s_per_kv_token": 2e-9}

    def law(p: Point) -> float:
        tokens, kv = point_features(p)
        base = c["a_attention_s"] if p.kind == "attention" else c["a_s"]
        return base + c["s_per_token"] * tokens + c["s_per_kv_token"] * kv

    fitted = fit_step_time(synthetic_points(law, noise=0.005), model="linear_tokens")
    assert fitted.kinds == ("decode_gemm", "prefill_gemm", "attention")
    for name, true in c.items():
        assert fitted.coefficient(name) == pytest.approx(true, rel=0.03, abs=0), name


def test_fit_coefficients_are_nonnegative_even_for_adversarial_data() -> None:
    # Time that falls with size pulls an unconstrained fit negative; NNLS clamps at zero.
    points = [
        Point("copy", (("elements", n), ("itemsize", 4)), 0.0, 8.0 * n, 1e-3 / n, 0, 0, 0, 3)
        for n in (1, 2, 4, 8, 16)
    ]
    points.append(Point("overhead", (("elements", 1), ("itemsize", 4)), 0.0, 8.0, 1e-3, 0, 0, 0, 3))
    fitted = fit_step_time(points, shape=StepShape(64, 4), holdout_every=0)
    assert all(v >= 0.0 for _, v in fitted.coefficients)


# --- hold-out ---------------------------------------------------------------------------------


def _series(kind: str, n: int) -> list[Point]:
    return [
        Point(kind, (("batch", 2**i), ("hidden", 64), ("itemsize", 4)), 1.0, 1.0, 1.0, 1, 1, 0, 3)
        for i in range(n)
    ]


def test_assign_holdout_every_kth_point_of_each_series_never_the_last() -> None:
    points = assign_holdout([*_series("decode_gemm", 10), *_series("prefill_gemm", 4)], 4)
    held = [i for i, p in enumerate(points) if p.held_out]
    # decode: indices 3 and 7 of 10; prefill: index 3 would be its last point, so none.
    assert held == [3, 7]
    assert not any(p.held_out for p in assign_holdout(points, 0))
    assert not any(p.held_out for p in assign_holdout(points, 1))


def test_fit_error_is_relative_to_the_measurement() -> None:
    e = fit_error([1.1, 2.0, 2.5], [1.0, 2.0, 5.0])
    assert e.n == 3
    assert e.mape == pytest.approx((0.1 + 0.0 + 0.5) / 3)
    assert e.max_rel == pytest.approx(0.5)
    empty = fit_error([], [])
    assert (empty.n, empty.mape, empty.max_rel) == (0, None, None)


def test_held_out_error_scores_only_held_points_against_training_fit() -> None:
    """Exact data except that the held-back points were measured 10% and 20% slow."""
    points = assign_holdout(synthetic_points(roofline_law(), noise=0.0), 4)
    held_idx = [i for i, p in enumerate(points) if p.held_out]
    assert len(held_idx) >= 2
    slow = {held_idx[0]: 1.1, held_idx[1]: 1.2}
    perturbed = [
        Point(
            p.kind,
            p.size,
            p.flops,
            p.bytes,
            p.median_s * slow.get(i, 1.0),
            p.p10_s,
            p.p90_s,
            p.iqr_s,
            p.repeats,
            held_out=p.held_out,
        )
        for i, p in enumerate(points)
    ]
    fitted = fit_step_time(perturbed, model="roofline", holdout_every=None)
    # Training points are exact, so the fit is exact and each held-out error is known.
    assert fitted.train_error.max_rel == pytest.approx(0.0, abs=1e-9)
    for name, true in TRUTH.items():
        assert fitted.coefficient(name) == pytest.approx(true, rel=1e-6, abs=0)
    errors = [0.1 / 1.1, 0.2 / 1.2] + [0.0] * (len(held_idx) - 2)
    assert fitted.held_out_error.n == len(held_idx)
    assert fitted.held_out_error.mape == pytest.approx(np.mean(errors), rel=1e-6)
    assert fitted.held_out_error.max_rel == pytest.approx(0.2 / 1.2, rel=1e-6, abs=0)


# --- step time, throughput, gain ------------------------------------------------------------


def _models() -> list[FittedModel]:
    _, models = fit_models(synthetic_points(roofline_law(), noise=0.01))
    return list(models)


@pytest.mark.parametrize("context", [0.0, 512.0])
def test_throughput_gain_matches_finite_difference(context: float) -> None:
    batch = np.array([1.0, 3.0, 17.0, 100.0, 400.0])
    for model in _models():
        h = 1e-4 * batch
        numeric = (model.throughput(batch + h, context) - model.throughput(batch - h, context)) / (
            2 * h
        )
        analytic = model.throughput_gain(batch, context)
        if model.name == "roofline_max":
            # The max form has a kink at the ridge; compare away from it.
            f1 = model.step_time(batch + h, context=context)
            f0 = model.step_time(batch - h, context=context)
            slope = (f1 - f0) / (2 * h)
            smooth = np.isclose(slope, model.step_time_slope(batch, context), rtol=1e-6)
            numeric, analytic = numeric[smooth], analytic[smooth]
            assert smooth.sum() >= 3
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, err_msg=model.name)


def test_throughput_is_batch_over_step_time_and_functions_broadcast() -> None:
    model = _models()[0]
    batch = np.array([1.0, 8.0, 64.0])
    context = np.array([[0.0], [1024.0]])
    t = model.step_time(batch, context=context)
    assert t.shape == (2, 3)
    np.testing.assert_allclose(model.throughput(batch, context), batch / t)
    assert model.throughput_gain(batch, context).shape == (2, 3)
    assert np.all(t[1] > t[0])  # attention over a longer context costs time
    assert model.step_time(4.0).shape == ()
    # tokens defaults to batch (a decode step); a prefill chunk of 512 tokens costs more.
    assert float(model.step_time(1, tokens=512)) > float(model.step_time(1))


# --- end to end on the NumPy backend ---------------------------------------------------------


@pytest.fixture(scope="module")
def quick_profile() -> tuple[Profile, list[tuple[int, int, str]]]:
    calls: list[tuple[int, int, str]] = []
    profile = run_calibration(
        "numpy", "quick", seed=0, progress_callback=lambda d, t, s: calls.append((d, t, s))
    )
    return profile, calls


def test_numpy_quick_calibration_end_to_end(
    quick_profile: tuple[Profile, list[tuple[int, int, str]]],
) -> None:
    profile, calls = quick_profile
    cases = plan(PRESETS["quick"], 4)
    assert profile.cpu_run is True and profile.backend == "numpy" and profile.dtype == "float32"
    assert len(profile.points) == len(cases)
    assert [(p.kind, p.size) for p in profile.points] == [(c.kind, c.size) for c in cases]
    assert all(p.median_s > 0 and p.p10_s <= p.median_s <= p.p90_s for p in profile.points)
    assert any(p.held_out for p in profile.points)
    assert profile.model_names == ("roofline", "roofline_max", "linear_tokens")
    assert [d for d, _, _ in calls] == list(range(1, len(cases) + 1))
    assert {t for _, t, _ in calls} == {len(cases)}
    tput = profile.throughput(np.array([1.0, 16.0]))
    assert tput.shape == (2,) and np.all(tput > 0)
    assert profile.predict("linear_tokens", batch=8).shape == ()


def test_profile_round_trips_and_validates_against_schema(
    quick_profile: tuple[Profile, list[tuple[int, int, str]]], tmp_path: Path
) -> None:
    profile, _ = quick_profile
    path = write_profile(profile, tmp_path / "cpu.json")
    document = json.loads(path.read_text())
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)
    loaded = load_profile(path)
    assert loaded == profile
    assert profile_from_json(document) == profile
    assert loaded.source == str(path)
    assert document["cpu_run"] is True
    # Same predictions from the file as from memory.
    np.testing.assert_array_equal(loaded.throughput_gain([2, 32]), profile.throughput_gain([2, 32]))


# --- malformed profiles -------------------------------------------------------------------------


def _drop(*keys: str | int) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return mutate


def _set(value: object, *keys: str | int) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return mutate


# (mutation, field the error must name, whether jsonschema also rejects it)
MALFORMED = [
    (_drop("points", 0, "median_s"), "points[0].median_s", True),
    (_set("fast", "points", 2, "median_s"), "points[2].median_s", True),
    (_set(-1.0, "points", 1, "median_s"), "points[1].median_s", True),
    (_set("yes", "cpu_run"), "cpu_run", True),
    (_set("tpu", "backend"), "backend", True),
    (_drop("device"), "device", True),
    (
        _set(1, "models", "roofline", "coefficients", "t1_s"),
        "models.roofline.coefficients.t1_s",
        True,
    ),
    (_drop("models", "linear_tokens", "coefficients", "s_per_token"), "s_per_token", True),
    (_set("2024-01-01", "created_utc"), "created_utc", True),
    (_set([], "points"), "points", True),
    (_set("x", "shape", "hidden"), "shape.hidden", True),
    # What a schema cannot say; our loader still says it.
    (_set(False, "cpu_run"), "cpu_run", False),
    (_drop("points", 5, "size", "batch"), "points[5].size.batch", False),
    (_drop("models", "roofline"), "primary_model", False),
]


@pytest.mark.parametrize(("mutate", "field", "schema_rejects"), MALFORMED)
def test_malformed_profile_raises_profile_error_naming_the_field(
    quick_profile: tuple[Profile, list[tuple[int, int, str]]],
    tmp_path: Path,
    mutate: Callable[[dict[str, Any]], None],
    field: str,
    schema_rejects: bool,
) -> None:
    profile, _ = quick_profile
    document = copy.deepcopy(profile_to_json(profile))
    assert profile.points[5].kind == "decode_gemm"
    mutate(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert str(path) in message
    assert field in message
    assert caught.value.field is not None and field in caught.value.field
    # The hand-written validator and jsonschema agree on what the schema rejects.
    jsonschema_errors = list(jsonschema.Draft202012Validator(load_schema()).iter_errors(document))
    assert bool(jsonschema_errors) == schema_rejects
    assert bool(validate(document)) == schema_rejects


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"schema_version": NaN}', "not valid JSON"),
        ("[1, 2]", "expected an object"),
        ('{"schema_version": 99}', "schema version 99 is not supported"),
    ],
)
def test_unreadable_profiles_raise_profile_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ProfileError, match=expected):
        load_profile(path)


def test_missing_profile_file_and_unknown_model(
    quick_profile: tuple[Profile, list[tuple[int, int, str]]], tmp_path: Path
) -> None:
    with pytest.raises(ProfileError, match="no such file"):
        load_profile(tmp_path / "absent.json")
    profile, _ = quick_profile
    with pytest.raises(ProfileError, match="no model named 'vidur'"):
        profile.predict("vidur", batch=1)


def test_schema_uses_only_keywords_the_runtime_validator_knows() -> None:
    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in ("properties", "$defs"):
                    assert key in SUPPORTED_KEYWORDS, key
                    walk(value)
                else:
                    for sub in value.values():
                        walk(sub)
        elif isinstance(node, list):
            for item in node:
                if isinstance(item, dict):
                    walk(item)

    walk(load_schema())


# --- backends -------------------------------------------------------------------------------


def test_cupy_backend_missing_gives_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail here
    with pytest.raises(BackendUnavailableError) as caught:
        resolve_backend("cupy")
    assert "backend 'cupy' is not available" in caught.value.message
    assert caught.value.hint is not None and "--backend numpy" in caught.value.hint
    assert resolve_backend("auto").name == "numpy"


def test_importing_calibrate_never_imports_cupy(tmp_path: Path) -> None:
    # A cupy that explodes on import: importing the package and the command must not touch it.
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("raise RuntimeError('cupy imported')\n")
    code = textwrap.dedent(
        """
        import sys
        import coherence.calibrate, coherence.calibrate.command
        assert "cupy" not in sys.modules
        from coherence.calibrate import resolve_backend
        assert resolve_backend("auto").name == "numpy"
        """
    )
    env_path = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": env_path, "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- the command ------------------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="coherence calibrate")
    calibrate_command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_command_defaults() -> None:
    args = _parse("--out", "p.json")
    assert (args.backend, args.preset, args.seed, args.no_progress) == (
        "auto",
        "standard",
        0,
        False,
    )


def test_command_run_writes_profile_and_returns_zero(tmp_path: Path) -> None:
    out = tmp_path / "cpu.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    args = _parse("--out", str(out), "--backend", "numpy", "--preset", "quick", "--no-progress")
    assert calibrate_command.run(args, stdout, stderr) == 0
    profile = load_profile(out)
    assert profile.cpu_run
    text = stdout.getvalue()
    assert "CPU run" in text and "roofline" in text and f"wrote {out}" in text
    assert stderr.getvalue() == ""


def test_command_cupy_unavailable_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)
    stdout, stderr = io.StringIO(), io.StringIO()
    args = _parse("--out", str(tmp_path / "gpu.json"), "--backend", "cupy", "--no-progress")
    assert calibrate_command.run(args, stdout, stderr) == 2
    err = stderr.getvalue()
    assert err.startswith("error: backend 'cupy' is not available")
    assert "help:" in err
    assert not (tmp_path / "gpu.json").exists()


@pytest.mark.parametrize("where", ["missing-dir/p.json", "."])
def test_command_unwritable_out_exits_2(tmp_path: Path, where: str) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    args = _parse("--out", str(tmp_path / where), "--backend", "numpy", "--preset", "quick")
    assert calibrate_command.run(args, stdout, stderr) == 2
    assert stderr.getvalue().startswith("error: ")
    assert "help:" in stderr.getvalue()


def test_progress_bar_runs_on_a_stream() -> None:
    stream = io.StringIO()
    with calibrate_command._progress(stream, enabled=True) as callback:
        assert callback is not None
        callback(1, 2, "decode_gemm (batch=1)")
        callback(2, 2, "decode_gemm (batch=2)")
    with calibrate_command._progress(stream, enabled=False) as callback:
        assert callback is None


# --- the CuPy code path, against a stand-in module (no GPU needed) ---------------------------

TINY = Preset(
    name="tiny",
    hiddens=(64,),
    decode_batches=(1, 2, 4, 8, 16),
    prefill_tokens=(16, 32),
    attention_batch=2,
    kv_lens=(16, 32, 64),
    head_dim=16,
    copy_elements=(1024, 2048),
    warmup=1,
    repeats=3,
    min_repeat_s=1e-4,
    max_inner=10,
)


def _fake_cupy(device_count: Callable[[], int]) -> types.ModuleType:
    """A NumPy-backed module with the slice of CuPy's API that the backend uses."""

    class Event:
        def __init__(self) -> None:
            self.t = 0.0

        def record(self, stream: object = None) -> None:
            self.t = time.perf_counter()

        def synchronize(self) -> None:
            pass

    def random_state(seed: int) -> types.SimpleNamespace:
        rng = np.random.default_rng(seed)
        return types.SimpleNamespace(
            standard_normal=lambda shape, dtype: rng.standard_normal(shape, dtype=dtype)
        )

    runtime = types.SimpleNamespace(
        getDeviceCount=device_count,
        getDeviceProperties=lambda i: {
            "name": b"Fake GPU",
            "totalGlobalMem": 80 * 2**30,
            "major": 9,
            "minor": 0,
        },
        driverGetVersion=lambda: 12040,
        runtimeGetVersion=lambda: 12020,
    )
    fake = types.ModuleType("cupy")
    fake.__dict__.update(
        __version__="13.0.0+fake",
        cuda=types.SimpleNamespace(
            runtime=runtime,
            Event=Event,
            get_elapsed_time=lambda a, b: (b.t - a.t) * 1000.0,
            Device=lambda: types.SimpleNamespace(id=0),
            get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None),
        ),
        random=types.SimpleNamespace(RandomState=random_state),
        get_default_memory_pool=lambda: types.SimpleNamespace(free_all_blocks=lambda: None),
        float32=np.float32,
        zeros=np.zeros,
        add=np.add,
        copyto=np.copyto,
        matmul=np.matmul,
    )
    return fake


def test_cupy_path_runs_and_marks_a_gpu_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 1))
    assert resolve_backend("auto").name == "cupy"
    profile = run_calibration("cupy", TINY, seed=3)
    assert (profile.backend, profile.cpu_run, profile.dtype) == ("cupy", False, "float16")
    assert profile.shape == StepShape(hidden=64, itemsize=2)
    d = profile.device
    assert (d.name, d.compute_capability, d.cuda_driver_version, d.cuda_runtime_version) == (
        "Fake GPU",
        "9.0",
        "12.4",
        "12.2",
    )
    assert d.memory_bytes == 80 * 2**30 and d.cupy_version == "13.0.0+fake"
    path = write_profile(profile, tmp_path / "gpu.json")
    jsonschema.Draft202012Validator(load_schema()).validate(json.loads(path.read_text()))
    assert load_profile(path) == profile


def test_cupy_without_a_device_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_device() -> int:
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(no_device))
    with pytest.raises(BackendUnavailableError, match="no usable CUDA device"):
        resolve_backend("cupy")
    assert resolve_backend("auto").name == "numpy"
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 0))
    with pytest.raises(BackendUnavailableError, match="found no CUDA device"):
        resolve_backend("cupy")


def test_a_failing_benchmark_becomes_a_calibration_error() -> None:
    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError("out of memory allocating 4.3 GB")

    xp = types.SimpleNamespace(**{**np.__dict__, "matmul": out_of_memory})
    backend = ArrayBackend(name="numpy", xp=xp, dtype="float32")
    with pytest.raises(CalibrationError, match=r"benchmark decode_gemm .* MemoryError") as caught:
        measure(backend, TINY, seed=0)
    assert caught.value.hint is not None and "--preset" in caught.value.hint
    with pytest.raises(CalibrationError, match="seed must be >= 0"):
        run_calibration("numpy", TINY, seed=-1)
