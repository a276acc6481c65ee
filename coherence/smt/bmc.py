"""Bounded model checking and k-induction of ``always``, ``response`` and ``flapping``.

The violation of a requirement at depth ``d`` is encoded with exactly the trace semantics of
:mod:`coherence.simulate.requirements`:

- ``always φ``: ``not φ`` at tick ``d`` (``0 <= d < H``);
- ``after τ then φ within N``: ``τ`` at ``d - N`` and ``not φ`` at every tick ``d-N .. d``
  (``N <= d < H``), the tick the simulator reports being the deadline ``d``;
- ``no flapping of x max r within W``: with ``δ(t) = x(t+1) - x(t)``, its sign (``> 1e-12``,
  ``< -1e-12``, else 0) and the sign of the last non-zero ``δ`` before ``t``, a reversal at
  ``t`` when both are non-zero and differ; violated at ``d`` when the ticks
  ``max(0, d-W+1) .. d`` hold more than ``r`` reversals.

Before any solver, :func:`falsify_by_patterns` simulates structured input sequences
(corners, steps, bursts, square waves, seeded random ones): deep violations that would take
the solver a hundred ticks of nonlinear arithmetic are often found there, and what it finds
is a simulator trace like any other. BMC then unrolls from the initial state one tick at a
time and asks, per depth, for a violation there; a depth proved safe is asserted, so deeper
queries build on it. Every model is replayed in the simulator; one that does not reproduce
is never a finding. In ``auto`` mode a depth goes to the linear over-approximation first (its
``unsat`` is a proof) and to exact arithmetic when that gives a candidate that does not
replay or gives up; the mode that decided goes first at the next depth. A float-boundary
model of the exact encoding is retried with a robustness margin.

k-induction proves an ``always`` requirement for all time: the step runs from any state
within the declared bounds (registers within their signal's range, integer states integral),
any phase of the hyperperiod (one boolean per start phase) and with the simple-path
constraint between states of the same phase; the base case is BMC to depth ``k - 1``.

``no flapping`` (and ``always`` of actuators alone) is first tried on the localization
abstraction (:func:`localize`, :func:`prove_localized`): the control laws' values free, the
shaping exact, k-induction with the window in the path; its ``unsat`` is a proof for the
system, its models are never replayed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np
import z3

from coherence.ir.nodes import (
    Binary,
    Const,
    Expr,
    Phase,
    Requirement,
    TransitionSystem,
    Unary,
    names_in,
    walk,
)
from coherence.results import Status
from coherence.simulate.engine import Trace, evaluate, simulate
from coherence.simulate.requirements import check_requirement
from coherence.smt import reach
from coherence.smt.encode import (
    EXACT,
    OVERAPPROX,
    Cond,
    EncodeError,
    Encoder,
    Frame,
    Inputs,
    Num,
    Path,
    SymbolicPhase,
    const,
    false,
    free_start,
    integer_states,
    param_values,
    signal_ranges,
    true,
)
from coherence.smt.intervals import Interval
from coherence.smt.invariants import Invariants, houdini, mine
from coherence.smt.invariants import encode as encode_invariant
from coherence.smt.options import SmtOptions
from coherence.smt.reach import check_reach, enclosure_box
from coherence.smt.replay import Scenario, replay, scenario_from_model
from coherence.smt.solver import (
    Answer,
    Outcome,
    SolverStats,
    assert_all,
    check,
    ctx,
    isolated,
    new_solver,
    own_context,
)

FLAP_EPS = Fraction(1, 10**12)  # the simulator's reversal threshold (requirements.reversals)


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A violation the simulator reproduced."""

    trace: Trace
    tick: int  # first failing tick, as coherence.simulate.requirements reports it
    source: str  # who proposed it: "solver (exact)", "solver (over-approximation)", "patterns"
    scenario: Scenario


@dataclass(frozen=True, slots=True)
class Result:
    """The status of one bounded requirement."""

    status: Status
    depth: int  # ticks established without a violation (from the initial state)
    reason: str = ""
    cex: Counterexample | None = None
    notes: tuple[str, ...] = ()
    spurious: int = 0  # candidates from a relaxed encoding that did not replay
    induction_k: int | None = None
    # what the falsification tried without a violation ("not violated in 67 input scenarios
    # over 240 ticks"), said with an unknown verdict: evidence, never a pass
    evidence: str = ""


def horizon_of(req: Requirement, options: SmtOptions) -> int:
    h = max(1, req.horizon)
    return min(h, options.horizon) if options.horizon else h


# ---- one unrolling from the initial state ---------------------------------------------------


class Run:
    """An unrolling of the system from its initial state in one mode, with its own solver.

    With ``local`` the run is of the localization abstraction (:func:`localize`): only the
    cone of influence of the requirement, the abstracted control laws free; its models are
    never replayed (they prove nothing), its ``unsat`` answers hold for the system.
    """

    def __init__(
        self,
        ts: TransitionSystem,
        req: Requirement,
        mode: str,
        stats: SolverStats,
        local: Localization | None = None,
    ):
        self.ts = ts
        self.req = req
        self.mode = mode
        self.stats = stats
        laws = local.laws if local is not None else None
        self.enc = Encoder(ts, mode, tag=f"{mode[0]}{'l' if local else ''}.", laws=laws)
        self.params = param_values(self.enc, ts)
        self.inputs = Inputs(self.enc, ts, "held" if req.inputs == "held" else "free")
        system = local.system if local is not None else None
        self.path = Path(self.enc, self.params, self.inputs, system=system)
        self.solver = new_solver()
        self.flap = Flapping(self.enc, self.path, req) if req.kind == "flapping" else None
        self._bad: dict[tuple[int, Fraction], Cond] = {}
        self._count = 0

    def violation(self, d: int, margin: Fraction) -> Cond:
        req, path, enc = self.req, self.path, self.enc
        if req.kind == "always":
            assert req.cond is not None
            return path.holds(req.cond, d, margin, positive=False)
        if req.kind == "response":
            assert req.cond is not None and req.trigger is not None
            n = req.within
            if d < n:
                return false()
            parts = [path.holds(req.trigger, d - n, margin, positive=True)]
            parts += [path.holds(req.cond, j, margin, positive=False) for j in range(d - n, d + 1)]
            return enc.and_(parts)
        assert self.flap is not None
        return self.flap.violation(d)

    def bad(self, d: int, margin: Fraction) -> Cond:
        """A violation at depth ``d``, or an undefined operation on the way there."""
        key = (d, margin)
        if key not in self._bad:
            parts = [self.violation(d, margin), self.path.undefined(range(self.path.depth + 1))]
            self._bad[key] = self.enc.or_(parts)
        return self._bad[key]

    def query(self, d: int, margin: Fraction, rlimit: int) -> Answer:
        """Is there a run with a violation at depth ``d``?"""
        bad = self.bad(d, margin)
        assert_all(self.solver, self.enc.drain())
        if bad.value is False:
            return Answer(Outcome.UNSAT, "decided by bounds")
        self._count += 1
        flag = z3.Bool(f"{self.enc.tag}bad?{self._count}", ctx())
        self.solver.add(z3.Implies(flag, bad.term))
        return check(self.solver, rlimit, [flag], stats=self.stats)

    def safe(self, d: int) -> None:
        """Record that no run violates at depth ``d`` (proved): later depths may use it."""
        bad = self.bad(d, Fraction(0))
        assert_all(self.solver, self.enc.drain())
        if bad.value is not False:
            self.solver.add(z3.Not(bad.term))

    def scenario(self, model: Any, ticks: int) -> Scenario:
        return scenario_from_model(model, self.path, ticks)

    def undefined_in(self, model: Any) -> bool:
        terms = [u for f in self.path.frames for u in f.undefined]
        return any(z3.is_true(model.eval(u, model_completion=True)) for u in terms)


class Flapping:
    """The reversal counter of ``no flapping`` over an unrolled path, in propositional form.

    ``up(t)``/``down(t)``: ``δ(t) > 1e-12`` / ``δ(t) < -1e-12``; ``last_up``/``last_down``: the
    sign of the last non-zero ``δ`` before ``t``; a reversal is ``up and last_down`` or
    ``down and last_up``; "more than r in a window" is a cardinality constraint.

    From the initial state there is no direction before tick 0. With ``free_last`` (a run
    that starts at any state: the induction step) the direction before tick 0 is free (up,
    down or none); reversals before tick 0 are not counted (a window that reaches back
    before the start counts only its ticks in the path).
    """

    def __init__(self, enc: Encoder, path: Path, req: Requirement, free_last: bool = False) -> None:
        assert req.state is not None
        self.enc = enc
        self.path = path
        self.req = req
        self.last: list[tuple[Cond, Cond]] = [(false(), false())]
        if free_last:
            lu = z3.Bool(f"{enc.tag}lastup@0", ctx())
            ld = z3.Bool(f"{enc.tag}lastdown@0", ctx())
            enc.constraints.append(z3.Not(z3.And(lu, ld)))
            self.last = [(Cond(lu), Cond(ld))]
        self.revs: list[Cond] = []

    def _moves(self, t: int) -> tuple[Cond, Cond]:
        assert self.req.state is not None
        while self.path.depth < t + 1:
            self.path.extend()
        x0 = self.path.value(t, self.req.state)
        x1 = self.path.value(t + 1, self.req.state)
        assert isinstance(x0, Num) and isinstance(x1, Num)
        d = self.enc.sub(x1, x0)
        eps = const(FLAP_EPS)
        return self.enc.compare(">", d, eps), self.enc.compare("<", d, self.enc.neg(eps))

    def _latch(self, c: Cond, name: str) -> Cond:
        if c.value is not None:
            return c
        v = z3.Bool(f"{self.enc.tag}{name}", ctx())
        self.enc.constraints.append(v == c.term)
        return Cond(v)

    def rev(self, t: int) -> Cond:
        enc = self.enc
        while len(self.revs) <= t:
            k = len(self.revs)
            up, down = self._moves(k)
            lu, ld = self.last[k]
            r = enc.or_([enc.and_([up, ld]), enc.and_([down, lu])])
            self.revs.append(self._latch(r, f"rev@{k}"))
            nu = enc.or_([up, enc.and_([enc.not_(down), lu])])
            nd = enc.or_([down, enc.and_([enc.not_(up), ld])])
            self.last.append(
                (self._latch(nu, f"lastup@{k + 1}"), self._latch(nd, f"lastdown@{k + 1}"))
            )
        return self.revs[t]

    def violation(self, d: int) -> Cond:
        w, r = self.req.within, self.req.max_reversals
        flags = [self.rev(j) for j in range(max(0, d - w + 1), d + 1)]
        known = sum(1 for f in flags if f.value is True)
        open_ = [f.term for f in flags if f.value is None]
        need = r + 1 - known
        if need <= 0:
            return true()
        if len(open_) < need:
            return false()
        return Cond(z3.AtLeast(*open_, need))


# ---- replay ----------------------------------------------------------------------------------


def confirm(ts: TransitionSystem, req: Requirement, sc: Scenario) -> tuple[Trace, int]:
    """Replay a scenario and judge the requirement with the reference semantics."""
    trace = replay(ts, sc)
    fail = check_requirement(req, trace)
    assert fail is not None
    return trace, int(fail[0])


# ---- input patterns --------------------------------------------------------------------------


def pattern_inputs(ts: TransitionSystem, ticks: int, held: bool, seed: int) -> np.ndarray:
    """Structured adversarial input sequences ``[S, ticks, n_inputs]`` within the ranges."""
    n = len(ts.inputs)
    lo = np.array([u.lo for u in ts.inputs])
    hi = np.array([u.hi for u in ts.inputs])
    nom = np.array([u.nominal for u in ts.inputs])
    rng = np.random.default_rng(seed)
    pats: list[np.ndarray] = []

    def const_(v: np.ndarray) -> np.ndarray:
        return np.broadcast_to(v, (ticks, n)).copy()

    for v in (nom, lo, hi):
        pats.append(const_(v))
    for j in range(min(n, 4)):
        for side in (lo, hi):
            v = nom.copy()
            v[j] = side[j]
            pats.append(const_(v))
    if held:
        for _ in range(8):
            pats.append(const_(lo + (hi - lo) * rng.random(n)))
        return np.stack(pats)
    t = np.arange(ticks)[:, None]
    for start in sorted({ticks // 10, ticks // 4, ticks // 2}):
        for side in (hi, lo):
            pats.append(np.where(t >= start, side, nom))
    for width in (1, 2, 5, 10, 20, 50):
        if width < ticks:
            pats.append(np.where(t < width, hi, nom))
            pats.append(np.where(t < width, lo, nom))
    hyper = ts.hyperperiod
    for half in sorted({1, 2, 3, 5, 8, 13, hyper, 2 * hyper, max(1, hyper // 2)}):
        for shift in (0, half):
            phase = ((t + shift) // half) % 2 == 0
            pats.append(np.where(phase, hi, lo))
    for _ in range(12):
        pats.append(np.where(rng.random((ticks, n)) < 0.5, lo, hi))
    for _ in range(12):
        pats.append(lo + (hi - lo) * rng.random((ticks, n)))
    return np.stack(pats)


def param_settings(ts: TransitionSystem) -> list[dict[str, float]]:
    """The parameter values patterns are tried with: as declared, then each uncertain range's
    low and high ends together."""
    unc = [p for p in ts.params if not p.internal and p.lo < p.hi]
    out: list[dict[str, float]] = [{}]
    if unc:
        out.append({p.name: p.lo for p in unc})
        out.append({p.name: p.hi for p in unc})
    return out


def _shifted(e: Expr, margin: float, easier: bool) -> Expr:
    """``e`` with each comparison moved by ``margin`` so that it is easier to make true
    (``easier``) or harder; ``not`` turns the direction round, ``and``/``or`` keep it."""
    match e:
        case Binary("<=" | "<" as op, a, b):
            m = Const(margin if easier else -margin)
            return Binary(op, a, Binary("+", b, m), e.span)
        case Binary(">=" | ">" as op, a, b):
            m = Const(margin if easier else -margin)
            return Binary(op, Binary("+", a, m), b, e.span)
        case Binary("and" | "or" as op, a, b):
            return Binary(op, _shifted(a, margin, easier), _shifted(b, margin, easier), e.span)
        case Unary("not", a):
            return Unary("not", _shifted(a, margin, not easier), e.span)
    return e


def robust(req: Requirement, margin: float) -> Requirement:
    """``req`` as a float trace must violate it to count: a violation by more than
    ``margin``. Its condition is relaxed by ``margin`` and its trigger tightened, so a trace
    that violates the result violates ``req`` with room to spare, not by float rounding (an
    input ramped by its slew in floats reaches ``0.30000000000000004``)."""
    if margin <= 0:
        return req
    cond = _shifted(req.cond, margin, True) if req.cond is not None else None
    trig = _shifted(req.trigger, margin, False) if req.trigger is not None else None
    return replace(req, cond=cond, trigger=trig)


def falsify_by_patterns(
    ts: TransitionSystem, req: Requirement, ticks: int, seed: int, margin: float = 1e-6
) -> Counterexample | None:
    """Simulate the structured patterns; the earliest violation by more than ``margin``,
    replayed alone, or None."""
    judged = robust(req, margin)
    n_ticks = ticks
    if not ts.inputs and not any(p.lo < p.hi for p in ts.params if not p.internal):
        pats = np.zeros((1, n_ticks, 0))
    else:
        pats = pattern_inputs(ts, n_ticks, req.inputs == "held", seed)
    best: tuple[int, Scenario] | None = None

    def decided(head: Trace) -> bool:
        # a violation a check reports on a prefix is the whole run's (each check's first
        # failing tick depends on the ticks up to it): the run can stop at one, and, for a
        # later setting, once it is past the earliest violation found so far
        if best is not None and head.ticks > best[0]:
            return True
        got = check_requirement(judged, head)
        return got is not None and bool(np.any(got >= 0))

    for setting in param_settings(ts):
        with np.errstate(all="ignore"):
            trace = simulate(ts, n_ticks, inputs=pats, params=setting or None, until=decided)
        fail = check_requirement(judged, trace)
        assert fail is not None
        hits = np.flatnonzero(fail >= 0)
        if hits.size == 0:
            continue
        s = int(hits[np.argmin(fail[hits])])
        tick = int(fail[s])
        if best is None or tick < best[0]:
            params = {p.name: float(trace.params[p.name][s]) for p in ts.params}
            init = {name: float(trace.states[s, 0, i]) for i, name in enumerate(ts.state_names)}
            best = (tick, Scenario(pats[s].copy(), params, init))
    if best is None:
        return None
    tick, sc = best
    cut = min(sc.ticks, tick + 2)
    sc = Scenario(sc.inputs[:cut], sc.params, sc.init)
    trace, fail_tick = confirm(ts, req, sc)
    if fail_tick < 0:  # cannot happen: the same simulator; kept as a guard
        return None
    return Counterexample(trace, fail_tick, "simulation of input patterns", sc)


def _evidence(ts: TransitionSystem, req: Requirement, options: SmtOptions) -> str:
    """What :func:`falsify_by_patterns` simulated without finding a violation."""
    if not ts.inputs and not any(p.lo < p.hi for p in ts.params if not p.internal):
        n = 1
    else:
        n = int(pattern_inputs(ts, 2, req.inputs == "held", options.seed).shape[0])
    n *= len(param_settings(ts))
    return f"not violated in {n} simulated input scenarios over {max(1, req.horizon)} ticks"


# ---- BMC --------------------------------------------------------------------------------------


def modes_for(options: SmtOptions) -> list[str]:
    if options.mode == "auto":
        return [OVERAPPROX, EXACT]
    return [options.mode]


@isolated
def bmc(
    ts: TransitionSystem,
    req: Requirement,
    options: SmtOptions,
    stats: SolverStats,
    depth: int | None = None,
) -> Result:
    """Check ``req`` from the initial state for ``depth`` ticks (its horizon by default).

    One query per depth ``d``: "a violation at ``d``". Each depth proved safe is asserted in
    every solver, so deeper queries need not rediscover it (the standard strengthening of
    incremental BMC). The whole check spends at most ``options.budget`` of rlimit.
    """
    horizon = depth if depth is not None else horizon_of(req, options)
    capped = replace(req, horizon=horizon)
    first = req.within if req.kind == "response" else 0
    if horizon <= first:
        return Result(Status.HOLDS, horizon, "the horizon is too short for any violation")
    runs: dict[str, Run] = {}
    margin = Fraction(options.margin).limit_denominator(10**12)
    spurious = 0
    notes: list[str] = []
    budget = options.budget
    order = modes_for(options)
    # in auto mode refinement is left to exact arithmetic; alone, the relaxation refines itself
    refinements = options.refinements if options.mode == OVERAPPROX else 0
    for d in range(first, horizon):
        reasons: list[str] = []
        proved = False
        for m in list(order):
            if m == EXACT and OVERAPPROX in runs and not runs[OVERAPPROX].enc.relaxed:
                continue  # a linear system: both encodings are the same
            if budget <= 0:
                return Result(
                    Status.UNKNOWN,
                    d,
                    f"the resource budget ({options.budget}) is spent at depth {d}",
                    None,
                    tuple(notes),
                    spurious,
                )
            limit = options.rlimit
            if len(order) > 1 and m == OVERAPPROX and m == order[0]:
                limit //= 2  # a first try: the relaxation decides quickly or not at all
            try:
                run = runs.get(m)
                if run is None:
                    run = runs[m] = Run(ts, req, m, stats)
                    for k in range(first, d):
                        run.safe(k)
                    if d > first:
                        limit *= 2  # a run that starts late catches up on the depths before
                ans = run.query(d, Fraction(0), min(limit, budget))
            except EncodeError as exc:
                return Result(Status.UNKNOWN, d, f"cannot encode the system: {exc}")
            budget -= ans.rlimit_used
            refined = 0
            why = ""
            while ans.sat:
                cex, why = _judge(ts, capped, run, ans, d, margin, options)
                if cex is not None:
                    return Result(Status.FALSIFIED, cex.tick, "", cex, tuple(notes), spurious)
                if not run.enc.relaxed:
                    break
                spurious += 1
                # refine the relaxation where the spurious model cheats, and ask again
                if refined >= refinements or budget <= 0 or run.enc.refine(ans.model) == 0:
                    break
                refined += 1
                ans = run.query(d, Fraction(0), min(options.rlimit, budget))
                budget -= ans.rlimit_used
            if ans.unsat:
                proved = True
                if m != order[0]:  # the mode that decided goes first from now on
                    order = [m] + [x for x in order if x != m]
                break
            if ans.unknown:
                reasons.append(f"{_mode_name(m)}: {ans.reason}")
                continue
            if run.enc.relaxed:
                notes.append(
                    f"{_mode_name(m)} candidate at depth {d} did not replay "
                    f"(after {refined} refinements): {why}"
                )
            reasons.append(f"{_mode_name(m)}: {why}")
        if not proved:
            reason = "; ".join(reasons) or "no solver could decide"
            return Result(Status.UNKNOWN, d, f"depth {d}: {reason}", None, tuple(notes), spurious)
        for run in runs.values():
            run.safe(d)
    why = ""
    if horizon < max(1, req.horizon):
        why = f"checked to depth {horizon} of the requirement's {req.horizon} ticks"
    return Result(Status.HOLDS, horizon, why, None, tuple(notes), spurious)


def _mode_name(mode: str) -> str:
    return "over-approximation" if mode == OVERAPPROX else "exact arithmetic"


def _judge(
    ts: TransitionSystem,
    req: Requirement,
    run: Run,
    ans: Answer,
    d: int,
    margin: Fraction,
    options: SmtOptions,
) -> tuple[Counterexample | None, str]:
    """Replay a model; retry with a robustness margin when an exact model sits on a boundary."""
    ticks = d + 1
    sc = run.scenario(ans.model, ticks)
    trace, tick = confirm(ts, req, sc)
    source = f"solver ({_mode_name(run.mode)})"
    if tick >= 0:
        return Counterexample(trace, tick, source, sc), ""
    if run.undefined_in(ans.model):
        return None, "the model divides by zero (or takes log/sqrt out of domain) on the way"
    if run.enc.relaxed:
        return None, "the relaxation's candidate is spurious"
    if margin > 0:
        ans2 = run.query(d, margin, options.rlimit)
        if ans2.sat:
            sc2 = run.scenario(ans2.model, ticks)
            trace2, tick2 = confirm(ts, req, sc2)
            if tick2 >= 0:
                return Counterexample(trace2, tick2, source, sc2), ""
        if ans2.unsat:
            return None, (
                f"violations exist only within {float(margin):g} of the boundary, where float "
                "rounding decides"
            )
    return None, "the exact model did not reproduce in float simulation"


# ---- k-induction ----------------------------------------------------------------------------


def induction_depth(ts: TransitionSystem, options: SmtOptions) -> int:
    if options.induction_depth is not None:
        return max(1, options.induction_depth)
    return max(2, min(12, ts.hyperperiod + 1))


@isolated
def k_induction(
    ts: TransitionSystem,
    req: Requirement,
    options: SmtOptions,
    stats: SolverStats,
    kmax: int | None = None,
    inv: Invariants | None = None,
) -> tuple[int | None, str]:
    """The smallest ``k <= kmax`` whose induction step holds, or None with the reason.

    With ``inv`` the step starts within the invariants' box and assumes them at every tick.
    """
    assert req.kind == "always" and req.cond is not None
    kmax = kmax or induction_depth(ts, options)
    # with invariants: one linear step in auto mode (its unsat is a proof; exact nonlinear
    # arithmetic over the many assumed relations rarely decides within the limit)
    modes = modes_for(options) if inv is None or options.mode == EXACT else [OVERAPPROX]
    steps = [Step(ts, req, m, stats, inv) for m in modes]
    reason = ""
    budget = 2 * options.rlimit  # the whole attempt; a proof is a bonus, not a requirement
    for k in range(1, kmax + 1):
        for st in steps:
            if st.mode == EXACT and steps[0] is not st and not steps[0].enc.relaxed:
                continue
            if budget <= 0:
                return None, f"k-induction stopped at k={k}: its resource budget is spent"
            try:
                ans = st.query(k, min(options.rlimit, budget))
            except EncodeError as exc:
                return None, f"cannot encode the system: {exc}"
            budget -= ans.rlimit_used
            if ans.unsat:
                return k, ""
            if ans.unknown:
                reason = f"k={k}, {_mode_name(st.mode)}: {ans.reason}"
                continue
            if st.real_step_counterexample(ans.model, k):
                break  # the step really fails at this k: no other mode can prove it
    return None, reason or f"not {kmax}-inductive"


class Step:
    """The induction step from any admissible state, in one mode, built incrementally.

    ``always`` and ``flapping`` requirements; with ``local``, of the localization abstraction
    (:func:`localize`: the cone of influence of the requirement, the abstracted control laws
    free). For ``flapping`` the property at tick ``t`` is "no violation of the window that
    ends at ``t``", counting only the reversals in the path, and the direction before tick 0
    is free (:class:`Flapping`); a violation is asked only at ``k >= W - 1``, where the
    window of ``W`` ticks lies in the path.
    """

    def __init__(
        self,
        ts: TransitionSystem,
        req: Requirement,
        mode: str,
        stats: SolverStats,
        inv: Invariants | None = None,
        local: Localization | None = None,
    ):
        self.ts = ts
        self.req = req
        self.mode = mode
        self.stats = stats
        self.inv = inv
        laws = local.laws if local is not None else None
        tag = f"k{mode[0]}{'i' if inv else ''}{'l' if local else ''}."
        enc = Encoder(ts, mode, tag=tag, laws=laws)
        self.enc = enc
        system = local.system if local is not None else ts
        params = param_values(enc, ts)
        ints = integer_states(system)
        ranges = signal_ranges(ts, params)
        # every reachable state lies in the reachable enclosure, so the step may start there
        # (and within the invariants' box): the states it leaves out no run reaches
        box = dict(enclosure_box(ts) or {})
        for name, iv in (inv.box if inv else {}).items():
            box[name] = box[name].meet(iv) if name in box else iv
        start = free_start(enc, system, params, ints, box or None, ranges)
        h = ts.hyperperiod
        self.phase = SymbolicPhase(f"{enc.tag}phase", h)
        enc.constraints += self.phase.constraints()
        inputs = Inputs(enc, ts, "held" if req.inputs == "held" else "free")
        self.path = Path(
            enc,
            params,
            inputs,
            start,
            self.phase if h > 1 else 0,
            ints,
            system=local.system if local is not None else None,
        )
        self.flap = (
            Flapping(enc, self.path, req, free_last=True) if req.kind == "flapping" else None
        )
        self.solver = new_solver()
        self.assumed = 0  # ticks whose property is asserted
        self.invariant_ticks = 0  # ticks whose auxiliary invariants are asserted

    def _holds(self, t: int) -> Cond:
        """The property at tick ``t`` (for flapping: the window ending at ``t``)."""
        if self.flap is not None:
            return self.enc.not_(self.flap.violation(t))
        assert self.req.cond is not None
        return self.path.holds(self.req.cond, t)

    def _violated(self, k: int) -> Cond:
        if self.flap is not None:
            return self.flap.violation(k)
        assert self.req.cond is not None
        return self.path.holds(self.req.cond, k, positive=False)

    def _distinct(self, i: int, t: int) -> Any | None:
        """The simple-path constraint between ticks ``i < t`` of the same phase, or None.

        For ``always`` the states differ. For ``flapping`` the state of the product with the
        monitor differs: the system's states, the last direction, or a reversal flag of the
        ``W - 1`` ticks before; only where those flags all lie in the path (``i >= W - 1``).
        A shortest run from the initial state to a first violation never repeats that state
        (cutting the loop out gives an earlier first violation), so every such run's last
        ``k + 1`` ticks satisfy these constraints and the step still covers it.
        """
        if self.flap is None:
            return _differ(self.path, i, t)
        w = self.req.within
        if i < w - 1:
            return None
        flap = self.flap
        diffs = [_differ(self.path, i, t)]
        (ui, di), (ut, dt) = flap.last[i], flap.last[t]
        diffs += [ui.term != ut.term, di.term != dt.term]
        for m in range(1, w):
            diffs.append(flap.rev(i - m).term != flap.rev(t - m).term)
        return z3.Or(*diffs)

    def query(self, k: int, rlimit: int) -> Answer:
        """Assume the property at ticks 0..k-1; ask for a violation at tick k."""
        path, enc = self.path, self.enc
        h = self.ts.hyperperiod
        while path.depth < k:
            path.extend()
        while self.assumed < k:
            t = self.assumed
            held = self._holds(t)
            ok = enc.and_([held, enc.not_(path.undefined([t]))])
            self.solver.add(ok.term)
            for i in range(t):
                if (t - i) % h == 0:  # simple path between states of the same phase
                    d = self._distinct(i, t)
                    if d is not None:
                        self.solver.add(d)
            self.assumed += 1
        while self.inv is not None and self.invariant_ticks <= k:
            # every state of a defined run satisfies the invariants (invariants.py)
            t = self.invariant_ticks
            inv = enc.and_([encode_invariant(path, c, t) for c in self.inv.cands])
            if inv.value is not True:
                self.solver.add(enc.or_([path.undefined([t]), inv]).term)
            self.invariant_ticks += 1
        violated = self._violated(k)
        bad = enc.or_([violated, path.undefined([k])])
        assert_all(self.solver, enc.drain())
        if bad.value is False:
            return Answer(Outcome.UNSAT, "decided by bounds")
        self.solver.push()
        self.solver.add(bad.term)
        ans = check(self.solver, rlimit, stats=self.stats)
        self.solver.pop()
        return ans

    def real_step_counterexample(self, model: Any, k: int) -> bool:
        """Whether the simulator, run from the model's state, phase and inputs, shows the
        property at ticks 0..k-1 and its violation at tick k."""
        assert self.req.cond is not None
        phase = self.phase.value(model) if not isinstance(self.path.phase, int) else 0
        sc = scenario_from_model(model, self.path, k + 1, phase)
        try:
            trace = replay(self.ts, sc)
            ok = evaluate(self.req.cond, trace)[0]
        except (ValueError, KeyError, FloatingPointError):
            return False
        return bool(np.all(ok[:k] != 0) and ok[k] == 0)


@isolated
def k_induction_with_invariants(
    ts: TransitionSystem,
    req: Requirement,
    options: SmtOptions,
    stats: SolverStats,
    kmax: int | None = None,
) -> tuple[int | None, Invariants | None]:
    """k-induction strengthened with auxiliary invariants (:mod:`coherence.smt.invariants`):
    candidates mined from simulation, the inductive subset found by Houdini (within two
    ``rlimit``), then the step with them assumed at every tick (within twice ``rlimit``)."""
    assert req.kind == "always" and req.cond is not None
    ticks = max(2 * ts.hyperperiod, min(2 * max(1, req.horizon), 1200))
    cands = mine(ts, req, options, ticks)
    inv = houdini(ts, req, cands, options, stats)
    if not inv.cands:
        return None, None
    k, _why = k_induction(ts, req, options, stats, kmax, inv)
    return (k, inv) if k is not None else (None, None)


def _differ(path: Path, i: int, j: int) -> Any:
    a, b = path.state_terms(i), path.state_terms(j)
    diffs = [a[n].term != b[n].term for n in a if not z3.eq(a[n].term, b[n].term)]
    return z3.Or(*diffs) if diffs else z3.BoolVal(False, ctx())


# ---- localization of the control laws -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Localization:
    """The localization abstraction of a system for one requirement (:func:`localize`).

    ``system``: the cone of influence of the requirement, with the recommendation lets of
    ``loops`` cut (they read nothing); ``laws``: those lets, each with the sound enclosure
    its value takes a fresh variable in (:attr:`coherence.smt.encode.Encoder.laws`).
    """

    system: TransitionSystem
    laws: dict[str, Interval]
    loops: tuple[str, ...]


def _cone(ts: TransitionSystem, roots: set[str], cut: set[str]) -> set[str]:
    """The states and lets that ``roots`` depend on over any number of ticks (through lets,
    state updates and initial values); the lets in ``cut`` read nothing."""
    lets = {d.name: d.expr for d in ts.lets}
    states = {s.name: s for s in ts.states}
    seen: set[str] = set()
    todo = [r for r in roots if r in lets or r in states]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in lets:
            reads = set() if n in cut else names_in(lets[n])
        else:
            reads = names_in(states[n].update) | names_in(states[n].init)
        todo += [r for r in reads if (r in lets or r in states) and r not in seen]
    return seen


def _over_box(ts: TransitionSystem) -> tuple[dict[str, Interval], set[str]]:
    """Every let's interval over the declared ranges (states in their bounds, registers in
    their signal's range, inputs and parameters in theirs: an enclosure of its value at every
    tick of every run), and the lets and state updates that may be undefined there."""
    enc = Encoder(ts, OVERAPPROX, tag="__laws__.")
    params = param_values(enc, ts)
    regs = signal_ranges(ts, params)
    frame = Frame(0, None, {})  # any tick: phases undecided
    frame.values.update(params)
    for u in ts.inputs:
        frame.values[u.name] = enc.named(u.name, Interval(u.lo, u.hi))
    for st in ts.states:
        iv = Interval(st.lo, st.hi)
        if st.name in regs:
            iv = regs[st.name].meet(iv)
        frame.values[st.name] = enc.named(st.name, iv)
    ivs: dict[str, Interval] = {}
    undefined: set[str] = set()
    for d in ts.lets:
        n = len(frame.undefined)
        v = enc.expr(d.expr, frame)
        frame.values[d.name] = v
        if isinstance(v, Num):
            ivs[d.name] = v.iv
        if len(frame.undefined) > n:
            undefined.add(d.name)
    for st in ts.states:
        n = len(frame.undefined)
        enc.expr(st.update, frame)
        if len(frame.undefined) > n:
            undefined.add(st.name)
    return ivs, undefined


def localize(ts: TransitionSystem, roots: set[str]) -> Localization | None:
    """The localization abstraction (Kurshan) of ``ts`` for a property that reads ``roots``.

    Every loop's recommendation (``<loop>.<state>.rec``: the control law's value before
    shaping) is replaced by a fresh real per tick, within its interval over the declared
    ranges: a superset of the values the law takes on any run (every state stays within its
    bounds, every register within its signal's range). Only a law whose whole cone (the
    lets and state updates it depends on, over any number of ticks) is defined over those
    ranges is abstracted: the values such a law takes are real numbers, so the abstraction's
    runs include every run of the system (a law that may divide by zero stays exact, and its
    definedness is proved with the property). The rest of the system is cut down to the cone
    of influence of ``roots`` with those laws cut; a state outside it never influences the
    property, and its definedness does not matter for it. None when no law is abstracted.
    """
    try:
        ivs, undefined = _over_box(ts)
    except EncodeError:
        return None
    recs = {f"{lp.name}.{a.state}.rec": lp.name for lp in ts.loops for a in lp.actions}
    cut: set[str] = set()
    for rec in sorted(recs):
        if rec not in ivs or rec in undefined:
            continue
        if not (_cone(ts, {rec}, set()) & undefined):
            cut.add(rec)
    cone = _cone(ts, roots, cut)
    laws = {r: ivs[r] for r in sorted(cut & cone)}
    if not laws:
        return None
    system = replace(
        ts,
        states=tuple(st for st in ts.states if st.name in cone),
        lets=tuple(d for d in ts.lets if d.name in cone),
    )
    loops = tuple(dict.fromkeys(recs[r] for r in laws))
    return Localization(system, laws, loops)


def _flapping_depths(ts: TransitionSystem, req: Requirement) -> range:
    """The ``k`` the flapping step tries: from ``W - 1`` (the window fits in the path) to the
    window plus the longest register chain plus the hyperperiod."""
    regs = max(
        [len(sn.registers) for lp in ts.loops for sn in lp.sensors]
        + [len(a.history) for lp in ts.loops for a in lp.actions]
        + [0]
    )
    w = max(1, req.within)
    return range(w - 1, w + regs + ts.hyperperiod + 1)


LOCAL_MAX_DEPTH = 400  # no attempt when the window alone is longer than this many ticks


def prove_localized(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> tuple[Result | None, str]:
    """:func:`_prove_localized` in a Z3 context of its own, even inside another analysis:
    the terms it creates do not change the order of the caller's, so what runs after a
    failed attempt (BMC, k-induction) answers exactly as without it."""
    with own_context():
        return _prove_localized(ts, req, options, stats)


def _prove_localized(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> tuple[Result | None, str]:
    """k-induction of a ``flapping`` (or ``always``) requirement on the localization
    abstraction (:func:`localize`): the control laws free, the shaping exact.

    The step (:class:`Step` with the abstraction) runs from any admissible state of the cone
    (declared bounds, registers within their signal's range, integer states integral), any
    start phase, with the simple-path constraint, and for flapping the direction before the
    start free; it assumes the property at ticks ``0..k-1`` (windows counting only the
    reversals in the path, a weaker assumption) and asks for a violation at ``k``, for ``k``
    from ``W - 1`` (the window fits in the path) to ``W`` plus the longest register chain plus
    the hyperperiod (``always``: ``1..induction_depth``). The base case is BMC of the
    abstraction from the initial state, ticks ``0..k-1``.

    Soundness: every run of the system is a run of the abstraction (the laws take real
    values in their enclosures), restricted to the cone. Suppose a run violates at some tick;
    take one whose first violation ``d`` is earliest over all runs. ``d >= k`` by the base
    case. Its ticks ``d-k..d`` start at an admissible state at some phase, with some last
    direction, hold no violation at ``d-k..d-1`` (the counts in the path are at most the
    true ones), and violate at ``d`` with the whole window in the path; they satisfy the
    simple-path constraint (a repeated state of the product with the monitor could be cut out
    for an earlier first violation): a model of the step, which is unsat. So no run violates,
    at any tick. A model of either query proves nothing: it is never replayed or reported.

    ``always`` is tried only when the cone holds no plant state (a bound on actuators, their
    history and cooldowns: cheap); ``flapping`` always.

    Returns the ``proved`` result, or None and why not. The attempt spends at most half of
    ``options.budget`` (the step at most twice ``options.rlimit`` of it), rlimit only.
    """
    if req.kind == "flapping":
        assert req.state is not None
        roots = {req.state}
        depths = _flapping_depths(ts, req)
        if depths.start > LOCAL_MAX_DEPTH:
            return None, f"the window ({req.within} ticks) is too long to unroll"
    else:
        assert req.kind == "always" and req.cond is not None
        roots = set(names_in(req.cond))
        depths = range(1, induction_depth(ts, options) + 1)
    local = localize(ts, roots)
    if local is None:
        return None, "no control law to abstract"
    if req.kind == "always" and any(st.kind == "plant" for st in local.system.states):
        # cheap cases only: a bound on actuators, their history and cooldowns
        return None, "the property depends on the plant"
    budget = options.budget // 2
    step_budget = min(budget, 2 * options.rlimit)
    modes = modes_for(options)
    try:
        steps = [Step(ts, req, m, stats, local=local) for m in modes]
        found: int | None = None
        why = ""
        for k in depths:
            for st in steps:
                if st.mode == EXACT and steps[0] is not st and not steps[0].enc.relaxed:
                    continue  # a linear abstraction: both encodings are the same
                if step_budget <= 0:
                    return None, f"the step's resource budget is spent at k={k}"
                ans = st.query(k, min(options.rlimit, step_budget))
                step_budget -= ans.rlimit_used
                budget -= ans.rlimit_used
                if ans.unsat:
                    found = k
                    break
                why = f"k={k}: {'a model' if ans.sat else ans.reason}"
                if ans.sat and not st.enc.relaxed:
                    break  # an exact model of the abstraction: no other mode differs
            if found is not None:
                break
        if found is None:
            return None, f"the abstraction is not k-inductive ({why})"
        k = found
        base = _base_localized(ts, req, local, k, options, stats, budget)
        if base:
            return None, f"base case: {base}"
    except EncodeError as exc:
        return None, f"cannot encode the abstraction: {exc}"
    loops = ", ".join(f"`{n}`" for n in local.loops)
    shaping = _shaping_words(ts, local)
    detail = (
        f"{k}-inductive with the control laws abstracted ({loops}): the property follows "
        f"from the shaping ({shaping}) alone (k-induction; base case: BMC of the abstraction "
        f"to depth {k})"
    )
    return Result(Status.PROVED, horizon_of(req, options), detail, None, (), 0, k), ""


def max_reversals(window: int, after_up: int, after_down: int) -> int:
    """The most reversals that fit in ``window`` consecutive ticks when a reversal to "up"
    is followed by the next reversal no sooner than ``after_up`` ticks later, and one to
    "down" no sooner than ``after_down`` (both at least 1): the greedy packing from either
    kind of first reversal.

    >>> max_reversals(24, 3, 28), max_reversals(24, 3, 3), max_reversals(1, 5, 5)
    (2, 8, 1)
    """
    best = 0
    for first_up in (True, False):
        t, n, up = 0, 0, first_up
        while t <= window - 1:
            n += 1
            t += after_up if up else after_down
            up = not up
        best = max(best, n)
    return best


def prove_dwell(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> tuple[Result | None, str]:
    """:func:`_prove_dwell` in a Z3 context of its own (see :func:`prove_localized`)."""
    with own_context():
        return _prove_dwell(ts, req, options, stats)


def _prove_dwell(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> tuple[Result | None, str]:
    """``no flapping`` for all time from dwell-time lemmas of the localization abstraction.

    Two families of bounded lemmas, each over a run segment of the abstraction
    (:func:`localize`: the control laws free within their enclosures, the shaping exact) from
    any admissible state of the cone (within the reachable enclosure) at any phase, inputs
    free per tick:

    - ``U(j)``: a move up at tick 0 is never followed, after ``j - 1`` ticks without a move,
      by a move down at tick ``j``;
    - ``D(j)``: the same with up and down exchanged.

    ``Du`` is the largest ``d < W`` with ``U(1..d)`` proved (unsat), ``Dd`` likewise. Then on
    every run a move down never comes within ``Du`` ticks after a move up: take the first
    move down after a move up; the last move before it is a move up, at most as far back, and
    the segment from that move up is a segment of the lemmas (every segment of every run
    starts at a state in the enclosure and the laws take real values in theirs). Two
    reversals therefore follow each other by more than ``Dd`` ticks after a reversal down
    (the next is a move up after a move down) and more than ``Du`` after a reversal up;
    :func:`max_reversals` bounds the reversals that fit in any window of ``W`` ticks, and at
    most ``r`` proves the requirement for all time, from the initial state included: no base
    case is needed.

    The segments are encoded in over-approximation with loose extrema (:class:`Encoder`:
    more runs, so an ``unsat`` stays a proof) and the ticks between the two moves hold the
    actuated state (a run without a move there is such a run). Only a cone whose every
    operation is defined is tried. A model proves nothing (it is a run of the abstraction)
    and only ends the lemma's scan. The scan extends the direction that brings the bound
    soonest within ``r``; it spends at most ``options.budget``, each query at most twice
    ``options.rlimit``, rlimit only.
    """
    assert req.kind == "flapping" and req.state is not None
    w, r = max(1, req.within), req.max_reversals
    scanned = _dwell_scan(
        ts, req, options, stats, lambda du, dd: max_reversals(w, du + 1, dd + 1) <= r
    )
    if isinstance(scanned, str):
        return None, scanned
    du, dd, why, local = scanned
    most = max_reversals(w, du + 1, dd + 1)
    if most > r:
        return None, (
            f"the dwell times proved (no move down for {du} ticks after a move up, no move up "
            f"for {dd} after a move down) allow {most} reversals in {w} ticks"
            + (f"; {why}" if why else "")
        )
    loops = ", ".join(f"`{n}`" for n in local.loops)
    shaping = _shaping_words(ts, local)
    parts = [
        f"no move {b} within {d} ticks of a move {a}"
        for a, b, d in (("up", "down", du), ("down", "up", dd))
        if d > 0
    ]
    detail = (
        f"{' and '.join(parts)}, whatever the control laws ({loops}) recommend: the shaping "
        f"({shaping}) alone fits at most {most} reversals in any {w} ticks (dwell-time lemmas "
        f"of the localization abstraction, for all time)"
    )
    return Result(Status.PROVED, horizon_of(req, options), detail, None, (), 0, max(du, dd) + 1), ""


def dwell_times(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> tuple[int, int] | str:
    """The dwell times :func:`prove_dwell` proves, each scanned as far as it goes (at most
    the window less a tick): ``(Du, Dd)``, no move down within ``Du`` ticks after a move up
    and no move up within ``Dd`` after a move down, on every run; or why none."""
    with own_context():
        scanned = _dwell_scan(ts, req, options, stats, lambda du, dd: False)
    return scanned if isinstance(scanned, str) else scanned[:2]


def _dwell_scan(
    ts: TransitionSystem,
    req: Requirement,
    options: SmtOptions,
    stats: SolverStats,
    enough: Callable[[int, int], bool],
) -> tuple[int, int, str, Localization] | str:
    """The lemmas of :func:`_prove_dwell`, extended until ``enough(Du, Dd)`` or no further:
    ``(Du, Dd, why the last one failed, the abstraction)``, or why none was tried."""
    assert req.state is not None
    w = max(1, req.within)
    if w - 1 > LOCAL_MAX_DEPTH:
        return f"the window ({w} ticks) is too long to unroll"
    local = localize(ts, {req.state})
    if local is None:
        return "no control law to abstract"
    periods = [
        n.period
        for e in [*(d.expr for d in local.system.lets), *(st.update for st in local.system.states)]
        for n in walk(e)
        if isinstance(n, Phase)
    ]
    hyper = math.lcm(1, *periods)
    budget = [options.budget]
    try:
        scans = {
            up: [_DwellScan(ts, req, local, up, ph, stats) for ph in range(hyper)]
            for up in (True, False)
        }
    except EncodeError as exc:
        return f"cannot encode the abstraction: {exc}"
    if any(sc.undefined for scs in scans.values() for sc in scs):
        return "an operation of the cone may be undefined"
    dwell = {True: 0, False: 0}
    open_ = {True: w > 1, False: w > 1}
    why = ""
    while not enough(dwell[True], dwell[False]):
        # extend the direction that reaches `enough` with the fewest lemmas (ties: up first)
        best: tuple[int, bool] | None = None
        for up in (True, False):
            if not open_[up]:
                continue
            other = dwell[not up]
            need = next(
                (d for d in range(dwell[up] + 1, w) if enough(*((d, other) if up else (other, d)))),
                w,
            )
            cand = (need - dwell[up], not up)
            if best is None or cand < best:
                best = cand
        if best is None:
            break
        up = not best[1]
        j = dwell[up] + 1
        try:
            ok, why_j = _dwell_step(scans[up], j, 2 * options.rlimit, budget)
        except EncodeError as exc:
            return f"cannot encode the abstraction: {exc}"
        if ok:
            dwell[up] = j
            open_[up] = j < w - 1
        else:
            open_[up] = False
            why = why_j
    return dwell[True], dwell[False], why, local


class _DwellScan:
    """The run segments of one dwell lemma (:func:`_prove_dwell`) from one start phase: a
    move in direction ``up`` at tick 0, no move at ticks ``1..j-1`` and the opposite move at
    tick ``j``, incrementally (one solver, assumptions per ``j``)."""

    def __init__(
        self,
        ts: TransitionSystem,
        req: Requirement,
        local: Localization,
        up: bool,
        phase: int,
        stats: SolverStats,
    ) -> None:
        assert req.state is not None
        self.state = req.state
        self.up = up
        self.stats = stats
        enc = self.enc = Encoder(
            ts,
            OVERAPPROX,
            tag=f"dw{'u' if up else 'd'}{phase}.",
            laws=local.laws,
            loose_extrema=True,
        )
        params = param_values(enc, ts)
        ints = integer_states(local.system)
        box = dict(enclosure_box(ts) or {})
        start = free_start(enc, local.system, params, ints, box or None, signal_ranges(ts, params))
        self.path = Path(
            enc, params, Inputs(enc, ts, "free"), start, phase, ints, system=local.system
        )
        self.solver = new_solver()
        self.still: list[Any] = []  # "no move at tick i", i = 1, 2, ...
        self.moves = [self._moves(0)]
        self.solver.add(*enc.drain(), self.moves[0][0 if up else 1].term)
        self.undefined = self.path.undefined([0]).value is not False

    def _moves(self, t: int) -> tuple[Cond, Cond]:
        path, enc = self.path, self.enc
        while path.depth < t + 1:
            path.extend()
        x0, x1 = path.value(t, self.state), path.value(t + 1, self.state)
        assert isinstance(x0, Num) and isinstance(x1, Num)
        d = enc.sub(x1, x0)
        eps = const(FLAP_EPS)
        return enc.compare(">", d, eps), enc.compare("<", d, enc.neg(eps))

    def _literal(self, name: str, c: Cond) -> Any:
        lit = z3.Bool(f"{self.enc.tag}{name}", ctx())
        self.solver.add(lit == c.term)
        return lit

    def query(self, j: int, rlimit: int) -> Answer:
        """Whether the opposite move can come at tick ``j`` after no move at ``1..j-1``."""
        enc = self.enc
        while len(self.moves) <= j:
            t = len(self.moves)
            self.moves.append(self._moves(t))
            if t >= 2:
                u, d = self.moves[t - 1]
                self.still.append(self._literal(f"still@{t - 1}", enc.not_(enc.or_([u, d]))))
        if self.path.undefined([j]).value is not False:
            return Answer(Outcome.UNKNOWN, "an operation of the cone may be undefined")
        then = self.moves[j][1 if self.up else 0]
        assert_all(self.solver, enc.drain())
        if then.value is False:
            return Answer(Outcome.UNSAT, "decided by bounds")
        lit = self._literal(f"then@{j}", then)
        return check(self.solver, rlimit, [*self.still[: j - 1], lit], stats=self.stats)


def _dwell_step(
    scans: list[_DwellScan], j: int, rlimit: int, budget: list[int]
) -> tuple[bool, str]:
    """Lemma ``j`` of one direction over every start phase: proved, or why not."""
    for sc in scans:
        if budget[0] <= 0:
            return False, f"the resource budget is spent at {j} ticks"
        ans = sc.query(j, min(rlimit, budget[0]))
        budget[0] -= ans.rlimit_used
        if not ans.unsat:
            return False, f"{j} ticks: {'a model of the abstraction' if ans.sat else ans.reason}"
    return True, ""


def _shaping_words(ts: TransitionSystem, local: Localization) -> str:
    words: list[str] = []
    for lp in ts.loops:
        if lp.name not in local.loops:
            continue
        if any(a.history for a in lp.actions):
            words.append("stabilization window")
        if lp.cooldown > 1:
            words.append("cooldown")
    words += ["rate limits", "limits", "rounding"]
    return ", ".join(dict.fromkeys(words))


def _base_localized(
    ts: TransitionSystem,
    req: Requirement,
    local: Localization,
    k: int,
    options: SmtOptions,
    stats: SolverStats,
    budget: int,
) -> str:
    """BMC of the abstraction from the initial state, ticks ``0..k-1``: "" when every depth
    is unsat (then no run of the system violates there), else why not."""
    order = modes_for(options)
    runs: dict[str, Run] = {}
    for d in range(k):
        decided = False
        why = ""
        for m in order:
            if m == EXACT and OVERAPPROX in runs and not runs[OVERAPPROX].enc.relaxed:
                continue
            if budget <= 0:
                return f"the resource budget is spent at depth {d}"
            run = runs.get(m)
            if run is None:
                run = runs[m] = Run(ts, req, m, stats, local)
                for j in range(d):
                    run.safe(j)
            ans = run.query(d, Fraction(0), min(options.rlimit, budget))
            budget -= ans.rlimit_used
            if ans.unsat:
                decided = True
                break
            why = f"depth {d}: {'a model of the abstraction' if ans.sat else ans.reason}"
        if not decided:
            return why
        for run in runs.values():
            run.safe(d)
    return ""


# ---- one requirement -------------------------------------------------------------------------


@isolated
def check_bounded(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> Result:
    """The status of an always / response / flapping requirement.

    In order: the input patterns (falsification); interval reachability from the initial
    state (:mod:`coherence.smt.reach`: a proof over the horizon, or for all time when the
    enclosure returns into itself); k-induction of the localization abstraction (flapping,
    and ``always`` of actuators alone: :func:`prove_localized`); k-induction; BMC. Each
    verdict says how it was obtained.
    """
    horizon = horizon_of(req, options)
    capped = replace(req, horizon=horizon)
    if options.patterns:
        cex = falsify_by_patterns(ts, capped, horizon, options.seed, options.margin)
        if cex is None and horizon < max(1, req.horizon):
            # the cap bounds the solver's unrolling, not the requirement: a simulated
            # violation within the requirement's own horizon is a finding all the same
            # (and no proof for all time, which the steps below would try, can exist)
            cex = falsify_by_patterns(ts, req, req.horizon, options.seed, options.margin)
        if cex is not None:
            return Result(Status.FALSIFIED, cex.tick, "", cex)
    reached = (
        check_reach(ts, capped, horizon)
        if options.intervals
        else reach.Outcome("unknown", 0, 0, 0, "")
    )
    if reached.status == "proved":
        return Result(Status.PROVED, horizon, reached.detail)
    if req.kind == "flapping":
        # dwell times of the shaping alone: a proof for all time, or nothing
        proof, _why = prove_dwell(ts, req, options, stats)
        if proof is not None:
            return proof
    if req.kind in ("flapping", "always"):
        # the control laws abstracted: a proof from the shaping alone, or nothing
        proof, _why = prove_localized(ts, req, options, stats)
        if proof is not None:
            return proof
    if req.kind == "always":
        k, _why = k_induction(ts, req, options, stats)
        if k is not None:
            # the base case: no violation in ticks 0..k-1 from the initial state
            if reached.status == "holds" and horizon >= k:
                base = Result(Status.HOLDS, k, reached.detail)
            else:
                base = bmc(ts, req, options, stats, depth=k)
            if base.status is Status.HOLDS:
                return Result(
                    Status.PROVED,
                    horizon,
                    f"{k}-inductive (k-induction; base case: "
                    f"{'interval reachability' if reached.status == 'holds' else 'BMC'})",
                    None,
                    base.notes,
                    base.spurious,
                    k,
                )
            if base.status is Status.FALSIFIED:
                return base
    if reached.status == "holds":
        why = reached.detail
        if horizon < max(1, req.horizon):
            why += f"; checked to depth {horizon} of the requirement's {req.horizon} ticks"
        res = Result(Status.HOLDS, horizon, why)
    else:
        res = bmc(ts, req, options, stats)
        if res.status is Status.UNKNOWN and reached.detail:
            res = replace(res, notes=(*res.notes, f"interval reachability: {reached.detail}"))
    if options.patterns and res.status is Status.UNKNOWN:
        res = replace(res, evidence=_evidence(ts, req, options))
    if options.invariants and req.kind == "always" and res.status in (Status.HOLDS, Status.UNKNOWN):
        # last: auxiliary invariants (after BMC, so that BMC's answers do not depend on them)
        k, inv = k_induction_with_invariants(ts, req, options, stats)
        if k is not None and inv is not None:
            # the base case: ticks 0..k-1 from the initial state, by what ran above or BMC
            base = res if res.depth >= k else bmc(ts, req, options, stats, depth=k)
            if base.status is Status.FALSIFIED:
                return base
            if base.status is Status.HOLDS or base.depth >= k:
                src = "interval reachability" if reached.status == "holds" else "BMC"
                return Result(
                    Status.PROVED,
                    horizon,
                    f"{k}-inductive with {len(inv)} auxiliary invariants (Houdini over "
                    f"{inv.mined} mined candidates; base case: {src})",
                    None,
                    res.notes,
                    res.spurious,
                    k,
                )
    return res


# ---- what to suggest for a flapping actuator ---------------------------------------------------


def flapping_help(ts: TransitionSystem, state: str, within: int) -> str:
    """The help line of a flapping finding (COH503), from the shaping the loops on ``state``
    already have: a stabilization window (up, down), a hold band (tolerance or deadband, in
    the shaping or as a hold branch of the law), a cooldown, a measurement lag. What a loop
    has is not suggested again; what it has is offered to lengthen or widen.

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", '''system s { tick 15s
    ...   state r in [1, 40] init 10  state y in [0, 100] init 50  next y = 2 * r
    ...   loop hpa { senses y delay 30s actuates r to r * y / 20 stabilize down 300s }
    ...   require no flapping of r max 2 within 5min }''').systems[0]
    >>> flapping_help(ts, "r", 20)  # doctest: +NORMALIZE_WHITESPACE
    '`hpa` already has `stabilize down 300s`: lengthen it or add `stabilize up`; add a
    tolerance band (`tolerance 10%`) or a deadband; add a cooldown (`cooldown 300s`); or
    shorten its measurement lag (30s delay)'
    """
    from coherence.ir.nodes import Call, Ite

    tick = ts.tick

    def nodes_of(e: Any) -> list[Any]:
        out = [e]
        for name in ("left", "right", "arg", "cond", "then", "other"):
            sub = getattr(e, name, None)
            if sub is not None:
                out += nodes_of(sub)
        for sub in getattr(e, "args", ()) or ():
            out += nodes_of(sub)
        return out

    lets = {d.name: d for d in ts.lets}
    parts: list[str] = []
    for lp in ts.loops:
        acts = [a for a in lp.actions if a.state == state]
        if not acts:
            continue
        a = acts[0]
        recs = {f"{lp.name}.{state}.rec", *a.history}
        up = down = 0
        if a.target in lets:
            for node in nodes_of(lets[a.target].expr):
                if (
                    isinstance(node, Call)
                    and node.fn in ("min", "max")
                    and len(node.args) > 1
                    and all(getattr(x, "name", None) in recs for x in node.args)
                ):
                    n = len(node.args) * lp.period
                    if node.fn == "min":
                        up = n
                    else:
                        down = n
        band = a.changes in lets and any(
            isinstance(n, Unary) and n.op == "not" for n in nodes_of(lets[a.changes].expr)
        )
        band = band or any(
            isinstance(n, Ite)
            and (getattr(n.then, "name", None) == state or getattr(n.other, "name", None) == state)
            for n in nodes_of(a.law)
        )
        w = within * tick
        mine: list[str] = []
        if down and up:
            mine.append(
                f"`{lp.name}` already has `stabilize up {up * tick:g}s` and `stabilize down "
                f"{down * tick:g}s`: lengthen them"
            )
        elif down:
            mine.append(
                f"`{lp.name}` already has `stabilize down {down * tick:g}s`: lengthen it or "
                "add `stabilize up`"
            )
        elif up:
            mine.append(
                f"`{lp.name}` already has `stabilize up {up * tick:g}s`: add "
                f"`stabilize down {w:g}s`"
            )
        else:
            mine.append(f"add a stabilization window to `{lp.name}` (`stabilize down {w:g}s`)")
        if band:
            mine.append("widen its tolerance band or deadband, which it already has")
        else:
            mine.append("add a tolerance band (`tolerance 10%`) or a deadband")
        if lp.cooldown > 1:
            mine.append(f"lengthen its cooldown (now {lp.cooldown * tick:g}s)")
        else:
            mine.append(f"add a cooldown (`cooldown {w:g}s`)")
        lag = [(s.delay, s.window) for s in lp.sensors if s.delay or s.window > 1]
        if lag:
            d, win = max(lag)
            what = [f"{d * tick:g}s delay"] if d else []
            what += [f"{win * tick:g}s window"] if win > 1 else []
            mine[-1] += f"; or shorten its measurement lag ({', '.join(what)})"
        parts.append("; ".join(mine))
    if not parts:
        return "add a stabilization window (`stabilize down`), a deadband or a cooldown"
    return "; ".join(parts)
