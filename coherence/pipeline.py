"""The check pipeline: files -> compile -> analyses -> RunReport.

Each analysis is a pure function of a transition system and options; this module only
decides which run and collects their results in order, then reconciles them
(:func:`coherence.reconcile.reconcile`: a replayed oscillation outranks a local certificate).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coherence import __version__
from coherence.compile import CompileResult, compile_source, read_source
from coherence.diagnostics import CoherenceError, Diagnostic
from coherence.ir.limits import LIMIT_CODE, TooLarge, beyond_limits
from coherence.ir.nodes import TransitionSystem
from coherence.parallel import resolve_jobs
from coherence.reconcile import reconcile
from coherence.results import (
    AnalysisResult,
    FileReport,
    Finding,
    RunReport,
    Status,
    SystemReport,
    Verdict,
)

Analysis = Callable[[TransitionSystem], AnalysisResult]


@dataclass(frozen=True, slots=True)
class CheckOptions:
    simulate: bool = True
    linear: bool = True
    smt: bool = True
    ticks: int | None = None
    horizon: int | None = None
    mode: str = "auto"
    rlimit: int | None = None
    invariants: bool = False
    jobs: int = 1  # worker processes (0: one per CPU); results do not depend on it
    extra: dict[str, object] = field(default_factory=dict)
    # where reports are kept between runs (the results cache, :mod:`coherence.cache`): the
    # cache directory, or None for none (the library's default; the CLI's is on)
    cache: Path | None = None

    def key(self) -> tuple[object, ...]:
        """What of these options the results depend on (not ``jobs``, not ``cache``)."""
        return (
            self.simulate, self.linear, self.smt, self.ticks, self.horizon, self.mode,
            self.rlimit, self.invariants, sorted(self.extra.items()),
        )  # fmt: skip


def _unlisted(seen: list[str], exc: OSError) -> None:
    seen.append(str(exc.filename or exc))


def find_specs(paths: Sequence[str]) -> list[Path]:
    """Files as given; directories searched recursively for ``*.coh`` (sorted).

    A directory that cannot be listed is an error that names it, never a silent skip: a
    spec the check never saw must not read as a pass."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        try:
            is_dir = path.is_dir()
        except OSError as exc:
            raise CoherenceError(
                f"cannot read `{p}`: {exc.strerror or exc}",
                "check the path and its parent directories' permissions",
            ) from None
        if not is_dir:
            out.append(path)
            continue
        found: list[Path] = []
        unreadable: list[str] = []

        for root, dirs, files in os.walk(path, onerror=functools.partial(_unlisted, unreadable)):
            dirs.sort()
            found += (Path(root) / f for f in files if f.endswith(".coh"))
        if unreadable:
            raise CoherenceError(
                f"cannot list `{sorted(unreadable)[0]}` under `{p}`"
                + (f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""),
                "give the directory read and search permission, or pass the spec files",
            )
        if not found:
            raise CoherenceError(
                f"no `*.coh` spec files under `{p}`",
                "pass spec files, or a directory that contains some",
            )
        out += sorted(found)
    return out


def _internal(analysis: str, ts: TransitionSystem, exc: BaseException) -> AnalysisResult:
    f = Finding(
        "COH903",
        f"the {analysis} analysis failed: {type(exc).__name__}: {exc}",
        ts.span,
        help="this is a bug in coherence; please report it with the spec",
        key=f"internal:{analysis}",
    )
    return AnalysisResult(analysis, (f,))


def _limited(analysis: str, ts: TransitionSystem, why: str) -> AnalysisResult:
    """An analysis stopped at a stated limit (:mod:`coherence.ir.limits`): COH905, and the
    requirements it decides unknown, with the limit as their reason."""
    f = Finding(
        LIMIT_CODE,
        f"the {analysis} analysis did not run: {why}",
        ts.span,
        help="make the system smaller (fewer or shorter windows, periods with common "
        "factors, shorter horizons), or check a part of it",
        key=f"limit:{analysis}",
    )
    decides = {"linear": lambda k: k == "stable", "smt": lambda k: k != "stable"}.get(analysis)
    verdicts = tuple(
        Verdict(r.text, r.kind, Status.UNKNOWN, r.span, analysis, None, why, (LIMIT_CODE,))
        for r in ts.requirements
        if decides is not None and decides(r.kind)
    )
    return AnalysisResult(analysis, (f,), verdicts)


def analyses_for(options: CheckOptions) -> list[tuple[str, Analysis]]:
    """The analyses ``options`` choose, in report order; each imports its package on its
    first call (a run whose systems all come from the results cache imports none)."""
    chosen: list[tuple[str, Analysis]] = []
    if options.simulate:

        def run_simulate(ts: TransitionSystem) -> AnalysisResult:
            from coherence.simulate.nominal import nominal_analysis

            return nominal_analysis(ts, options.ticks)

        chosen.append(("simulate", run_simulate))
    if options.linear:

        def run_linear(ts: TransitionSystem) -> AnalysisResult:
            import coherence.linear as linear

            return linear.analyze(ts)

        chosen.append(("linear", run_linear))
    if options.smt:

        def run_smt(ts: TransitionSystem) -> AnalysisResult:
            from coherence.formal import analyze

            return analyze(ts, smt_options(options))

        chosen.append(("smt", run_smt))
    return chosen


def smt_options(options: CheckOptions) -> Any:
    """The formal analysis's options for a check."""
    import coherence.smt as smt

    base = smt.SmtOptions()
    return smt.SmtOptions(
        horizon=options.horizon if options.horizon is not None else base.horizon,
        mode=options.mode,
        rlimit=options.rlimit if options.rlimit is not None else base.rlimit,
        invariants=options.invariants,
    )


def analyse_system(ts: TransitionSystem, analyses: list[tuple[str, Analysis]]) -> SystemReport:
    results: list[AnalysisResult] = []
    beyond = beyond_limits(ts)
    for name, fn in analyses:
        start = time.perf_counter()
        try:
            if beyond:
                raise TooLarge(beyond)
            r = fn(ts)
        except TooLarge as exc:  # a stated limit: unknown, never a pass, never a crash
            r = _limited(name, ts, str(exc))
        except Exception as exc:  # an analysis bug must not take the whole run down
            r = _internal(name, ts, exc)
        if not r.seconds:
            from dataclasses import replace

            r = replace(r, seconds=time.perf_counter() - start)
        results.append(r)
    return reconcile(
        SystemReport(ts.name, ts.path, ts.span, tuple(results), tuple(lp.name for lp in ts.loops)),
        ts,
    )


class Progress:
    """What :func:`check_paths` says while it works, for a display on standard error
    (:mod:`coherence.reports.progress`); here every method does nothing. Results do not
    depend on it."""

    def file(self, path: str, index: int, total: int) -> None:
        """``path``, the ``index``-th of ``total`` specs (from 0), is being checked."""

    def analysis(self, path: str, system: str, analysis: str) -> None:
        """An analysis of a system starts (``analysis``: simulate, linear, smt)."""

    def parallel(self, systems: int, pieces: int, workers: int) -> None:
        """With ``-j``: the analyses of ``systems`` systems run as ``pieces`` pieces in
        ``workers`` worker processes, and the specs are all done when they are."""

    def expensive(self, path: str, system: str, notes: tuple[str, ...]) -> None:
        """Before the work: the requirements of a system that will be expensive."""

    def done(self, report: FileReport) -> None:
        """A spec is checked (in the order given; with ``-j`` all at the end)."""


# the work a bounded requirement is estimated to take, in state-ticks, above which the
# check says so before it starts (llm_serving's 10-minute flapping window at a 1 s tick:
# 1.27M, 23.5 s of a 38 s check; the other specs of the library: at most 12k)
EXPENSIVE_WORK = 500_000


def expensive_requirements(ts: TransitionSystem, options: CheckOptions) -> tuple[str, ...]:
    """One sentence per bounded requirement of ``ts`` whose analysis will be expensive, with
    what would make it cheaper. The estimate is the size of the run the simulation and the
    unrolling must cover: the requirement's horizon in ticks times the states (delays and
    averaging windows are a state per tick), plus, for ``no flapping``, the reversals counted
    over its window at each tick."""
    if not options.smt:
        return ()
    notes = []
    for req in ts.requirements:
        if req.kind not in ("always", "response", "flapping"):
            continue
        ticks = max(1, req.horizon)
        if options.horizon is not None:
            ticks = min(ticks, options.horizon)
        window = req.within if req.kind == "flapping" else 0
        work = ticks * (len(ts.states) + window)
        if work < EXPENSIVE_WORK:
            continue
        what = f"{ticks} ticks x {len(ts.states)} states"
        if window:
            what += f" + a {window}-tick window at each tick"
        cheaper = [f"a coarser tick (it is {ts.tick:g} s)"]
        if window:
            cheaper.append("a shorter window")
        cheaper.append("`--horizon N` to cap the solver's unrolling")
        if len(ts.states) > 100:
            cheaper.append("shorter delays and averaging windows (a state per tick each)")
        notes.append(
            f"`{req.text or req.kind}` (line {req.span.line}) will be expensive to check: "
            f"{what} (about {work / 1e6:.2g}M state-ticks); cheaper with "
            + ", ".join(cheaper[:-1])
            + f" or {cheaper[-1]}"
        )
    return tuple(notes)


def check_file(
    path: Path, options: CheckOptions, lint_only: bool = False, progress: Progress | None = None
) -> FileReport:
    src = read_source(path)
    if isinstance(src, Diagnostic):
        return FileReport(str(path), (src,))
    result: CompileResult = compile_source(src)
    systems: list[SystemReport] = []
    if not lint_only and result.ok:
        chosen = analyses_for(options)
        systems = [analyse_cached(ts, chosen, options, progress) for ts in result.systems]
    return FileReport(str(path), result.diagnostics, tuple(systems), src.text)


def analyse_cached(
    ts: TransitionSystem,
    analyses: list[tuple[str, Analysis]],
    options: CheckOptions,
    progress: Progress | None = None,
) -> SystemReport:
    """:func:`analyse_system`, through the results cache of ``options`` (if any); the
    system's expensive requirements are said to ``progress`` before the work and kept in the
    report's notes."""
    store = _store(options)
    kept = _lookup(store, ts, options)
    if kept is None:
        notes = expensive_requirements(ts, options)
        if progress is not None:
            if notes:
                progress.expensive(ts.path, ts.name, notes)
            analyses = [(name, _announced(progress, ts, name, fn)) for name, fn in analyses]
        kept = _noted(analyse_system(ts, analyses), notes)
        _keep(store, ts, options, kept)
    return kept


def _announced(progress: Progress, ts: TransitionSystem, name: str, fn: Analysis) -> Analysis:
    def run(system: TransitionSystem) -> AnalysisResult:
        progress.analysis(ts.path, ts.name, name)
        return fn(system)

    return run


def _noted(report: SystemReport, notes: tuple[str, ...]) -> SystemReport:
    from dataclasses import replace

    return replace(report, notes=notes) if notes else report


def _store(options: CheckOptions) -> Any:
    """The results cache of ``options``, or None."""
    if options.cache is None:
        return None
    from coherence.cache import ResultCache

    return ResultCache(options.cache)


def _lookup(store: Any, ts: TransitionSystem, options: CheckOptions) -> SystemReport | None:
    """The report of ``ts`` kept by an earlier run with the same options, marked as cached."""
    if store is None:
        return None
    from dataclasses import replace

    from coherence.cache import result_key

    kept = store.get(result_key(ts, options.key()))
    return replace(kept, cached=True) if isinstance(kept, SystemReport) else None


def _keep(store: Any, ts: TransitionSystem, options: CheckOptions, report: SystemReport) -> None:
    """Keep ``report`` for later runs, unless it depended on more than the key says: an
    analysis that failed (COH903), or a solver call the wall-clock guard stopped."""
    if store is None:
        return
    from coherence.cache import result_key

    if any(f.code == "COH903" for f in report.findings) or any(a.guarded for a in report.analyses):
        return
    store.put(result_key(ts, options.key()), report)


def check_paths(
    paths: Sequence[str],
    options: CheckOptions | None = None,
    lint_only: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Check every spec under ``paths``, saying to ``progress`` (if any) how far it is; the
    report of each spec is handed to ``progress.done`` as soon as it is checked.

    >>> report = check_paths(["specs/seed/tipping_point.coh"], CheckOptions(linear=False, smt=False))
    >>> [s.name for f in report.files for s in f.systems]
    ['tipping_point']
    """
    opts = options or CheckOptions()
    jobs = resolve_jobs(opts.jobs)
    specs = find_specs(paths)
    if jobs > 1 and not lint_only:
        return RunReport(_check_parallel(specs, opts, jobs, progress), __version__)
    files = []
    for i, p in enumerate(specs):
        if progress is not None:
            progress.file(str(p), i, len(specs))
        files.append(check_file(p, opts, lint_only, progress))
        if progress is not None:
            progress.done(files[-1])
    return RunReport(tuple(files), __version__)


def _timed(name: str, ts: TransitionSystem, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with its wall time, an exception turned into the internal-error finding."""

    whole = name != "smt"  # a whole analysis (the formal one's pieces state their limits)

    def run() -> tuple[Any, float]:
        start = time.perf_counter()
        try:
            beyond = beyond_limits(ts) if whole else ""
            if beyond:
                raise TooLarge(beyond)
            return fn(), time.perf_counter() - start
        except TooLarge as exc:  # as in analyse_system: unknown, never a pass, never a hang
            if not whole:
                return _internal(name, ts, exc), time.perf_counter() - start
            return _limited(name, ts, str(exc)), time.perf_counter() - start
        except Exception as exc:  # an analysis bug must not take the whole run down
            return _internal(name, ts, exc), time.perf_counter() - start

    return run


def _check_parallel(
    specs: list[Path], opts: CheckOptions, jobs: int, progress: Progress | None = None
) -> tuple[FileReport, ...]:
    """:func:`check_file` of every spec, the analyses of all their systems run as one pool of
    independent pieces (the simulation, the linear analysis, each piece of the formal
    analysis: :func:`coherence.formal.analyze.parts`), longest first; the reports are put
    together in the order a sequential run gives. Systems whose report the results cache
    keeps are not analysed; with the cache on, the pieces are handed out longest first by
    the durations of earlier runs (:class:`coherence.cache.Durations`)."""
    from coherence.parallel import run_all

    compiled: list[tuple[Path, Any, CompileResult | None]] = []
    for i, path in enumerate(specs):
        if progress is not None:
            progress.file(str(path), i, len(specs))
        src = read_source(path)
        if isinstance(src, Diagnostic):
            compiled.append((path, src, None))
        else:
            compiled.append((path, src, compile_source(src)))
    chosen = analyses_for(opts)
    store = _store(opts)
    kept: dict[int, SystemReport] = {}  # id of a system -> its report from the cache
    todo: list[TransitionSystem] = []
    for _, _, r in compiled:
        for ts in r.systems if r is not None and r.ok else ():
            hit = _lookup(store, ts, opts)
            if hit is None:
                todo.append(ts)
                notes = expensive_requirements(ts, opts)
                if notes and progress is not None:
                    progress.expensive(ts.path, ts.name, notes)
            else:
                kept[id(ts)] = hit
    if todo and any(name == "linear" for name, _ in chosen):
        # what the linear analysis imports on first use, imported once here rather than in
        # every forked worker
        import scipy.optimize  # noqa: F401
        import sympy  # noqa: F401

        import coherence.linear  # noqa: F401
    if jobs > 1 and any(name == "smt" for name, _ in chosen):
        _shared(todo, jobs, opts)
    tasks: list[Callable[[], Any]] = []
    names: list[str] = []  # each task's file, system and piece, for the durations
    first: list[int] = []
    plan: list[list[tuple[str, list[int]]]] = []  # per system to analyse: its task indices
    for ts in todo:
        entry: list[tuple[str, list[int]]] = []
        for name, fn in chosen:
            if name == "smt":
                from coherence.formal.analyze import parts, piece_name

                pieces = parts(ts, smt_options(opts))
                idx = list(range(len(tasks), len(tasks) + len(pieces)))
                tasks += [_timed(name, ts, piece) for piece in pieces]
                names += [f"{ts.path}\0{ts.name}\0{piece_name(p)}" for p in pieces]
                first += idx[-2:]  # the conflict search and the equilibria
            else:
                idx = [len(tasks)]
                tasks.append(_timed(name, ts, functools.partial(fn, ts)))
                names.append(f"{ts.path}\0{ts.name}\0{name}")
                if name == "linear":
                    first.append(idx[0])
            entry.append((name, idx))
        plan.append(entry)
    durations = None
    if opts.cache is not None:
        from coherence.cache import Durations

        durations = Durations(opts.cache)
    from coherence.cache import longest_first

    if progress is not None and tasks:
        progress.parallel(len(todo), len(tasks), jobs)
    # each file's report is put together, kept and shown as soon as the pieces of its
    # systems (and of every file before it) are done, while later files' pieces still run
    system_of: dict[int, int] = {}  # task index -> index in ``todo``
    for k, entry in enumerate(plan):
        for _, idx in entry:
            system_of.update((i, k) for i in idx)
    pending_system = [sum(len(idx) for _, idx in entry) for entry in plan]
    file_systems: list[list[int]] = []  # per file: its systems' indices in ``todo``
    where = {id(ts): k for k, ts in enumerate(todo)}
    for _, _, result in compiled:
        systems = result.systems if result is not None and result.ok else ()
        file_systems.append([where[id(ts)] for ts in systems if id(ts) in where])
    results: list[Any] = [None] * len(tasks)
    out: list[FileReport] = []

    def finish_system(k: int) -> None:
        ts = todo[k]
        report = _system_report(ts, plan[k], results, opts)
        kept[id(ts)] = _noted(report, expensive_requirements(ts, opts))
        _keep(store, ts, opts, kept[id(ts)])

    def flush() -> None:
        while len(out) < len(compiled):
            f = len(out)
            if any(pending_system[k] for k in file_systems[f]):
                return
            path, src, result = compiled[f]
            if result is None:
                assert isinstance(src, Diagnostic)
                out.append(FileReport(str(path), (src,)))
                continue
            reports = tuple(kept[id(ts)] for ts in result.systems) if result.ok else ()
            out.append(FileReport(str(path), result.diagnostics, reports, src.text))
            if progress is not None:
                progress.done(out[-1])

    arrived: set[int] = set()

    def on_done(i: int, value: Any) -> None:
        if i in arrived:
            return
        arrived.add(i)
        results[i] = value
        k = system_of[i]
        pending_system[k] -= 1
        if pending_system[k] == 0:
            finish_system(k)
            flush()

    flush()  # the files before the first one with work to do (cached, or not compiled)
    done = run_all(tasks, jobs, longest_first(names, first, durations), on_done)
    if durations is not None and tasks:
        durations.record({n: sec for n, (_, sec) in zip(names, done, strict=True)})
    for i, value in enumerate(done):  # whatever was not announced as it finished
        on_done(i, value)
    flush()
    return tuple(out)


# the largest nominal run handed from a worker to the pieces, in values (8 bytes each)
SHARED_VALUES = 4_000_000


def _shared(systems: list[TransitionSystem], jobs: int, opts: CheckOptions) -> None:
    """What several pieces of a system read, computed once each in the workers and kept
    here, before the pieces are forked (a worker would otherwise compute it again for each
    piece it takes): the reachable enclosure of every system (every piece of the formal
    analysis reads it), and the nominal run from the initial state of every system whose
    conflict search or equilibria read its operating point (as long as the longest of them
    and the nominal simulation ask for; a shorter run is the same run's first ticks), unless
    it is longer than ``SHARED_VALUES`` values."""
    from coherence.formal.analyze import shares_operating_point
    from coherence.intervals.reach import reachable_enclosure, remember_enclosure
    from coherence.parallel import run_all
    from coherence.simulate.settle import settle_ticks

    if not systems:
        return
    smt = smt_options(opts)
    tasks: list[Callable[[], tuple[bool, Any]]] = []
    kinds: list[tuple[str, TransitionSystem]] = []
    for ts in systems:
        tasks.append(functools.partial(_guarded, reachable_enclosure, ts))
        kinds.append(("enclosure", ts))
    for ts in systems:
        if shares_operating_point(ts, smt):
            ticks = settle_ticks(ts, smt.settle)
            if opts.simulate:
                from coherence.simulate.nominal import default_ticks

                ticks = max(ticks, opts.ticks or default_ticks(ts))
            if (len(ts.states) + len(ts.lets)) * ticks > SHARED_VALUES:
                continue  # a long `--ticks` run: cheaper to compute than to hand over
            tasks.append(functools.partial(_guarded, _nominal_arrays, ts, ticks))
            kinds.append(("nominal", ts))
    weight = [len(ts.states) * ts.hyperperiod for _, ts in kinds]  # the largest first
    first = sorted(range(len(tasks)), key=lambda i: -weight[i])
    for (kind, ts), (ok, value) in zip(kinds, run_all(tasks, jobs, first), strict=True):
        if not ok:  # the pieces compute it again and report what went wrong, as ever
            continue
        if kind == "enclosure":
            remember_enclosure(ts, value)
        else:
            from coherence.simulate.engine import Trace, remember_nominal

            remember_nominal(Trace(ts, *value))


def _nominal_arrays(ts: TransitionSystem, ticks: int) -> tuple[Any, ...]:
    """The nominal run's arrays (not the system: the parent has it)."""
    from coherence.simulate.engine import nominal_trace

    tr = nominal_trace(ts, ticks)
    return (tr.states, tr.inputs, tr.lets, tr.clipped, tr.params)


def _guarded(fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    try:
        return True, fn(*args)
    except Exception:  # reported by the piece that needs it
        return False, None


def _system_report(
    ts: TransitionSystem, entry: list[tuple[str, list[int]]], done: list[Any], opts: CheckOptions
) -> SystemReport:
    from dataclasses import replace

    from coherence.formal.analyze import Part, assemble

    results: list[AnalysisResult] = []
    for name, idx in entry:
        got = [done[i] for i in idx]
        failed = [r for r, _ in got if isinstance(r, AnalysisResult)]
        if name == "smt" and not failed:
            pieces = [r for r, _ in got]
            assert all(isinstance(p, Part) for p in pieces)
            r = assemble(smt_options(opts), pieces, sum(sec for _, sec in got))
            results.append(r)
        elif failed:
            results.append(replace(failed[0], seconds=sum(sec for _, sec in got)))
        else:
            r, sec = got[0]
            results.append(r if r.seconds else replace(r, seconds=sec))
    return reconcile(
        SystemReport(ts.name, ts.path, ts.span, tuple(results), tuple(lp.name for lp in ts.loops)),
        ts,
    )
