"""The results cache: a system checked before with the same code, spec and options is read
back, byte for byte the report a fresh analysis gives; anything else is analysed again."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import coherence.cache as cache_module
import coherence.linear as linear
from coherence.cache import GUARD_NOTE, Durations, ResultCache, longest_first, result_key
from coherence.cli import main
from coherence.codec import CodecError, dumps, loads
from coherence.compile import compile_path
from coherence.formal.analyze import parts, piece_name
from coherence.pipeline import CheckOptions, check_paths
from coherence.results import AnalysisResult

SPEC = """\
system tiny {
  tick 1s
  input load : req/s in [0, 10] nominal 5
  state q : req in [0, 100] init 0
  state rate : req/s in [1, 20] init 5
  next q = max(0, q + (load - rate) * tick)
  loop scaler {
    every 2s
    senses q
    actuates rate by 0.1 / 1s * (q - 10 req)
    objective keep q <= 50 req
  }
  require stable
  require always q <= 80 req for 20 ticks
}
"""


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small spec, with the results cache on in ``tmp_path / "cache"``."""
    monkeypatch.delenv("COHERENCE_NO_CACHE", raising=False)
    monkeypatch.setenv("COHERENCE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no project configuration
    path = tmp_path / "tiny.coh"
    path.write_text(SPEC, encoding="utf-8")
    return path


def _entries(root: Path) -> list[Path]:
    return sorted((root / "cache" / "results").glob("*/*.json"))


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def _fail(ts: object) -> AnalysisResult:
    raise AssertionError("analysed although the report was cached")


def _check(path: Path, *more: str) -> tuple[int, str, str]:
    return _cli("check", str(path), "--format", "json", "-j", "1", "--color", "never", *more)


def test_a_second_check_reads_the_report_back_byte_for_byte(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _check(spec)
    assert len(_entries(spec.parent)) == 1
    monkeypatch.setattr(linear, "analyze", _fail)  # a second run must not analyse
    again = _check(spec)
    assert again == first
    assert first[0] == 1 and '"COH301"' in first[1]  # an unstable loop: a real report
    # the library reads it too (a path as the command line shows it: the report names it)
    report = check_paths([spec.name], CheckOptions(cache=spec.parent / "cache"))
    assert [s.cached for f in report.files for s in f.systems] == [True]


def test_workers_and_one_process_share_the_entries(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _cli("check", str(spec), "--format", "json", "-j", "2")
    monkeypatch.setattr(linear, "analyze", _fail)
    assert _check(spec) == first  # written by the parallel run, read by the sequential one


def test_the_key_changes_with_the_spec_its_place_the_options_and_the_code(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts = compile_path(spec).systems[0]
    key = result_key(ts, CheckOptions().key())
    assert key == result_key(compile_path(spec).systems[0], CheckOptions(jobs=4).key())
    moved = spec.with_name("other.coh")
    moved.write_text(SPEC, encoding="utf-8")
    commented = spec.with_name("commented.coh")
    commented.write_text("# a comment moves every span\n" + SPEC, encoding="utf-8")
    tuned = spec.with_name("tuned.coh")
    tuned.write_text(SPEC.replace("0.1 / 1s", "0.2 / 1s"), encoding="utf-8")
    for other in (moved, commented, tuned):
        assert result_key(compile_path(other).systems[0], CheckOptions().key()) != key
    for opts in (CheckOptions(rlimit=1000), CheckOptions(smt=False), CheckOptions(ticks=50)):
        assert result_key(ts, opts.key()) != key
    monkeypatch.setattr(cache_module, "build_id", lambda: "another build")
    assert result_key(ts, CheckOptions().key()) != key


def test_the_build_id_covers_every_file_of_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    package = Path(cache_module.__file__).resolve().parent
    files = {p.relative_to(package).as_posix() for p in cache_module._package_files(package)}
    assert {"cache.py", "smt/solver.py", "frontend/coherence.lark"} <= files
    assert not any(f.endswith(".pyc") for f in files)
    base = cache_module.build_id()
    cache_module.build_id.cache_clear()
    try:
        monkeypatch.setattr(cache_module, "LIBRARIES", ("z3-solver", "numpy"))
        assert cache_module.build_id() != base  # fewer library versions in it
    finally:
        cache_module.build_id.cache_clear()


def test_a_changed_spec_is_analysed_again(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(spec)
    spec.write_text(SPEC.replace("for 20 ticks", "for 10 ticks"), encoding="utf-8")
    _, out, _ = _check(spec)
    assert "10 ticks" in out and "20 ticks" not in out
    assert len(_entries(spec.parent)) == 2


def test_a_damaged_entry_is_a_miss_and_is_replaced(spec: Path) -> None:
    first = _check(spec)
    (entry,) = _entries(spec.parent)
    entry.write_bytes(b"not a report")
    assert _check(spec) == first
    (entry,) = _entries(spec.parent)
    report = loads(entry.read_text(encoding="utf-8"), entry.stem)
    assert report.name == "tiny"


PAYLOAD = b"cos\nsystem\n(S'touch PLANTED'\ntR."  # a pickle that runs a shell command


@pytest.mark.parametrize("where", ["entry", "grammar"])
def test_a_planted_pickle_in_the_cache_directory_runs_nothing(
    spec: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A CI cache restored from another job is data: a pickle planted as a results entry (or
    where Lark would keep its grammar tables) is never loaded, and the run is the same."""
    first = _check(spec)
    root = spec.parent / "cache"
    monkeypatch.chdir(spec.parent)
    if where == "entry":
        (entry,) = _entries(spec.parent)
        entry.write_bytes(PAYLOAD)
    else:
        for name in ("parser.lark-cache", "terminals.lark-cache"):
            (root / name).write_bytes(PAYLOAD)
        import coherence.frontend.parser as parser_module

        parser_module._parser.cache_clear()
    assert _check(spec) == first
    assert not (spec.parent / "PLANTED").exists()


def test_a_report_read_back_equals_the_report_written(spec: Path) -> None:
    ts = compile_path(spec).systems[0]
    from coherence.pipeline import analyse_system, analyses_for

    report = analyse_system(ts, analyses_for(CheckOptions(jobs=1)))
    assert loads(dumps(report, "k"), "k") == report
    with pytest.raises(CodecError):
        loads(dumps(report, "k"), "another key")
    with pytest.raises(CodecError):  # a class outside the allowlist is refused, not built
        loads('{"key": "", "report": {"c": "Path", "v": {}}}')


def test_an_entry_under_the_wrong_name_is_not_believed(tmp_path: Path) -> None:
    from coherence.results import SystemReport
    from coherence.source import Span

    store = ResultCache(tmp_path)
    store.put("ab" * 32, SystemReport("s", "a.coh", Span.unknown("a.coh"), ()))
    wrong = store._path("cd" * 32)
    wrong.parent.mkdir(parents=True)
    os.replace(store._path("ab" * 32), wrong)
    assert store.get("cd" * 32) is None and not wrong.exists()
    assert (store.hits, store.misses) == (0, 1)


def test_a_failed_analysis_or_a_guarded_answer_is_not_kept(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ts: object) -> AnalysisResult:
        raise RuntimeError("boom")

    with monkeypatch.context() as m:
        m.setattr(linear, "analyze", broken)
        _, out, _ = _check(spec)
    assert '"COH903"' in out and _entries(spec.parent) == []

    def guarded(ts: object) -> AnalysisResult:
        # a solver call the wall-clock guard stopped: the typed fact the pipeline reads
        return AnalysisResult("linear", data=(("why", f"{GUARD_NOTE} (30 s)"),), guarded=1)

    with monkeypatch.context() as m:
        m.setattr(linear, "analyze", guarded)
        _check(spec)
    assert _entries(spec.parent) == []
    _check(spec)
    assert len(_entries(spec.parent)) == 1


@pytest.mark.parametrize(
    "how", ["--no-cache", "config", "COHERENCE_NO_CACHE", "COHERENCE_CACHE_DIR"]
)
def test_the_cache_can_be_turned_off(spec: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    more: list[str] = []
    if how == "--no-cache":
        more = ["--no-cache"]
    elif how == "config":
        (spec.parent / "coherence.toml").write_text("cache = false\n", encoding="utf-8")
    elif how == "COHERENCE_NO_CACHE":
        monkeypatch.setenv("COHERENCE_NO_CACHE", "1")
    else:
        monkeypatch.setenv("COHERENCE_CACHE_DIR", "")
    _check(spec, *more)
    _check(spec, *more)
    assert _entries(spec.parent) == []


def test_timings_leave_out_cached_systems_and_count_them(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    _, _, fresh = _check(spec, "--timings")
    assert "linear" in fresh and "results cache" not in fresh
    _, _, cached = _check(spec, "--timings")
    assert "0 pieces" in cached
    assert "1 system came from the results cache" in cached
    assert not [line for line in cached.splitlines() if line.startswith("│")]


def test_pruning_removes_the_least_recently_used_first(tmp_path: Path) -> None:
    from coherence.results import SystemReport
    from coherence.source import Span

    report = SystemReport("x" * 1000, "a.coh", Span.unknown("a.coh"), ())
    store = ResultCache(tmp_path)
    keys = [f"{i:02d}" * 32 for i in range(4)]
    for n, key in enumerate(keys):
        store.put(key, report)
        os.utime(store._path(key), ns=(10**9 * n, 10**9 * n))
    assert store.get(keys[0]) == report  # used now: the newest
    size = store._path(keys[0]).stat().st_size
    store.prune(limit=2 * size)
    left = sorted(p.stem for p in tmp_path.glob("results/*/*.json"))
    assert left == sorted([keys[0], keys[3]])


def test_pieces_timed_before_are_handed_out_longest_first() -> None:
    names = ["a", "b", "c", "d", "e"]
    durations = Durations(Path("/nonexistent"))
    assert longest_first(names, [3], None) == [3, 0, 1, 2, 4]  # the caller's guess alone
    durations.seconds = {"a": 1.0, "c": 5.0, "d": 0.5}
    # the untimed guess (none here) first, then the timed by duration, then the rest
    assert longest_first(names, [3], durations) == [2, 0, 3, 1, 4]
    assert longest_first(names, [4], durations) == [4, 2, 0, 3, 1]


def test_durations_are_kept_between_runs_and_a_bad_file_is_passed_over(tmp_path: Path) -> None:
    first = Durations(tmp_path)
    assert first.seconds == {}
    first.record({"x": 2.0, "y": 1.25})
    again = Durations(tmp_path)
    assert again.seconds == {"x": 2.0, "y": 1.25}
    again.record({"x": 3.0})
    assert list(Durations(tmp_path).seconds.items()) == [("y", 1.25), ("x", 3.0)]
    (tmp_path / Durations.FILE).write_text('{"x": "slow", "y": -1, "z": 0.5}')
    assert Durations(tmp_path).seconds == {"z": 0.5}
    (tmp_path / Durations.FILE).write_text("not json")
    assert Durations(tmp_path).seconds == {}


def test_a_parallel_check_records_every_piece_and_orders_the_next_run_by_it(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import coherence.parallel as parallel

    orders: list[list[int]] = []
    real = parallel.run_all

    def spy(
        tasks: list[Any], jobs: int, first: Sequence[int] = (), on_done: Any = None
    ) -> list[Any]:
        orders.append(list(first))
        return real(tasks, jobs, first, on_done)

    monkeypatch.setattr(parallel, "run_all", spy)
    _cli("check", str(spec), "--format", "json", "-j", "2")
    recorded = Durations(spec.parent / "cache").seconds
    ts = compile_path(Path(spec.name)).systems[0]  # the path as the command line shows it
    pieces = ["simulate", "linear", *(piece_name(p) for p in parts(ts))]
    assert sorted(recorded) == sorted(f"{ts.path}\0{ts.name}\0{p}" for p in pieces)
    shutil.rmtree(spec.parent / "cache" / "results")  # analysed again, in the timed order
    _cli("check", str(spec), "--format", "json", "-j", "2")
    seconds = [recorded[f"{ts.path}\0{ts.name}\0{pieces[i]}"] for i in orders[-1]]
    assert seconds == sorted(seconds, reverse=True)


def test_the_cache_command_shows_what_is_kept_and_clears_it(spec: Path) -> None:
    _cli("check", str(spec), "--format", "json", "-j", "2")
    code, out, _ = _cli("cache")
    root = spec.parent / "cache"
    assert code == 0 and out.startswith(f"{root}\n")
    assert (
        "results    1 report," in out and "durations  3 pieces timed" in out
    )  # simulate, linear, always
    code, out, _ = _cli("cache", "--clear")
    assert (code, out) == (0, f"cleared {root}: 1 report\n")
    assert _entries(spec.parent) == [] and not (root / Durations.FILE).exists()
    assert "results    0 reports" in _cli("cache")[1]


def test_the_cache_command_without_a_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERENCE_CACHE_DIR", "")
    code, out, _ = _cli("cache")
    assert code == 0 and out.startswith("no cache")


def test_diff_reads_both_versions_from_what_check_kept(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = spec.with_name("old.coh")
    old.write_text(SPEC.replace("0.1 / 1s", "0.05 / 1s"), encoding="utf-8")
    _check(Path(spec.name))  # the paths as the command line shows them: the reports name them
    _check(Path(old.name))
    fresh = _cli("diff", old.name, spec.name, "--format", "json", "--no-cache")
    monkeypatch.setattr(linear, "analyze", _fail)
    assert _cli("diff", old.name, spec.name, "--format", "json") == fresh
    assert fresh[0] == 0 and '"delta"' in fresh[1]  # the gain moved the numbers


def test_the_key_is_the_same_in_every_process() -> None:
    """The lowered system's ``repr`` holds no set or dict whose order varies with string
    hashing (``PYTHONHASHSEED``): a key that did would never be found again."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    code = (
        "from coherence.compile import compile_path\n"
        "from coherence.pipeline import CheckOptions, find_specs\n"
        "from coherence.cache import result_key\n"
        "for p in find_specs(['specs']):\n"
        "    for ts in compile_path(p).systems:\n"
        "        print(result_key(ts, CheckOptions().key()))\n"
    )
    keys = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        keys.append(run.stdout.split())
    assert keys[0] == keys[1] and len(keys[0]) >= 22
