"""Specs bound to calibration profiles: one binding, the same numbers in every backend."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from coherence.calibrate import load_profile
from coherence.cli import main
from coherence.compile import compile_text
from coherence.frontend.profiles import GRID
from coherence.ir.evaluate import eval_scalar
from coherence.simulate.engine import simulate

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "specs" / "profiles" / "cpu-ci.json"


def spec(tmp_path: Path, body: str, profile: Path = PROFILE) -> Path:
    path = tmp_path / "bound.coh"
    path.write_text(f'system bound {{\n  tick 1s\n  profile cpu = "{profile}"\n{body}\n}}\n')
    return path


def compile_file(path: Path):  # type: ignore[no-untyped-def]
    result = compile_text(str(path), path.read_text())
    assert result.ok, [d.message for d in result.diagnostics]
    return result.systems[0]


def test_plant_function_matches_the_fitted_model_at_grid_points(tmp_path: Path) -> None:
    ts = compile_file(
        spec(
            tmp_path,
            "input b : 1 in [1, 4096] nominal 1\n"
            "state s : s in [0, 10] init 0\n next s = cpu.step_time(b)",
        )
    )
    model = load_profile(PROFILE).model()
    xs = np.array(GRID[:20])
    inputs = xs.reshape(1, -1, 1)
    tr = simulate(ts, len(xs), inputs=inputs)
    np.testing.assert_allclose(tr.state("s")[0, 1:], model.step_time(xs), rtol=1e-9)


def test_between_grid_points_the_binding_interpolates_closely(tmp_path: Path) -> None:
    ts = compile_file(
        spec(
            tmp_path,
            "input b : 1 in [1, 4096] nominal 1\n"
            "let st = cpu.step_time(b)\nstate s : s in [0, 10] init 0\n"
            "next s = st",
        )
    )
    model = load_profile(PROFILE).model()
    xs = np.array([3.0, 10.0, 50.0, 300.0, 1000.0])
    got = [eval_scalar(ts.let("st").expr, {"b": x}) for x in xs]
    np.testing.assert_allclose(got, model.step_time(xs), rtol=0.02)


def test_slope_of_the_binding_follows_the_fitted_derivative(tmp_path: Path) -> None:
    ts = compile_file(
        spec(
            tmp_path,
            "input b : 1 in [1, 4096] nominal 1\n"
            "let st = cpu.step_time(b)\nstate s : s in [0, 10] init 0\n"
            "next s = st",
        )
    )
    model = load_profile(PROFILE).model()
    expr = ts.let("st").expr
    for x in (6.0, 45.0, 700.0):  # inside a segment: the linearization sees this slope
        h = 1e-4
        fd = (eval_scalar(expr, {"b": x + h}) - eval_scalar(expr, {"b": x - h})) / (2 * h)
        assert fd == pytest.approx(float(model.step_time_slope(np.array([x]))[0]), rel=1e-6)


def test_bound_parameter_records_assumed_and_measured(tmp_path: Path) -> None:
    ts = compile_file(
        spec(
            tmp_path,
            "param t0 = 1 ms from cpu.step_time(1)\n"
            "state q in [0, 1] init 0\n next q = q * t0 / t0",
        )
    )
    (b,) = ts.bindings
    assert b.param == "t0" and b.assumed == pytest.approx(1e-3)
    model = load_profile(PROFILE).model()
    assert b.measured == pytest.approx(float(model.step_time(np.array([1.0]))[0]))
    assert ts.param("t0").value == pytest.approx(1e-3)  # analyses use the spec's own value


def test_missing_profile_is_a_located_error(tmp_path: Path) -> None:
    path = spec(tmp_path, "state q in [0, 1] init 0\n next q = q", profile=tmp_path / "nope.json")
    result = compile_text(str(path), path.read_text())
    (d,) = [d for d in result.diagnostics if d.code == "COH222"]
    assert d.span.line == 3 and "nope.json" in d.message


def test_unit_mismatch_of_a_binding(tmp_path: Path) -> None:
    path = spec(
        tmp_path, "param t0 = 3 req from cpu.step_time(1)\n state q in [0, 1] init 0\nnext q = q"
    )
    result = compile_text(str(path), path.read_text())
    assert "COH207" in {d.code for d in result.diagnostics}


def test_validate_reports_what_changes_with_the_measured_value(tmp_path: Path) -> None:
    # sensitive by construction: capacity is one request per step_base
    path = spec(
        tmp_path,
        "param step_base = 1 ms from cpu.step_time(1)\n"
        "input demand : req/s in [0, 5000] nominal 1500\n"
        "state queue : req in [0, 100000] init 0\n"
        "let capacity = 1 req / step_base\n"
        "next queue = max(0, queue + (demand - capacity) * tick)\n"
        "objective keep queue <= 1000 req",
    )
    out, err = io.StringIO(), io.StringIO()
    code = main(["validate", str(path), "--no-linear", "--no-smt", "--color", "never"], out, err)
    text = out.getvalue()
    assert code == 1, err.getvalue()
    assert "step_base" in text and "cpu.step_time(1)" in text
    assert "COH506" in text and "degraded" in text and "coherent" in text


def test_validate_profile_override(tmp_path: Path) -> None:
    path = spec(
        tmp_path,
        "param t0 = 1 ms from cpu.step_time(1)\n state q in [0, 1] init 0\nnext q = q * t0 / t0",
        profile=tmp_path / "missing.json",
    )
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [
            "validate",
            str(path),
            "--profile",
            f"cpu={PROFILE}",
            "--no-linear",
            "--no-smt",
            "--color",
            "never",
        ],
        out,
        err,
    )
    assert code == 0, err.getvalue()
    assert "no verdict, finding or coherence changes" in out.getvalue()
