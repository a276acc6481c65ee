"""Progress on standard error while `coherence check` works, the report streamed per spec,
and the note said before an expensive requirement is checked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from coherence.cli import main
from coherence.compile import compile_path
from coherence.pipeline import CheckOptions, expensive_requirements

ROOT = Path(__file__).resolve().parent.parent
TIPPING = "specs/seed/tipping_point.coh"
OVERLOAD = "tests/ci/data/overload.coh"
BROKEN = "tests/ci/data/policy.coh"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")


FAST = ("--no-smt", "--no-linear", "--color", "never")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_progress_goes_to_stderr_and_leaves_stdout_unchanged(jobs: str, tmp_path: Path) -> None:
    whole = tmp_path / "whole.txt"
    code, out, err = cli("check", TIPPING, OVERLOAD, *FAST, "-j", jobs, "--progress",
                         "--output", f"text={whole}")  # fmt: skip
    code_quiet, out_quiet, err_quiet = cli("check", TIPPING, OVERLOAD, *FAST, "-j", jobs,
                                           "--no-progress")  # fmt: skip
    assert (code, code_quiet) == (0, 0), err + err_quiet
    assert out == out_quiet  # progress changes nothing on stdout
    # streamed per spec, the same bytes as the report rendered at once
    assert out == whole.read_text(encoding="utf-8")
    assert err_quiet == ""
    lines = err.splitlines()
    assert any(f"[1/2] {TIPPING}" in line for line in lines)
    assert any(f"[2/2] {OVERLOAD}" in line for line in lines)
    if jobs == "1":  # which analysis of which system
        assert any(line.endswith("overload: nominal simulation") for line in lines)
    else:
        assert any("pieces in 2 worker processes" in line for line in lines)


def test_no_progress_on_a_captured_stream_by_default() -> None:
    _, _, err = cli("check", TIPPING, *FAST)
    assert err == ""


def test_each_spec_is_printed_as_soon_as_it_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first spec's part is on stdout before the second spec is even read."""
    import coherence.pipeline as pipeline

    out = io.StringIO()
    seen: list[str] = []
    real = pipeline.check_file

    def spy(path: Path, *args: object, **kwargs: object) -> object:
        seen.append(out.getvalue())
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "check_file", spy)
    code = main(["check", TIPPING, OVERLOAD, *FAST, "-j", "1"], out, io.StringIO())
    assert code == 0
    assert seen[0] == ""
    assert "system tipping_point" in seen[1] and "system overload" not in seen[1]
    assert out.getvalue().rstrip().splitlines()[-1].startswith("result: PASSED")


def test_quiet_streams_one_line_per_system_then_the_result() -> None:
    _, out, _ = cli("check", TIPPING, OVERLOAD, *FAST, "-q", "--progress")
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == [TIPPING, OVERLOAD]
    assert lines[2].startswith("result: PASSED") and len(lines) == 3


def test_an_expensive_requirement_is_named_before_the_work() -> None:
    """llm_serving's 10-minute flapping window at a 1 s tick: 1200 ticks of 455 states plus
    the 600-tick window at each tick, about 1.27M state-ticks (23.5 s of a 38 s check)."""
    (ts,) = compile_path("specs/llm_serving.coh").systems
    notes = expensive_requirements(ts, CheckOptions())
    assert len(notes) == 1
    (note,) = notes
    assert "require no flapping of replicas max 3 within 10 min" in note
    assert "1200 ticks x 455 states + a 600-tick window" in note
    assert "a coarser tick (it is 1 s)" in note and "a shorter window" in note
    assert "--horizon" in note
    # capping the unrolling makes it cheap enough; without the formal analysis, nothing
    assert expensive_requirements(ts, CheckOptions(horizon=100)) == ()
    assert expensive_requirements(ts, CheckOptions(smt=False)) == ()
    (small,) = compile_path(TIPPING).systems
    assert expensive_requirements(small, CheckOptions()) == ()


def test_the_expensive_note_is_said_on_stderr_and_in_the_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The note comes before any analysis runs (the analyses are replaced by a stub that
    records what stderr held when it was called)."""
    import coherence.pipeline as pipeline
    from coherence.results import AnalysisResult

    err = io.StringIO()
    said: list[str] = []

    def stub(options: CheckOptions) -> list[tuple[str, object]]:
        def run(ts: object) -> AnalysisResult:
            said.append(err.getvalue())
            return AnalysisResult("smt")

        return [("smt", run)]

    monkeypatch.setattr(pipeline, "analyses_for", stub)
    out = io.StringIO()
    main(["check", "specs/llm_serving.coh", "-j", "1", "--no-cache", "--color", "never"], out, err)
    assert said and "will be expensive to check" in said[0]
    assert "note: specs/llm_serving.coh: system llm_serving: `require no flapping" in said[0]
    assert "note: `require no flapping of replicas max 3 within 10 min` (line 134)" in (
        out.getvalue()
    )


def test_with_workers_each_spec_is_reported_while_later_pieces_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import coherence.parallel as parallel
    from coherence.pipeline import check_paths

    running: list[bool] = []
    real = parallel.run_all

    def spy(tasks: list[object], jobs: int, first: object = (), on_done: object = None) -> object:
        running.append(True)
        try:
            return real(tasks, jobs, first, on_done)  # type: ignore[arg-type]
        finally:
            running.append(False)

    monkeypatch.setattr(parallel, "run_all", spy)

    class Record:
        def __init__(self) -> None:
            self.seen: list[tuple[str, bool]] = []

        def file(self, path: str, index: int, total: int) -> None: ...
        def analysis(self, path: str, system: str, analysis: str) -> None: ...
        def parallel(self, systems: int, pieces: int, workers: int) -> None: ...
        def expensive(self, path: str, system: str, notes: tuple[str, ...]) -> None: ...
        def done(self, report: object) -> None:
            self.seen.append((str(getattr(report, "path", "")), running[-1]))

    record = Record()
    options = CheckOptions(smt=False, linear=False, jobs=2, cache=None)
    reports = check_paths([TIPPING, OVERLOAD], options, progress=record)  # type: ignore[arg-type]
    assert [r.path for r in reports.files] == [TIPPING, OVERLOAD]
    # in the order given, and each handed over while the pool was still running
    assert record.seen == [(TIPPING, True), (OVERLOAD, True)]
