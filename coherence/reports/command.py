"""The ``check`` and ``lint`` commands: configuration -> pipeline -> triage -> every output.

This module orchestrates; it computes no result and decides nothing itself. The pipeline
(:mod:`coherence.pipeline`) analyses, :func:`coherence.plot.add_topology` adds each system's
coupling table, :mod:`coherence.suppress` applies selection, inline suppressions and the
baseline, :mod:`coherence.policy` judges the run once (``--fail-level``, ``--unknown``), and
the renderers of :mod:`coherence.reports` write that one decision to stdout and to every
``--output FORMAT=PATH``; the exit code is the same decision's.

Exit codes (:meth:`coherence.policy.Decision.exit_code`): 2 when a file cannot be read
(COH100) or for usage and configuration errors (raised as
:class:`~coherence.diagnostics.CoherenceError`); otherwise 0 with ``--exit-zero``; otherwise 1
when the policy failed the run, else 0.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from coherence.config import Config, load_config
from coherence.diagnostics import CoherenceError
from coherence.policy import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, Decision, Policy, decide
from coherence.reports import FORMATS, RenderOptions, render
from coherence.results import FileReport, RunReport, SystemReport
from coherence.suppress import (
    Judge,
    Selection,
    check_prefixes,
    every_code,
    front_end_only,
    triage,
)

if TYPE_CHECKING:
    from coherence.reports.progress import CheckProgress

FULL_ANALYSES = ("simulate", "linear", "smt")


def project_config(args: argparse.Namespace) -> Config:
    """``--config FILE``, nothing with ``--isolated``, else the file found from the cwd."""
    if getattr(args, "isolated", False):
        return Config()
    explicit = getattr(args, "config", None)
    return load_config(Path(explicit)) if explicit else load_config()


def display_path(path: str) -> str:
    """Spec paths as reports show them: relative to the cwd where possible, ``/``-separated.

    Fingerprints include the path, so the same file must be named the same way every run.
    """
    p = Path(path)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return p.as_posix()
    return Path(os.path.normpath(p)).as_posix()


def codes_option(values: list[str] | None, what: str) -> tuple[str, ...] | None:
    """``--select COH3,COH5 --select COH901`` -> ("COH3", "COH5", "COH901")."""
    if not values:
        return None
    codes = tuple(c.strip().upper() for v in values for c in v.split(",") if c.strip())
    unknown = check_prefixes(codes)
    if unknown:
        raise CoherenceError(
            f"{what} `{unknown[0]}` matches no diagnostic code", "see `coherence rules`"
        )
    return codes


def outputs_option(values: list[str] | None) -> list[tuple[str, str]]:
    """``--output sarif=results.sarif`` -> [("sarif", "results.sarif")]."""
    out = []
    for v in values or []:
        fmt, sep, path = v.partition("=")
        fmt = fmt.strip().lower()
        if not sep or not path:
            raise CoherenceError(
                f"`--output {v}` is not FORMAT=PATH", "e.g. --output sarif=out.sarif"
            )
        if fmt not in FORMATS:
            raise CoherenceError(f"unknown output format `{fmt}`", f"formats: {', '.join(FORMATS)}")
        out.append((fmt, path))
    return out


def write_outputs(
    run: Decision,
    fmt: str,
    outputs: list[tuple[str, str]],
    stdout: TextIO,
    options: RenderOptions,
) -> None:
    render(fmt, run, stdout, options)
    plain = RenderOptions(options.verbose, False, options.width, options.lint, options.quiet)
    for out_fmt, path in outputs:
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", encoding="utf-8", newline="\n") as stream:
                render(out_fmt, run, stream, plain)
        except OSError as e:
            raise CoherenceError(f"cannot write `{path}`: {e.strerror}") from None


def results_cache(args: argparse.Namespace, configured: bool) -> Path | None:
    """The results cache's directory for a check (:mod:`coherence.cache`), or None: off with
    ``--no-cache``, ``cache = false`` in the configuration, ``COHERENCE_NO_CACHE`` or
    ``COHERENCE_CACHE_DIR=""``."""
    from coherence.cache import cache_dir, results_disabled

    if getattr(args, "no_cache", False) or not configured or results_disabled():
        return None
    return cache_dir()


def run_check(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, lint: bool = False) -> int:
    """``coherence check`` / ``coherence lint``; returns the exit code."""
    from coherence.baseline import Baseline, from_findings, load_baseline, write_baseline
    from coherence.pipeline import CheckOptions, analyses_for, check_paths

    config = project_config(args)
    paths = [display_path(p) for p in (args.paths or config.paths)]
    if not paths:
        raise CoherenceError(
            "no spec paths given",
            "pass spec files or directories, or set `paths` in [tool.coherence]",
        )
    outputs = outputs_option(args.output)
    policy = Policy.parse(
        args.fail_level or config.fail_level, getattr(args, "unknown", None) or config.unknown
    )
    selection = Selection(
        codes_option(args.select, "--select") or config.select,
        codes_option(args.ignore, "--ignore") or config.ignore,
    )
    judge: Judge
    streamed = False
    if lint:
        report: RunReport = check_paths(paths, lint_only=True)
        judge = front_end_only
    else:
        from coherence.plot import add_topology

        options = CheckOptions(
            linear=config.linear and not args.no_linear,
            smt=config.smt and not args.no_smt,
            ticks=args.ticks or config.ticks,
            horizon=args.horizon or config.horizon,
            mode=args.mode or config.mode or "auto",
            rlimit=args.rlimit or config.rlimit,
            invariants=args.invariants or config.invariants,
            jobs=args.jobs if getattr(args, "jobs", None) is not None else config.jobs,
            cache=results_cache(args, config.cache),
        )
        fixing = getattr(args, "suggest_fixes", False)
        stream = args.format == "text" and not getattr(args, "expect", None) and not fixing
        hooks = check_progress(args, stdout, stderr, selection, policy, config, stream)
        start = time.perf_counter()
        with hooks:
            report = add_topology(check_paths(paths, options, progress=hooks))
        if fixing:
            report = suggest_fixes(report, getattr(args, "scheduler", None), stderr)
        wall = time.perf_counter() - start
        streamed = stream and hooks.streamed
        complete = tuple(name for name, _ in analyses_for(options)) == FULL_ANALYSES
        judge = every_code if complete else front_end_only

    baseline: Baseline | None = None
    if args.write_baseline:
        before = triage(report, selection, None, judge)
        baseline = from_findings(before.report.findings, args.write_baseline)
        write_baseline(baseline)
        stderr.write(
            f"wrote {args.write_baseline}: {len(baseline.entries)} known finding"
            f"{'' if len(baseline.entries) == 1 else 's'}\n"
        )
    elif not args.no_baseline and (args.baseline or config.baseline):
        baseline = load_baseline(str(args.baseline or config.baseline))
    run = triage(report, selection, baseline, judge)
    decision = decide(run, policy)

    color = {"auto": None, "always": True, "never": False}[args.color]
    options_ = RenderOptions(
        verbose=getattr(args, "verbose", False),
        color=color,
        lint=lint,
        quiet=getattr(args, "quiet", False),
        streamed=streamed,
    )
    write_outputs(decision, args.format, outputs, stdout, options_)
    if getattr(args, "timings", False) and not lint:
        from coherence.parallel import resolve_jobs
        from coherence.reports.text import make_console, render_table
        from coherence.reports.timings import timings_table

        table = timings_table(report, wall, resolve_jobs(options.jobs))
        render_table(make_console(stderr, color), table, fold=True)
    code = decision.exit_code(args.exit_zero)
    if getattr(args, "expect", None) and code != EXIT_ERROR:
        from coherence.expect import compare, expectation_table
        from coherence.reports.text import make_console, render_table

        items = compare(run.report, args.expect)
        table = expectation_table(items)
        if table.rows:  # the differences; when there are none, the count says it all
            render_table(make_console(stdout, color), table)
        else:
            stdout.write(f"{table.note}\n")
        stdout.write(
            f"exit status: the comparison with {args.expect} (--expect), not the result above\n"
        )
        return EXIT_OK if all(e.ok for e in items) else EXIT_FINDINGS
    return code


def suggest_fixes(report: RunReport, scheduler: str | None, stderr: TextIO) -> RunReport:
    """``report`` with a verified fix (``coherence.sweep.fixes``) attached to the findings of
    each falsified requirement that has one: the nearest one-parameter change, re-checked
    with the full analysis. The unchanged spec's report is the one just computed."""
    from dataclasses import replace

    from coherence.results import Status
    from coherence.sweep.dask_engine import Engine
    from coherence.sweep.fixes import attach, full_check, search

    files = []
    with Engine(scheduler=scheduler, jobs=1) as engine:
        for fr in report.files:
            systems = []
            for sr in fr.systems:
                if fr.source_text and any(v.status == Status.FALSIFIED for v in sr.verdicts):
                    stderr.write(f"searching fixes for {fr.path}: {sr.name}\n")

                    def recheck(t: str, fr: FileReport = fr, sr: SystemReport = sr) -> SystemReport:
                        return sr if t == fr.source_text else full_check(t, fr.path, sr.name)

                    fixes, _ = search(fr.source_text, fr.path, sr.name, engine, recheck=recheck)
                    sr = attach(sr, fixes)
                systems.append(sr)
            files.append(replace(fr, systems=tuple(systems)))
    return replace(report, files=tuple(files))


def check_progress(
    args: argparse.Namespace,
    stdout: TextIO,
    stderr: TextIO,
    selection: Selection,
    policy: Policy,
    config: Config,
    stream: bool,
) -> CheckProgress:
    """The progress of a check on ``stderr`` (``--progress``, ``--no-progress``, else when
    it is a terminal) and its expensive requirements; with ``stream``, each spec's part of
    the text report printed on ``stdout`` as soon as it is checked, judged as the whole run
    will judge it (selection, suppressions, baseline and policy act on each spec alone)."""
    from coherence.baseline import load_baseline
    from coherence.plot import add_topology
    from coherence.reports.progress import CheckProgress, wanted
    from coherence.reports.text import write_file

    color = {"auto": None, "always": True, "never": False}[args.color]
    baseline = None
    wants_baseline = not args.write_baseline and not args.no_baseline
    if stream and wants_baseline and (args.baseline or config.baseline):
        baseline = load_baseline(str(args.baseline or config.baseline))
    judge = every_code if _complete(args, config) else front_end_only
    options = RenderOptions(
        verbose=getattr(args, "verbose", False),
        color=color,
        quiet=getattr(args, "quiet", False),
    )

    def print_file(fr: FileReport) -> None:
        one = add_topology(RunReport((fr,)))
        write_file(decide(triage(one, selection, baseline, judge), policy), stdout, options)
        stdout.flush()

    hooks = CheckProgress(
        stderr,
        wanted(getattr(args, "progress", None), stderr),
        color,
        print_file if stream and not args.write_baseline else None,
    )
    return hooks


def _complete(args: argparse.Namespace, config: Config) -> bool:
    return (config.linear and not args.no_linear) and (config.smt and not args.no_smt)
