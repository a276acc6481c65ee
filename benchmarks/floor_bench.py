"""A cold check of whole processes against the import floor, measured side by side.

Run: ``.venv/bin/python -m benchmarks.floor_bench [SPEC ...] [--repeat N] [--jobs J]``
(default: ``specs/llm_serving.coh`` and ``specs/seed/tipping_point.coh``, 3 repeats, ``-j 1``).

For each repeat, in turn: the bare import of the check path's dependencies
(``python -c "import z3, numpy, scipy.linalg, lark, rich"``), then
``coherence check SPEC --no-cache -j J --format json`` for every spec, each a fresh process, so
the machine's load at that moment weighs on both alike. It prints the least and the median
wall time of each, and each spec's least time as a multiple of the least import floor: the
figure the formal-engine redesign is judged by (a cold check of ``llm_serving`` within 10
times the floor).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.table import print_table

FLOOR = "import z3, numpy, scipy.linalg, lark, rich"
DEFAULT = ("specs/llm_serving.coh", "specs/seed/tipping_point.coh")


def _run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.floor_bench")
    ap.add_argument("specs", nargs="*", default=list(DEFAULT))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args(argv)
    exe = str(Path(sys.executable).with_name("coherence"))
    floor: list[float] = []
    times: dict[str, list[float]] = {s: [] for s in args.specs}
    for _ in range(args.repeat):
        floor.append(_run([sys.executable, "-c", FLOOR]))
        for spec in args.specs:
            cmd = [exe, "check", spec, "--no-cache", "-j", str(args.jobs), "--format", "json"]
            times[spec].append(_run(cmd))
    least = min(floor)
    rows = [["process", "least s", "median s", "x floor"]]
    rows.append(["import floor", f"{least:.2f}", f"{statistics.median(floor):.2f}", "1.0"])
    for spec, ts in times.items():
        rows.append(
            [spec, f"{min(ts):.2f}", f"{statistics.median(ts):.2f}", f"{min(ts) / least:.1f}"]
        )
    print(f"Cold check against the import floor ({args.repeat} runs, -j {args.jobs})")
    print_table(rows, rule=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
