"""The command line, in-process: exit codes, streams, outputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from coherence.cli import main

ROOT = Path(__file__).resolve().parent.parent
TIPPING = str(ROOT / "specs" / "seed" / "tipping_point.coh")
DIAG = Path(__file__).parent / "diagnostics"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_lint_clean_spec_exits_zero() -> None:
    code, out, _ = cli("lint", TIPPING)
    assert code == 0
    assert "1 file checked, 0 diagnostics" in out


def test_lint_bad_spec_exits_one_with_located_errors() -> None:
    code, out, _ = cli("lint", str(DIAG / "three.coh"), "--color", "never")
    assert code == 1
    assert "three.coh:8:25" in out and "error[COH201]" in out


def test_fail_level_and_exit_zero() -> None:
    path = str(DIAG / "ranges.coh")
    assert cli("lint", path)[0] == 1
    assert cli("lint", path, "--exit-zero")[0] == 0


def test_warning_fails_only_at_warning_level(tmp_path: Path) -> None:
    spec = tmp_path / "w.coh"
    spec.write_text(
        "system w { tick 1s state a in [0, 9] init 0\n"
        "loop p { actuates a by 1 } loop q { actuates a by 1 } }"
    )
    assert cli("lint", str(spec))[0] == 0
    assert cli("lint", str(spec), "--fail-level", "warning")[0] == 1


def test_missing_file_is_a_usage_error() -> None:
    code, out, _ = cli("lint", "no/such/file.coh")
    assert code == 2
    assert "no such file" in out


def test_directory_without_specs_is_an_error(tmp_path: Path) -> None:
    code, _, err = cli("check", str(tmp_path))
    assert code == 2
    assert err.startswith("error: no `*.coh` spec files")


def test_usage_errors_exit_two_without_traceback() -> None:
    code, _, err = cli("check")
    assert code == 2 and "error:" in err and "Traceback" not in err
    code, _, err = cli("frobnicate")
    assert code == 2 and "error:" in err


def test_check_json_is_valid_and_versioned() -> None:
    code, out, _ = cli("check", TIPPING, "--format", "json", "--no-linear", "--no-smt")
    doc = json.loads(out)
    assert doc["schema_version"] == "1"
    assert doc["files"][0]["systems"][0]["name"] == "tipping_point"
    assert code in (0, 1)


def test_check_text_report_ends_with_a_verdict() -> None:
    _code, out, _ = cli("check", TIPPING, "--no-linear", "--no-smt", "--color", "never")
    assert "control coherence:" in out
    assert "1 file, 1 system analysed" in out


def test_rules_and_explain() -> None:
    code, out, _ = cli("rules")
    assert code == 0 and "COH201" in out and "COH501" in out
    code, out, _ = cli("explain", "coh207")
    assert code == 0 and "dimension-mismatch" in out and "Example:" in out
    code, _, err = cli("explain", "COH299")
    assert code == 2 and "no diagnostic code" in err


def test_simulate_writes_csv_and_json(tmp_path: Path) -> None:
    csv_path, json_path = tmp_path / "t.csv", tmp_path / "t.json"
    code, out, _ = cli(
        "simulate",
        TIPPING,
        "--scenario",
        "nominal",
        "--scenario",
        "burst:demand=140@10s+60s",
        "--ticks",
        "120",
        "--csv",
        str(csv_path),
        "--json",
        str(json_path),
        "--color",
        "never",
    )
    assert code == 0
    assert "scenario burst:demand=140@10s+60s" in out
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 240
    burst = [r for r in rows if r["scenario"].startswith("burst")]
    assert float(burst[10]["demand [req/s]"]) == 140
    assert float(burst[9]["demand [req/s]"]) == 100
    doc = json.loads(json_path.read_text())
    assert doc["scenarios"][1]["series"]["demand"]["values"][70] == 100


@pytest.mark.parametrize(
    "scenario", ["step:nothere=3@1", "burst:demand=500@1+2", "weird", "step:demand=120@1.5"]
)
def test_bad_scenarios_are_usage_errors(scenario: str) -> None:
    code, _, err = cli("simulate", TIPPING, "--scenario", scenario)
    assert code == 2 and err.startswith("error:")


def test_simulate_csv_scenario(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("tick,demand\n0,100\n5,130\n")
    code, _out, _ = cli(
        "simulate",
        TIPPING,
        "--scenario",
        f"csv:{data}",
        "--ticks",
        "20",
        "--json",
        str(tmp_path / "o.json"),
    )
    assert code == 0
    values = json.loads((tmp_path / "o.json").read_text())["scenarios"][0]["series"]["demand"][
        "values"
    ]
    assert values[:7] == [100, 100, 100, 100, 100, 130, 130]


def test_simulate_spec_with_errors_is_reported() -> None:
    code, _, err = cli("simulate", str(DIAG / "three.coh"))
    assert code == 2 and "COH201" in err


def test_ir_and_fmt() -> None:
    code, out, _ = cli("ir", TIPPING)
    assert code == 0 and out.startswith("system tipping_point")
    code, out, _ = cli("fmt", TIPPING)
    assert code == 0 and "loop router {" in out


def test_version() -> None:
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("coherence ")


def test_check_expect_compares_with_a_manifest(tmp_path: Path) -> None:
    spec = tmp_path / "w.coh"
    spec.write_text(
        "system w { tick 1s state a in [0, 9] init 0\n"
        "loop p { actuates a by 1 } loop q { actuates a by 1 } }"
    )
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        '[manifest]\nreconciled = ["simulate"]\n\n'
        '[specs."w.coh"]\nlint = ["COH206"]\nsimulate = []\n'
    )
    code, out, _ = cli(
        "check", str(spec), "--no-linear", "--no-smt", "--expect", str(manifest), "--color", "never"
    )
    assert code == 0, out
    assert "expectations: all met" in out
    manifest.write_text('[manifest]\nreconciled = ["simulate"]\n\n[specs."w.coh"]\nlint = []\n')
    code, out, _ = cli(
        "check", str(spec), "--no-linear", "--no-smt", "--expect", str(manifest), "--color", "never"
    )
    assert code == 1
    assert "DIFFERENT" in out and "COH206" in out


def test_check_quiet_and_verbose_exclude_each_other() -> None:
    code, _, err = cli("check", TIPPING, "-q", "-v")
    assert code == 2 and "not allowed with" in err


def test_check_quiet_is_one_line_per_system_then_the_result() -> None:
    code, out, _ = cli("check", TIPPING, "--no-smt", "--no-linear", "-q", "--color", "never")
    assert code == 0
    system, result = out.splitlines()
    assert system.endswith(
        "tipping_point.coh: tipping_point: COHERENT (0 errors, 0 warnings) \u2014 no error or "
        "warning, and no requirement falsified or unknown"
    )
    assert result.startswith("result: PASSED")
