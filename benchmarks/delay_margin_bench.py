"""Benchmark of the margin search on one loop with a long measurement delay.

Run: ``.venv/bin/python -m benchmarks.delay_margin_bench [--delays 280] [--repeat 1]``

The loop is the pure-delay integrator x(k+1) = x(k) - K x(k - d) (tests/linear/data/
delayed_integrator.coh) with d = 280 ticks and K = 0.004: 281 states, shift registers but for
one. The linear analysis is run twice, with the margins bisected on spectral radii (one dense
eigen-solve per trial, the way every margin was computed before) and read from the loop's
frequency response (``LinearOptions.frequency_margins``, each answer checked by eigen-solves).
Both are printed with the closed forms they should match (Levin & May 1976: stable iff
K < 2 sin(pi / (2 (2 d + 1)))), so a faster answer that is wrong shows.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import math
import time
from pathlib import Path

from coherence.compile import compile_text
from coherence.ir.transform import with_params
from coherence.linear import LinearOptions, analyze, linearize
from coherence.linear.interaction import held_matrices
from coherence.linear.margins import Variants, loop_margins
from coherence.linear.spectrum import Spectrum

SPEC = Path(__file__).resolve().parent.parent / "tests/linear/data/delayed_integrator.coh"


def critical(d: int) -> float:
    return 2 * math.sin(math.pi / (2 * (2 * d + 1)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delays", type=int, nargs="+", default=[280])
    ap.add_argument("--gain", type=float, default=0.004)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    for d in args.delays:
        text = SPEC.read_text().replace("delay 1s", f"delay {d}s")
        ts = with_params(compile_text(str(SPEC), text).systems[0], {"K": args.gain})
        want_gain = critical(d) / args.gain
        want_delay = max(D for D in range(d, 100 * d + 1000) if args.gain < critical(D)) - d
        print(
            f"delay {d} ticks, K = {args.gain:g}: closed form gain margin x{want_gain:.6g}, "
            f"delay margin {want_delay} ticks (radius exactly 1)"
        )
        runs = (
            ("bisection, to 64 ticks", False, 64),
            ("bisection, to 256 ticks", False, 256),
            ("frequency response", True, 64),
        )
        for label, freq, reach in runs:
            opts = LinearOptions(starts=0, frequency_margins=freq, max_extra_delay=reach)
            best = math.inf
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                res = analyze(ts, opts)
                best = min(best, time.perf_counter() - t0)
            m = dict(res.data)["margins"]["integrator"]
            search = math.inf
            for _ in range(args.repeat):
                lin = linearize(ts, opts)
                coupled = Spectrum(list(lin.matrices))
                held = Spectrum(held_matrices(lin.model))
                t0 = time.perf_counter()
                loop_margins(
                    Variants(lin.model, coupled, held),
                    "integrator",
                    ts.tick,
                    1 - opts.marginal_tol,
                    opts.gain_range,
                    opts.gain_rtol,
                    opts.max_extra_delay,
                    {"integrator": True},
                    1 + opts.marginal_tol,
                    opts.wide_gain,
                    opts.margin_check_limit,
                    freq,
                )
                search = min(search, time.perf_counter() - t0)
            print(
                f"  {label:26s} analyze {best:6.2f} s  margins {search:6.2f} s   "
                f"gain margin x{m['gain_high']:.6g}   "
                f"delay margin {m['delay_ticks']}{'+' if m['delay_open'] else ''} ticks "
                f"({m['method']})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
