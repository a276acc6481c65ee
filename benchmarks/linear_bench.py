"""Benchmark of the linear analysis on generated fleet specs (10, 100 and 1000 loops).

Run: ``.venv/bin/python -m benchmarks.linear_bench [--sizes 10 100 1000] [--no-dense]``

The fleet: cells (one model deployment each) of three loops - an autoscaler (integral on
utilization, sensed with a delay and a window), a batcher (integral on latency) and a router
(proportional offload on latency) - around a first-order latency plant; cells are grouped in
regions of ten, and each region has a power capper that sets the clock of its GPUs from the
region's power draw. So a region is one coupled block (its cells share the clock), and
regions are independent of each other.

Every phase is timed separately (compile; operating point; linearization; lifting, i.e. the
block products of the monodromy; eigen-solve; attribution; margins), then the whole
``analyze`` call; the block eigen-solve is compared with ``numpy.linalg.eigvals`` on the dense
monodromy matrix of the same system (skip that for large sizes with ``--no-dense``).
"""

from __future__ import annotations

import os

# One process on 2 cores: single-threaded BLAS. The blocks are small (tens to a few hundred
# states), where BLAS threads only add overhead, and oversubscribe a loaded machine badly.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def fleet_spec(n_loops: int, cells_per_region: int = 10) -> str:
    """Spec text of a fleet with about ``n_loops`` loops (3 per cell + 1 per region)."""
    regions = max(1, round(n_loops / (3 * cells_per_region + 1)))
    cells = max(1, (n_loops - regions) // 3)
    lines = [
        f'system fleet_{n_loops} "a generated inference fleet" {{',
        "  tick 1s",
        "  param per_rep = 20 req/s",
        "  param slo = 0.5s",
        "  param util_target = 0.7",
    ]
    region_cells: list[list[int]] = [[] for _ in range(regions)]
    for c in range(cells):
        region_cells[c * regions // cells].append(c)
    demand = {c: 80.0 + 5.0 * (c % 9) for c in range(cells)}
    for r, members in enumerate(region_cells):
        # equilibrium: batch 19, share 0.2, util 0.7 => replicas * clock = 0.09135 * demand;
        # the budget puts the clock at 0.8
        load = sum(0.9 * demand[c] / (0.7 * 20 * 19 / 27) for c in members)
        lines += [
            f"  state clock{r} : 1 in [0.5, 1.0] init 0.9",
            f"  let power{r} = clock{r} * clock{r} * ("
            + " + ".join(f"replicas{c}" for c in members)
            + ")",
            f"  param budget{r} = {0.8 * load:.6g}",
            f"  loop power_cap{r} {{",
            "    every 5s",
            f"    senses power{r} delay 1s",
            f"    actuates clock{r} by -0.1 * (power{r} - budget{r}) / budget{r}",
            "  }",
        ]
        for c in members:
            lines += [
                f"  input demand{c} : req/s in [20, 400] nominal {demand[c]:g}",
                f"  state replicas{c} : 1 in [1, 200] init 12",
                f"  state batch{c} : 1 in [1, 64] init 16",
                f"  state share{c} : 1 in [0, 0.9] init 0.2",
                f"  state lat{c} : s in [0, 60] init 0.4",
                f"  let served{c} = demand{c} * (1 - 0.5 * share{c})",
                f"  let cap{c} = per_rep * replicas{c} * clock{r} * batch{c} / (batch{c} + 8)",
                f"  let util{c} = served{c} / cap{c}",
                f"  next lat{c} = 0.7 * lat{c} + 0.3 * (0.05s + 0.02s * batch{c} + 0.1s * util{c})",
                f"  loop scaler{c} {{ every 10s senses util{c} delay 2s window 2s",
                f"    actuates replicas{c} by 10 * (util{c} - util_target) }}",
                f"  loop batcher{c} {{ every 2s senses lat{c}",
                f"    actuates batch{c} by -10 * (lat{c} - slo) / slo }}",
                f"  loop router{c} {{ every 5s senses lat{c} delay 1s",
                f"    actuates share{c} to 0.2 + 0.5 * (lat{c} - slo) / slo }}",
            ]
    lines += ["  require stable", "}"]
    return "\n".join(lines) + "\n"


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench(n_loops: int, dense: bool = True) -> dict[str, Any]:
    from coherence.compile import compile_text
    from coherence.linear import LinearOptions, analyze
    from coherence.linear.interaction import held_matrices
    from coherence.linear.linearize import Engine
    from coherence.linear.margins import Variants, loop_margins
    from coherence.linear.model import build_model, orbit
    from coherence.linear.oppoint import find_operating_point
    from coherence.linear.spectrum import Spectrum

    text = fleet_spec(n_loops)
    res, t_compile = _timed(lambda: compile_text(f"fleet_{n_loops}.coh", text))
    if not res.ok:
        raise SystemExit("\n".join(d.message for d in res.diagnostics))
    ts = res.systems[0]
    opts = LinearOptions()
    out: dict[str, Any] = {
        "loops": len(ts.loops),
        "states": len(ts.states),
        "lets": len(ts.lets),
        "hyperperiod": ts.hyperperiod,
        "compile": t_compile,
    }
    engine, t_engine = _timed(lambda: Engine(ts))
    op, t_op = _timed(lambda: find_operating_point(engine, opts))
    out["operating point"] = t_engine + t_op
    assert op.found, op.message
    (model, _), t_lin = _timed(lambda: build_model(engine, orbit(engine, op.x), 1e-6))
    out["linearization"] = t_lin
    mats = model.matrices()
    # lifting and eigen-solve, timed apart on the same block decomposition
    sp, t_spec = _timed(lambda: Spectrum(mats))
    big = [b for b in sp.blocks if len(b) > 1]
    prods, t_lift = _timed(lambda: [sp.block_product(b) for b in big])
    _, t_eig = _timed(lambda: [np.linalg.eigvals(p) for p in prods])
    out["lifting"] = t_lift
    out["eigen-solve"] = t_eig
    out["spectrum (SCC + lift + eig)"] = t_spec
    out["blocks"] = f"{len(big)} coupled blocks, largest {max((len(b) for b in big), default=1)}"
    held = Spectrum(held_matrices(model))
    variants = Variants(model, sp, held)
    _, t_alone = _timed(lambda: [variants.only(frozenset([lp.name])) for lp in ts.loops])
    out["attribution (each loop alone)"] = t_alone
    k = min(len(ts.loops), opts.margin_limit)
    sensors = {lp.name: bool(lp.sensors) for lp in ts.loops}
    _, t_margin = _timed(
        lambda: [
            loop_margins(
                variants,
                lp.name,
                ts.tick,
                1 - opts.marginal_tol,
                opts.gain_range,
                opts.gain_rtol,
                opts.max_extra_delay,
                sensors,
            )
            for lp in ts.loops[:k]
        ]
    )
    out[f"margins ({k} loops)"] = t_margin
    out["spectral radius"] = sp.radius
    if dense:

        def dense_eig() -> float:
            M = np.eye(len(ts.states))
            for a in mats:
                M = a @ M
            return float(np.max(np.abs(np.linalg.eigvals(M))))

        rho_dense, t_dense = _timed(dense_eig)
        out["numpy.linalg.eigvals (dense M)"] = t_dense
        out["radius difference vs dense"] = abs(rho_dense - sp.radius)
    result, t_total = _timed(lambda: analyze(ts))
    out["analyze() total"] = t_total
    out["findings"] = len(result.findings)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument(
        "--no-dense",
        action="store_true",
        help="skip numpy.linalg.eigvals on the dense monodromy matrix",
    )
    args = parser.parse_args(argv)
    t = time.perf_counter()
    import sympy  # noqa: F401  (its import is a one-off cost; reported apart)

    print(f"sympy import: {time.perf_counter() - t:.3f} s")
    for n in args.sizes:
        r = bench(n, dense=not args.no_dense)
        print(
            f"\n== fleet of {r['loops']} loops: {r['states']} states, {r['lets']} lets, "
            f"hyperperiod {r['hyperperiod']} ticks"
        )
        for key, v in r.items():
            if key in ("loops", "states", "lets", "hyperperiod"):
                continue
            shown = (
                f"{v:.4f} s"
                if isinstance(v, float)
                and key not in ("spectral radius", "radius difference vs dense")
                else str(v)
            )
            if key in ("spectral radius", "radius difference vs dense"):
                shown = f"{v:.3g}"
            print(f"  {key:38s} {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
