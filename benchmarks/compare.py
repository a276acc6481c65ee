"""Two revisions of coherence on the same specs: CPU time per analysis, and the same results.

Run: ``.venv/bin/python -m benchmarks.compare [REV] [--specs PATH ...] [--reps 3]`` (a
directory stands for every spec under it; a spec that does not compile stops the run)

``REV`` (default ``HEAD``) is checked out into a temporary git worktree; the working tree is
the other side. For each repetition, each spec is checked (``check_file``, one process, the
default analyses) by the revision and then by the working tree, each in a fresh interpreter,
so the two alternate and a machine whose speed drifts (a shared runner's does, by a third
within an hour) slows both alike. The table gives, per spec and side, the least CPU seconds
over the repetitions, per analysis and in all, and whether the two sides reported the same
verdicts and findings (requirement, status and depth; code, key and message), which a change
that only makes things faster must keep. The least is the figure to compare: noise only
adds time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "specs/llm_serving.coh",
    "specs/stacks/vllm_llmd_fleet.coh",
    "specs/stacks/knative_kpa.coh",
    "specs/seed/tipping_point.coh",
)


def _worker(spec: str) -> int:
    """In the side's own interpreter (``coherence`` imported from its tree): one check."""
    from coherence.pipeline import CheckOptions, check_file

    start = time.process_time()
    report = check_file(Path(spec), CheckOptions(jobs=1))
    cpu = time.process_time() - start
    if not report.systems:  # a file that does not compile is no measurement
        print(f"{spec}: no system was checked (does it compile?)", file=sys.stderr)
        return 1
    seconds: dict[str, float] = {}
    results: list[object] = []
    for system in report.systems:
        for r in system.analyses:
            seconds[r.analysis] = seconds.get(r.analysis, 0.0) + r.seconds
            results.append(
                (
                    system.name,
                    r.analysis,
                    sorted((v.requirement, v.status.value, v.depth) for v in r.verdicts),
                    sorted((f.code, f.key, f.message) for f in r.findings),
                )
            )
    digest = hashlib.sha256(repr(results).encode()).hexdigest()[:16]
    print(json.dumps({"cpu": cpu, "seconds": seconds, "digest": digest}))
    return 0


def _run(tree: Path, spec: str) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", spec],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{tree}: checking {spec} failed:\n{out.stderr.strip()}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("rev", nargs="?", default="HEAD", help="the revision to compare with")
    ap.add_argument("--specs", nargs="+", default=list(HEAVY))
    ap.add_argument("--reps", type=int, default=3, help="repetitions (the least counts)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return _worker(args.worker)
    from coherence.diagnostics import CoherenceError
    from coherence.pipeline import find_specs

    try:  # directories stand for the specs under them
        args.specs = [str(p) for p in find_specs(args.specs)]
    except CoherenceError as exc:
        ap.error(str(exc))
    with tempfile.TemporaryDirectory(prefix="coherence-compare-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(base), args.rev],
            cwd=ROOT,
            check=True,
        )
        try:
            sides = {args.rev: base, "working tree": ROOT}
            best: dict[tuple[str, str], dict[str, float]] = {}
            digests: dict[tuple[str, str], set[str]] = {}
            for rep in range(args.reps):
                for spec in args.specs:
                    for name, tree in sides.items():
                        got = _run(tree, spec)
                        row = {"all": float(cast(float, got["cpu"]))}
                        row.update(cast(dict[str, float], got["seconds"]))
                        keep = best.setdefault((spec, name), {})
                        for k, v in row.items():
                            keep[k] = min(keep.get(k, v), v)
                        digests.setdefault((spec, name), set()).add(str(got["digest"]))
                        print(f"rep {rep + 1}: {spec} ({name}): {row['all']:.2f} s", flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False
            )
    head = ["spec", "side", "all", "simulate", "linear", "smt", "ratio", "same results"]
    rows = [head]
    for spec in args.specs:
        ref = best[(spec, args.rev)]["all"]
        for name in sides:
            b = best[(spec, name)]
            same = (
                digests[(spec, name)] == digests[(spec, args.rev)]
                and len(digests[(spec, name)]) == 1
            )
            rows.append(
                [
                    spec,
                    name,
                    f"{b['all']:.2f}",
                    *(f"{b.get(k, 0.0):.2f}" for k in ("simulate", "linear", "smt")),
                    f"{b['all'] / ref:.2f}",
                    "yes" if same else "NO",
                ]
            )
    from benchmarks.table import print_table  # here: the workers run this file as a script

    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
