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
COH401; one that exists only outside it is COH402 (regional); an undecided region leaves it
COH401.

Before the solver, 256 seeded random starts and input sequences are simulated in both runs
(:func:`sample_witness`): a conflict they show is a witness at once. The solver then asks one
tick at a time, each proved tick asserted for the next. Each pair spends at most three
``rlimit`` and all pairs together ``budget``, shared evenly among the coupled pairs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import z3

from coherence.ir.nodes import (
    Binary,
    Call,
    Expr,
    Ite,
    ObjectiveIR,
    Phase,
    TransitionSystem,
    Unary,
    Var,
)
from coherence.ir.transform import hold_loop
from coherence.simulate.engine import Trace, simulate
from coherence.smt.encode import (
    EXACT,
    OVERAPPROX,
    Cond,
    EncodeError,
    Encoder,
    Inputs,
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
from coherence.smt.replay import Scenario, replay, rotate_phases, scenario_from_model
from coherence.smt.solver import (
    Answer,
    Outcome,
    SolverStats,
    check,
    ctx,
    isolated,
    new_solver,
)

ALIGNED = "aligned"
CONFLICT = "conflicting"
REGIONAL = "conflicting in a region"
UNKNOWN = "unknown"
UNCOUPLED = "uncoupled"
NO_OBJECTIVE = "no objective"
GLOBAL = "(global objectives)"  # the spec's own objectives, owned by no loop
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


def objectives_of(ts: TransitionSystem, b: str) -> list[ObjectiveIR]:
    """Loop B's objectives; for ``GLOBAL``, the spec's objectives that no loop owns."""
    if b == GLOBAL:
        return [o for o in ts.objectives if o.owner is None]
    return [ts.objective(n) for n in ts.loop(b).objectives]


def reads(ts: TransitionSystem, b: str) -> set[str]:
    """What B's objectives and laws read (directly; lets are followed by ``influence``)."""
    out: set[str] = set()
    for o in objectives_of(ts, b):
        out |= names_in(o.expr)
        if o.bound is not None:
            out |= names_in(o.bound)
    if b == GLOBAL:
        return out
    lp = ts.loop(b)
    for a in lp.actions:
        out |= names_in(a.law) | {a.target}
    for sn in lp.sensors:
        out |= names_in(sn.signal)
    return out


MAX_DEPTH = 16  # the default k never exceeds this: slow loops act at a symbolic phase anyway


def default_depth(ts: TransitionSystem, a: str, b: str) -> int:
    """The longer of the two periods + 1 (at most ``MAX_DEPTH``)."""
    pb = ts.loop(b).period if b != GLOBAL else 1
    return min(max(ts.loop(a).period, pb) + 1, MAX_DEPTH)


def coupling(ts: TransitionSystem, a: str, b: str, k: int) -> tuple[str, ...]:
    """The names through which A reaches B within k ticks (empty: no query needed)."""
    reach = influence(ts, ts.loop(a).actuates, k)
    hit = reads(ts, b) & set(reach)
    return tuple(sorted(hit, key=lambda n: (reach[n], n)))


# ---- the query --------------------------------------------------------------------------------


class PairQuery:
    """Two runs from one free start: ``ts`` (A acts) and ``hold_loop(ts, A)``, unrolled one
    tick at a time; only runs whose operations are all defined are considered."""

    def __init__(
        self, ts: TransitionSystem, a: str, b: str, k: int, mode: str, stats: SolverStats
    ) -> None:
        self.ts = ts
        self.a, self.b, self.k = a, b, k
        self.stats = stats
        self.held = hold_loop(ts, a)
        enc = Encoder(ts, mode, tag=f"c{mode[0]}.")
        self.enc = enc
        self.params = param_values(enc, ts)
        ints = integer_states(ts)
        self.ranges = signal_ranges(ts, self.params)
        self.start = free_start(enc, ts, self.params, ints, ranges=self.ranges)
        h = ts.hyperperiod
        self.phase = SymbolicPhase(f"{enc.tag}phase", h) if h > 1 else None
        if self.phase is not None:
            enc.constraints += self.phase.constraints()
        self.inputs = Inputs(enc, ts, "free")
        ph: int | SymbolicPhase = self.phase if self.phase is not None else 0
        self.act = Path(enc, self.params, self.inputs, self.start, ph, ints, ts, "act.")
        self.hold = Path(enc, self.params, self.inputs, self.start, ph, ints, self.held, "hold.")
        self.objectives = objectives_of(ts, b)
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
        flag = z3.Bool(f"{self.enc.tag}goal?{self._count}", ctx())
        self.solver.add(z3.Implies(flag, z3.And(goal.term, *extra)))
        return check(self.solver, rlimit, [flag], stats=self.stats)

    def exclude(self, j: int, within: Iterable[object] = ()) -> None:
        """Record that A's run is never worse at tick ``j`` (proved; ``within`` a region)."""
        g = self.goal(j)
        self.solver.add(*self.enc.drain())
        if g.value is not False:
            region = list(within)
            self.solver.add(
                z3.Implies(z3.And(*region), z3.Not(g.term)) if region else z3.Not(g.term)
            )

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
            lo, hi = region(self.ts, self.ranges, s.name, op)
            x = self.start[s.name].term
            out.append(x >= real(q_down(lo)))
            out.append(x <= real(q_up(hi)))
        return out

    def scenario(self, model: object) -> Scenario:
        phase = self.phase.value(model) if self.phase is not None else 0
        return scenario_from_model(model, self.act, self.k + 1, phase)


def region(
    ts: TransitionSystem, ranges: dict[str, Interval], name: str, op: dict[str, float]
) -> tuple[float, float]:
    """The operating band of a state: ``BAND`` of its range (its signal's range, for a
    register) on either side of the operating point."""
    s = ts.state(name)
    iv = Interval(s.lo, s.hi)
    if name in ranges:
        iv = ranges[name].meet(iv)
    width = iv.hi - iv.lo if iv.finite else abs(op[name]) + 1.0
    return op[name] - BAND * width, op[name] + BAND * width


def confirm(ts: TransitionSystem, q: PairQuery, sc: Scenario) -> tuple[Trace, Trace, str, int]:
    """Replay both runs; the first objective of B (and tick) at which A's run is worse."""
    return replay_pair(ts, q.held, q.b, q.k, sc)


def replay_pair(
    ts: TransitionSystem, held: TransitionSystem, b: str, k: int, sc: Scenario
) -> tuple[Trace, Trace, str, int]:
    acting = replay(ts, sc)
    holding = replay(held, sc)
    for j in range(1, k + 1):
        for o in objectives_of(ts, b):
            w = trace_worse(o, acting, holding)
            if j < len(w) and w[j]:
                return acting, holding, o.name, j
    return acting, holding, "", -1


SAMPLES = 256  # random starts simulated before the solver is asked


def sample_witness(
    ts: TransitionSystem,
    a: str,
    b: str,
    k: int,
    ranges: dict[str, Interval],
    op: dict[str, float],
    seed: int,
    in_region: bool = False,
) -> Witness | None:
    """Look for a witness by simulation: random admissible starts (or starts in the operating
    region, with nominal inputs), random inputs, a few phases. Cheap, and what it finds is a
    simulator trace by construction; what it does not find, the solver still looks for."""
    held = hold_loop(ts, a)
    h = ts.hyperperiod
    lp = ts.loop(a)
    rng = np.random.default_rng([seed, zlib.crc32(f"{a}->{b}:{in_region}".encode())])
    n = SAMPLES
    init: dict[str, np.ndarray] = {}
    for s in ts.states:
        if in_region:
            lo, hi = region(ts, ranges, s.name, op)
        else:
            iv = Interval(s.lo, s.hi)
            if s.name in ranges:
                iv = ranges[s.name].meet(iv)
            lo, hi = iv.lo, iv.hi
        lo, hi = max(lo, s.lo), min(hi, s.hi)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            c = op[s.name]
            lo, hi = (
                lo if np.isfinite(lo) else c - 10 * (abs(c) + 1),
                hi if np.isfinite(hi) else c + 10 * (abs(c) + 1),
            )
        x = lo + (hi - lo) * rng.random(n)
        if s.integer:
            x = np.clip(np.round(x), np.ceil(lo), np.floor(hi))
        init[s.name] = x
    lo_u = np.array([u.lo for u in ts.inputs])
    hi_u = np.array([u.hi for u in ts.inputs])
    nom = np.array([u.nominal for u in ts.inputs])
    if in_region:
        inputs = np.broadcast_to(nom, (n, k + 1, len(ts.inputs))).copy()
    else:
        inputs = lo_u + (hi_u - lo_u) * rng.random((n, k + 1, len(ts.inputs)))
        inputs[: n // 8] = lo_u
        inputs[n // 8 : n // 4] = hi_u
    params: dict[str, np.ndarray] = {}
    for p in ts.params:
        if not p.internal and p.lo < p.hi:
            params[p.name] = p.lo + (p.hi - p.lo) * rng.random(n)
    for phase in sorted({lp.phase % h, (lp.phase - 1) % h, 0}):
        sys1 = rotate_phases(ts, phase) if phase else ts
        sys2 = rotate_phases(held, phase) if phase else held
        with np.errstate(all="ignore"):
            t1 = simulate(sys1, k + 1, inputs=inputs, params=params or None, init=init)
            t2 = simulate(sys2, k + 1, inputs=inputs, params=params or None, init=init)
        hits = np.zeros((n, k + 2), dtype=bool)
        for o in objectives_of(ts, b):
            hits[:, : t1.ticks] |= worse_all(o, t1, t2)
        hits[:, 0] = False
        rows = np.flatnonzero(hits[:, : k + 1].any(axis=1))
        if rows.size == 0:
            continue
        i = int(rows[0])
        sc = Scenario(
            inputs[i].copy(),
            {p.name: float(t1.params[p.name][i]) for p in ts.params},
            {name: float(init[name][i]) for name in init},
            phase,
        )
        acting, holding, obj, tick = replay_pair(ts, held, b, k, sc)
        if tick >= 0:
            return Witness(sc, acting, holding, obj, tick, in_region)
    return None


def worse_all(o: ObjectiveIR, t1: Trace, t2: Trace) -> np.ndarray:
    """``trace_worse`` for every scenario at once: [S, T]."""
    from coherence.simulate.engine import evaluate
    from coherence.smt.objectives import trace_slack

    with np.errstate(all="ignore"):
        if o.kind == "keep":
            a1 = np.maximum(0.0, -trace_slack(o, t1))
            a2 = np.maximum(0.0, -trace_slack(o, t2))
            return np.asarray(a1 > a2)
        v1, v2 = evaluate(o.expr, t1), evaluate(o.expr, t2)
        tol = o.tolerance * np.abs(v2) if o.relative else o.tolerance
        diff = v1 - v2 if o.kind == "minimize" else v2 - v1
        return np.asarray(diff > tol)


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


@isolated
def check_pair(
    ts: TransitionSystem,
    a: str,
    b: str,
    options: SmtOptions,
    stats: SolverStats,
    op: dict[str, float],
    total: list[int] | None = None,
    share: int | None = None,
) -> PairResult:
    """Search a witness tick by tick (1..k); ``unsat`` at every tick proves alignment.

    ``total`` is the rlimit left to the whole conflict analysis (shared, decremented).
    """
    k = options.conflict_depth or default_depth(ts, a, b)
    if not objectives_of(ts, b):
        return PairResult(a, b, NO_OBJECTIVE, k)
    via = coupling(ts, a, b, k)
    if not via:
        return PairResult(a, b, UNCOUPLED, k)
    if total is not None and total[0] <= 0:
        return PairResult(
            a,
            b,
            UNKNOWN,
            k,
            via,
            None,
            f"the conflict analysis' resource budget ({options.budget}) is spent",
        )
    modes = [OVERAPPROX, EXACT] if options.mode == "auto" else [options.mode]
    refinements = options.refinements if options.mode == OVERAPPROX else 0
    reasons: list[str] = []
    notes: list[str] = []
    proved = 0  # ticks 1..proved are proved conflict-free
    budget = [min(pair_budget(options), share) if share is not None else pair_budget(options)]
    left = total if total is not None else [budget[0]]

    def ask(
        q: PairQuery, ticks: list[int], extra: list[object] | None = None, cap: int | None = None
    ) -> Answer:
        if left[0] <= 0:
            return Answer(
                Outcome.UNKNOWN,
                f"the conflict analysis' resource budget ({options.budget}) is spent",
            )
        if budget[0] <= 0 or (cap is not None and cap <= 0):
            return Answer(Outcome.UNKNOWN, "the pair's share of the resource budget is spent")
        limit = min(options.rlimit, budget[0], left[0], cap if cap is not None else budget[0])
        ans = q.ask(ticks, limit, extra or ())
        budget[0] -= ans.rlimit_used
        left[0] -= ans.rlimit_used
        return ans

    if options.patterns:
        ranges = signal_ranges(ts, param_values(Encoder(ts, OVERAPPROX, "s."), ts))
        w = sample_witness(ts, a, b, k, ranges, op, options.seed)
        if w is not None:
            return _regional_sampled(ts, a, b, k, via, w, ranges, op, options, stats, ask)
    for m in modes:
        try:
            q = PairQuery(ts, a, b, k, m, stats)
            for j in range(1, proved + 1):
                q.exclude(j)
        except EncodeError as exc:
            return PairResult(a, b, UNKNOWN, k, via, None, f"cannot encode the system: {exc}")
        stuck = ""
        for j in range(proved + 1, k + 1):
            ans = ask(q, [j])
            refined = 0
            while ans.sat:
                sc = q.scenario(ans.model)
                acting, holding, obj, tick = confirm(ts, q, sc)
                if tick >= 0:
                    w = Witness(sc, acting, holding, obj, tick, False)
                    return _regional(ts, q, w, via, op, notes, ask, 2 * options.rlimit)
                if not q.enc.relaxed or refined >= refinements:
                    break
                if q.enc.refine(ans.model) == 0:
                    break
                refined += 1
                ans = ask(q, [j])
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


Ask = Callable[..., Answer]


def pair_budget(options: SmtOptions) -> int:
    """The rlimit one pair's queries may spend in all."""
    return 3 * options.rlimit


def _regional(
    ts: TransitionSystem,
    q: PairQuery,
    w: Witness,
    via: tuple[str, ...],
    op: dict[str, float],
    notes: list[str],
    ask: Ask,
    cap: int,
) -> PairResult:
    """A conflict exists; is there one in the operating region too? (spending at most
    ``cap`` of rlimit on the question: undecided is reported as a conflict)"""
    if _in_region(ts, q, w.scenario, op):
        return PairResult(q.a, q.b, CONFLICT, q.k, via, _flag(w, True), "", tuple(notes))
    box = q.operating_region(op)
    why = ""
    for j in range(1, q.k + 1):
        ans = ask(q, [j], box, cap)
        cap -= ans.rlimit_used
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
        q.exclude(j, box)  # proved for the region: later ticks may use it
    else:
        return PairResult(
            q.a,
            q.b,
            REGIONAL,
            q.k,
            via,
            w,
            "no conflict with nominal inputs near the operating point",
            tuple(notes),
        )
    return PairResult(
        q.a,
        q.b,
        CONFLICT,
        q.k,
        via,
        w,
        f"whether it reaches the operating region is undecided ({why})",
        tuple(notes),
    )


def _regional_sampled(
    ts: TransitionSystem,
    a: str,
    b: str,
    k: int,
    via: tuple[str, ...],
    w: Witness,
    ranges: dict[str, Interval],
    op: dict[str, float],
    options: SmtOptions,
    stats: SolverStats,
    ask: Ask,
) -> PairResult:
    """A simulated witness; the operating region is sampled, then asked of the solver."""
    w2 = sample_witness(ts, a, b, k, ranges, op, options.seed, in_region=True)
    if w2 is not None:
        return PairResult(a, b, CONFLICT, k, via, w2)
    # one mode only: an undecided region leaves the conflict an error (the conservative side)
    mode = OVERAPPROX if options.mode == "auto" else options.mode
    try:
        q = PairQuery(ts, a, b, k, mode, stats)
    except EncodeError as exc:
        why = f"whether it reaches the operating region is undecided (cannot encode: {exc})"
        return PairResult(a, b, CONFLICT, k, via, w, why)
    return _regional(ts, q, w, via, op, [], ask, 2 * options.rlimit)


def _flag(w: Witness, operating: bool) -> Witness:
    return Witness(w.scenario, w.acting, w.holding, w.objective, w.tick, operating)


def _in_region(ts: TransitionSystem, q: PairQuery, sc: Scenario, op: dict[str, float]) -> bool:
    for j, u in enumerate(ts.inputs):
        if not np.allclose(sc.inputs[:, j], u.nominal):
            return False
    for s in ts.states:
        lo, hi = region(ts, q.ranges, s.name, op)
        if not lo <= sc.init[s.name] <= hi:
            return False
    return True


def _mode(m: str) -> str:
    return "over-approximation" if m == OVERAPPROX else "exact arithmetic"


@isolated
def check_all(ts: TransitionSystem, options: SmtOptions, stats: SolverStats) -> list[PairResult]:
    """Every ordered pair of distinct loops, and every loop against the global objectives."""
    op = operating_point(ts, settle_ticks(ts, options))
    out = []
    targets = [lp.name for lp in ts.loops]
    if any(o.owner is None for o in ts.objectives):
        targets.append(GLOBAL)
    total = [options.budget]
    pairs = [(lp.name, b) for lp in ts.loops for b in targets if lp.name != b]
    coupled = [
        (a, b)
        for a, b in pairs
        if objectives_of(ts, b)
        and coupling(ts, a, b, options.conflict_depth or default_depth(ts, a, b))
    ]
    left = len(coupled)
    for a, b in pairs:
        share = None
        if (a, b) in coupled:
            share = max(total[0] // max(left, 1), options.rlimit // 4)
            left -= 1
        out.append(check_pair(ts, a, b, options, stats, op, total, share))
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
