"""Bad equilibria (metastability): self-sustaining states that violate a keep-objective.

A *bad equilibrium* is a state that the system returns to after one hyperperiod at nominal
input and at which some keep-objective is violated (:mod:`coherence.smt.equilibria`). A
candidate counts only when the simulator, started there with nominal input, *stays* bad: the
objective is still violated in each of the last five hyperperiods of a long run
(:func:`coherence.search.equilibria.confirm`; an unstable fixed point that float rounding
leaves is not a self-sustaining failure; it is excluded and the search goes on).

:func:`find` is the order of the work: the reachable enclosure's fixed points in intervals
(no solver), then the solver pinned to where simulation points (runs that stay bad), then per
mode one query of all open objectives, split per objective when it is undecided. A confirmed
bad equilibrium gets the good operating point and the smallest burst into it
(:func:`coherence.search.equilibria.trigger`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coherence.intervals.arith import Interval
from coherence.intervals.fixedpoint import contract, cover, never_violated
from coherence.ir.nodes import ObjectiveIR, TransitionSystem
from coherence.results import Status
from coherence.search.equilibria import (
    Trigger,
    confirm,
    hint_runs,
    hint_ticks,
    keep_objectives,
    simulated_hints,
    trigger,
)
from coherence.simulate.engine import Trace
from coherence.simulate.settle import operating_point, settle_ticks
from coherence.smt.encode import EXACT, OVERAPPROX
from coherence.smt.equilibria import FixedPointQuery
from coherence.smt.options import SmtOptions
from coherence.smt.solver import Outcome, SolverStats, isolated
from coherence.smt.terms import EncodeError

ATTEMPTS = 4  # candidates tried before giving up
JOINT = 4  # the query of several objectives at once gets 1/JOINT of the rlimit


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
    # with an unknown verdict: what the simulation tried without finding a self-sustaining
    # violation (evidence, never a pass)
    evidence: str = ""


@isolated
def find(ts: TransitionSystem, options: SmtOptions, stats: SolverStats) -> EquilibriumResult:
    """Search, confirm and explain a bad equilibrium (or prove there is none).

    First, without a solver, the reachable enclosure's fixed points in intervals: the
    contraction (:func:`contract`, :func:`never_violated`), then branch and bound
    (:func:`cover`); the objectives they prove drop out. Then the places simulation points at: nominal runs from perturbed and extreme states
    that stay bad end near a bad fixed point, and the solver is asked for one there. Then,
    per mode (over-approximation first), one query for all objectives not yet proved (on
    ``rlimit // JOINT`` when they are several: a fast path); if it is undecided, one query
    per objective (sharing the limit), so that those the solver can
    prove are proved and the exact mode only sees the rest.
    """
    keeps = keep_objectives(ts)
    if not keeps:
        return EquilibriumResult(Status.PROVED, "the system has no keep-objective to violate")
    modes = [OVERAPPROX, EXACT] if options.mode == "auto" else [options.mode]
    open_ = [o.name for o in keeps]  # objectives not proved yet
    box: dict[str, Interval] | None = None
    if options.intervals:
        # the solver's box stays the declared one: a contracted box changes the queries, and
        # nonlinear queries' time per rlimit unit varies by orders of magnitude between them
        con = contract(ts)
        if con is not None:
            if con.empty:
                return EquilibriumResult(
                    Status.PROVED,
                    "no reachable state is a fixed point at nominal input (interval "
                    f"contraction of the reachable enclosure, {con.rounds} rounds)",
                )
            never = never_violated(ts, keeps, con)
            open_ = [o for o in open_ if o not in never]
            if not open_:
                return EquilibriumResult(
                    Status.PROVED,
                    "no fixed point at nominal input violates a keep-objective: within the "
                    f"reachable enclosure every fixed point lies in a box ({con.rounds} rounds "
                    "of interval contraction) where none is violated",
                )
            cov = cover(ts, [o for o in keeps if o.name in open_], con.box)
            if cov is not None:
                if cov.empty:
                    return EquilibriumResult(
                        Status.PROVED,
                        "no reachable state is a fixed point at nominal input (branch and "
                        f"bound over {cov.boxes} boxes of the reachable enclosure)",
                    )
                open_ = [o for o in open_ if o not in cov.proved]
                if not open_:
                    return EquilibriumResult(
                        Status.PROVED,
                        "no fixed point at nominal input violates a keep-objective: branch "
                        f"and bound over {cov.boxes} boxes of the reachable enclosure left "
                        "none where one may be violated",
                    )
    search = _Search(ts, keeps, options, stats)
    hints = simulated_hints(ts, keeps, options)
    exhausted = False  # every over-approximate query ran out of its rlimit
    for m in modes:
        asked = len(search.reasons)
        try:
            q = FixedPointQuery(ts, keeps, m, box)
            if box is None:
                box = q.narrowed()
                if box is None:
                    return EquilibriumResult(
                        Status.PROVED, "no state within the declared ranges is a fixed point"
                    )
                if box != q.box:
                    q = FixedPointQuery(ts, keeps, m, box)
        except EncodeError as exc:
            return EquilibriumResult(Status.UNKNOWN, f"cannot encode the system: {exc}")
        if m == EXACT and OVERAPPROX in modes and not (q.enc.nonlinear or q.enc.relaxed):
            continue
        for p in search.blocked:
            q.block(p)
        for obj, point in hints:
            if obj in open_:
                hit = search.ask(q, [obj], options.rlimit, point)
                if isinstance(hit, EquilibriumResult):
                    return hit
        hints = []  # one mode is enough to pin a simulated point
        # after an over-approximation that ran out of its rlimit on every query, the exact
        # query of all objectives at once (the harder problem) is not asked: only the
        # objectives one by one, where a smaller query may still be decided
        if not (m == EXACT and exhausted and len(open_) > 1):
            # several objectives at once: a fast path, on a quarter of the limit (the joint
            # queries the library decides take at most 6% of it; one that runs out costs
            # several times more per unit than the per-objective queries that follow)
            joint = options.rlimit if len(open_) == 1 else max(options.rlimit // JOINT, 1)
            outcome = search.ask(q, open_, joint)
            if isinstance(outcome, EquilibriumResult):
                return outcome
            if outcome is Outcome.UNSAT:
                open_ = []
                break
        if len(open_) > 1 and not search.stopped:
            share = max(options.rlimit // len(open_), 1)
            still = []
            for o in open_:
                out = search.ask(q, [o], share)
                if isinstance(out, EquilibriumResult):
                    return out
                if out is not Outcome.UNSAT:
                    still.append(o)
            open_ = still
        if not open_ or search.stopped:
            break
        mine = search.exhausted[asked:]
        exhausted = m == OVERAPPROX and bool(mine) and all(mine)
    notes = tuple(search.notes)
    if not open_:
        if search.unstable:
            return EquilibriumResult(
                Status.HOLDS,
                f"{search.unstable} fixed point(s) violating an objective exist but do not "
                "sustain themselves in simulation",
                notes=notes,
            )
        return EquilibriumResult(
            Status.PROVED, "no fixed point at nominal input violates a keep-objective", notes=notes
        )
    why = "; ".join(dict.fromkeys(search.reasons)) or "not decided"
    n, T = hint_runs(ts), hint_ticks(ts)
    seen = (
        f"{len(hints)} of them stay in violation but were not confirmed as fixed points"
        if hints
        else "none of them settles in a violation"
    )
    evidence = (
        f"{n} simulated runs of {T} ticks at nominal input, from the operating point with a "
        f"state at a bound and from corners of the declared ranges: {seen}"
    )
    return EquilibriumResult(
        Status.UNKNOWN, f"{', '.join(open_)}: {why}", notes=notes, evidence=evidence
    )


class _Search:
    """Asks a query, confirms its candidates in simulation, refines or excludes the spurious."""

    def __init__(
        self,
        ts: TransitionSystem,
        keeps: list[ObjectiveIR],
        options: SmtOptions,
        stats: SolverStats,
    ) -> None:
        self.ts = ts
        self.keeps = keeps
        self.options = options
        self.stats = stats
        self.blocked: list[dict[str, float]] = []  # unstable fixed points, excluded everywhere
        self.unstable = 0
        self.notes: list[str] = []
        self.reasons: list[str] = []
        self.exhausted: list[bool] = []  # per reason: the call spent its rlimit

    @property
    def stopped(self) -> bool:
        return self.unstable >= ATTEMPTS

    def ask(
        self,
        q: FixedPointQuery,
        objectives: list[str],
        rlimit: int,
        near: Mapping[str, float] | None = None,
    ) -> EquilibriumResult | Outcome:
        """A confirmed bad equilibrium, or ``Outcome.UNSAT`` or ``Outcome.UNKNOWN``."""
        refined = 0
        while not self.stopped:
            ans = q.solve(objectives, rlimit, self.stats, near)
            if ans.unsat:
                return Outcome.UNSAT
            if ans.unknown:
                if near is None:
                    self._reason(f"{_mode(q.enc.mode)}: {ans.reason}", ans.limit_hit)
                return Outcome.UNKNOWN
            init = q.state(ans.model)
            obj, orbit = confirm(self.ts, self.keeps, init)
            if obj is not None:
                res = EquilibriumResult(
                    Status.FALSIFIED, "", obj.name, init, orbit, notes=tuple(self.notes)
                )
                return explain(self.ts, obj, res, self.options)
            if q.enc.relaxed:
                if refined < self.options.refinements and q.refine(ans.model):
                    refined += 1
                    continue
                if near is None:
                    self._reason(f"{_mode(q.enc.mode)}: candidates did not replay")
                return Outcome.UNKNOWN
            self.unstable += 1
            self.notes.append(
                "a fixed point violating an objective was found but the simulation "
                "leaves it: " + _describe(self.ts, init)
            )
            q.block(init)
            self.blocked.append(init)
        self._reason(f"{self.unstable} unstable bad fixed points; the search stopped")
        return Outcome.UNKNOWN

    def _reason(self, text: str, limit_hit: bool = False) -> None:
        self.reasons.append(text)
        self.exhausted.append(limit_hit)


def explain(
    ts: TransitionSystem, obj: ObjectiveIR, res: EquilibriumResult, options: SmtOptions
) -> EquilibriumResult:
    """Add the good operating point and the smallest trigger from it (a nominal run that
    has not settled is said so in the notes: the trigger starts from where it is)."""
    point = operating_point(ts, settle_ticks(ts, options.settle))
    good = dict(point.state)
    trig = trigger(ts, obj, good)
    notes = res.notes if point.settled else (*res.notes, point.reason)
    return EquilibriumResult(
        res.status, res.reason, res.objective, res.state, res.orbit, trig, good, notes
    )


def _describe(ts: TransitionSystem, init: Mapping[str, float]) -> str:
    parts = []
    for s in ts.states:
        if s.kind in ("plant", "actuator"):
            v = init[s.name] / (s.scale or 1.0)
            parts.append(f"{s.name}={v:.4g}")
    return ", ".join(parts)


def _mode(m: str) -> str:
    return "over-approximation" if m == OVERAPPROX else "exact arithmetic"
