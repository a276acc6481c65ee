"""Verified fixes: the nearest one-parameter change that makes a failing requirement hold.

For each requirement the full check falsifies (``require coherent`` included: a conflict),
each knob of the spec (:mod:`.params`: its params and its loops' shaping values, present or
absent, and the actuated states' bounds) is tried in both directions with the sweep's fast
analyses, on a ladder of factors up to 16 (an absent stabilization window or cooldown: whole
periods of its loop), the first safe value is bisected back towards the current one, rounded
to two significant digits away from it, and the nearest candidates (by relative change) are
re-checked with the full analysis of ``coherence check`` on the changed spec *text*. Only a
candidate whose re-check passes the requirement (proved or holds) and fails no requirement
that passed before is reported, "(re-checked)". A candidate is never shown unverified.

A fix is attached to the findings of the requirement it repairs (``data.fix`` and the help
line, :func:`attach`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import Status, SystemReport
from coherence.sweep.dask_engine import Engine
from coherence.sweep.evaluate import SAFE, Chunk
from coherence.sweep.params import Knob, knobs_of, with_values

FACTORS = (1.1, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
BISECT = 6
RECHECKS = 12


@dataclass(frozen=True, slots=True)
class Fix:
    """One verified change: ``knob`` from ``old`` to ``new`` makes ``requirement`` hold."""

    requirement: str
    kind: str
    knob: str
    label: str
    old: float
    new: float
    old_shown: str
    new_shown: str
    added: bool  # the clause was absent and the fix adds it
    clause: str  # the spec text of the changed number or added clause
    rechecked: bool
    verdicts: tuple[tuple[str, str], ...]
    effect: str

    @property
    def sentence(self) -> str:
        done = " (re-checked)" if self.rechecked else " (not re-checked)"
        if self.added:
            loop = self.label.rsplit(" of ", 1)[-1]
            return f"adding `{self.clause}` to loop {loop} {self.effect}{done}"
        verb = "raising" if self.new > self.old else "lowering"
        return f"{verb} {self.label} from {self.old_shown} to {self.new_shown} {self.effect}{done}"

    def to_data(self) -> dict[str, Any]:
        return {
            "requirement": self.requirement,
            "knob": self.knob,
            "from": self.old,
            "to": self.new,
            "text": self.clause,
            "rechecked": self.rechecked,
            "verdicts_after": dict(self.verdicts),
            "suggestion": self.sentence,
        }


def effect_words(req: Requirement) -> str:
    if req.kind == "flapping":
        return f"removes the flapping of {req.state}"
    if req.kind == "stable":
        return "makes the system stable"
    if req.kind == "no_bad_equilibrium":
        return "removes the bad equilibrium"
    if req.kind == "coherent":
        return "removes the conflict"
    return f"makes `{req.text.removeprefix('require ')}` hold"


def _ladder(k: Knob) -> list[float]:
    """Candidate values, nearest first on each side (both directions interleaved)."""
    out: list[float] = []
    if k.current == 0:
        step = k.step or 1.0
        out = [k.snap(step * s) for s in STEPS]
    else:
        for f in FACTORS:
            for v in (k.current * f, k.current / f):
                out.append(k.snap(v))
    seen: list[float] = []
    for v in out:
        if v != k.current and v not in seen:
            seen.append(v)
    return seen


def _coarse(k: Knob) -> list[float]:
    """Half and double the current value (an absent clause: one and four periods)."""
    if k.current == 0:
        vals = [k.snap((k.step or 1.0) * s) for s in (1, 4)]
    else:
        vals = [k.snap(k.current / 2), k.snap(k.current * 2)]
    return [v for v in dict.fromkeys(vals) if v != k.current]


def candidates(knobs: dict[str, Knob], ts: TransitionSystem) -> list[Knob]:
    """The knobs a fix may change: params, shaping values, the actuated states' bounds."""
    actuated = {a.state for lp in ts.loops for a in lp.actions}
    out = []
    for k in knobs.values():
        if k.kind in ("max", "min") and k.owner not in actuated:
            continue
        out.append(k)
    return sorted(out, key=lambda k: k.name)


def _distance(k: Knob, v: float) -> float:
    if k.current == 0:
        return abs(math.log(max(v, 1e-300) / (k.step or 1.0)))
    if v <= 0 or k.current < 0:
        return abs(v - k.current) / max(abs(k.current), 1e-300)
    return abs(math.log(v / k.current))


def _nice(k: Knob, v: float) -> float:
    """``v`` to two significant digits, rounded away from the current value."""
    if k.step > 0 or v == 0:
        return k.snap(v)
    e = math.floor(math.log10(abs(v))) - 1
    q = 10.0**e
    up = v > k.current
    r = (math.ceil(v / q) if up else math.floor(v / q)) * q
    return float(f"{r:.12g}")


def search(
    text: str,
    path: str,
    system: str | None,
    engine: Engine,
    only: Sequence[str] | None = None,
    recheck: Callable[[str], SystemReport] | None = None,
    progress: Callable[[str], None] | None = None,
    max_fixes: int = 3,
) -> tuple[list[Fix], SystemReport]:
    """The verified fixes of every requirement the full check fails, and that check's report."""
    ts, knobs = knobs_of(text, path, system)
    check = recheck or (lambda t: full_check(t, path, ts.name))
    before = check(text)
    failing = _failing(before, ts)
    fixes: list[Fix] = []
    if not failing:
        return fixes, before
    base = {r.text: _status(before, r) for r in ts.requirements}
    for j, req in failing:
        analyses = ("linear", "simulate") if req.kind != "coherent" else ("formal",)
        found: list[tuple[float, Knob, float]] = []
        for k in candidates(knobs, ts):
            if only and k.name not in only:
                continue
            # a conflict is judged by the formal analysis only (seconds to minutes a value):
            # a coarse search, halving and doubling, without bisection
            ladder = _ladder(k) if req.kind != "coherent" else _coarse(k)
            if not ladder:
                continue
            if progress:
                progress(f"fix: trying {k.label} for `{req.text}`")
            values = [k.current, *ladder]
            # one task per value for the formal analysis (each takes seconds or more)
            rows = [[v] for v in values] if req.kind == "coherent" else [values]
            chunks = [Chunk(text, path, system, (k.name,), np.array(r)[:, None], analyses)
                      for r in rows]  # fmt: skip
            st = np.concatenate([got.status for got in engine.map(chunks)])
            if st[0, j] in SAFE:
                continue  # the fast analyses cannot see this failure: nothing to steer by
            keep = [r for r in range(st.shape[1]) if st[0, r] in SAFE]
            ok = [
                i
                for i in range(1, len(values))
                if st[i, j] in SAFE and all(st[i, r] in SAFE for r in keep)
            ]
            if not ok:
                continue
            best = min(ok, key=lambda i: _distance(k, values[i]))
            v = values[best]
            if req.kind != "coherent":
                v = _bisect(text, path, system, k, j, keep, v, analyses, engine)
            found.append((_distance(k, v), k, v))
        found.sort(key=lambda x: (x[0], x[1].name))
        budget = RECHECKS
        for _, k, v0 in found:
            if budget <= 0:
                break
            # the nearest value first; where the full check cannot decide there (unknown,
            # not falsified), a little further from the current value
            for v in _further(k, v0):
                budget -= 1
                verdict = _recheck(check, text, knobs, k, v, req, ts, base)
                if isinstance(verdict, dict):
                    fixes.append(_fix(req, k, v, verdict))
                if verdict != Status.UNKNOWN or budget <= 0:
                    break
            if len([f for f in fixes if f.requirement == req.text]) >= max_fixes:
                break
    fixes.sort(key=lambda f: ([r.text for r in ts.requirements].index(f.requirement),
                              _distance(knobs[f.knob], f.new), f.knob))  # fmt: skip
    return fixes, before


def _further(k: Knob, v: float) -> list[float]:
    """``v``, then two values further from the current one: the change 1.5 and 2 times as
    large (as a ratio where both are positive, so a value never crosses zero), rounded, and
    never beyond the ladder's factor of 16."""
    out = [v]
    top = max(FACTORS)
    for f in (1.5, 2.0):
        if k.current > 0 and v > 0:
            ratio = min(max((v / k.current) ** f, 1 / top), top)
            w = _nice(k, k.snap(k.current * ratio))
        else:
            w = _nice(k, k.snap(k.current + (v - k.current) * f))
            if k.current > 0 and w <= 0:
                continue
        if w not in out:
            out.append(w)
    return out


def _recheck(
    check: Callable[[str], SystemReport],
    text: str,
    knobs: dict[str, Knob],
    k: Knob,
    v: float,
    req: Requirement,
    ts: TransitionSystem,
    base: dict[str, Status],
) -> dict[str, Status] | Status:
    """The full check of the spec with ``k`` at ``v``: every verdict when ``req`` holds and
    nothing that passed before fails; otherwise ``req``'s status there."""
    try:
        after = check(with_values(text, knobs, {k.name: v}))
    except Exception:  # the changed spec does not check: not a fix
        return Status.SKIPPED
    now = {r.text: _status(after, r) for r in ts.requirements}
    target = now.get(req.text, Status.SKIPPED)
    broke = [t for t, s in base.items() if s.passed and not now[t].passed]
    if target in (Status.PROVED, Status.HOLDS) and not broke:
        return now
    return target if target != Status.PROVED else Status.FALSIFIED


def _bisect(
    text: str,
    path: str,
    system: str | None,
    k: Knob,
    j: int,
    keep: list[int],
    good: float,
    analyses: tuple[str, ...],
    engine: Engine,
) -> float:
    """The safe value nearest the current one between it and ``good`` (rounded nicely)."""
    bad = k.current
    for _ in range(BISECT):
        if k.current > 0 and good > 0:
            mid = k.snap(math.sqrt(good * bad)) if bad > 0 else k.snap(good / 2)
        else:
            mid = k.snap((good + bad) / 2)
        if mid in (good, bad):
            break
        st = engine.map([Chunk(text, path, system, (k.name,), np.array([[mid]]), analyses)])[0]
        row = st.status[0]
        if row[j] in SAFE and all(row[r] in SAFE for r in keep):
            good = mid
        else:
            bad = mid
    nice = _nice(k, good)
    if nice != good:
        st = engine.map([Chunk(text, path, system, (k.name,), np.array([[nice]]), analyses)])[0]
        row = st.status[0]
        if row[j] in SAFE and all(row[r] in SAFE for r in keep):
            return nice
    return good


def _fix(req: Requirement, k: Knob, v: float, now: dict[str, Status]) -> Fix:
    added = k.start is None
    clause = k.insert.format(k.text(v)).strip() if added else k.text(v)
    return Fix(
        req.text,
        req.kind,
        k.name,
        k.label,
        k.current,
        v,
        k.show(k.current),
        k.show(v),
        added,
        clause,
        True,
        tuple((t, s.value) for t, s in now.items()),
        effect_words(req),
    )


def _status(report: SystemReport, req: Requirement) -> Status:
    got = [v.status for v in report.verdicts if v.requirement == req.text and v.kind == req.kind]
    if not got:
        return Status.SKIPPED
    order = [Status.FALSIFIED, Status.UNKNOWN, Status.SKIPPED, Status.HOLDS, Status.PROVED]
    return min(got, key=order.index)


def _failing(report: SystemReport, ts: TransitionSystem) -> list[tuple[int, Requirement]]:
    return [(j, r) for j, r in enumerate(ts.requirements) if _status(report, r) == Status.FALSIFIED]


def full_check(text: str, path: str, system: str) -> SystemReport:
    """``coherence check``'s analyses (simulation, linear, formal) of one system of ``text``."""
    from coherence.compile import compile_text
    from coherence.diagnostics import CoherenceError
    from coherence.pipeline import CheckOptions, analyse_system, analyses_for

    r = compile_text(path, text)
    if not r.ok:
        raise CoherenceError(f"`{path}` with the change does not compile")
    ts = next(s for s in r.systems if s.name == system)
    return analyse_system(ts, analyses_for(CheckOptions()))


def attach(report: SystemReport, fixes: Sequence[Fix]) -> SystemReport:
    """``report`` with each fix attached to the findings of the requirement it repairs:
    ``data["fix"]`` and, as the help line, the fix's sentence."""
    by_req: dict[str, Fix] = {}
    for f in fixes:
        by_req.setdefault(f.requirement, f)
    codes: dict[str, Fix] = {}
    for v in report.verdicts:
        got = by_req.get(v.requirement)
        if got is not None and v.status == Status.FALSIFIED:
            for c in v.codes:
                codes.setdefault(c, got)
    analyses = []
    for a in report.analyses:
        found = []
        for fd in a.findings:
            fix = codes.get(fd.code)
            if fix is not None and not any(k == "fix" for k, _ in fd.data):
                fd = replace(fd, help=fix.sentence, data=(*fd.data, ("fix", fix.to_data())))
            found.append(fd)
        analyses.append(replace(a, findings=tuple(found)))
    return replace(report, analyses=tuple(analyses))
