"""The interval alignment test: a pair of loops proved aligned by interval bounds alone.

It takes a transition system, a box of its states (the reachable enclosure), an acting loop A,
an affected loop B and a depth ``k``, and returns whether interval bounds show that no run
from the box is worse for B's objectives with A acting than with A holding its actuators
(:func:`coherence.ir.transform.hold_loop`), at any tick ``1..k`` and any start phase: either
A's actuators never move there (:func:`holds_still`) or B's objectives cannot move by more than
their threshold (:func:`aligned_by_intervals`). The runs are enclosed once per system and
shared by every pair (:class:`IntervalRuns`). ``True`` is a proof; ``False`` says nothing (the
conflict search then tries the paired enclosure, :func:`coherence.intervals.pairs.aligned_by_pairs`,
then the solver).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from coherence.intervals.arith import Env
from coherence.intervals.reach import evaluate_envs, interval_envs
from coherence.ir.deps import influence, objectives_of
from coherence.ir.nodes import Expr, ObjectiveIR, TransitionSystem, Var, names_in
from coherence.ir.transform import hold_loop

INTERVAL_WORK = 200_000  # state-ticks the interval runs of one system may take


class IntervalRuns:
    """Interval enclosures of the acting run and of each loop's counterfactual from a box,
    per start phase, to ``k`` ticks (:func:`coherence.intervals.reach.interval_envs`), each
    computed once and shared by every pair."""

    def __init__(
        self, ts: TransitionSystem, box: Mapping[str, tuple[float, float]], k: int
    ) -> None:
        self.ts = ts
        self.box = dict(box)
        self.k = k
        self._held: dict[str, TransitionSystem] = {}
        self._envs: dict[tuple[str | None, int], list[Env] | None] = {}

    @property
    def affordable(self) -> bool:
        ts = self.ts
        return ts.hyperperiod * (self.k + 1) * len(ts.states) <= INTERVAL_WORK

    def system(self, a: str | None) -> TransitionSystem:
        if a is None:
            return self.ts
        if a not in self._held:
            self._held[a] = hold_loop(self.ts, a)
        return self._held[a]

    def envs(self, a: str | None, phase: int) -> list[Env] | None:
        """``ts`` (``a`` None) or A's counterfactual, from the box at ``phase``."""
        key = (a, phase)
        if key not in self._envs:
            system = self.system(a)
            box = {s.name: self.box.get(s.name, (s.lo, s.hi)) for s in system.states}
            self._envs[key] = interval_envs(system, box, self.k, phase)
        return self._envs[key]

    def frames(
        self, a: str | None, phase: int, exprs: list[Expr]
    ) -> list[list[tuple[float, float]]] | None:
        envs = self.envs(a, phase)
        return None if envs is None else evaluate_envs(self.system(a), envs, phase, exprs)


def aligned_by_intervals(
    runs: IntervalRuns, a: str, b: str, k: int, floors: Mapping[str, float] | None = None
) -> bool:
    """Whether interval bounds alone show that no run from the box is worse for B's
    objectives with A acting than with A holding, at any tick ``1..k`` and any start phase.

    Both runs are enclosed from the same box (:class:`IntervalRuns`), each on its own, so the
    test is coarse: it succeeds when B's objective cannot move by more than its tolerance
    anywhere in the box (its whole range is narrower than the tolerance), or when a
    keep-objective cannot be violated at all in the acting run. Every comparison is made with
    a relative margin against float rounding, on the safe side.
    """
    ts = runs.ts
    fl = dict(floors or {})
    objs = objectives_of(ts, b)
    if not objs or not runs.affordable or k > runs.k:
        return False
    exprs: list[Expr] = []
    for o in objs:
        exprs.append(o.expr)
        if o.kind == "keep":
            assert o.bound is not None
            exprs.append(o.bound)
    for phase in range(ts.hyperperiod):
        f1 = runs.frames(None, phase, exprs)
        f2 = runs.frames(a, phase, exprs) if f1 is not None else None
        if f1 is None or f2 is None:
            return False
        for j in range(1, k + 1):
            i = 0
            for o in objs:
                e1, e2 = f1[j][i], f2[j][i]
                if o.kind == "keep":
                    ok = _keep_not_worse(o, e1, f1[j][i + 1], e2, f2[j][i + 1], fl.get(o.name))
                    i += 2
                else:
                    ok = _not_worse(o, e1, e2, fl.get(o.name))
                    i += 1
                if not ok:
                    return False
    return True


def holds_still(runs: IntervalRuns, a: str, b: str, k: int) -> bool:
    """Whether A's action changes nothing B's objectives read, from any start in the box.

    Interval bounds show that each of A's actuators stays at one value (its point in the
    box) at every tick ``0..k`` of the acting run, at every start phase; the holding run
    holds it at that same value. What else A's firing reaches (its stabilization history, its
    cooldown: :func:`influence` of A's firing with the actuators cut) must not be read by B's
    objectives. Then both runs agree on everything B's objectives read, at every tick.
    """
    ts, box = runs.ts, runs.box
    lp = ts.loop(a)
    acts = lp.actuates
    if any(box[x][0] != box[x][1] for x in acts) or not runs.affordable or k > runs.k:
        return False
    reads_b: set[str] = set()
    for o in objectives_of(ts, b):
        reads_b |= names_in(o.expr) | (names_in(o.bound) if o.bound is not None else set())
    cut = replace(
        ts,
        states=tuple(
            replace(st, update=Var(st.name)) if st.name in acts else st for st in ts.states
        ),
    )
    if set(influence(cut, [lp.fires], k)) - set(acts) & reads_b:
        return False
    for phase in range(ts.hyperperiod):
        frames = runs.frames(None, phase, [Var(x) for x in acts])
        if frames is None:
            return False
        for row in frames:
            for x, (lo, hi) in zip(acts, row, strict=True):
                if not (lo == hi == box[x][0]):
                    return False
    return True


def _pad(x: float) -> float:
    return 1e-9 * (abs(x) + 1e-9)


def _not_worse(
    o: ObjectiveIR, v1: tuple[float, float], v2: tuple[float, float], floor: float | None = None
) -> bool:
    """minimize: ``v1 - v2 <= T``; maximize: ``v2 - v1 <= T`` for every value in the
    intervals, ``T`` the threshold: the tolerance (relative to ``|v2|`` when relative), at
    least the objective's floor."""
    if not all(math.isfinite(x) for x in (*v1, *v2)):
        return False
    least = 0.0 if v2[0] <= 0.0 <= v2[1] else min(abs(v2[0]), abs(v2[1]))
    tol = o.tolerance * least if o.relative else o.tolerance
    tol = max(tol, floor or 0.0)
    diff = v1[1] - v2[0] if o.kind == "minimize" else v2[1] - v1[0]
    return diff + _pad(diff) + _pad(tol) <= tol


def _keep_not_worse(
    o: ObjectiveIR,
    e1: tuple[float, float],
    b1: tuple[float, float],
    e2: tuple[float, float],
    b2: tuple[float, float],
    floor: float | None = None,
) -> bool:
    """The violation amount ``max(0, -slack)`` of run 1 can never exceed run 2's by more than
    the objective's floor."""
    if not all(math.isfinite(x) for x in (*e1, *b1, *e2, *b2)):
        return False

    def tol(b: tuple[float, float], high: bool) -> float:
        if not o.relative:
            return o.tolerance
        if high:
            return o.tolerance * max(abs(b[0]), abs(b[1]))
        return o.tolerance * (0.0 if b[0] <= 0.0 <= b[1] else min(abs(b[0]), abs(b[1])))

    if o.cmp in ("<=", "<"):
        slack1_lo = b1[0] + tol(b1, False) - e1[1]
        slack2_hi = b2[1] + tol(b2, True) - e2[0]
    else:
        slack1_lo = e1[0] - (b1[1] - tol(b1, False))
        slack2_hi = e2[1] - (b2[0] - tol(b2, True))
    amount1_hi = max(0.0, -slack1_lo)
    amount2_lo = max(0.0, -slack2_hi)
    if amount1_hi == 0.0 and slack1_lo - _pad(slack1_lo) > 0.0:
        return True  # the acting run never violates it
    return amount1_hi + _pad(amount1_hi) <= amount2_lo - _pad(amount2_lo) + (floor or 0.0)
