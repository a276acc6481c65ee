"""The conflict analysis: one verdict for each ordered pair of loops.

:func:`check_all` decides, for each ordered pair of loops (A, B) where A's actuators reach
B's objectives or laws within ``k`` ticks (:mod:`coherence.ir.deps`), and each loop against
the objectives no loop owns, one cell of the objective-alignment matrix (:class:`Alignment`):
a conflict (a replayed run from the initial state in which A's action makes one of B's
objectives materially worse: :func:`coherence.search.conflicts.falsify`), aligned (proved),
or neither ("not found": no run found, no proof).

The proofs, over the reachable enclosure, cheapest first: interval bounds
(:func:`~coherence.intervals.alignment.holds_still`,
:func:`~coherence.intervals.alignment.aligned_by_intervals`, then the paired enclosure of
:func:`coherence.intervals.pairs.aligned_by_pairs`), then the solver tick by tick
(:class:`coherence.smt.alignment.ActorQuery`; over-approximation first, exact arithmetic where
its candidate does not replay). A solver model is a *candidate* only: its start is a state of
a box that no run was shown to reach, so it is never a finding; it stops the proof of that
pair, and the warm recheck (:func:`_recheck_warm`) may still prove it.

Budget: every coupled pair gets an even share of ``budget`` (at most three ``rlimit``); what
the pairs leave unspent then goes to the pairs their share stopped while they were proving
tick after tick. All limits are Z3's deterministic ``rlimit``, never wall-clock time. This
module only orchestrates: the solver is reached through :mod:`coherence.smt`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from coherence.intervals.alignment import IntervalRuns, aligned_by_intervals, holds_still
from coherence.intervals.arith import Interval
from coherence.intervals.pairs import PairRuns, aligned_by_pairs
from coherence.intervals.reach import reachable
from coherence.ir.deps import GLOBAL, coupling, influence, objectives_of
from coherence.ir.limits import LIMIT_CODE
from coherence.ir.nodes import TransitionSystem
from coherence.search.conflicts import ConflictRun, falsify
from coherence.simulate.settle import operating_point, settle_ticks
from coherence.smt.alignment import (
    ActorQuery,
    Encoding,
    Systems,
    Witness,
    initial_values,
    replay_pair,
    start_ranges,
)
from coherence.smt.encode import EXACT, OVERAPPROX, Encoder
from coherence.smt.options import SmtOptions
from coherence.smt.solver import Answer, Outcome, SolverStats, isolated
from coherence.smt.terms import EncodeError
from coherence.smt.unroll import param_values


class Alignment(enum.StrEnum):
    """A cell of the objective-alignment matrix: what is known of one ordered pair."""

    ALIGNED = "aligned"  # proved: no witness over the reachable enclosure within k ticks
    CONFLICT = "conflicting"  # a replayed run from the initial state or the nominal run
    NOT_FOUND = "not found"  # neither: no conflict in the scenarios searched, not proved
    UNCOUPLED = "uncoupled"  # no signal path within k ticks
    NO_OBJECTIVE = "no objective"


ALIGNED = Alignment.ALIGNED
CONFLICT = Alignment.CONFLICT
NOT_FOUND = Alignment.NOT_FOUND
UNCOUPLED = Alignment.UNCOUPLED
NO_OBJECTIVE = Alignment.NO_OBJECTIVE
UNKNOWN = "unknown"  # the solver's answer inside one pair's proof attempt, never a cell


@dataclass(frozen=True, slots=True)
class PairResult:
    """What is known of one ordered pair. ``witness`` is a reachable run (a conflict);
    ``candidate`` is what the proof attempt's solver left behind: a witness from a state of
    the over-approximation, which no simulated run was shown to reach (never a finding)."""

    actor: str
    affected: str
    verdict: str
    depth: int
    via: tuple[str, ...] = ()
    witness: ConflictRun | None = None
    reason: str = ""
    notes: tuple[str, ...] = field(default=())
    candidate: Witness | None = None
    scenarios: int = 0  # input sequences the falsification search simulated
    ticks: int = 0  # ... each this long


# ---- which pairs need a query ----------------------------------------------------------------


MAX_PROVED_PAIRS = 40
"""The coupled pairs whose alignment the analysis tries to prove (in the order of the loops):
each costs interval enclosures and solver queries, and a fleet of n loops has n(n - 1) pairs.
The falsification search still covers every pair; the rest are "not found" (unknown)."""

MAX_DEPTH = 16  # the default k never exceeds this: slow loops act at a symbolic phase anyway


def depth(ts: TransitionSystem, options: SmtOptions, a: str, b: str) -> int:
    """The pair's ``k``: ``conflict_depth``, or :func:`default_depth`."""
    return options.conflict_depth or default_depth(ts, a, b)


def search_depth(ts: TransitionSystem, options: SmtOptions, a: str, b: str) -> int:
    """How long the falsification search holds A in the counterfactual: three of the longer
    period, at least 10 ticks, at most ``MAX_DEPTH`` (and never less than the proof's k). An
    effect through a queue or a window builds up over several of A's actions; a run is
    cheap to look at where a proof of the same depth would not be."""
    pb = ts.loop(b).period if b != GLOBAL else 1
    deep = min(max(3 * max(ts.loop(a).period, pb) + 1, 10), MAX_DEPTH)
    return max(deep, depth(ts, options, a, b))


def default_depth(ts: TransitionSystem, a: str, b: str) -> int:
    """The longer of the two periods + 1 (at most ``MAX_DEPTH``)."""
    pb = ts.loop(b).period if b != GLOBAL else 1
    return min(max(ts.loop(a).period, pb) + 1, MAX_DEPTH)


# ---- the search -------------------------------------------------------------------------------


def pair_budget(options: SmtOptions) -> int:
    """The rlimit one pair's queries may spend in all."""
    return 3 * options.rlimit


Ask = Callable[..., Answer]


def scope_text(ts: TransitionSystem) -> str:
    """Where witnesses start and alignment proofs hold, in the words of the reports."""
    if reachable(ts) is not None:
        return (
            "the reachable enclosure (a box holding every state a run from the initial "
            "state reaches)"
        )
    return "the declared ranges"


class Search:
    """The conflict search over one system's pairs: queries shared per actor, the budget
    shared fairly (see the module docstring)."""

    def __init__(
        self,
        ts: TransitionSystem,
        options: SmtOptions,
        stats: SolverStats,
        op: dict[str, float],
        depths: Mapping[str, int],
        like: Search | None = None,
        floors: Mapping[str, float] | None = None,
    ) -> None:
        """``like``: a search of the same system whose start ranges, held systems and
        interval runs this one shares (they do not depend on the options)."""
        self.ts = ts
        self.options = options
        self.stats = stats
        self.op = op
        # every objective's floor (coherence.ir.meaning): a proof shows no effect beyond it
        self.floors: dict[str, float] = dict(floors or {})
        if floors is None and like is not None:
            self.floors = dict(like.floors)
        self.depths = dict(depths)  # per actor: the deepest k of its pairs
        self.left = options.conflict_budget  # rlimit left to the whole search
        self.spent: dict[tuple[str, str], int] = {}
        self.starved: set[tuple[str, str]] = set()  # stopped by their share, not the solver
        self.at_proof: dict[tuple[str, str], int] = {}  # spent when its last tick was proved
        self._encodings: dict[str, Encoding | EncodeError] = {}
        self._queries: dict[tuple[str, str], ActorQuery | EncodeError] = {}
        self._intervals: IntervalRuns | None = None
        self._pairs: dict[str, PairRuns] = {}  # per actor: both runs enclosed together
        self.ranges: dict[str, Interval]
        self.reachable: bool
        self.systems: Systems
        if like is not None:
            self.ranges, self.reachable = like.ranges, like.reachable
            self.systems = like.systems
            self._intervals = like._intervals
            self._pairs = like._pairs
        else:
            self.ranges, self.reachable = start_ranges(
                ts, param_values(Encoder(ts, OVERAPPROX, "s."), ts)
            )
            self.systems = Systems(ts)

    # ---- shared pieces ------------------------------------------------------------------------
    def encoding(self, mode: str) -> Encoding:
        """The shared encoding in ``mode`` (built once; an encoding error is remembered)."""
        if mode not in self._encodings:
            try:
                self._encodings[mode] = Encoding(
                    self.ts, mode, self.ranges, warm=self.options.warm_start
                )
            except EncodeError as exc:
                self._encodings[mode] = exc
        e = self._encodings[mode]
        if isinstance(e, EncodeError):
            raise e
        return e

    def query(self, a: str, mode: str) -> ActorQuery:
        """A's query in ``mode`` (built once; an encoding error is remembered and raised)."""
        key = (a, mode)
        if key not in self._queries:
            try:
                self._queries[key] = ActorQuery(
                    self.encoding(mode), a, self.depths[a], self.stats, self.floors
                )
            except EncodeError as exc:
                self._queries[key] = exc
        q = self._queries[key]
        if isinstance(q, EncodeError):
            raise q
        return q

    def proved(self, a: str, b: str) -> int:
        """How many ticks of the pair are proved conflict-free so far, in any mode."""
        queries = [q for (a2, _), q in self._queries.items() if a2 == a]
        return max((q.proved.get(b, 0) for q in queries if isinstance(q, ActorQuery)), default=0)

    def witness(self, q: ActorQuery, b: str, k: int, model: Any) -> Witness | None:
        """The model's scenario replayed in both runs; a witness if A's run is worse there."""
        sc = q.scenario(model, k, self.op)
        acting, holding, obj, tick = replay_pair(self.systems, q.a, b, k, sc)
        return Witness(sc, acting, holding, obj, tick) if tick >= 0 else None

    # ---- one pair -----------------------------------------------------------------------------
    def by_intervals(self, a: str, b: str, k: int) -> str:
        """Why interval bounds over the reachable enclosure prove the pair aligned, or "" when
        they do not (:func:`holds_still`, :func:`aligned_by_intervals`, then the paired
        enclosure of :func:`coherence.intervals.pairs.aligned_by_pairs`): no solver call, no share
        of the budget."""
        enc = reachable(self.ts)
        if enc is None:
            return ""
        if self._intervals is None:
            self._intervals = IntervalRuns(self.ts, enc.box, max(self.depths.values()))
        if holds_still(self._intervals, a, b, k):
            return f"`{a}` never moves its actuators in a reachable state (interval bounds)"
        if aligned_by_intervals(self._intervals, a, b, k, self.floors):
            return "proved by interval bounds over the reachable enclosure"
        if self._intervals.affordable:
            if a not in self._pairs:
                self._pairs[a] = PairRuns(self.ts, a, self._intervals.box, self.depths[a])
            if aligned_by_pairs(self._pairs[a], objectives_of(self.ts, b), k, self.floors):
                return (
                    "proved by paired interval bounds over the reachable enclosure (both runs "
                    "and their difference enclosed together)"
                )
        return ""

    def pair(self, a: str, b: str, k: int, via: tuple[str, ...], share: int) -> PairResult:
        """Search a witness tick by tick (1..k), spending at most ``share``; ``unsat`` at every
        tick proves alignment. Ticks proved before (an earlier round) are not asked again."""
        options = self.options
        budget = [share]
        key = (a, b)
        self.starved.discard(key)

        def ask(q: ActorQuery, ticks: list[int], cap: int | None = None) -> Answer:
            if budget[0] <= 0 or (cap is not None and cap <= 0):
                self.starved.add(key)
                return Answer(Outcome.UNKNOWN, "the pair's share of the resource budget is spent")
            limit = min(options.rlimit, budget[0], cap if cap is not None else budget[0])
            ans = q.ask(b, ticks, limit)
            budget[0] -= ans.rlimit_used
            self.left -= ans.rlimit_used
            self.spent[key] = self.spent.get(key, 0) + ans.rlimit_used
            if ans.unknown and limit < options.rlimit and ans.limit_hit:
                self.starved.add(key)
            return ans

        modes = [OVERAPPROX, EXACT] if options.mode == "auto" else [options.mode]
        spurious: dict[str, list[int]] = {}  # mode -> ticks whose candidate did not replay

        def notes() -> list[str]:
            return [
                f"{_mode(m)}: a candidate witness at tick{'s' if len(ticks) > 1 else ''} "
                f"{', '.join(map(str, ticks))} did not replay"
                for m, ticks in spurious.items()
            ]

        proved = self.proved(a, b)  # ticks 1..proved are proved conflict-free (in any mode)
        for j in range(proved + 1, k + 1):
            reasons: list[str] = []
            for m in modes:
                try:
                    q = self.query(a, m)
                    for i in range(q.proved.get(b, 0) + 1, j):
                        # proved by the over-approximation: exact arithmetic asks it again while
                        # that is cheap (what the solver learns there helps it at the next
                        # tick); the proof is a fact of the model either way
                        if m == EXACT:
                            ask(q, [i], cap=options.rlimit // 50)
                        q.exclude(b, i)
                except EncodeError as exc:
                    why = f"cannot encode the system: {exc}"
                    return PairResult(a, b, UNKNOWN, k, via, None, why, tuple(notes()))
                ans, w = self._tick(q, b, k, j, ask)
                if w is not None:  # a candidate from the enclosure: the proof fails here
                    return PairResult(a, b, CONFLICT, k, via, None, "", tuple(notes()), w)
                if ans.unsat:
                    q.exclude(b, j)
                    self.at_proof[key] = self.spent.get(key, 0)
                    break
                stuck = ans.reason if ans.unknown else "candidate witnesses did not replay"
                if ans.sat:
                    spurious.setdefault(m, []).append(j)
                reasons.append(f"{_mode(m)}, tick {j}: {stuck}")
            else:
                why = "; ".join(reasons)
                return PairResult(a, b, UNKNOWN, k, via, None, why, tuple(notes()))
        return PairResult(a, b, ALIGNED, k, via, None, "", tuple(notes()))

    def _tick(
        self, q: ActorQuery, b: str, k: int, j: int, ask: Ask
    ) -> tuple[Answer, Witness | None]:
        """Ask tick ``j``; replay each candidate. A candidate that does not replay refines an
        over-approximation (up to ``refinements`` times); the last answer is returned."""
        refinements = self.options.refinements if self.options.mode == OVERAPPROX else 0
        ans = ask(q, [j])
        refined = 0
        while ans.sat:
            w = self.witness(q, b, k, ans.model)
            if w is not None:
                return ans, w
            if not q.enc.relaxed or refined >= refinements or q.refine(ans.model) == 0:
                break
            refined += 1
            ans = ask(q, [j])
        return ans, None


def _to_finish(at_proof: int, spent: int, proved: int, k: int) -> int:
    """The rlimit a starved pair would take to finish: its ticks left at the rate it proved
    its first ``proved`` ticks (``at_proof`` spent on them). 0 (no estimate: more would only
    be burnt) when it proved none, or when the tick it is stuck at has already cost more
    than twice that rate."""
    if proved == 0 or at_proof == 0 or spent - at_proof > 2 * at_proof // proved:
        return 0
    return -(-at_proof * (k - proved) // proved)


def _mode(m: str) -> str:
    return "over-approximation" if m == OVERAPPROX else "exact arithmetic"


@isolated
def check_all(ts: TransitionSystem, options: SmtOptions, stats: SolverStats) -> list[PairResult]:
    """Every ordered pair of distinct loops, and every loop against the global objectives.

    A conflict is a run the system can live through: the falsification search
    (:func:`coherence.search.conflicts.falsify`) looks for one from the initial state, over
    input patterns and an optimiser, and replays it. The pairs it does not settle are then
    proved aligned where possible, over the reachable enclosure: interval bounds first, then
    the solver tick by tick, actor by actor (every pair gets ``budget / n``, at most
    :func:`pair_budget`; the rlimit left over goes to the pairs their share stopped while
    they were proving tick after tick, as much as :func:`_to_finish` says they need, twice
    over). A solver witness from the enclosure is a *candidate*, not a finding: its start is
    a state of a box that no simulated run was shown to reach; such a pair, like one the
    solver leaves undecided, is "not found" (no conflict in the scenarios searched, not
    proved), with the search's effort and the solver's reason.
    """
    targets = [lp.name for lp in ts.loops]
    if any(o.owner is None for o in ts.objectives):
        targets.append(GLOBAL)
    pairs = [(lp.name, b) for lp in ts.loops for b in targets if lp.name != b]
    out: dict[tuple[str, str], PairResult] = {}
    coupled: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {}
    reaches: dict[tuple[str, int], dict[str, int]] = {}
    deep: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {}
    for a, b in pairs:
        k = depth(ts, options, a, b)
        if not objectives_of(ts, b):
            out[(a, b)] = PairResult(a, b, NO_OBJECTIVE, k)
            continue
        kd = search_depth(ts, options, a, b)
        for kk in {k, kd}:
            if (a, kk) not in reaches:
                reaches[(a, kk)] = influence(ts, ts.loop(a).actuates, kk)
        via = coupling(ts, a, b, k, reaches[(a, k)])
        if via:
            coupled[(a, b)] = (k, via)
        via_deep = coupling(ts, a, b, kd, reaches[(a, kd)])
        if via_deep:
            deep[(a, b)] = (kd, via_deep)
        else:
            out[(a, b)] = PairResult(a, b, UNCOUPLED, k)
    if not deep:
        return [out[p] for p in pairs]
    # the search holds A longer than the proofs look (search_depth): a run is cheap to check
    found = falsify(ts, {p: kd for p, (kd, _) in deep.items()}, options.seed)
    n, T = found.effort.scenarios, found.effort.ticks
    for (a, b), w in found.found.items():
        kd, via = deep[(a, b)]
        coupled.pop((a, b), None)
        out[(a, b)] = PairResult(a, b, CONFLICT, kd, via, w, scenarios=n, ticks=T)
    for p in deep:
        if p not in out and p not in coupled:  # no path within the proof's k: nothing to prove
            out[p] = PairResult(p[0], p[1], UNCOUPLED, depth(ts, options, *p))
    if len(coupled) > MAX_PROVED_PAIRS:
        # a stated limit: the proofs of the pairs beyond it are not tried (each costs interval
        # enclosures of both runs and solver queries); they stay "not found", unknown
        why = (
            f"not proved: the conflict analysis tries to prove at most {MAX_PROVED_PAIRS} "
            f"coupled pairs of loops and this system has {len(coupled)} ({LIMIT_CODE})"
        )
        for p in list(coupled)[MAX_PROVED_PAIRS:]:
            k, via = coupled.pop(p)
            out[p] = PairResult(p[0], p[1], NOT_FOUND, k, via, None, why, scenarios=n, ticks=T)
    if coupled:
        depths: dict[str, int] = {}
        for (a, _), (k, _) in coupled.items():
            depths[a] = max(depths.get(a, 0), k)
        op = dict(operating_point(ts, settle_ticks(ts, options.settle)).state)
        search = Search(ts, options, stats, op, depths, floors=found.floors)
        proofs: dict[tuple[str, str], PairResult] = {}
        for (a, b), (k, via) in list(coupled.items()):
            why = search.by_intervals(a, b, k)
            if why:
                proofs[(a, b)] = PairResult(a, b, ALIGNED, k, via, None, why)
        todo = {p: v for p, v in coupled.items() if p not in proofs}
        if todo:
            cap = pair_budget(options)
            share = min(cap, options.conflict_budget // len(todo))
            for (a, b), (k, via) in todo.items():
                proofs[(a, b)] = search.pair(
                    a,
                    b,
                    k,
                    via,
                    share,
                )
            again = [p for p in todo if p in search.starved and proofs[p].verdict == UNKNOWN]
            for i, (a, b) in enumerate(again):
                k, via = todo[(a, b)]
                spent = search.spent.get((a, b), 0)
                need = _to_finish(search.at_proof.get((a, b), 0), spent, search.proved(a, b), k)
                more = min(cap - spent, search.left // (len(again) - i))
                if 0 < need <= more:  # twice the estimate where there is that much: ticks grow
                    proofs[(a, b)] = search.pair(
                        a,
                        b,
                        k,
                        via,
                        min(2 * need, more),
                    )
            _recheck_warm(search, todo, proofs)
        for p, r in proofs.items():
            out[p] = _settled(r, n, T)
    return [out[p] for p in pairs]


def _settled(r: PairResult, scenarios: int, ticks: int) -> PairResult:
    """A proof attempt's result as a cell of the matrix: aligned when proved; otherwise not
    found (the falsification search found no run), with what stopped the proof."""
    if r.verdict == ALIGNED:
        return replace(r, verdict=ALIGNED, scenarios=scenarios, ticks=ticks)
    if r.verdict == CONFLICT:
        why = (
            "not proved: the solver's witness starts from a state of the over-approximation "
            "that no simulated run reached"
        )
        return replace(
            r, verdict=NOT_FOUND, witness=None,
            reason=why, scenarios=scenarios, ticks=ticks,
        )  # fmt: skip
    return replace(
        r, verdict=NOT_FOUND, reason=f"not proved: {r.reason}" if r.reason else "not proved",
        scenarios=scenarios, ticks=ticks,
    )  # fmt: skip


def _recheck_warm(
    cold: Search,
    coupled: Mapping[tuple[str, str], tuple[int, tuple[str, ...]]],
    out: dict[tuple[str, str], PairResult],
) -> None:
    """Search the pairs the cold search found a witness for again, from the warm start.

    A witness of the cold search starts anywhere in the reachable enclosure, a box, whose
    corners pair values no run pairs. From the warm start (:class:`Encoding`, one tick after
    a state of the box, or the initial state) a proof still covers every reachable state, so
    a pair proved there is aligned: its cold witness started where no tick leads. Otherwise
    the cold result stays (a conflict stays a conflict: the conservative side). Undecided
    pairs are not rechecked: the warm-up constraints make their queries harder, not easier.
    The warm search runs on a budget of its own (``warm_budget``) shared by the pairs it
    rechecks, and only where the initial state is known exactly (otherwise the warm start is
    the cold one).
    """
    ts, options = cold.ts, cold.options
    if not options.warm_recheck or options.warm_start or initial_values(ts) is None:
        return
    todo = [p for p in coupled if out[p].verdict == CONFLICT]
    if not todo:
        return
    depths: dict[str, int] = {}
    for a, b in todo:
        depths[a] = max(depths.get(a, 0), coupled[(a, b)][0])
    search = Search(ts, replace(options, warm_start=True), cold.stats, cold.op, depths, cold)
    share = min(pair_budget(options), options.warm_budget // len(todo))
    for a, b in todo:
        k, via = coupled[(a, b)]
        found = out[(a, b)]
        warm = search.pair(
            a,
            b,
            k,
            via,
            share,
        )
        if warm.verdict == ALIGNED:
            why = "proved from the warm start (one tick after any state of the reachable enclosure)"
            out[(a, b)] = replace(warm, reason=warm.reason or why, notes=found.notes)
