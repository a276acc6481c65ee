"""``coherence sweep``: options, progress on stderr, the report, the map, the fixes.

Exit codes: 0 the spec's current values are inside the safe region (every judged
requirement safe there); 1 they are outside, or ``--fix`` found a failing requirement;
2 usage or internal error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from coherence.cli import positive_int
from coherence.diagnostics import CoherenceError

if TYPE_CHECKING:
    from coherence.sweep.fixes import Fix

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``coherence sweep`` on ``p``."""
    p.add_argument("spec", metavar="SPEC")
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="NAME=LO..HI",
        help="a param (`target=0.5..0.9`), a loop's shaping value (`hpa.window=30s..10min`, "
        "`stabilize=0s..10min`, LOOP.period/delay/window/stabilize/cooldown/tolerance) or a "
        "state's bound (`replicas.max=20..72`); repeat for more axes",
    )
    p.add_argument(
        "--spacing",
        choices=("auto", "log", "linear"),
        default="auto",
        help="grid spacing (auto: log when a positive range spans 10x or more)",
    )
    p.add_argument(
        "--points", type=positive_int, default=400, help="point budget, refinement included (400)"
    )
    p.add_argument(
        "--no-refine",
        action="store_true",
        help="spend the whole budget on the grid; no refinement where neighbours disagree",
    )
    p.add_argument("--no-linear", action="store_true", help="skip the linear verdicts")
    p.add_argument("--no-simulate", action="store_true", help="skip the simulation verdicts")
    p.add_argument(
        "--formal",
        action="store_true",
        help="also the formal (Z3) analysis at every point: slow, and the only analysis that "
        "judges `require coherent`",
    )
    p.add_argument(
        "--boxes",
        type=positive_int,
        default=0,
        metavar="N",
        help="with --formal, on param axes: certify up to N grid cells of the sampled safe "
        "region as whole boxes (parameters symbolic within the cell)",
    )
    p.add_argument("--rlimit", type=positive_int, help="Z3 resource limit per query (--formal)")
    p.add_argument("--horizon", type=positive_int, help="cap on the solver's unrolling (--formal)")
    p.add_argument(
        "-j",
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="Dask worker processes of the embedded cluster (default: one per CPU); 1 runs "
        "in this process",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="run on an existing Dask cluster (tcp://HOST:PORT) instead of an embedded one",
    )
    p.add_argument(
        "--chunk", type=positive_int, help="points per task (default: about a second of work)"
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format")
    p.add_argument("--map", metavar="FILE", help="two axes: write the verdict map (.png or .svg)")
    p.add_argument(
        "--fix",
        action="store_true",
        help="search the nearest one-parameter change that makes each failing requirement "
        "hold, re-checked with the full analysis",
    )
    p.add_argument("--system", help="the system to sweep when the file has several")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``coherence sweep``; returns the exit code."""
    from coherence.compile import read_source
    from coherence.diagnostics import Diagnostic
    from coherence.sweep.dask_engine import Engine
    from coherence.sweep.params import parse_vary
    from coherence.sweep.regions import SweepOptions, run_sweep

    if not args.vary and not args.fix:
        raise CoherenceError(
            "nothing to do: give --vary NAME=LO..HI, --fix, or both",
            "e.g. coherence sweep spec.coh --vary window=30s..10min",
        )
    src = read_source(args.spec)
    if isinstance(src, Diagnostic):
        raise CoherenceError(src.message, src.help)
    text, path = src.text, args.spec
    from coherence.sweep.evaluate import spec_of

    ts, knobs = spec_of(text, path, args.system)
    axes = [parse_vary(v, knobs, ts.tick, args.spacing) for v in args.vary]
    names = [a.knob.name for a in axes]
    if len(set(names)) != len(names):
        raise CoherenceError("a knob is varied twice", "give each --vary a different name")
    if args.map and len(axes) != 2:
        raise CoherenceError("--map needs exactly two --vary axes", "vary two knobs")
    if args.map and Path(args.map).suffix.lower() not in (".png", ".svg"):
        raise CoherenceError(f"--map {args.map}: write a .png or .svg file", "e.g. --map map.svg")
    analyses = tuple(
        a
        for a, on in (
            ("linear", not args.no_linear),
            ("simulate", not args.no_simulate),
            ("formal", args.formal),
        )
        if on
    )
    if not analyses:
        raise CoherenceError("every analysis is switched off", "drop --no-linear or --no-simulate")
    if args.boxes and not args.formal:
        raise CoherenceError("--boxes certifies with the formal analysis", "add --formal")

    def say(msg: str) -> None:
        stderr.write(msg + "\n")

    show = None if args.no_progress else say
    options = SweepOptions(
        budget=args.points,
        refine=not args.no_refine,
        analyses=analyses,
        scheduler=args.scheduler,
        jobs=args.jobs,
        chunk=args.chunk,
        rlimit=args.rlimit,
        horizon=args.horizon,
        boxes=args.boxes,
    )
    with Engine(args.scheduler, args.jobs) as engine:
        sweep = run_sweep(text, path, args.system, axes, options, show, engine) if axes else None
        fixes: list[Fix] = []
        report = None
        if args.fix:
            from coherence.sweep.fixes import attach, search

            fixes, before = search(text, path, args.system, engine, progress=show)
            report = attach(before, fixes)
    if args.map and sweep is not None:
        from coherence.sweep.render import write_map

        write_map(sweep, Path(args.map))
    if args.format == "json":
        import json

        from coherence.sweep.render import to_data

        data = (
            to_data(sweep, fixes) if sweep is not None else {"fixes": [f.to_data() for f in fixes]}
        )
        if report is not None:
            data["findings"] = _findings_data(report)
        json.dump(data, stdout, indent=2)
        stdout.write("\n")
    else:
        from coherence.sweep.render import write_text

        if sweep is not None:
            write_text(sweep, stdout)
        if report is not None:
            _write_fixes(report, fixes, stdout)
    failing = report is not None and any(v.status.value == "falsified" for v in report.verdicts)
    outside = sweep is not None and not sweep.safe_current()
    return 1 if failing or outside else 0


def _findings_data(report: object) -> list[dict[str, object]]:
    from coherence.results import SystemReport

    assert isinstance(report, SystemReport)
    out: list[dict[str, object]] = []
    for f in report.findings:
        data = dict(f.data)
        out.append(
            {
                "code": f.code,
                "message": f.message,
                "location": str(f.span),
                "help": f.help,
                "data": {"fix": data["fix"]} if "fix" in data else {},
            }
        )
    return out


def _write_fixes(report: object, fixes: Sequence[Fix], out: TextIO) -> None:
    from coherence.results import Status, SystemReport

    assert isinstance(report, SystemReport)
    failing = [v for v in report.verdicts if v.status == Status.FALSIFIED]
    out.write("\nverified fixes\n")
    if not failing:
        out.write("  every requirement passes the full check: nothing to fix\n")
        return
    for v in failing:
        mine = [f for f in fixes if f.requirement == v.requirement]
        out.write(f"  `{v.requirement}` is falsified ({', '.join(v.codes) or v.analysis})\n")
        if not mine:
            out.write(
                "    no one-parameter change within a factor of 16 that the full check confirms\n"
            )
        for f in mine:
            out.write(f"    {f.sentence}\n")
    for fd in report.findings:
        if any(k == "fix" for k, _ in fd.data):
            out.write(f"\n  {fd.code} {fd.span}: {fd.message}\n    help: {fd.help}\n")


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - `python -m` convenience
    p = argparse.ArgumentParser(prog="coherence sweep")
    add_arguments(p)
    return run(p.parse_args(argv), sys.stdout, sys.stderr)
