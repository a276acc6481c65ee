"""Conflict witnesses: does loop A's action make loop B's objective worse?

For each ordered pair of loops (A, B) where A's actuators reach B's objectives or B's laws
within ``k`` ticks (through lets and state updates), one query asks for an admissible start
and input sequence under which the run where A acts is worse for one of B's objectives than
the counterfactual run where A holds (:func:`coherence.ir.transform.hold_loop`), by more than
B's tolerance, at some tick ``1..k``. Both runs start from the same state, at the same phase
of the hyperperiod (symbolic: any phase), see the same inputs (free within their ranges per
tick) and the same parameters (uncertain ones free in their ranges).

The start is any state within the declared bounds; registers (delays, windows) are free
within the range of their signal over the declared bounds, not tied to a consistent history:
a witness may start from a register content no run reaches, and is replayed from exactly that
state. ``unsat`` is a proof of alignment over the declared ranges (for runs whose operations
are all defined). A confirmed witness is then looked for again in the *operating region*:
inputs at their nominal values and every state within 5% of its range around the operating
point (the nominal run from the initial state after ``settle`` ticks). A conflict there is
COH401; one that exists only outside it is COH402 (regional).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import z3

from coherence.ir.nodes import Binary, Call, Expr, Ite, LoopIR, Phase, TransitionSystem, Unary, Var
from coherence.ir.transform import hold_loop
from coherence.simulate.engine import Trace, simulate
from coherence.smt.encode import (
    EXACT,
    OVERAPPROX,
    Cond,
    EncodeError,
    Encoder,
    Inputs,
    Num,
    Path,
    SymbolicPhase,
    free_start,
    integer_states,
    param_values,
    q_down,
    q_up,
    rational,
    real,
    signal_ranges,
)
from coherence.smt.intervals import Interval
from coherence.smt.objectives import trace_worse, worse
from coherence.smt.options import SmtOptions
from coherence.smt.replay import Scenario, replay, scenario_from_model
from coherence.smt.solver import Answer, Outcome, SolverStats, check, new_solver

ALIGNED = "aligned"
CONFLICT = "conflicting"
REGIONAL = "conflicting in a region"
UNKNOWN = "unknown"
UNCOUPLED = "uncoupled"
NO_OBJECTIVE = "no objective"
BAND = 0.05  # the operating region: 5% of each state's range around the operating point


@dataclass(frozen=True, slots=True)
class Witness:
    """A replayed conflict: both runs, the objective and the tick at which A's run is worse."""

    scenario: Scenario
    acting: Trace
    holding: Trace
    objective: str
    tick: int
    operating: bool  # found with nominal inputs near the operating point


@dataclass(frozen=True, slots=True)
class PairResult:
    actor: str
    affected: str
    verdict: str
    depth: int
    via: tuple[str, ...] = ()
    witness: Witness | None = None
    reason: str = ""
    notes: tuple[str, ...] = field(default=())


# ---- which pairs need a query ----------------------------------------------------------------


def names_in(e: Expr) -> set[str]:
    match e:
        case Var(name):
            return {name}
        case Unary(_, a):
            return names_in(a)
        case Binary(_, a, b):
            return names_in(a) | names_in(b)
        case Call(_, args):
            out: set[str] = set()
            for a in args:
                out |= names_in(a)
            return out
        case Ite(c, a, b):
            return names_in(c) | names_in(a) | names_in(b)
        case Phase():
            return set()
    return set()


def influence(ts: TransitionSystem, sources: Iterable[str], k: int) -> dict[str, int]:
    """The names (states and lets) that a change of ``sources`` reaches, with the first tick
    (0 = the tick of the change) at which each is reached, within ``k`` ticks."""
    let_deps = {d.name: names_in(d.expr) for d in ts.lets}
    upd_deps = {s.name: names_in(s.update) for s in ts.states}
    reached: dict[str, int] = {}
    frontier = set(sources)
    for t in range(k + 1):
        for n in frontier:
            reached.setdefault(n, t)
        changed = True
        while changed:  # lets of the same tick
            changed = False
            for d in ts.lets:
                if d.name not in reached and let_deps[d.name] & set(reached):
                    reached[d.name] = t
                    changed = True
        frontier = {s for s, deps in upd_deps.items() if s not in reached and deps & set(reached)}
    return reached


def reads(ts: TransitionSystem, lp: LoopIR) -> set[str]:
    """What loop B's objectives and laws read (directly; lets are followed by ``influence``)."""
    out: set[str] = set()
    for name in lp.objectives:
        o = ts.objective(name)
        out |= names_in(o.expr)
        if o.bound is not None:
            out |= names_in(o.bound)
    for a in lp.actions:
        out |= names_in(a.law) | {a.target}
    for sn in lp.sensors:
        out |= names_in(sn.signal)
    return out


def default_depth(ts: TransitionSystem, a: str, b: str) -> int:
    return max(ts.loop(a).period, ts.loop(b).period) + 1


def coupling(ts: TransitionSystem, a: str, b: str, k: int) -> tuple[str, ...]:
    """The names through which A reaches B within k ticks (empty: no query needed)."""
    lp_a, lp_b = ts.loop(a), ts.loop(b)
    reach = influence(ts, lp_a.actuates, k)
    hit = reads(ts, lp_b) & set(reach)
    return tuple(sorted(hit, key=lambda n: (reach[n], n)))


# ---- the query --------------------------------------------------------------------------------


class PairQuery:
    """Two runs from one free start: ``ts`` (A acts) and ``hold_loop(ts, A)``, unrolled one
    tick at a time; only runs whose operations are all defined are considered."""

    def __init__(self, ts: TransitionSystem, a: str, b: str, k: int, mode: str,
                 stats: SolverStats) -> None:
        self.ts = ts
        self.a, self.b, self.k = a, b, k
        self.stats = stats
        self.held = hold_loop(ts, a)
        enc = Encoder(ts, mode, tag=f"c{mode[0]}.")
        self.enc = enc
        self.params = param_values(enc, ts)
        ints = integer_states(ts)
        self.start = free_start(enc, ts, self.params, ints)
        h = ts.hyperperiod
        self.phase = SymbolicPhase(f"{enc.tag}phase", h) if h > 1 else None
        if self.phase is not None:
            enc.constraints += self.phase.constraints()
        self.inputs = Inputs(enc, ts, "free")
        ph: int | SymbolicPhase = self.phase if self.phase is not None else 0
        self.act = Path(enc, self.params, self.inputs, self.start, ph, ints, ts, "act.")
        self.hold = Path(enc, self.params, self.inputs, self.start, ph, ints, self.held, "hold.")
        self.objectives = [ts.objective(n) for n in ts.loop(b).objectives]
        self.solver = new_solver()
        self._goals: dict[int, Cond] = {}
        self._defined = 0
        self._count = 0

    def goal(self, j: int) -> Cond:
        """A's run is worse than the counterfactual at tick ``j``."""
        if j not in self._goals:
            f1, f2 = self.act.lets(j), self.hold.lets(j)
            parts = [worse(self.enc, o, f1, f2, Fraction(0)) for o in self.objectives]
            self._goals[j] = self.enc.or_(parts)
            while self._defined <= j:
                t = self._defined
                undef = self.enc.or_([self.act.undefined([t]), self.hold.undefined([t])])
                if undef.value is not False:
                    self.solver.add(z3.Not(undef.term))
                self._defined += 1
        return self._goals[j]

    def ask(self, ticks: Iterable[int], rlimit: int, extra: Iterable[object] = ()) -> Answer:
        """A model in which A's run is worse at one of ``ticks`` (and ``extra`` holds)."""
        goal = self.enc.or_([self.goal(j) for j in ticks])
        self.solver.add(*self.enc.drain())
        if goal.value is False:
            return Answer(Outcome.UNSAT, "decided by bounds")
        self._count += 1
        flag = z3.Bool(f"{self.enc.tag}goal?{self._count}")
        self.solver.add(z3.Implies(flag, z3.And(goal.term, *extra)))
        return check(self.solver, rlimit, [flag], stats=self.stats)

    def exclude(self, j: int) -> None:
        """Record that A's run is never worse at tick ``j`` (proved)."""
        g = self.goal(j)
        self.solver.add(*self.enc.drain())
        if g.value is not False:
            self.solver.add(z3.Not(g.term))

    def operating_region(self, op: dict[str, float]) -> list[object]:
        """Constraints: nominal inputs, every state within its operating band around ``op``."""
        out: list[object] = []
        for t in range(self.k + 1):
            at = self.inputs.at(t)
            for u in self.ts.inputs:
                v = at[u.name]
                if v.const is None:
                    out.append(v.term == real(rational(u.nominal)))
        for s in self.ts.states:
            lo, hi = region(self.ts, self.params, s.name, op)
            x = self.start[s.name].term
            out.append(x >= real(q_down(lo)))
            out.append(x <= real(q_up(hi)))
        return out

    def scenario(self, model: object) -> Scenario:
        phase = self.phase.value(model) if self.phase is not None else 0
        return scenario_from_model(model, self.act, self.k + 1, phase)


def region(
    ts: TransitionSystem, params: dict[str, Num], name: str, op: dict[str, float]
) -> tuple[float, float]:
    """The operating band of a state: ``BAND`` of its range (its signal's range, for a
    register) on either side of the operating point."""
    s = ts.state(name)
    iv = Interval(s.lo, s.hi)
    regs = signal_ranges(ts, params)
    if name in regs:
        iv = regs[name].meet(iv)
    width = iv.hi - iv.lo if iv.finite else abs(op[name]) + 1.0
    return op[name] - BAND * width, op[name] + BAND * width


def confirm(ts: TransitionSystem, q: PairQuery, sc: Scenario) -> tuple[Trace, Trace, str, int]:
    """Replay both runs; the first objective of B (and tick) at which A's run is worse."""
    acting = replay(ts, sc)
    holding = replay(q.held, sc)
    for j in range(1, q.k + 1):
        for name in ts.loop(q.b).objectives:
            w = trace_worse(ts.objective(name), acting, holding)
            if j < len(w) and w[j]:
                return acting, holding, name, j
    return acting, holding, "", -1


def operating_point(ts: TransitionSystem, settle: int) -> dict[str, float]:
    """The state after ``settle`` ticks at nominal input from the initial state."""
    with np.errstate(all="ignore"):
        tr = simulate(ts, settle)
    return {n: float(tr.states[0, -1, i]) for i, n in enumerate(ts.state_names)}


def settle_ticks(ts: TransitionSystem, options: SmtOptions) -> int:
    if options.settle is not None:
        return options.settle
    h = ts.hyperperiod
    return max(20 * h, 300) // h * h  # a whole number of hyperperiods: phase 0 again


# ---- one pair ---------------------------------------------------------------------------------


def check_pair(
    ts: TransitionSystem,
    a: str,
    b: str,
    options: SmtOptions,
    stats: SolverStats,
    op: dict[str, float],
) -> PairResult:
    """Search a witness tick by tick (1..k); ``unsat`` at every tick proves alignment."""
    k = options.conflict_depth or default_depth(ts, a, b)
    if not ts.loop(b).objectives:
        return PairResult(a, b, NO_OBJECTIVE, k)
    via = coupling(ts, a, b, k)
    if not via:
        return PairResult(a, b, UNCOUPLED, k)
    modes = [OVERAPPROX, EXACT] if options.mode == "auto" else [options.mode]
    reasons: list[str] = []
    notes: list[str] = []
    proved = 0  # ticks 1..proved are proved conflict-free
    for m in modes:
        try:
            q = PairQuery(ts, a, b, k, m, stats)
            for j in range(1, proved + 1):
                q.exclude(j)
        except EncodeError as exc:
            return PairResult(a, b, UNKNOWN, k, via, None, f"cannot encode the system: {exc}")
        stuck = ""
        for j in range(proved + 1, k + 1):
            ans = q.ask([j], options.rlimit)
            refined = 0
            while ans.sat:
                sc = q.scenario(ans.model)
                acting, holding, obj, tick = confirm(ts, q, sc)
                if tick >= 0:
                    w = Witness(sc, acting, holding, obj, tick, False)
                    return _regional(ts, q, w, via, options, op, notes)
                if not q.enc.relaxed or refined >= options.refinements:
                    break
                if q.enc.refine(ans.model) == 0:
                    break
                refined += 1
                ans = q.ask([j], options.rlimit)
            if ans.unsat:
                q.exclude(j)
                proved = j
                continue
            stuck = ans.reason if ans.unknown else "candidate witnesses did not replay"
            if ans.sat:
                notes.append(f"{_mode(m)}: a candidate witness at tick {j} did not replay")
            break
        if proved == k:
            return PairResult(a, b, ALIGNED, k, via, None, "", tuple(notes))
        reasons.append(f"{_mode(m)}, tick {proved + 1}: {stuck}")
    return PairResult(a, b, UNKNOWN, k, via, None, "; ".join(reasons), tuple(notes))


def _regional(
    ts: TransitionSystem,
    q: PairQuery,
    w: Witness,
    via: tuple[str, ...],
    options: SmtOptions,
    op: dict[str, float],
    notes: list[str],
) -> PairResult:
    """A conflict exists; is there one in the operating region too?"""
    if _in_region(ts, q, w.scenario, op):
        return PairResult(q.a, q.b, CONFLICT, q.k, via, _flag(w, True), "", tuple(notes))
    box = q.operating_region(op)
    why = ""
    for j in range(1, q.k + 1):
        ans = q.ask([j], options.rlimit, box)
        if ans.sat:
            sc = q.scenario(ans.model)
            acting, holding, obj, tick = confirm(ts, q, sc)
            if tick >= 0:
                w2 = Witness(sc, acting, holding, obj, tick, True)
                return PairResult(q.a, q.b, CONFLICT, q.k, via, w2, "", tuple(notes))
            why = "a candidate in the operating region did not replay"
            break
        if ans.unknown:
            why = ans.reason
            break
    else:
        return PairResult(q.a, q.b, REGIONAL, q.k, via, w,
                          "no conflict with nominal inputs near the operating point",
                          tuple(notes))
    return PairResult(q.a, q.b, CONFLICT, q.k, via, w,
                      f"whether it reaches the operating region is undecided ({why})",
                      tuple(notes))


def _flag(w: Witness, operating: bool) -> Witness:
    return Witness(w.scenario, w.acting, w.holding, w.objective, w.tick, operating)


def _in_region(ts: TransitionSystem, q: PairQuery, sc: Scenario, op: dict[str, float]) -> bool:
    for j, u in enumerate(ts.inputs):
        if not np.allclose(sc.inputs[:, j], u.nominal):
            return False
    for s in ts.states:
        lo, hi = region(ts, q.params, s.name, op)
        if not lo <= sc.init[s.name] <= hi:
            return False
    return True


def _mode(m: str) -> str:
    return "over-approximation" if m == OVERAPPROX else "exact arithmetic"


def check_all(
    ts: TransitionSystem, options: SmtOptions, stats: SolverStats
) -> list[PairResult]:
    """Every ordered pair of distinct loops."""
    op = operating_point(ts, settle_ticks(ts, options))
    out = []
    for lp_a in ts.loops:
        for lp_b in ts.loops:
            if lp_a.name != lp_b.name:
                out.append(check_pair(ts, lp_a.name, lp_b.name, options, stats, op))
    return out


def influence_cycles(ts: TransitionSystem) -> list[tuple[str, ...]]:
    """Elementary cycles of the loop influence graph (A -> B when A reaches B's laws or
    objectives), each listed once from its smallest name."""
    edges: dict[str, set[str]] = {lp.name: set() for lp in ts.loops}
    for lp_a in ts.loops:
        reach = influence(ts, lp_a.actuates, max(lp.period for lp in ts.loops) * 2 + 1)
        for lp_b in ts.loops:
            if lp_b.name == lp_a.name:
                continue
            laws: set[str] = set()
            for act in lp_b.actions:
                laws |= names_in(act.law) | {act.target}
            for sn in lp_b.sensors:
                laws |= names_in(sn.signal)
            if laws & set(reach):
                edges[lp_a.name].add(lp_b.name)
    cycles: list[tuple[str, ...]] = []
    names = sorted(edges)

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt == start and len(path) > 1:
                cycles.append(tuple(path))
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for s in names:
        walk(s, s, [s])
    return cycles
