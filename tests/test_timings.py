"""``coherence check --timings``: every piece of the run, slowest first, on standard error."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from coherence.cli import main
from coherence.compile import compile_path
from coherence.formal.analyze import parts, req_key
from coherence.reports.timings import piece_rows, timings_table
from coherence.results import (
    AnalysisResult,
    FileReport,
    PieceTime,
    RunReport,
    Status,
    SystemReport,
    Verdict,
)
from coherence.source import Span

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "conflicts" / "cache_affinity_broken.coh"


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def _system(name: str, *analyses: AnalysisResult) -> SystemReport:
    return SystemReport(name, "a.coh", Span.unknown("a.coh"), analyses)


def test_pieces_are_listed_slowest_first_with_their_system_where_a_file_has_several() -> None:
    stable = Verdict("require stable", "stable", Status.PROVED, Span.unknown(), "linear")
    one = _system(
        "one",
        AnalysisResult("linear", verdicts=(stable,), seconds=0.5),
        AnalysisResult(
            "smt",
            seconds=3.0,
            pieces=(
                PieceTime("always:x<=1", 0.25, 4, 0, 1000, "proved"),
                PieceTime("conflicts", 2.0, 10, 10, 9000, "unknown"),
                PieceTime("equilibria", 0.5, 2, 1, 500, "proved"),
            ),
        ),
        AnalysisResult("topology"),  # no time of its own: left out
    )
    two = _system("two", AnalysisResult("simulate", seconds=0.75))
    alone = _system("alone", AnalysisResult("linear", seconds=0.5))
    report = RunReport(
        (FileReport("a.coh", (), (one, two)), FileReport("b.coh", (), (alone,))), "0"
    )
    rows = piece_rows(report)
    assert [(where, p.piece, p.seconds) for where, p in rows] == [
        ("a.coh (one)", "conflicts", 2.0),
        ("a.coh (two)", "simulate", 0.75),
        ("a.coh (one)", "linear", 0.5),  # a tie: in report order
        ("a.coh (one)", "equilibria", 0.5),
        ("b.coh", "linear", 0.5),
        ("a.coh (one)", "always:x<=1", 0.25),
    ]
    assert rows[2][1].result == "proved"
    table = timings_table(report, wall=2.5, jobs=2)
    assert table.rows[0] == ("a.coh (one)", "conflicts", "2.00", "10", "10", "9,000", "unknown")
    assert table.rows[1] == ("a.coh (two)", "simulate", "0.75", "-", "-", "-", "-")
    assert table.note.startswith(
        "6 pieces, 4.50 s in all; the run took 2.50 s of wall time in 2 worker processes "
        "(what several pieces of a system share, its reachable enclosure and nominal run, is "
        "computed before them and is in no row). 1 piece (2.00 s) ended every solver call "
        "unknown"
    )
    alone_note = timings_table(RunReport((FileReport("b.coh", (), (alone,)),), "0"), 0.6, 1).note
    assert alone_note == "1 piece, 0.50 s in all; the run took 0.60 s of wall time in one process"
    # with workers, but no formal analysis: nothing was computed before the pieces
    alone_2 = timings_table(RunReport((FileReport("b.coh", (), (alone,)),), "0"), 0.6, 2).note
    assert (
        alone_2 == "1 piece, 0.50 s in all; the run took 0.60 s of wall time in 2 worker processes"
    )


def test_check_timings_lists_every_piece_on_stderr_and_leaves_the_report_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one line a row
    args = ("check", str(SPEC), "--format", "json", "-j", "1", "--color", "never")
    code, out, err = _cli(*args)
    code_t, out_t, err_t = _cli(*args, "--timings")
    assert (code_t, out_t) == (code, out)  # the report's bytes do not carry timings
    assert err == ""
    assert err_t.startswith("Timings")
    ts = compile_path(SPEC).systems[0]
    names = [req_key(ts.requirements[p.args[2]]) for p in parts(ts) if len(p.args) > 2]
    names.append("conflicts")
    body = [line for line in err_t.splitlines() if line.startswith("│")]
    listed = [line.split("│")[2].strip() for line in body]
    assert sorted(listed) == sorted([*names, "linear", "simulate"])
    seconds = [float(line.split("│")[3]) for line in body]
    assert seconds == sorted(seconds, reverse=True)
    calls = sum(int(c) for c in (line.split("│")[4].strip() for line in body) if c != "-")
    doc = json.loads(out_t)
    smt = next(a for a in doc["files"][0]["systems"][0]["analyses"] if a["analysis"] == "smt")
    assert calls == dict(smt["data"]["solver"])["calls"]  # the rows add up to the whole
    assert f"{len(body)} pieces" in err_t


def test_a_folded_table_wraps_a_long_cell_instead_of_cutting_it() -> None:
    from coherence.reports.text import make_console, render_table
    from coherence.results import Table

    path = "specs/stacks/a_rather_long_directory/and_a_long_spec_name.coh"
    table = Table("Timings", ("spec", "piece", "wall s"), ((path, "conflicts", "1.00"),))
    shown = {}
    for fold in (False, True):
        out = io.StringIO()
        render_table(make_console(out, color=False, width=40), table, fold=fold)
        shown[fold] = out.getvalue()
    assert "…" in shown[False]
    assert "…" not in shown[True]
    cells = "".join(line.split("│")[1].strip() for line in shown[True].splitlines() if "│" in line)
    assert cells == path
