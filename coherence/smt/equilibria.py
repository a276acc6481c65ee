"""Bad equilibria (metastability): self-sustaining states that violate a keep-objective.

A *bad equilibrium* is a state ``x`` that the system returns to after one hyperperiod at
nominal input (every state, registers and counters included: ``F^H(x) = x``, starting at
phase 0 of the hyperperiod, through which every periodic orbit passes) and at which some
keep-objective is violated at some tick of that hyperperiod. Parameters take their declared
values. The solver looks for one within the declared bounds (registers within their signal's
range); ``unsat`` proves there is none. A candidate counts only when the simulator, started
there with nominal input, *stays* bad: the objective is still violated in each of the last
five hyperperiods of a long run (an unstable fixed point that float rounding leaves is not a
self-sustaining failure; it is excluded and the search goes on).

For a confirmed bad equilibrium the *trigger* is searched in simulation: from the good
operating point (the nominal run from the initial state, settled), a burst of one input to
a fraction of the way to its range's end, for a number of ticks, then nominal input again;
the grid (10 levels in each direction, 1..144 ticks) is simulated at once and the smallest
burst (level x duration) after which the system stays bad is the trigger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import z3

from coherence.ir.nodes import ObjectiveIR, TransitionSystem
from coherence.results import Status
from coherence.simulate.engine import Trace, simulate
from coherence.smt.encode import (
    EXACT,
    OVERAPPROX,
    EncodeError,
    Encoder,
    Inputs,
    Num,
    Path,
    free_start,
    integer_states,
    param_values,
    q_down,
    real,
)
from coherence.smt.objectives import trace_violated, violated
from coherence.smt.options import SmtOptions
from coherence.smt.replay import Scenario, scenario_from_model
from coherence.smt.solver import SolverStats, check, isolated, new_solver

DURATIONS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)
LEVELS = tuple(k / 10 for k in range(1, 11))
ATTEMPTS = 4  # candidates tried before giving up


@dataclass(frozen=True, slots=True)
class Trigger:
    """The smallest burst found: ``input`` at ``level`` for ``ticks`` ticks, from ``good``."""

    input: str
    level: float
    ticks: int
    trace: Trace  # from the good operating point: the burst, then nominal input
    violation_tick: int  # first tick after the burst at which the objective is violated


@dataclass(frozen=True, slots=True)
class EquilibriumResult:
    status: Status
    reason: str = ""
    objective: str = ""
    state: dict[str, float] | None = None  # the bad equilibrium
    orbit: Trace | None = None  # the nominal run from it
    trigger: Trigger | None = None
    good: dict[str, float] | None = None
    notes: tuple[str, ...] = ()


def keep_objectives(ts: TransitionSystem) -> list[ObjectiveIR]:
    return [o for o in ts.objectives if o.kind == "keep" and o.bound is not None]


def stay_ticks(ts: TransitionSystem) -> int:
    h = ts.hyperperiod
    return max(50 * h, 300) // h * h


def stays_bad(ts: TransitionSystem, obj: ObjectiveIR, trace: Trace) -> np.ndarray:
    """Per scenario: the objective is violated in each of the last 5 hyperperiods."""
    h = ts.hyperperiod
    bad = trace_violated(obj, trace)
    n = trace.ticks
    ok = np.ones(bad.shape[0], dtype=bool)
    for p in range(1, 6):
        lo, hi = n - p * h, n - (p - 1) * h
        if lo < 0:
            break
        ok &= bad[:, lo:hi].any(axis=1)
    return ok


def nominal_run(ts: TransitionSystem, init: dict[str, float], ticks: int) -> Trace:
    with np.errstate(all="ignore"):
        return simulate(ts, ticks, init=init)


@isolated
def find(ts: TransitionSystem, options: SmtOptions, stats: SolverStats) -> EquilibriumResult:
    """Search, confirm and explain a bad equilibrium (or prove there is none)."""
    keeps = keep_objectives(ts)
    if not keeps:
        return EquilibriumResult(Status.PROVED, "the system has no keep-objective to violate")
    modes = [OVERAPPROX, EXACT] if options.mode == "auto" else [options.mode]
    reasons: list[str] = []
    notes: list[str] = []
    unstable = 0
    for m in modes:
        try:
            q = FixedPointQuery(ts, keeps, m, stats)
        except EncodeError as exc:
            return EquilibriumResult(Status.UNKNOWN, f"cannot encode the system: {exc}")
        if m == EXACT and OVERAPPROX in modes and not (q.enc.nonlinear or q.enc.relaxed):
            continue
        refined = 0
        while True:
            ans = check(q.solver, options.rlimit, stats=stats)
            if ans.unsat:
                if unstable:
                    return EquilibriumResult(
                        Status.HOLDS,
                        f"{unstable} fixed point(s) violating an objective exist but do not "
                        "sustain themselves in simulation",
                        notes=tuple(notes),
                    )
                return EquilibriumResult(
                    Status.PROVED,
                    "no fixed point at nominal input violates a keep-objective",
                    notes=tuple(notes),
                )
            if ans.unknown:
                reasons.append(f"{_mode(m)}: {ans.reason}")
                break
            sc = scenario_from_model(ans.model, q.path, ts.hyperperiod)
            obj, orbit = confirm(ts, keeps, sc.init)
            if obj is not None:
                res = EquilibriumResult(
                    Status.FALSIFIED, "", obj.name, dict(sc.init), orbit, notes=tuple(notes)
                )
                return explain(ts, obj, res, options)
            if q.enc.relaxed and refined < options.refinements and q.enc.refine(ans.model):
                refined += 1
                q.solver.add(*q.enc.drain())
                continue
            if not q.enc.relaxed:
                unstable += 1
                notes.append(
                    "a fixed point violating an objective was found but the simulation "
                    "leaves it: " + _describe(ts, sc.init)
                )
                if unstable >= ATTEMPTS:
                    reasons.append(
                        f"{_mode(m)}: {unstable} unstable bad fixed points; the search stopped"
                    )
                    break
                q.block(sc.init)
                continue
            reasons.append(f"{_mode(m)}: candidates did not replay")
            break
    return EquilibriumResult(Status.UNKNOWN, "; ".join(reasons), notes=tuple(notes))


class FixedPointQuery:
    """A free start at phase 0, one hyperperiod at nominal input, back to the start."""

    def __init__(
        self, ts: TransitionSystem, keeps: list[ObjectiveIR], mode: str, stats: SolverStats
    ) -> None:
        self.ts = ts
        enc = Encoder(ts, mode, tag=f"e{mode[0]}.")
        self.enc = enc
        params = param_values(enc, ts, free=False)
        ints = integer_states(ts)
        start = free_start(enc, ts, params, ints)
        self.start = start
        inputs = Inputs(enc, ts, "nominal")
        self.path = Path(enc, params, inputs, start, 0, ints)
        h = ts.hyperperiod
        while self.path.depth < h:
            self.path.extend()
        end = self.path.state_terms(h)
        self.solver = new_solver()
        bad = []
        for j in range(h):
            frame = self.path.lets(j)
            for o in keeps:
                bad.append(violated(enc, o, frame, Fraction(0)))
        undefined = self.path.undefined(range(h + 1))
        cons = [start[s.name].term == end[s.name].term for s in ts.states]
        self.solver.add(*enc.drain())
        self.solver.add(*cons)
        if undefined.value is not False:
            self.solver.add(z3.Not(undefined.term))
        goal = enc.or_(bad)
        self.solver.add(goal.term)
        self.solver.add(*enc.drain())

    def block(self, point: Mapping[str, float]) -> None:
        """Exclude a neighbourhood of ``point`` (1% of each declared state's range)."""
        parts = []
        for s in self.ts.states:
            if s.kind not in ("plant", "actuator") or not (
                math.isfinite(s.lo) and math.isfinite(s.hi)
            ):
                continue
            d = max(0.01 * (s.hi - s.lo), 1e-9)
            x: Num = self.start[s.name]
            parts.append(x.term >= real(q_down(point[s.name] + d)))
            parts.append(x.term <= real(q_down(point[s.name] - d)))
        if parts:
            self.solver.add(z3.Or(*parts))


def confirm(
    ts: TransitionSystem, keeps: list[ObjectiveIR], init: Mapping[str, float]
) -> tuple[ObjectiveIR | None, Trace]:
    """The objective that stays violated in a long nominal run from ``init``, if any."""
    orbit = nominal_run(ts, dict(init), stay_ticks(ts))
    for o in keeps:
        if bool(stays_bad(ts, o, orbit)[0]):
            return o, orbit
    return None, orbit


def explain(
    ts: TransitionSystem, obj: ObjectiveIR, res: EquilibriumResult, options: SmtOptions
) -> EquilibriumResult:
    """Add the good operating point and the smallest trigger from it."""
    from coherence.smt.conflicts import operating_point, settle_ticks

    good = operating_point(ts, settle_ticks(ts, options))
    trig = trigger(ts, obj, good)
    return EquilibriumResult(
        res.status, res.reason, res.objective, res.state, res.orbit, trig, good, res.notes
    )


def trigger(ts: TransitionSystem, obj: ObjectiveIR, good: dict[str, float]) -> Trigger | None:
    """The smallest burst that carries the system from ``good`` into a lasting violation."""
    cands: list[tuple[float, int, int, float]] = []  # (size, ticks, input, level)
    for j, u in enumerate(ts.inputs):
        for end in (u.hi, u.lo):
            span = end - u.nominal
            if span == 0:
                continue
            for f in LEVELS:
                for dur in DURATIONS:
                    cands.append((f * dur, dur, j, u.nominal + f * span))
    if not cands:
        return None
    rest = stay_ticks(ts)
    longest = max(c[1] for c in cands)
    n = longest + rest
    nominal = np.array([u.nominal for u in ts.inputs], dtype=float)
    inputs = np.broadcast_to(nominal, (len(cands), n, len(ts.inputs))).copy()
    for i, (_, dur, j, level) in enumerate(cands):
        inputs[i, :dur, j] = level
    init = {k: float(v) for k, v in good.items()}
    with np.errstate(all="ignore"):
        trace = simulate(ts, n, inputs=inputs, init=init)
    ok = stays_bad(ts, obj, trace)
    if not ok.any():
        return None
    best = min(np.flatnonzero(ok), key=lambda i: (cands[i][0], cands[i][1], i))
    _, dur, j, level = cands[int(best)]
    sc = Scenario(inputs[int(best)], {}, init)
    with np.errstate(all="ignore"):
        one = simulate(ts, n, inputs=sc.inputs[None], init=init)
    bad = trace_violated(obj, one)[0]
    after = np.flatnonzero(bad[dur:])
    tick = int(after[0]) + dur if after.size else dur
    return Trigger(ts.inputs[j].name, float(level), int(dur), one, tick)


def _describe(ts: TransitionSystem, init: Mapping[str, float]) -> str:
    parts = []
    for s in ts.states:
        if s.kind in ("plant", "actuator"):
            v = init[s.name] / (s.scale or 1.0)
            parts.append(f"{s.name}={v:.4g}")
    return ", ".join(parts)


def _mode(m: str) -> str:
    return "over-approximation" if m == OVERAPPROX else "exact arithmetic"
