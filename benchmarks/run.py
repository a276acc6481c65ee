"""Every benchmark, one after the other, with their default settings (``make bench``).

Run: ``.venv/bin/python -m benchmarks.run [NAME ...]`` (names: frontend, linear, check, smt,
pieces, floor; all of them when none is given). Each prints its own table; see its module for what it
measures. Comparing two revisions is ``python -m benchmarks.compare REV`` (not run here: it
needs a revision to compare with).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from benchmarks import check_bench, floor_bench, frontend_bench, linear_bench, pieces, smt_bench


def _frontend() -> int:
    frontend_bench.main()
    return 0


BENCHES: dict[str, Callable[[], int]] = {
    "frontend": _frontend,
    "linear": lambda: linear_bench.main([]),
    "check": lambda: check_bench.main([]),
    "smt": lambda: smt_bench.main([]),
    "pieces": lambda: pieces.main([]),
    "floor": lambda: floor_bench.main([]),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"any of: {', '.join(BENCHES)}")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHES)}")
    status = 0
    for name in args.names or list(BENCHES):
        print(f"== {name} ==", flush=True)
        start = time.perf_counter()
        status |= BENCHES[name]()
        print(f"({name}: {time.perf_counter() - start:.1f} s)\n", flush=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
