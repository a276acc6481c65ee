"""The check pipeline: files -> compile -> analyses -> RunReport.

Each analysis is a pure function of a transition system and options; this module only
decides which run and collects their results in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coherence import __version__
from coherence.compile import CompileResult, compile_source, read_source
from coherence.diagnostics import CoherenceError, Diagnostic
from coherence.ir.nodes import TransitionSystem
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
            base = smt.SmtOptions()
            chosen_options = smt.SmtOptions(
                horizon=options.horizon if options.horizon is not None else base.horizon,
                mode=options.mode,
                rlimit=options.rlimit if options.rlimit is not None else base.rlimit,
                invariants=options.invariants,
            )
            return smt.analyze(ts, chosen_options)

        chosen.append(("smt", run_smt))
    return chosen


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
    files = [check_file(p, opts, lint_only) for p in find_specs(paths)]
    return RunReport(tuple(files), __version__)
