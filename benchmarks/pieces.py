"""Where the formal analysis spends its time: each independent piece, on each spec.

Run: ``.venv/bin/python -m benchmarks.pieces [--specs PATH ...] [--top N]``

The formal analysis of a system is a list of independent pieces
(:func:`coherence.formal.analyze.parts`: each bounded requirement, the conflict search, the
equilibria), each answering in a Z3 context of its own; ``coherence check -j N`` runs them in
parallel, so the longest piece bounds a spec's wall time. Each piece runs here in this
process, one after the other, with the default options, and the table lists the pieces by CPU
seconds (the most first): its solver calls, how many of them were ``unknown``, the rlimit it
spent, and its verdict. A piece that spends its whole budget and ends ``unknown`` is time the
user gets no answer for; this is the table to start from when a spec is slow.

Each spec's reachable enclosure and nominal run are computed once, before its pieces (as
``check -j`` does in its workers), and not counted in any piece. CPU seconds vary between
runs on a shared machine; the calls, rlimit and verdicts are deterministic.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.table import print_table
from coherence.compile import compile_path
from coherence.pipeline import find_specs

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from coherence.formal.analyze import parts
    from coherence.intervals.reach import reachable
    from coherence.simulate.settle import operating_point, settle_ticks
    from coherence.smt.options import SmtOptions

    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--specs", nargs="+", default=[str(ROOT / "specs")])
    ap.add_argument("--top", type=int, default=0, help="only the N slowest pieces (0: all)")
    args = ap.parse_args(argv)
    options = SmtOptions()
    rows: list[tuple[float, list[str]]] = []
    total = 0.0
    for path in find_specs(args.specs):
        rel = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        systems = compile_path(path).systems
        for ts in systems:
            reachable(ts)
            operating_point(ts, settle_ticks(ts, options.settle))
            for part in parts(ts, options):
                start = time.process_time()
                done = part()
                seconds = time.process_time() - start
                total += seconds
                calls, _, _, unknown, rlimit = done.stats
                verdicts = ", ".join(v.status.value for v in done.verdicts) or "-"
                cells = [
                    f"{rel}" + (f" ({ts.name})" if len(systems) > 1 else ""),
                    done.name,
                    f"{seconds:.2f}",
                    str(calls),
                    str(unknown),
                    f"{rlimit:,}",
                    verdicts,
                ]
                rows.append((seconds, cells))
                print(" | ".join(cells), flush=True)
    rows.sort(key=lambda r: -r[0])
    if args.top:
        rows = rows[: args.top]
    head = ["spec", "piece", "cpu s", "calls", "unknown", "rlimit", "verdict"]
    print()
    print_table([head, *(cells for _, cells in rows)], rule=True)
    print(f"\nall pieces: {total:.2f} s of CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
