"""The check pipeline: files -> compile -> analyses -> RunReport.

Each analysis is a pure function of a transition system and options; this module only
decides which run and collects their results in order.
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
    chosen: list[tuple[str, Analysis]] = []
    if options.simulate:
        from coherence.simulate.nominal import nominal_analysis

        chosen.append(("simulate", lambda ts: nominal_analysis(ts, options.ticks)))
    if options.linear:
        import coherence.linear as linear

        chosen.append(("linear", lambda ts: linear.analyze(ts)))
    if options.smt:
        import coherence.smt as smt

        def run_smt(ts: TransitionSystem) -> AnalysisResult:
            return smt.analyze(ts, smt_options(options))

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
    return SystemReport(
        ts.name, ts.path, ts.span, tuple(results), tuple(lp.name for lp in ts.loops)
    )


def check_file(path: Path, options: CheckOptions, lint_only: bool = False) -> FileReport:
    src = read_source(path)
    if isinstance(src, Diagnostic):
        return FileReport(str(path), (src,))
    result: CompileResult = compile_source(src)
    systems: list[SystemReport] = []
    if not lint_only and result.ok:
        chosen = analyses_for(options)
        systems = [analyse_system(ts, chosen) for ts in result.systems]
    return FileReport(str(path), result.diagnostics, tuple(systems), src.text)


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
    analysis: :func:`coherence.smt.analyze.parts`), longest first; the reports are put
    together in the order a sequential run gives."""
    from coherence.parallel import run_all

    compiled: list[tuple[Path, Any, CompileResult | None]] = []
    for path in specs:
        src = read_source(path)
        if isinstance(src, Diagnostic):
            compiled.append((path, src, None))
        else:
            compiled.append((path, src, compile_source(src)))
    chosen = analyses_for(opts)
    if any(name == "linear" for name, _ in chosen):
        # what the linear analysis imports on first use, imported once here rather than in
        # every forked worker
        import scipy.optimize  # noqa: F401
        import sympy  # noqa: F401
    if jobs > 1 and any(name == "smt" for name, _ in chosen):
        _shared(
            [ts for _, _, r in compiled if r is not None and r.ok for ts in r.systems],
            jobs,
            opts,
        )
    tasks: list[Callable[[], Any]] = []
    first: list[int] = []
    plan: list[list[tuple[str, list[int]]]] = []  # per system: (analysis, its task indices)
    for _, _, result in compiled:
        if result is None or not result.ok:
            continue
        for ts in result.systems:
            entry: list[tuple[str, list[int]]] = []
            for name, fn in chosen:
                if name == "smt":
                    from coherence.smt.analyze import parts

                    pieces = parts(ts, smt_options(opts))
                    idx = list(range(len(tasks), len(tasks) + len(pieces)))
                    tasks += [_timed(name, ts, piece) for piece in pieces]
                    first += idx[-2:]  # the conflict search and the equilibria
                else:
                    idx = [len(tasks)]
                    tasks.append(_timed(name, ts, functools.partial(fn, ts)))
                    if name == "linear":
                        first.append(idx[0])
                entry.append((name, idx))
            plan.append(entry)
    done = run_all(tasks, jobs, first)
    systems = iter(plan)
    out: list[FileReport] = []
    for path, src, result in compiled:
        if result is None:
            assert isinstance(src, Diagnostic)
            out.append(FileReport(str(path), (src,)))
            continue
        reports: list[SystemReport] = []
        if result.ok:
            for ts in result.systems:
                reports.append(_system_report(ts, next(systems), done, opts))
        out.append(FileReport(str(path), result.diagnostics, tuple(reports), src.text))
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
    from coherence.parallel import run_all
    from coherence.smt.analyze import shares_operating_point
    from coherence.smt.conflicts import settle_ticks
    from coherence.smt.reach import reachable_enclosure, remember_enclosure

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
            ticks = settle_ticks(ts, smt)
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

    from coherence.smt.analyze import Part, assemble

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
    return SystemReport(
        ts.name, ts.path, ts.span, tuple(results), tuple(lp.name for lp in ts.loops)
    )
