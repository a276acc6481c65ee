"""Front-end and simulator timings: parse, check and lower the shipped specs; simulate them.

Run: ``.venv/bin/python -m benchmarks.frontend_bench``. Prints a table; the whole-process
time of ``coherence lint specs/llm_serving.coh`` is measured in a fresh interpreter.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _best(fn, repeats: int = 7) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    from coherence.compile import compile_text
    from coherence.frontend.parser import parse_source
    from coherence.simulate.engine import compile_system, simulate
    from coherence.source import SourceFile

    rows = []
    for path in [ROOT / "specs" / "llm_serving.coh", ROOT / "specs" / "seed" / "tipping_point.coh"]:
        text = path.read_text(encoding="utf-8")
        src = SourceFile(str(path), text)
        parse_source(src)  # warm the grammar cache
        t_parse = _best(lambda src=src: parse_source(src))
        t_all = _best(lambda text=text, path=path: compile_text(str(path), text))
        ts = compile_text(str(path), text).systems[0]
        comp = compile_system(ts)
        t_sim = _best(lambda comp=comp: simulate(comp, 1000), repeats=3)
        t_sim_vec = _best(lambda comp=comp, ts=ts: simulate(comp, 1000, scenarios=256), repeats=3)
        rows.append((path.name, t_parse, t_all, t_sim, t_sim_vec, len(ts.states)))
    proc = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "coherence", "lint", str(ROOT / "specs" / "llm_serving.coh")],
            check=True,
            capture_output=True,
        )
        proc.append(time.perf_counter() - t0)
    print(
        f"{'spec':<22}{'parse':>10}{'parse+check+lower':>20}{'sim 1000 ticks':>16}"
        f"{'sim x256 scen.':>16}{'states':>8}"
    )
    for name, p, a, s1, s256, n in rows:
        print(
            f"{name:<22}{p * 1e3:>8.2f}ms{a * 1e3:>18.2f}ms{s1 * 1e3:>14.1f}ms{s256 * 1e3:>14.1f}ms{n:>8}"
        )
    print(
        f"whole process `coherence lint specs/llm_serving.coh`: median {statistics.median(proc):.3f}s "
        f"(min {min(proc):.3f}s, 5 runs)"
    )


if __name__ == "__main__":
    main()
