"""Benchmark of the default `coherence check` on every shipped spec, per analysis.

Run: ``.venv/bin/python -m benchmarks.check_bench [--specs PATH ...] [--no-linear] [--jobs N]``

For each spec under ``specs/`` (or the paths given) the check pipeline runs with its default
options, in this process, and the table gives the seconds each analysis took (the front end,
the nominal simulation, the linear analysis, the formal analysis), the total, and what the
formal analysis decided: requirement statuses and the number of solver calls. The last row
is the whole library. With ``--jobs N`` (0: one per CPU) each spec is checked, and then the
whole library, with the analyses in N worker processes (``coherence check -j N``): the
columns are then each analysis's own seconds (summed over its pieces), and the total is
the wall time.

Timings are wall-clock on this machine and vary between runs; verdicts are deterministic.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.table import print_table
from coherence.pipeline import CheckOptions, check_file, check_paths, find_specs

ROOT = Path(__file__).resolve().parents[1]


def _cells(path: Path, options: CheckOptions) -> tuple[list[str], dict[str, float]]:
    start = time.perf_counter()
    if options.jobs == 1:
        report = check_file(path, options)
    else:
        report = check_paths([str(path)], options).files[0]
    total = time.perf_counter() - start
    seconds = {"simulate": 0.0, "linear": 0.0, "smt": 0.0}
    statuses: list[str] = []
    calls = 0
    for system in report.systems:
        for r in system.analyses:
            seconds[r.analysis] = seconds.get(r.analysis, 0.0) + r.seconds
            if r.analysis == "smt":
                statuses += [v.status.value for v in r.verdicts]
                solver = dict(r.data).get("solver", ())
                calls += int(dict(solver).get("calls", 0))
    seconds["front end"] = max(0.0, total - sum(seconds.values()))
    seconds["total"] = total
    rel = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    decided = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses))) or "-"
    row = [
        str(rel),
        *(f"{seconds[k]:.2f}" for k in ("front end", "simulate", "linear", "smt", "total")),
        str(calls),
        decided,
    ]
    return row, seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--specs", nargs="+", default=[str(ROOT / "specs")])
    ap.add_argument("--no-linear", action="store_true", help="skip the linear analysis")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (0: one per CPU)")
    args = ap.parse_args(argv)
    options = CheckOptions(linear=not args.no_linear, jobs=args.jobs)
    head = ["spec", "front end", "simulate", "linear", "smt", "total", "calls", "smt verdicts"]
    rows = [head]
    sums: dict[str, float] = {}
    for path in find_specs(args.specs):
        row, seconds = _cells(path, options)
        rows.append(row)
        for k, v in seconds.items():
            sums[k] = sums.get(k, 0.0) + v
        print(" | ".join(row), flush=True)
    rows.append(
        [
            "all",
            *(f"{sums.get(k, 0.0):.2f}" for k in ("front end", "simulate", "linear", "smt")),
            f"{sums.get('total', 0.0):.2f}",
            "",
            "",
        ]
    )
    if args.jobs != 1:
        start = time.perf_counter()
        check_paths(args.specs, options)
        rows.append(["all, one pool", "", "", "", "", f"{time.perf_counter() - start:.2f}", "", ""])
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
