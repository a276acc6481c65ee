"""The check pipeline: files -> compile -> analyses -> RunReport.

Each analysis is a pure function of a transition system and options; this module only
decides which run and collects their results in order, then reconciles them
(:func:`coherence.reconcile.reconcile`: a replayed oscillation outranks a local certificate).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coherence import __version__
from coherence.compile import CompileResult, compile_source, read_source
from coherence.diagnostics import CoherenceError, Diagnostic
from coherence.ir.nodes import TransitionSystem
from coherence.parallel import resolve_jobs
from coherence.reconcile import reconcile
from coherence.results import AnalysisResult, FileReport, Finding, RunReport, SystemReport

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


def find_specs(paths: Sequence[str]) -> list[Path]:
    """Files as given; directories searched recursively for ``*.coh`` (sorted)."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(path.rglob("*.coh"))
            if not found:
                raise CoherenceError(
                    f"no `*.coh` spec files under `{p}`",
                    "pass spec files, or a directory that contains some",
                )
            out += found
        else:
            out.append(path)
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
    for name, fn in analyses:
        start = time.perf_counter()
        try:
            r = fn(ts)
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


def check_file(path: Path, options: CheckOptions, lint_only: bool = False) -> FileReport:
    src = read_source(path)
    if isinstance(src, Diagnostic):
        return FileReport(str(path), (src,))
    result: CompileResult = compile_source(src)
    systems: list[SystemReport] = []
    if not lint_only and result.ok:
        chosen = analyses_for(options)
        systems = [analyse_cached(ts, chosen, options) for ts in result.systems]
    return FileReport(str(path), result.diagnostics, tuple(systems), src.text)


def analyse_cached(
    ts: TransitionSystem, analyses: list[tuple[str, Analysis]], options: CheckOptions
) -> SystemReport:
    """:func:`analyse_system`, through the results cache of ``options`` (if any)."""
    store = _store(options)
    kept = _lookup(store, ts, options)
    if kept is None:
        kept = analyse_system(ts, analyses)
        _keep(store, ts, options, kept)
    return kept


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
    paths: Sequence[str], options: CheckOptions | None = None, lint_only: bool = False
) -> RunReport:
    """Check every spec under ``paths``.

    >>> report = check_paths(["specs/seed/tipping_point.coh"], CheckOptions(linear=False, smt=False))
    >>> [s.name for f in report.files for s in f.systems]
    ['tipping_point']
    """
    opts = options or CheckOptions()
    jobs = resolve_jobs(opts.jobs)
    if jobs > 1 and not lint_only:
        return RunReport(_check_parallel(find_specs(paths), opts, jobs), __version__)
    files = [check_file(p, opts, lint_only) for p in find_specs(paths)]
    return RunReport(tuple(files), __version__)


def _timed(name: str, ts: TransitionSystem, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with its wall time, an exception turned into the internal-error finding."""

    def run() -> tuple[Any, float]:
        start = time.perf_counter()
        try:
            return fn(), time.perf_counter() - start
        except Exception as exc:  # an analysis bug must not take the whole run down
            return _internal(name, ts, exc), time.perf_counter() - start

    return run


def _check_parallel(specs: list[Path], opts: CheckOptions, jobs: int) -> tuple[FileReport, ...]:
    """:func:`check_file` of every spec, the analyses of all their systems run as one pool of
    independent pieces (the simulation, the linear analysis, each piece of the formal
    analysis: :func:`coherence.formal.analyze.parts`), longest first; the reports are put
    together in the order a sequential run gives. Systems whose report the results cache
    keeps are not analysed; with the cache on, the pieces are handed out longest first by
    the durations of earlier runs (:class:`coherence.cache.Durations`)."""
    from coherence.parallel import run_all

    compiled: list[tuple[Path, Any, CompileResult | None]] = []
    for path in specs:
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

    done = run_all(tasks, jobs, longest_first(names, first, durations))
    if durations is not None and tasks:
        durations.record({n: sec for n, (_, sec) in zip(names, done, strict=True)})
    for ts, entry in zip(todo, plan, strict=True):
        kept[id(ts)] = _system_report(ts, entry, done, opts)
        _keep(store, ts, opts, kept[id(ts)])
    out: list[FileReport] = []
    for path, src, result in compiled:
        if result is None:
            assert isinstance(src, Diagnostic)
            out.append(FileReport(str(path), (src,)))
            continue
        reports = tuple(kept[id(ts)] for ts in result.systems) if result.ok else ()
        out.append(FileReport(str(path), result.diagnostics, reports, src.text))
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
