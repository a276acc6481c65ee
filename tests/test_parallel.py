"""The analyses in worker processes: the same report as one after the other."""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from coherence.parallel import AUTO_MAX, cpu_count, resolve_jobs, run_all
from coherence.pipeline import CheckOptions, check_paths
from coherence.results import AnalysisResult, RunReport

ROOT = Path(__file__).resolve().parents[1]
SPECS = [
    str(ROOT / "specs" / "conflicts" / "hpa_lag_broken.coh"),
    str(ROOT / "specs" / "conflicts" / "retry_storm_fixed.coh"),
    str(ROOT / "specs" / "stacks" / "sglang_router.coh"),
]


def _square(x: int) -> int:
    return x * x


def _pid() -> int:
    return os.getpid()


def _fail() -> int:
    raise ValueError("a task that fails")


def test_results_come_back_in_the_order_of_the_tasks() -> None:
    tasks = [lambda i=i: _square(i) for i in range(12)]
    assert run_all(tasks, 3, first=[11, 5]) == [i * i for i in range(12)]
    assert run_all(tasks, 1) == [i * i for i in range(12)]


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="workers are forked"
)
def test_tasks_run_in_other_processes() -> None:
    pids = run_all([_pid] * 4, 2)
    assert os.getpid() not in pids


def test_an_exception_in_a_task_is_raised_here() -> None:
    with pytest.raises(ValueError, match="a task that fails"):
        run_all([_pid, _fail, _pid], 2)


def test_zero_jobs_is_one_per_cpu_up_to_a_cap() -> None:
    assert 1 <= resolve_jobs(0) <= min(cpu_count(), AUTO_MAX)
    assert resolve_jobs(3) == 3
    assert resolve_jobs(32) == 32  # an explicit count is taken as it is


def _untimed(r: AnalysisResult) -> AnalysisResult:
    """``r`` without its times (its pieces' solver calls, unknowns and rlimit kept)."""
    return replace(r, seconds=0.0, pieces=tuple(replace(p, seconds=0.0) for p in r.pieces))


def _without_seconds(report: RunReport) -> Any:
    files = []
    for f in report.files:
        systems = tuple(
            replace(s, analyses=tuple(_untimed(r) for r in s.analyses)) for s in f.systems
        )
        files.append(replace(f, systems=systems))
    return tuple(files)


def test_a_parallel_check_gives_the_sequential_report() -> None:
    one = check_paths(SPECS, CheckOptions(jobs=1))
    two = check_paths(SPECS, CheckOptions(jobs=2))
    assert _without_seconds(one) == _without_seconds(two)
    assert [f.path for f in two.files] == SPECS
    smt = [r for f in two.files for s in f.systems for r in s.analyses if r.analysis == "smt"]
    assert smt and all(r.seconds > 0 for r in smt)
    assert any(r.findings for r in smt)  # the broken spec's flapping is in the merged result


def test_a_spec_that_does_not_compile_keeps_its_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.coh"
    bad.write_text("system s { tick 1s state x : 1 in [0, 1] init 0 next x = y }\n")
    paths = [SPECS[0], str(bad), SPECS[1]]
    two = check_paths(paths, CheckOptions(jobs=2, linear=False))
    one = check_paths(paths, CheckOptions(jobs=1, linear=False))
    assert [f.path for f in two.files] == paths
    assert _without_seconds(one) == _without_seconds(two)
    assert two.files[1].diagnostics and not two.files[1].systems


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_enclosures_are_computed_in_the_workers_and_kept_for_the_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from coherence.compile import compile_text
    from coherence.intervals import reach
    from coherence.pipeline import CheckOptions, _shared

    systems = []
    for name in ("retry_storm_fixed.coh", "hpa_lag_broken.coh"):
        path = ROOT / "specs" / "conflicts" / name
        systems.append(compile_text(str(path), path.read_text(encoding="utf-8")).systems[0])
    expected = [reach.reachable_enclosure(ts) for ts in systems]
    parent = os.getpid()
    real = reach.reachable_enclosure

    def in_a_worker(t: Any, *args: Any, **kwargs: Any) -> Any:
        assert os.getpid() != parent, "computed in the parent"
        return real(t, *args, **kwargs)

    monkeypatch.setattr(reach, "reachable_enclosure", in_a_worker)
    _shared(systems, 2, CheckOptions(jobs=2))
    for ts, want in zip(systems, expected, strict=True):
        got = reach.reachable(ts)  # kept: computing it here would fail in in_a_worker
        assert got is not None and want is not None and got.box == want.box


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_nominal_runs_are_computed_in_the_workers_and_kept_for_the_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The nominal run that the simulation, the conflict search and the equilibria read is
    computed once, in a worker, as long as the longest of them asks; each piece reads its
    first ticks, which are bit for bit the run it would have computed itself."""
    from coherence.compile import compile_text
    from coherence.pipeline import CheckOptions, _shared
    from coherence.simulate import engine
    from coherence.simulate.nominal import default_ticks
    from coherence.simulate.settle import settle_ticks
    from coherence.smt import SmtOptions

    path = ROOT / "specs" / "seed" / "tipping_point.coh"
    text = path.read_text(encoding="utf-8")
    ts = compile_text(str(path), text).systems[0]
    alone = compile_text(str(path), text).systems[0]  # an equal system, its own cache entry
    settle, shown = settle_ticks(ts, SmtOptions().settle), default_ticks(ts) + 200  # `--ticks`
    want = {n: engine.simulate(alone, n) for n in (settle, shown)}
    parent = os.getpid()
    real = engine.simulate

    def in_a_worker(*args: Any, **kwargs: Any) -> Any:
        assert os.getpid() != parent, "computed in the parent"
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "simulate", in_a_worker)
    _shared([ts], 2, CheckOptions(jobs=2, ticks=shown))
    for n, tr in want.items():
        got = engine.nominal_trace(ts, n)  # kept: computing it here would fail
        assert got.ts is ts and got.ticks == n
        assert got.states.tobytes() == tr.states.tobytes()
        assert got.lets.tobytes() == tr.lets.tobytes()
        assert not got.states.flags.writeable


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_a_nominal_run_too_long_to_hand_over_is_left_to_the_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from coherence import pipeline
    from coherence.compile import compile_text
    from coherence.simulate import engine

    path = ROOT / "specs" / "seed" / "tipping_point.coh"
    ts = compile_text(str(path), path.read_text(encoding="utf-8")).systems[0]
    size = (len(ts.states) + len(ts.lets)) * 300
    monkeypatch.setattr(pipeline, "SHARED_VALUES", size - 1)
    engine._NOMINAL.clear()  # another test may have run the same system (same content)
    pipeline._shared([ts], 2, pipeline.CheckOptions(jobs=2))
    assert engine._NOMINAL.get(ts.content_key) is None
    monkeypatch.setattr(pipeline, "SHARED_VALUES", size)
    pipeline._shared([ts], 2, pipeline.CheckOptions(jobs=2))
    kept = engine._NOMINAL.get(ts.content_key)
    assert kept is not None and kept.ticks == 300
