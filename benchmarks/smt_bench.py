"""Benchmark of the formal analysis (Z3) on the shipped specs.

Run: ``.venv/bin/python -m benchmarks.smt_bench [--depths 10 25 50 100] [--specs PATH ...]``

For each spec (specs/seed/tipping_point.coh and specs/llm_serving.coh; a missing file is
skipped): BMC of its first ``always`` requirement (the first trace requirement if it has no
``always``) from the initial state to each depth, in both modes, with the solver alone (the
input-pattern simulation that normally runs first is off); then the same requirement to each
depth as ``coherence check --horizon D`` checks it (``bmc default``: input patterns, over
the requirement's own horizon when D is shorter, interval reachability, induction, then BMC
in auto mode); then the conflict-witness search
over all coupled pairs; then the default ``analyze`` call. Then, for specs with a ``no
flapping`` requirement (specs/conflicts/hpa_lag_fixed.coh and specs/stacks/vllm_llmd_fleet.coh
by default, ``--flapping``), the requirement's check with default options and the patterns
off, so that what decides it is the formal analysis. Each row says what was decided
and how: solver calls, rlimit spent, and the depth reached when the budget ran out first.
Interval bounds decide many early depths without a solver call; the calls column shows it.

Timings are wall-clock on this machine and vary between runs; results (statuses, depths,
rlimit) are deterministic.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.table import print_table
from coherence.compile import compile_text
from coherence.formal import SmtOptions, analyze
from coherence.formal.bounded import check_bounded
from coherence.formal.conflicts import check_all
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.smt.bmc import bmc
from coherence.smt.solver import SolverStats, own_context

ROOT = Path(__file__).resolve().parents[1]
SPECS = ("specs/seed/tipping_point.coh", "specs/llm_serving.coh")
FLAPPING = ("specs/conflicts/hpa_lag_fixed.coh", "specs/stacks/vllm_llmd_fleet.coh")


def load(path: Path) -> TransitionSystem | None:
    result = compile_text(str(path), path.read_text(encoding="utf-8"))
    if not result.systems:
        return None
    return result.systems[0]


def target(ts: TransitionSystem) -> Requirement | None:
    reqs = [r for r in ts.requirements if r.kind == "always"]
    reqs = reqs or [r for r in ts.requirements if r.kind in ("response", "flapping")]
    return reqs[0] if reqs else None


def bench(path: Path, depths: list[int], budget: int) -> list[list[str]]:
    rows: list[list[str]] = []
    t0 = time.perf_counter()
    ts = load(path)
    compile_s = time.perf_counter() - t0
    name = path.name
    if ts is None:
        return [[name, "compile", "-", "-", "does not compile", "-", "-", "-"]]
    rows.append([name, "compile", "-", "-", "", "", "", f"{compile_s:.2f}"])
    req = target(ts)
    if req is not None:
        for mode in ("exact", "overapprox"):
            for d in depths:
                depth = min(d, req.horizon)
                opts = SmtOptions(patterns=False, mode=mode, horizon=depth, budget=budget)
                stats = SolverStats()
                t0 = time.perf_counter()
                res = bmc(
                    ts, replace(req, horizon=max(req.horizon, depth)), opts, stats, depth=depth
                )
                dt = time.perf_counter() - t0
                rows.append(
                    [
                        name,
                        f"bmc {mode}",
                        str(depth),
                        res.status.value,
                        f"depth {res.depth}" + (f", cex at t={res.cex.tick}" if res.cex else ""),
                        str(stats.calls),
                        f"{stats.rlimit / 1e6:.1f}M",
                        f"{dt:.2f}",
                    ]
                )
        for d in depths:
            # what `coherence check --horizon D` runs: patterns, intervals, induction, BMC
            depth = min(d, req.horizon)
            stats = SolverStats()
            t0 = time.perf_counter()
            with own_context():  # each row in a Z3 context of its own, as in `coherence check`
                res = check_bounded(
                    ts,
                    replace(req, horizon=max(req.horizon, depth)),
                    SmtOptions(horizon=depth),
                    stats,
                )
            dt = time.perf_counter() - t0
            how = res.reason.split(":")[0] if res.reason else ""
            if res.cex is not None:
                how = f"cex at t={res.cex.tick} ({res.cex.source})"
            rows.append(
                [
                    name,
                    "bmc default",
                    str(depth),
                    res.status.value,
                    how[:70],
                    str(stats.calls),
                    f"{stats.rlimit / 1e6:.1f}M",
                    f"{dt:.2f}",
                ]
            )
    stats = SolverStats()
    t0 = time.perf_counter()
    pairs = check_all(ts, SmtOptions(), stats)
    dt = time.perf_counter() - t0
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.verdict] = counts.get(p.verdict, 0) + 1
    summary = ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))
    coupled = sum(1 for p in pairs if p.verdict not in ("uncoupled", "no objective"))
    rows.append(
        [
            name,
            "conflicts",
            f"{coupled} pairs",
            "",
            summary,
            str(stats.calls),
            f"{stats.rlimit / 1e6:.1f}M",
            f"{dt:.2f}",
        ]
    )
    t0 = time.perf_counter()
    r = analyze(ts)
    dt = time.perf_counter() - t0
    statuses = ", ".join(f"{v.kind}={v.status.value}" for v in r.verdicts)
    solver = dict(dict(r.data)["solver"])
    rows.append(
        [
            name,
            "analyze (default)",
            "",
            "",
            statuses,
            str(solver["calls"]),
            f"{solver['rlimit'] / 1e6:.1f}M",
            f"{dt:.2f}",
        ]
    )
    return rows


def bench_flapping(path: Path) -> list[list[str]]:
    ts = load(path)
    if ts is None:
        return [[path.name, "compile", "-", "-", "does not compile", "-", "-", "-"]]
    rows: list[list[str]] = []
    for req in ts.requirements:
        if req.kind != "flapping":
            continue
        stats = SolverStats()
        t0 = time.perf_counter()
        with own_context():
            res = check_bounded(ts, req, SmtOptions(patterns=False), stats)
        dt = time.perf_counter() - t0
        how = res.reason.split(":")[0] if res.reason else ""
        rows.append(
            [
                path.name,
                "flapping",
                str(req.within),
                res.status.value,
                how[:60],
                str(stats.calls),
                f"{stats.rlimit / 1e6:.1f}M",
                f"{dt:.2f}",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[10, 25, 50, 100])
    ap.add_argument("--specs", nargs="*", default=list(SPECS))
    ap.add_argument("--flapping", nargs="*", default=list(FLAPPING))
    ap.add_argument(
        "--budget",
        type=int,
        default=SmtOptions().budget,
        help="rlimit one BMC run may spend (default: the analysis default)",
    )
    args = ap.parse_args(argv)
    header = ["spec", "what", "depth", "status", "detail", "calls", "rlimit", "seconds"]
    table: list[list[str]] = []
    for spec in args.specs:
        path = ROOT / spec
        if not path.exists():
            print(f"skipping {spec}: no such file")
            continue
        table += bench(path, args.depths, args.budget)
    for spec in args.flapping:
        path = ROOT / spec
        if not path.exists():
            print(f"skipping {spec}: no such file")
            continue
        table += bench_flapping(path)
    print_table([header, *table], rule=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
