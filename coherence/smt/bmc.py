"""Bounded model checking of ``always``, ``response`` and ``flapping`` from the initial state.

The violation of a requirement at depth ``d`` is encoded with exactly the trace semantics of
:mod:`coherence.simulate.requirements`:

- ``always φ``: ``not φ`` at tick ``d`` (``0 <= d < H``);
- ``after τ then φ within N``: ``τ`` at ``d - N`` and ``not φ`` at every tick ``d-N .. d``
  (``N <= d < H``), the tick the simulator reports being the deadline ``d``;
- ``no flapping of x max r within W``: with ``δ(t) = x(t+1) - x(t)``, its sign (``> 1e-12``,
  ``< -1e-12``, else 0) and the sign of the last non-zero ``δ`` before ``t``, a reversal at
  ``t`` when both are non-zero and differ; violated at ``d`` when the ticks
  ``max(0, d-W+1) .. d`` hold more than ``r`` reversals.

:class:`Run` is the one unrolling from the initial state (of the system, or of its
localization abstraction); :func:`bmc` asks it, per depth, for a violation there; a depth
proved safe is asserted, so deeper queries build on it. Every model is replayed in the
simulator; one that does not reproduce is never a finding. In ``auto`` mode a depth goes to
the linear over-approximation first (its ``unsat`` is a proof) and to exact arithmetic when
that gives a candidate that does not replay or gives up; the mode that decided goes first at
the next depth. A float-boundary model of the exact encoding is retried with a robustness
margin. Proofs for all time are in :mod:`coherence.smt.induction`; the order in which a
requirement's engines run is :mod:`coherence.formal.bounded`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import z3

from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import Status
from coherence.search.bounded import Counterexample, confirm
from coherence.smt.encode import EXACT, OVERAPPROX, Encoder
from coherence.smt.localize import Localization
from coherence.smt.options import SmtOptions
from coherence.smt.replay import Scenario, scenario_from_model
from coherence.smt.solver import (
    Answer,
    Outcome,
    SolverStats,
    assert_all,
    check,
    ctx,
    isolated,
    new_solver,
)
from coherence.smt.terms import Cond, EncodeError, Num, const, false, true
from coherence.smt.unroll import Inputs, Path, param_values

FLAP_EPS = Fraction(1, 10**12)  # the simulator's reversal threshold (requirements.reversals)


class Method(enum.Enum):
    """How a :class:`Result` was obtained: for the code that acts on it (the reason is for
    people)."""

    PATTERNS = "simulation of input patterns"
    INTERVALS = "interval reachability"
    DWELL = "dwell-time lemmas"
    LOCALIZED = "k-induction of the localization abstraction"
    INDUCTION = "k-induction"
    BMC = "bounded model checking"
    INVARIANTS = "k-induction with auxiliary invariants"


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
    method: Method = Method.BMC


def horizon_of(req: Requirement, options: SmtOptions) -> int:
    h = max(1, req.horizon)
    return min(h, options.horizon) if options.horizon else h


# ---- one unrolling from the initial state ---------------------------------------------------


class Run:
    """An unrolling of the system from its initial state in one mode, with its own solver.

    With ``local`` the run is of the localization abstraction (:func:`~coherence.smt.localize.localize`): only the
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
                reasons.append(f"{mode_name(m)}: {ans.reason}")
                continue
            if run.enc.relaxed:
                notes.append(
                    f"{mode_name(m)} candidate at depth {d} did not replay "
                    f"(after {refined} refinements): {why}"
                )
            reasons.append(f"{mode_name(m)}: {why}")
        if not proved:
            reason = "; ".join(reasons) or "no solver could decide"
            return Result(Status.UNKNOWN, d, f"depth {d}: {reason}", None, tuple(notes), spurious)
        for run in runs.values():
            run.safe(d)
    why = ""
    if horizon < max(1, req.horizon):
        why = f"checked to depth {horizon} of the requirement's {req.horizon} ticks"
    return Result(Status.HOLDS, horizon, why, None, tuple(notes), spurious)


def mode_name(mode: str) -> str:
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
    source = f"solver ({mode_name(run.mode)})"
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
