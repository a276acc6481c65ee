"""The fuzz harness: hostile and odd input for the whole tool, counted.

Inputs (Hypothesis strategies, shared with ``tests/test_fuzz.py``):

- ``grammar``: syntactically valid specs from a small generator of systems (inputs, params,
  states, lets, loops with delays, windows and shaping, objectives, requirements);
- ``mutation``: one edit of a spec of the shipped library (``specs/**/*.coh``): a number, a
  name, a unit, a timing, a line (dropped, doubled, swapped) or a byte;
- ``yaml``: one edit of an autoscaler manifest (HPA, KEDA, Knative), run through
  ``coherence import``;
- ``profile``: one edit of the shipped calibration profile, bound by a small spec.

Each input runs in process through :func:`coherence.cli.main` (``lint``; ``check`` on a
sample) and is classified: ``ok`` (exit 0 or 1 without an error), ``located`` (an error with
file:line:col), ``unlocated`` (an error without a location), ``internal`` (a Python exception
or COH903), ``hang`` (past the per-input budget) or ``memory`` (a MemoryError under the
worker's address-space limit). The benchmark runs the inputs in a worker subprocess with
``RLIMIT_AS`` set and a per-input ``SIGALRM`` budget, and prints a table; it also cross-checks
the backends on generated small specs (linear verdict against a perturbed simulation, bounded
proofs against random simulation, every counterexample replayed).

    python -m benchmarks.fuzz --inputs 10000            # the table
    python -m benchmarks.fuzz --inputs 500 --check 50   # and `check` on 50 of them
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import re
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = sorted(p for p in (ROOT / "specs").rglob("*.coh"))
MANIFESTS = sorted((ROOT / "tests" / "library" / "data").glob("*.yaml"))
PROFILE = ROOT / "specs" / "profiles" / "cpu-ci.json"

OUTCOMES = ("ok", "located", "unlocated", "internal", "hang", "memory")
LOCATION = re.compile(r"(-->\s*\S+:\d+:\d+)|(^\S+:\d+:\d+: )", re.M)

# ---- the grammar ----------------------------------------------------------------------------

NAMES = ("x", "y", "q", "load", "util", "replicas", "batch", "cost")
UNITS = ("1", "req/s", "s", "req")


@st.composite
def grammar_spec(draw: st.DrawFn) -> str:
    """A syntactically valid spec of one system: a few inputs, params, states, lets, loops
    and requirements, with numbers from tame to extreme."""
    num = st.one_of(
        st.integers(-5, 100).map(str),
        st.floats(0.001, 1000, allow_nan=False).map(lambda v: f"{v:.4g}"),
        st.sampled_from(["0", "1e-9", "1e9", "1e300", "0.5", "2"]),
    )
    n_states = draw(st.integers(1, 3))
    states = [f"s{i}" for i in range(n_states)]
    lines = ["system g {", f"  tick {draw(st.sampled_from(['1s', '100ms', '5s', '1min']))}"]
    inputs = []
    for i in range(draw(st.integers(0, 2))):
        lo = draw(st.integers(0, 50))
        hi = lo + draw(st.integers(0, 100))
        nom = draw(st.integers(lo, hi))
        lines.append(f"  input u{i} : 1 in [{lo}, {hi}] nominal {nom}")
        inputs.append(f"u{i}")
    for i in range(draw(st.integers(0, 2))):
        lines.append(f"  param p{i} = {draw(num)}")
    for s in states:
        lo = draw(st.integers(-10, 10))
        hi = lo + draw(st.integers(1, 1000))
        init = draw(st.integers(lo, hi))
        integer = " integer" if draw(st.booleans()) else ""
        lines.append(f"  state {s} : 1{integer} in [{lo}, {hi}] init {init}")
    atoms = states + inputs

    def expr(depth: int) -> str:
        if depth <= 0 or draw(st.booleans()):
            return draw(st.one_of(st.sampled_from(atoms), num))
        kind = draw(st.sampled_from(["bin", "call", "if", "paren"]))
        a, b = expr(depth - 1), expr(depth - 1)
        if kind == "bin":
            return f"{a} {draw(st.sampled_from(['+', '-', '*', '/']))} {b}"
        if kind == "call":
            return f"{draw(st.sampled_from(['min', 'max']))}({a}, {b})"
        if kind == "if":
            return f"if {a} > {b} then {a} else {b}"
        return f"({a})"

    lines.append(f"  let d0 = {expr(2)}")
    actuated = set()
    for j in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(states))
        actuated.add(target)
        sensed = draw(st.sampled_from([*states, "d0"]))
        body = [f"  loop l{j} {{", f"    every {draw(st.integers(1, 6))}s"]
        sense = f"    senses {sensed} as e{j}"
        if draw(st.booleans()):
            sense += f" delay {draw(st.integers(1, 4))}s"
        if draw(st.booleans()):
            sense += f" window {draw(st.integers(1, 6))}s"
        body.append(sense)
        law = f"{draw(num)} * ({draw(num)} - e{j})"
        verb = draw(st.sampled_from(["by", "to"]))
        body.append(f"    actuates {target} {verb} {law if verb == 'by' else expr(1)}")
        if draw(st.booleans()):
            body.append(f"    objective keep {target} <= {draw(num)}")
        body.append("  }")
        lines += body
    for s in states:
        if s not in actuated and draw(st.booleans()):
            lines.append(f"  next {s} = {expr(2)}")
    reqs = draw(st.lists(st.sampled_from(["stable", "coherent", "always", "flap"]), max_size=3))
    for r in reqs:
        if r == "always":
            s = draw(st.sampled_from(states))
            lines.append(
                f"  require always {s} <= {draw(num)} for {draw(st.integers(1, 60))} ticks"
            )
        elif r == "flap":
            s = draw(st.sampled_from(states))
            lines.append(
                f"  require no flapping of {s} max {draw(st.integers(0, 4))} within "
                f"{draw(st.integers(2, 40))} ticks"
            )
        else:
            lines.append(f"  require {r}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---- mutations ------------------------------------------------------------------------------

NUMBER = re.compile(r"(?<![\w.])\d+(\.\d+)?(e[-+]?\d+)?")
IDENT = re.compile(r"\b[a-z_][a-z0-9_]*\b")
UNIT_WORDS = ("s", "ms", "min", "h", "req/s", "tok/s", "W", "1", "GB", "%")
WILD_NUMBERS = (
    "0", "-0", "1e400", "-1e400", "1e308", "2e308", "1e-400", "4294967296", "2147483648",
    "99999999999999999999999", "0.0000001", "-1", "1e9", "3.5", "007", "1_000",
)  # fmt: skip


def mutate(text: str, kind: str, a: int, b: int, pick: int) -> str:
    """One edit of ``text``; ``a``, ``b`` and ``pick`` choose where and what."""
    if kind == "number":
        spots = list(NUMBER.finditer(text))
        if not spots:
            return text
        m = spots[a % len(spots)]
        return text[: m.start()] + WILD_NUMBERS[pick % len(WILD_NUMBERS)] + text[m.end() :]
    if kind == "name":
        spots = list(IDENT.finditer(text))
        if not spots:
            return text
        m = spots[a % len(spots)]
        other = spots[b % len(spots)].group(0)
        new = ("__t", other, "if", "tick", m.group(0) * 2, "_")[pick % 6]
        return text[: m.start()] + new + text[m.end() :]
    if kind == "unit":
        spots = [m for m in re.finditer(r"(?<=\d)\s?(s|ms|min|h|req/s)\b", text)]
        if not spots:
            return text
        m = spots[a % len(spots)]
        return text[: m.start()] + " " + UNIT_WORDS[pick % len(UNIT_WORDS)] + text[m.end() :]
    if kind == "timing":
        spots = list(re.finditer(r"\b(every|delay|window|cooldown|within|for)\s+\S+", text))
        if not spots:
            return text
        m = spots[a % len(spots)]
        word = m.group(1)
        return (
            text[: m.start()]
            + f"{word} {WILD_NUMBERS[pick % len(WILD_NUMBERS)]}s"
            + text[m.end() :]
        )
    lines = text.split("\n")
    if kind == "line":
        i, j = a % len(lines), b % len(lines)
        op = pick % 3
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[j])
        else:
            lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    # bytes
    data = bytearray(text.encode("utf-8"))
    if not data:
        return text
    i = a % len(data)
    op = pick % 4
    if op == 0:
        data[i] = b % 256
    elif op == 1:
        del data[i]
    elif op == 2:
        data[i:i] = bytes([b % 256])
    else:
        data[i:i] = b"\r\x0c\x00\xef\xbb\xbf"[b % 6 : b % 6 + 1]
    return data.decode("utf-8", errors="surrogateescape")


KINDS = ("number", "name", "unit", "timing", "line", "bytes")


@st.composite
def library_mutation(draw: st.DrawFn) -> tuple[str, str]:
    """(label, text): a spec of the library with one edit."""
    path = draw(st.sampled_from(LIBRARY))
    kind = draw(st.sampled_from(KINDS))
    a, b, pick = (draw(st.integers(0, 10**6)) for _ in range(3))
    text = mutate(path.read_text(encoding="utf-8"), kind, a, b, pick)
    return f"{path.relative_to(ROOT)} {kind} {a} {b} {pick}", text


@st.composite
def yaml_mutation(draw: st.DrawFn) -> tuple[str, str, str]:
    """(label, importer, text): a manifest with one edit, and the importer to run."""
    path = draw(st.sampled_from(MANIFESTS))
    text = path.read_text(encoding="utf-8")
    kind = draw(st.sampled_from(("number", "name", "line", "bytes", "deep", "big")))
    a, b, pick = (draw(st.integers(0, 10**6)) for _ in range(3))
    if kind == "deep":
        text += "\nextra: " + "[" * (50 + a % 2000) + "]" * (50 + a % 2000) + "\n"
    elif kind == "big":
        text = re.sub(r"(\d+)", lambda m: WILD_NUMBERS[(pick + len(m.group(1))) % 16], text)
    else:
        text = mutate(text, kind, a, b, pick)
    low = text.lower()
    importer = "keda" if "scaledobject" in low else "knative" if "knative" in low else "hpa"
    return f"{path.name} {kind} {a} {b} {pick}", importer, text


@st.composite
def profile_mutation(draw: st.DrawFn) -> tuple[str, str]:
    """(label, profile text): the shipped profile with one edit."""
    kind = draw(st.sampled_from(("number", "name", "line", "bytes")))
    a, b, pick = (draw(st.integers(0, 10**6)) for _ in range(3))
    return f"cpu-ci.json {kind} {a} {b} {pick}", mutate(
        PROFILE.read_text(encoding="utf-8"), kind, a, b, pick
    )


PROFILE_SPEC = """system p {
  tick 1s
  profile prof = "prof.json"
  param step_base = 12 ms from prof.step_time(1)
  param step_per_seq = 0.06 ms from prof.step_time_slope(64)
  state x : 1 in [0, 10] init 1
  next x = x
}
"""

# ---- running and classifying ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # one of OUTCOMES
    label: str
    detail: str = ""  # the traceback's last lines, for internal errors


def classify(code: int, out: str, err: str) -> str:
    """An outcome from the exit code and the streams of one in-process run."""
    both = out + err
    if "internal error" in both or "COH903" in both or "Traceback" in both:
        return "internal"
    if code == 2 or re.search(r"^error(\[|:)", both, re.M):
        return "located" if LOCATION.search(both) else "unlocated"
    return "ok"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    from coherence.cli import main

    out, err = io.StringIO(), io.StringIO()
    os.environ["COHERENCE_DEBUG"] = "1"  # an internal error prints its traceback
    code = main(argv, out, err)
    return code, out.getvalue(), err.getvalue()


def run_one(label: str, argv: list[str], budget: float = 0.0) -> Outcome:
    """Run one command in process; ``budget`` seconds of SIGALRM (0: none) make a hang."""

    class Hang(BaseException):
        pass

    def alarm(*_: Any) -> None:
        raise Hang

    old = signal.signal(signal.SIGALRM, alarm) if budget else None
    if budget:
        signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        code, out, err = run_cli(argv)
    except Hang:
        return Outcome("hang", label)
    except MemoryError:
        return Outcome("memory", label)
    except Exception:
        return Outcome("internal", label, traceback.format_exc(limit=-3))
    finally:
        if budget:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    kind = classify(code, out, err)
    detail = ""
    if kind == "internal":
        tail = [ln for ln in (out + err).splitlines() if ln.strip()]
        detail = "\n".join(tail[-6:])
    return Outcome(kind, label, detail)


def lint_text(
    d: Path, label: str, text: str, command: str = "lint", budget: float = 0.0
) -> Outcome:
    path = d / "fuzz.coh"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    argv = [command, str(path)] if command == "lint" else [
        "check", str(path), "--no-cache", "-j", "1", "--rlimit", "200000"
    ]  # fmt: skip
    return run_one(label, argv, budget)


def import_text(d: Path, label: str, importer: str, text: str, budget: float = 0.0) -> Outcome:
    path = d / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return run_one(label, ["import", importer, str(path)], budget)


def profile_text(d: Path, label: str, text: str, budget: float = 0.0) -> Outcome:
    (d / "prof.json").write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return lint_text(d, label, PROFILE_SPEC, budget=budget)


def inputs(n: int, seed: int) -> Iterator[tuple[str, Callable[[Path, float], Outcome]]]:
    """``n`` inputs, deterministically from ``seed``: a quarter generated specs, half library
    mutations, the rest manifests and profiles. Each is a (family, run) pair."""
    import random

    from hypothesis import HealthCheck, given, settings

    families = (
        ["grammar"] * 3 + ["mutation"] * 6 + ["yaml"] * 2 + ["profile"]
    )  # 1/4, 1/2, 1/6, 1/12
    rng = random.Random(seed)
    plan = [rng.choice(families) for _ in range(n)]
    strategies: dict[str, Any] = {
        "grammar": grammar_spec().map(lambda t: ("generated", t)),
        "mutation": library_mutation(),
        "yaml": yaml_mutation(),
        "profile": profile_mutation(),
    }
    drawn: dict[str, list[Any]] = {}
    for fam, strat in strategies.items():
        want = plan.count(fam)
        got: list[Any] = []
        if want:

            @settings(
                max_examples=want,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(strat)
            def collect(x: Any) -> None:
                got.append(x)  # noqa: B023 (collect runs at once, in this iteration)

            collect()
        drawn[fam] = got
    for fam in plan:
        if not drawn[fam]:
            continue
        yield fam, functools.partial(_run_input, fam, drawn[fam].pop())


def _run_input(fam: str, x: Any, d: Path, budget: float) -> Outcome:
    if fam == "yaml":
        return import_text(d, x[0], x[1], x[2], budget)
    if fam == "profile":
        return profile_text(d, x[0], x[1], budget)
    return lint_text(d, x[0], x[1], budget=budget)


# ---- the cross-check of the backends ---------------------------------------------------------


@dataclass(slots=True)
class Cross:
    specs: int = 0
    linear_checked: int = 0
    linear_disagree: int = 0
    linear_errors: int = 0
    bounded_checked: int = 0
    bounded_disagree: int = 0
    traces_replayed: int = 0
    traces_not_reproduced: int = 0


def cross_check(n: int, seed: int) -> Cross:
    """Generated small specs through the backends, each claim checked in the simulator."""
    import numpy as np
    from hypothesis import HealthCheck, given, settings

    from coherence.compile import compile_text
    from coherence.formal.bounded import check_bounded
    from coherence.results import Status
    from coherence.simulate.engine import simulate
    from coherence.simulate.replay import replay
    from coherence.simulate.requirements import check_requirement
    from coherence.smt.options import SmtOptions
    from coherence.smt.solver import SolverStats

    c = Cross()
    texts: list[str] = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(grammar_spec())
    def collect(t: str) -> None:
        texts.append(t)

    collect()
    rng = np.random.default_rng(seed)
    for text in texts:
        res = compile_text("gen.coh", text)
        if not res.ok or not res.systems:
            continue
        ts = res.systems[0]
        if ts.hyperperiod > 60:
            continue
        c.specs += 1
        try:
            _cross_linear(ts, c, rng)
        except Exception:  # counted by the lint/check runs above, not here
            c.linear_errors += 1
        for req in ts.requirements:
            if req.kind not in ("always", "flapping") or req.horizon > 200:
                continue
            opts = SmtOptions(rlimit=200_000, budget=1_000_000)
            r = check_bounded(ts, req, opts, SolverStats())
            if r.status in (Status.PROVED, Status.HOLDS):
                c.bounded_checked += 1
                S, T = 64, max(1, min(req.horizon, r.depth or req.horizon))
                lo = np.array([u.lo for u in ts.inputs])
                hi = np.array([u.hi for u in ts.inputs])
                u = lo + (hi - lo) * rng.random((S, T, len(ts.inputs)))
                tr = simulate(ts, T, inputs=u)
                got = check_requirement(req, tr)
                if got is not None and bool(np.any(got >= 0)):
                    c.bounded_disagree += 1
            if r.status is Status.FALSIFIED and r.cex is not None:
                c.traces_replayed += 1
                tr = replay(ts, r.cex.scenario)
                got = check_requirement(req, tr)
                if got is None or not bool(np.any(got >= 0)):
                    c.traces_not_reproduced += 1
    return c


def _cross_linear(ts: Any, c: Cross, rng: Any) -> None:
    """Where the linear analysis calls the system stable with room (radius < 0.9, not on a
    switching surface), a small perturbation of its operating point decays in simulation."""
    import numpy as np

    import coherence.linear as linear
    from coherence.simulate.engine import simulate

    if not any(r.kind == "stable" for r in ts.requirements):
        return
    res = linear.analyze(ts)
    data = dict(res.data)
    rho = data.get("spectral_radius")
    op = data.get("operating_point", {})
    if not isinstance(rho, float) or rho >= 0.9 or "COH307" in {f.code for f in res.findings}:
        return
    states = op.get("states") if isinstance(op, dict) else None
    if not states:
        return
    init = {}
    for s in ts.states:
        if s.name in states and s.kind in ("plant", "actuator") and s.lo < s.hi:
            x = float(states[s.name])
            eps = 1e-4 * max(abs(x), 1.0)
            init[s.name] = float(np.clip(x + eps * rng.choice([-1, 1]), s.lo, s.hi))
    if not init:
        return
    c.linear_checked += 1
    H = ts.hyperperiod
    T = 200 * H
    tr = simulate(ts, T, init={**{k: float(v) for k, v in states.items()}, **init})
    d0 = max(abs(init[k] - float(states[k])) for k in init)
    dT = max(abs(float(tr.state(k)[0, -1]) - float(states[k])) for k in init)
    if not np.isfinite(dT) or dT > max(d0, 1e-9) * 1.5:
        c.linear_disagree += 1


# ---- the benchmark --------------------------------------------------------------------------


def _worker(n: int, seed: int, budget: float, memory_mb: int, check: int, q: Any) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    os.environ["COHERENCE_CACHE_DIR"] = tempfile.mkdtemp(prefix="fuzz-cache-")
    done = 0
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        d = Path(tmp)
        for i, (fam, run) in enumerate(inputs(n, seed)):
            o = run(d, budget)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
            q.put(("input", fam, o.kind, o.label, o.detail, peak))
            done += 1
            if check and i % max(1, n // check) == 0 and fam in ("grammar", "mutation"):
                text = (d / "fuzz.coh").read_text(encoding="utf-8", errors="replace")
                oc = lint_text(d, o.label, text, command="check", budget=budget * 4)
                q.put(("check", fam, oc.kind, oc.label, oc.detail, peak))
    q.put(("done", done))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__)
    p.add_argument("--inputs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=float, default=20.0, help="seconds per input (hang)")
    p.add_argument("--memory", type=int, default=2048, help="MiB of address space (RLIMIT_AS)")
    p.add_argument("--check", type=int, default=0, help="also `check` this many inputs")
    p.add_argument("--cross", type=int, default=100, help="generated specs to cross-check")
    p.add_argument("--report", default="", help="write internal errors here")
    args = p.parse_args(argv)
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    counts: Counter[tuple[str, str]] = Counter()
    internals: list[tuple[str, str, str]] = []
    peak = 0
    start = time.perf_counter()
    remaining = args.inputs
    seed = args.seed
    tried = 0
    while remaining > 0:  # a worker that dies (memory) is replaced; its input counts as memory
        q = ctx.Queue()
        w = ctx.Process(
            target=_worker, args=(remaining, seed, args.budget, args.memory, args.check, q)
        )
        w.start()
        got = 0
        finished = False
        while True:
            try:
                msg = q.get(timeout=args.budget * 6 + 30)
            except Exception:
                break
            if msg[0] == "done":
                finished = True
                break
            what, fam, kind, label, detail, rss = msg
            peak = max(peak, rss)
            counts[(what, kind)] += 1
            counts[(what + ":" + fam, kind)] += 1
            if what == "input":
                got += 1
            if kind == "internal":
                internals.append((fam, label, detail))
        w.join(timeout=5)
        if w.is_alive():
            w.kill()
        tried += got
        if finished:
            break
        counts[("input", "memory")] += 1  # the input the worker died on
        tried += 1
        remaining -= got + 1
        seed += 1
    seconds = time.perf_counter() - start
    cross = cross_check(args.cross, args.seed) if args.cross else Cross()
    print(f"fuzz: {tried} inputs, seed {args.seed}, {seconds:.0f} s, budget {args.budget:g} s "
          f"per input, RLIMIT_AS {args.memory} MiB")  # fmt: skip
    print(f"| {'what':<16} | " + " | ".join(f"{k:>9}" for k in OUTCOMES) + " |")
    print("|" + "---|" * (len(OUTCOMES) + 1))
    rows = sorted({w for w, _ in counts})
    for what in rows:
        cells = " | ".join(f"{counts[(what, k)]:>9}" for k in OUTCOMES)
        print(f"| {what:<16} | {cells} |")
    print(f"memory ceiling (peak RSS of the worker): {peak} MiB")
    print(
        f"cross-check: {cross.specs} generated specs; linear stable vs perturbed simulation "
        f"{cross.linear_checked} checked, {cross.linear_disagree} disagree, "
        f"{cross.linear_errors} errors; bounded proofs vs "
        f"64 random runs {cross.bounded_checked} checked, {cross.bounded_disagree} disagree; "
        f"counterexamples replayed {cross.traces_replayed}, "
        f"{cross.traces_not_reproduced} not reproduced"
    )
    if internals:
        print(f"internal errors: {len(internals)} (first 20 below)")
        for fam, label, detail in internals[:20]:
            last = detail.strip().splitlines()[-1] if detail.strip() else ""
            print(f"  [{fam}] {label}: {last}")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as fh:
            for fam, label, detail in internals:
                fh.write(f"== [{fam}] {label}\n{detail}\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
