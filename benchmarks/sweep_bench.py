"""Benchmark of ``coherence sweep``: points per second, batched eigenvalues, formal per task.

Run: ``.venv/bin/python -m benchmarks.sweep_bench [--points 1000 10000] [--jobs N]
[--formal-points 4] [--eig-points 2000] [--per-point]``

``--per-point`` runs each sweep twice, with the batched operating points and linearizations
(the default) and with the linear analysis run once per point
(``COHERENCE_SWEEP_PER_POINT=1``, which the workers inherit), and prints the ratio.

The spec is a four-loop serving stack (:data:`SPEC`): the cost controller, agent retries and
router of ``specs/seed/tipping_point.coh`` plus an autoscaler on utilization; it requires
stability, an ``always`` bound on latency over 300 ticks and no bad equilibrium. The sweep
varies two params (the latency SLO and the cost budget) on a square grid without refinement,
so the point count is exact, with the linear and simulation verdicts (the sweep's default),
on an embedded Dask ``LocalCluster`` of ``--jobs`` worker processes (default: one per CPU).

Reported:

1. per point count: wall time (cluster start-up separately), points/s and points/s/core;
2. the batched eigenvalue path (``numpy.linalg.eigvals`` on the stacked monodromy matrices of
   ``--eig-points`` points) against a loop of one ``eigvals`` call per point: the ratio;
3. the formal analysis per point (one task of one point, in this process): the figure the
   paper estimate in ``docs/sweep.md`` multiplies out.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import math
import time

import numpy as np

SPEC = """system stack4 "four loops: cost controller, agent retries, router, autoscaler" {
  tick 1s

  input demand : req/s in [80, 140] nominal 100

  param per_replica   = 15 req/s
  param slow_speed    = 0.4
  param budget        = 900 $/h
  param slo           = 2s
  param price         = 8 $/h
  param target        = 0.7

  state context    : 1 in [0.25, 1.0] init 1.0
  state retry      : req/s in [0, 400] init 0
  state slow_share : 1 in [0, 1] init 0
  state queue      : req in [0, 100000] init 0
  state replicas   : replica in [2, 40] init 10

  let load     = demand + retry
  let capacity = replicas * per_replica / (1 replica) * (1 - slow_share * (1 - slow_speed))
  let util     = load / capacity
  let latency  = 0.5s + queue / capacity
  let cost     = price * load / (1 req/s) * (0.5 + 0.5 * context)

  next queue = max(0, queue + (load - capacity) * tick)

  loop cost_controller {
    every 5s
    senses cost window 5s
    actuates context by -0.1 * (cost - budget) / budget
    objective minimize cost tolerance 5%
  }

  loop agent_retries {
    every 1s
    actuates retry to load * 0.6 * (1 - context)
    objective maximize success = 1 - 0.6 * (1 - context)
  }

  loop router {
    every 5s
    senses latency delay 5s
    actuates slow_share by 0.05 * (latency - slo) / slo
    objective keep latency <= slo
  }

  loop autoscaler {
    every 5s
    senses util window 5s
    actuates replicas by 0.5 * replicas * (util - target)
    objective keep util <= target tolerance 10%
  }

  require stable
  require always latency <= 10s for 300 ticks
  require no bad equilibrium
}
"""

VARY = ("slo=1s..4s", "budget=600..1400")


def _axes() -> tuple[object, list[object]]:
    from coherence.sweep.params import knobs_of, parse_vary

    ts, knobs = knobs_of(SPEC, "stack4.coh")
    return ts, [parse_vary(v, knobs, ts.tick, "linear") for v in VARY]


def sweep_points(points: int, jobs: int | None, per_point: bool = False) -> dict[str, float]:
    from coherence.sweep.dask_engine import Engine
    from coherence.sweep.regions import SweepOptions, run_sweep

    os.environ["COHERENCE_SWEEP_PER_POINT"] = "1" if per_point else "0"

    _, axes = _axes()
    t0 = time.perf_counter()
    with Engine(None, jobs) as engine:
        # start the cluster (and warm each worker's caches) on a throw-away sweep
        warm = SweepOptions(budget=4 * max(engine.jobs or 2, 2), refine=False, chunk=1)
        run_sweep(SPEC, "stack4.coh", None, axes, warm, engine=engine)  # type: ignore[arg-type]
        t1 = time.perf_counter()
        sw = run_sweep(SPEC, "stack4.coh", None, axes,  # type: ignore[arg-type]
                       SweepOptions(budget=points, refine=False), engine=engine)  # fmt: skip
        t2 = time.perf_counter()
        workers = engine.workers
    n = len(sw.points)
    return {
        "points": n,
        "startup_s": t1 - t0,
        "wall_s": t2 - t1,
        "workers": workers,
        "chunk": sw.chunk,
        "points_per_s": n / (t2 - t1),
        "points_per_s_per_core": n / (t2 - t1) / workers,
        "safe": int(sw.safe().sum()),
        "cpu_s": sw.cpu_seconds,
        "points_per_cpu_s": n / sw.cpu_seconds,
    }


def eig_ratio(count: int) -> dict[str, float]:
    from coherence.sweep.evaluate import per_point_monodromies as monodromies

    ts, axes = _axes()
    rng = np.random.default_rng(0)
    sample = 200
    lo = np.array([a.lo for a in axes])  # type: ignore[attr-defined]
    hi = np.array([a.hi for a in axes])  # type: ignore[attr-defined]
    pts = lo + (hi - lo) * rng.random((sample, len(axes)))
    t = time.perf_counter()
    mats = [m for m in monodromies(ts, ["slo", "budget"], pts) if m is not None]  # type: ignore[arg-type]
    per_point_linearization = (time.perf_counter() - t) / sample
    sizes = {m.shape for m in mats}
    shape = max(sizes, key=lambda s: sum(m.shape == s for m in mats))
    same = [m for m in mats if m.shape == shape]
    stack = np.stack([same[i % len(same)] for i in range(count)])
    best_b, best_l = math.inf, math.inf
    for _ in range(3):
        t = time.perf_counter()
        rb = np.abs(np.linalg.eigvals(stack)).max(axis=1)
        best_b = min(best_b, time.perf_counter() - t)
        t = time.perf_counter()
        rl = np.array([np.abs(np.linalg.eigvals(m)).max() for m in stack])
        best_l = min(best_l, time.perf_counter() - t)
    assert np.array_equal(rb, rl)
    return {
        "matrices": count,
        "size": shape[0],
        "batched_s": best_b,
        "loop_s": best_l,
        "ratio": best_l / best_b,
        "linearization_per_point_s": per_point_linearization,
    }


def formal_per_point(count: int) -> dict[str, float]:
    from coherence.sweep.evaluate import Chunk, evaluate

    _, axes = _axes()
    pts = np.array([[a.knob.current for a in axes]] * count)  # type: ignore[attr-defined]
    pts[:, 0] *= np.linspace(0.8, 1.2, count)
    evaluate(Chunk(SPEC, "stack4.coh", None, ("slo", "budget"), pts[:1], ("linear", "simulate")))
    t = time.perf_counter()
    evaluate(Chunk(SPEC, "stack4.coh", None, ("slo", "budget"), pts, ("formal",)))
    return {"points": count, "formal_s_per_point": (time.perf_counter() - t) / count}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--eig-points", type=int, default=10000)
    p.add_argument("--formal-points", type=int, default=3)
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--per-point", action="store_true", help="also run the per-point path")
    args = p.parse_args()
    print(f"spec: stack4 (4 loops), varying {', '.join(VARY)}; linear + simulation verdicts")
    print(f"CPUs: {os.cpu_count()}")
    rates: dict[str, float] = {}
    if not args.skip_sweep:
        for n in args.points:
            for path in ("batched", "per-point") if args.per_point else ("batched",):
                r = sweep_points(n, args.jobs, path == "per-point")
                rates[path] = r["points_per_cpu_s"]
                print(
                    f"{path:>9} sweep {r['points']:>7} points: {r['wall_s']:8.1f} s on {r['workers']} workers "
                    f"({r['chunk']} points/task; cluster start {r['startup_s']:.1f} s): "
                    f"{r['points_per_s']:.1f} points/s, {r['points_per_s_per_core']:.1f} points/s/core "
                    f"by the wall clock; {r['cpu_s']:.0f} CPU s in the workers: "
                    f"{r['points_per_cpu_s']:.1f} points per CPU second; {r['safe']} safe",
                    flush=True,
                )
            if args.per_point:
                print(f"batched / per-point: {rates['batched'] / rates['per-point']:.1f}x "
                      "points per CPU second")  # fmt: skip
    e = eig_ratio(args.eig_points)
    print(
        f"eigenvalues of {e['matrices']} monodromy matrices ({e['size']}x{e['size']}): batched "
        f"{e['batched_s'] * 1e3:.1f} ms, per-point loop {e['loop_s'] * 1e3:.1f} ms, ratio "
        f"{e['ratio']:.1f}x; the linearization before it: {e['linearization_per_point_s'] * 1e3:.1f} "
        "ms per point"
    )
    if args.formal_points:
        f = formal_per_point(args.formal_points)
        print(f"formal analysis: {f['formal_s_per_point']:.2f} s per point ({f['points']} points)")


if __name__ == "__main__":
    main()
