"""`-` on the command line: a spec read from standard input, outputs written to standard output."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from coherence.cli import main

ROOT = Path(__file__).resolve().parent.parent
TIPPING = ROOT / "specs" / "seed" / "tipping_point.coh"
TEXT = TIPPING.read_text(encoding="utf-8")
BROKEN = TEXT.replace("tick 1s", "tick 1q")  # an unknown unit: COH208 at 9:8


def cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err, io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_lint_reads_stdin_and_names_it_stdin() -> None:
    code, out, _ = cli("lint", "-", "--color", "never", stdin=BROKEN)
    assert code == 1
    assert "<stdin>:9:8" in out and "COH208" in out


def test_stdin_filename_names_the_locations() -> None:
    code, out, _ = cli(
        "lint", "-", "--stdin-filename", "specs/edited.coh", "--color", "never", stdin=BROKEN
    )
    assert code == 1
    assert "specs/edited.coh:9:8" in out and "<stdin>" not in out


def test_stdin_filename_finds_the_configuration_of_that_place(tmp_path: Path) -> None:
    # the configuration next to the named file ignores COH208; the cwd's (the repository's)
    # does not: the same text passes only when it is named into that project
    project = tmp_path / "project"
    (project / "specs").mkdir(parents=True)
    (project / "coherence.toml").write_text('ignore = ["COH207", "COH208"]\n', encoding="utf-8")
    name = str(project / "specs" / "edited.coh")
    assert cli("lint", "-", stdin=BROKEN)[0] == 1
    code, out, err = cli("lint", "-", "--stdin-filename", name, stdin=BROKEN)
    assert code == 0, out + err


def test_sarif_of_stdin_to_stdout_names_the_file() -> None:
    code, out, _ = cli(
        "lint", "-", "--stdin-filename", "specs/edited.coh", "--output", "sarif=-", stdin=BROKEN
    )
    assert code == 1
    doc = json.loads(out)  # standard output holds the SARIF log alone
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in doc["runs"][0]["results"]
        for loc in r["locations"]
    }
    assert uris == {"specs/edited.coh"}


def test_two_reports_cannot_share_stdout() -> None:
    code, _, err = cli("lint", "-", "--format", "json", "--output", "sarif=-", stdin=TEXT)
    assert code == 2 and "only one report can go to standard output" in err


def test_check_reads_stdin() -> None:
    code, out, _ = cli(
        "check", "-", "--no-smt", "--no-linear", "--no-cache", "--format", "json", stdin=TEXT
    )
    doc = json.loads(out)
    assert [f["path"] for f in doc["files"]] == ["<stdin>"]
    assert [s["name"] for s in doc["files"][0]["systems"]] == ["tipping_point"]
    assert code in (0, 1)


def test_ir_and_fmt_read_stdin() -> None:
    code, from_stdin, _ = cli("ir", "-", stdin=TEXT)
    assert code == 0
    assert from_stdin == cli("ir", str(TIPPING))[1]
    code, formatted, _ = cli("fmt", "-", stdin=TEXT)
    assert code == 0 and "system tipping_point" in formatted
    assert formatted == cli("fmt", str(TIPPING))[1]


def test_errors_in_stdin_are_located_under_its_name() -> None:
    code, _, err = cli("ir", "-", "--stdin-filename", "mine.coh", stdin=BROKEN)
    assert code == 2 and "mine.coh:9:8" in err


def test_simulate_csv_to_stdout() -> None:
    code, out, err = cli("simulate", "-", "--ticks", "4", "--csv", "-", stdin=TEXT)
    assert code in (0, 1)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:4] == ["scenario", "tick", "time_s", "demand [req/s]"]
    assert [r[1] for r in rows[1:]] == ["0", "1", "2", "3"]
    assert "tipping_point: scenario nominal" in err  # the summary moved to standard error
    assert not Path("-").exists()


def test_simulate_json_to_stdout() -> None:
    code, out, _ = cli("simulate", str(TIPPING), "--ticks", "3", "--json", "-")
    assert code == 0
    doc = json.loads(out)
    assert doc["ticks"] == 3 and doc["scenarios"][0]["series"]["demand"]["values"] == [100] * 3


def test_stdin_misuse_is_a_usage_error() -> None:
    code, _, err = cli("lint", str(TIPPING), "--stdin-filename", "x.coh")
    assert code == 2 and "pass `-`" in err
    code, _, err = cli("lint", "-", "-", stdin=TEXT)
    assert code == 2 and "only once" in err
    code, _, err = cli("simulate", "-", "--csv", "-", "--json", "-", stdin=TEXT)
    assert code == 2 and "both want standard output" in err


def test_stdin_that_is_not_utf8() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "coherence", "lint", "-"],
        input=b"system s { \xff }",
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert b"standard input is not UTF-8 text" in proc.stderr and b"Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["lint", "ir"])
def test_a_real_pipe(command: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "coherence", command, "-", "--stdin-filename", "piped.coh"],
        input=BROKEN.encode(),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode in (1, 2)
    assert b"piped.coh:9:8" in proc.stdout + proc.stderr
