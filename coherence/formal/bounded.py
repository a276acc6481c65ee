"""The strategy of a bounded requirement (``always``, ``response``, ``flapping``), as data.

:data:`BOUNDED` lists the steps in the order they run, like a compiler's pass list::

    BOUNDED = (patterns, intervals, dwell, localized, induction, bmc, invariants)

Each step is a plain function ``(system, requirement, options, context) -> Result | GO_ON``:
a :class:`~coherence.smt.bmc.Result` is the requirement's verdict and ends the strategy;
:data:`GO_ON` hands on to the next step, with what the step learnt written in the
:class:`Context` (the interval reachability outcome, the bounded answer). :func:`check_bounded`
is the one loop that runs them. The steps:

- ``patterns``: simulated input patterns (:mod:`coherence.search.bounded`); a violation is a
  finding, with its simulator trace;
- ``intervals``: interval reachability from the initial state
  (:mod:`coherence.intervals.reach`): a proof for all time when the enclosure returns into
  itself; "holds to the horizon" is kept for the steps below;
- ``dwell`` (flapping): dwell-time lemmas of the shaping alone
  (:func:`~coherence.smt.induction.prove_dwell`);
- ``localized`` (flapping, ``always``): k-induction with the control laws abstracted
  (:func:`~coherence.smt.induction.prove_localized`);
- ``induction`` (``always``): k-induction, its base case by the intervals or BMC;
- ``bmc``: bounded model checking to the horizon (:func:`~coherence.smt.bmc.bmc`), or the
  intervals' answer; a violation ends the strategy, otherwise its answer is the
  requirement's unless a later step strengthens it;
- ``invariants`` (``always``, with ``--invariants``): k-induction with auxiliary invariants,
  last, so that BMC's answers do not depend on them.

Each verdict says how it was obtained (:attr:`~coherence.smt.bmc.Result.method` and its
reason). The solver work is in :mod:`coherence.smt`; nothing here imports z3.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from coherence.intervals.reach import ReachOutcome, check_reach
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import Status
from coherence.search.bounded import evidence, falsify_by_patterns
from coherence.smt.bmc import Method, Result, horizon_of
from coherence.smt.bmc import bmc as bounded_model_check
from coherence.smt.induction import (
    k_induction,
    k_induction_with_invariants,
    prove_dwell,
    prove_localized,
)
from coherence.smt.options import SmtOptions
from coherence.smt.solver import SolverStats, isolated


class GoOn(enum.Enum):
    """A step's answer when it has no verdict: the next step runs."""

    GO_ON = "go on"


GO_ON: Final = GoOn.GO_ON

NOT_RUN: Final = ReachOutcome("unknown", 0, 0, 0, "")  # interval reachability not tried


@dataclass(slots=True)
class Context:
    """What the steps of one requirement share: fixed at the start, or found by a step for
    the steps after it."""

    stats: SolverStats
    horizon: int  # the depth of the unrolling: the requirement's horizon, capped by the options
    capped: Requirement  # the requirement with that horizon
    reached: ReachOutcome = NOT_RUN  # interval reachability from the initial state
    bounded: Result | None = None  # the bounded answer (BMC, or the intervals to the horizon)


Step = Callable[[TransitionSystem, Requirement, SmtOptions, Context], "Result | GoOn"]


def patterns(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, ctx: Context
) -> Result | GoOn:
    """A violation among the simulated input patterns, over the capped horizon, then over the
    requirement's own."""
    if not options.patterns:
        return GO_ON
    cex = falsify_by_patterns(ts, ctx.capped, ctx.horizon, options.seed, options.margin)
    if cex is None and ctx.horizon < max(1, req.horizon):
        # the cap bounds the solver's unrolling, not the requirement: a simulated
        # violation within the requirement's own horizon is a finding all the same
        # (and no proof for all time, which the steps below would try, can exist)
        cex = falsify_by_patterns(ts, req, req.horizon, options.seed, options.margin)
    if cex is None:
        return GO_ON
    return Result(Status.FALSIFIED, cex.tick, "", cex, method=Method.PATTERNS)


def intervals(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, ctx: Context
) -> Result | GoOn:
    """Interval reachability from the initial state: a proof for all time, or what holds to
    the horizon (kept in the context)."""
    if options.intervals:
        ctx.reached = check_reach(ts, ctx.capped, ctx.horizon)
    if ctx.reached.status == "proved":
        return Result(Status.PROVED, ctx.horizon, ctx.reached.detail, method=Method.INTERVALS)
    return GO_ON


def dwell(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, ctx: Context
) -> Result | GoOn:
    """Flapping: dwell times of the shaping alone; a proof for all time, or nothing."""
    if req.kind != "flapping":
        return GO_ON
    proof, _why = prove_dwell(ts, req, options, ctx.stats)
    return GO_ON if proof is None else proof


def localized(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, ctx: Context
) -> Result | GoOn:
    """Flapping and ``always``: the control laws abstracted; a proof from the shaping alone,
    or nothing."""
    if req.kind not in ("flapping", "always"):
        return GO_ON
    proof, _why = prove_localized(ts, req, options, ctx.stats)
    return GO_ON if proof is None else proof


def induction(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, ctx: Context
) -> Result | GoOn:
    """``always``: k-induction; the base case (no violation in ticks ``0..k-1`` from the
    initial state) by interval reachability when it reaches ``k``, else by BMC. A violation
    in the base case ends the strategy."""
    if req.kind != "always":
        return GO_ON
    k, _why = k_induction(ts, req, options, ctx.stats)
    if k is None:
        return GO_ON
    by_intervals = ctx.reached.status == "holds"
    if by_intervals and ctx.horizon >= k:
        base = Result(Status.HOLDS, k, ctx.reached.detail, method=Method.INTERVALS)
    else:
        base = bounded_model_check(ts, req, options, ctx.stats, depth=k)
    if base.status is Status.HOLDS:
        return Result(
            Status.PROVED,
            ctx.horizon,
            f"{k}-inductive (k-induction; base case: "
            f"{'interval reachability' if by_intervals else 'BMC'})",
            None,
            base.notes,
            base.spurious,
            k,
            method=Method.INDUCTION,
        )
    if base.status is Status.FALSIFIED:
        return base
    return GO_ON


def bmc(ts: TransitionSystem, req: Requirement, options: SmtOptions, ctx: Context) -> Result | GoOn:
    """Bounded model checking to the horizon, unless interval reachability already holds
    there. A violation ends the strategy; any other answer is kept in the context, with
    what the patterns simulated as evidence of an unknown."""
    reached = ctx.reached
    if reached.status == "holds":
        why = reached.detail
        if ctx.horizon < max(1, req.horizon):
            why += f"; checked to depth {ctx.horizon} of the requirement's {req.horizon} ticks"
        res = Result(Status.HOLDS, ctx.horizon, why, method=Method.INTERVALS)
    else:
        res = bounded_model_check(ts, req, options, ctx.stats)
        if res.status is Status.UNKNOWN and reached.detail:
            res = replace(res, notes=(*res.notes, f"interval reachability: {reached.detail}"))
    if res.status is Status.FALSIFIED:
        return res
    if options.patterns and res.status is Status.UNKNOWN:
        res = replace(res, evidence=evidence(ts, req, options.seed))
    ctx.bounded = res
    return GO_ON


def invariants(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, ctx: Context
) -> Result | GoOn:
    """``always`` with ``options.invariants``: k-induction strengthened with auxiliary
    invariants; its base case by what ran before (when it reached ``k``) or BMC."""
    res = ctx.bounded
    if not options.invariants or req.kind != "always" or res is None:
        return GO_ON
    if res.status not in (Status.HOLDS, Status.UNKNOWN):
        return GO_ON
    k, inv = k_induction_with_invariants(ts, req, options, ctx.stats)
    if k is None or inv is None:
        return GO_ON
    base = res if res.depth >= k else bounded_model_check(ts, req, options, ctx.stats, depth=k)
    if base.status is Status.FALSIFIED:
        return base
    if base.status is Status.HOLDS or base.depth >= k:
        src = "interval reachability" if ctx.reached.status == "holds" else "BMC"
        return Result(
            Status.PROVED,
            ctx.horizon,
            f"{k}-inductive with {len(inv)} auxiliary invariants (Houdini over "
            f"{inv.mined} mined candidates; base case: {src})",
            None,
            res.notes,
            res.spurious,
            k,
            method=Method.INVARIANTS,
        )
    return GO_ON


BOUNDED: Final[tuple[Step, ...]] = (
    patterns,
    intervals,
    dwell,
    localized,
    induction,
    bmc,
    invariants,
)


@isolated
def check_bounded(
    ts: TransitionSystem,
    req: Requirement,
    options: SmtOptions,
    stats: SolverStats,
    strategy: tuple[Step, ...] = BOUNDED,
) -> Result:
    """The status of an always / response / flapping requirement: the steps of ``strategy``
    in order, until one gives a verdict; else the bounded answer (``bmc``'s).

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", "system s { tick 1s input u in [0, 1] nominal 0 "
    ...                   "state x in [0, 10] init 0 next x = min(x + u, 5) "
    ...                   "require always x <= 5 for 20 ticks }").systems[0]
    >>> res = check_bounded(ts, ts.requirements[0], SmtOptions(), SolverStats())
    >>> res.status.value, res.method.name
    ('proved', 'INTERVALS')
    """
    horizon = horizon_of(req, options)
    ctx = Context(stats, horizon, replace(req, horizon=horizon))
    for step in strategy:
        got = step(ts, req, options, ctx)
        if isinstance(got, Result):
            return got
    if ctx.bounded is None:
        raise ValueError("the strategy has no step that gives a bounded answer (bmc)")
    return ctx.bounded
