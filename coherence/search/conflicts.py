"""Conflict witnesses by falsification: runs the system can live through, in which one
loop's action makes another loop's objective materially worse.

A witness for the pair (A, B) is a run from the spec's initial state, with inputs within
their declared ranges (and slew), in which at some tick ``s`` loop A acts, and the
counterfactual from the same state at ``s`` in which A holds (:func:`hold_loop`: A does not
act for the next ``k`` ticks, everything else the same) is better for one of B's objectives
by more than its threshold (:mod:`coherence.ir.meaning`: the tolerance, and the floor below
which an operator would not notice) at some tick ``s + 1 .. s + k``.

How runs are found (all seeded, all NumPy, no solver):

1. the structured and random input patterns of :func:`coherence.search.patterns.input_patterns`
   are simulated from the initial state, all at once;
2. for each acting loop, the ticks at which it acts and moves its actuators the most in each
   run are the candidate starts; the counterfactuals of all of them are simulated at once (a
   run continued from another run's state at its tick, :func:`simulate`'s ``start_tick``);
3. every affected loop's objectives are compared on both windows; the candidate with the
   largest material effect is the witness;
4. pairs without one that came closest are handed to a cross-entropy search over
   piecewise-constant input sequences (:func:`_optimise`), which maximises the effect;
5. a witness is replayed on its own, from the initial state, before it is returned: the
   run and its counterfactual are simulated again as one scenario and judged again.

A run is "nominal" when its inputs were nominal up to the tick at which A acts, after tick 0
(the window starts on the spec's nominal run), "initial" otherwise. What this search does not find is not
proved absent: the caller reports such a pair as "no conflict found in N scenarios".
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from coherence.ir import meaning
from coherence.ir.deps import objectives_of
from coherence.ir.nodes import Expr, ObjectiveIR, TransitionSystem
from coherence.ir.transform import hold_loop
from coherence.search.patterns import input_patterns, leaves_of, piecewise
from coherence.simulate.engine import Trace, compile_expr, compiled, simulate

Array = NDArray[np.float64]
Pair = tuple[str, str]

RUN_VALUES = 4_000_000  # state values the pattern runs of one system may hold at once
MIN_RUN = 120  # ticks a pattern run lasts at least (or four hyperperiods)
MAX_RUN = 1200  # and at most
STARTS = 8  # candidate starts per run and acting loop: where it moves its actuators most
CE_PAIRS = 6  # pairs the optimiser takes, closest first
CE_GENERATIONS = 3
CE_POPULATION = 16
CE_ELITE = 4
CE_SEGMENTS = 6
CE_NEAR = 0.05  # a pair the patterns brought this close (effect / threshold) is optimised


@dataclass(frozen=True, slots=True)
class ConflictRun:
    """A replayed conflict: the run, the counterfactual, and the effect on B's objective."""

    actor: str
    affected: str
    objective: str
    pattern: str  # the input pattern, as a report prints it
    origin: str  # "nominal" (the window starts on the nominal run) or "initial"
    start_tick: int  # the tick of the run at which A acts and the two windows part
    tick: int  # ticks after ``start_tick`` at which the effect is largest
    effect: float  # how much worse, in the objective's canonical units (> threshold)
    threshold: float  # the objective's materiality threshold there
    acting: float  # the objective's value at ``start_tick + tick`` when A acts
    holding: float  # ... and when A holds
    change: str  # keep objectives: A's action "causes" or "deepens" a violation of the bound
    floor: float  # the objective's floor (the threshold is the larger of it and the tolerance)
    run: Trace = field(repr=False)  # the acting run, ticks 0 .. start_tick + k
    counterfactual: Trace = field(repr=False)  # A holding, from start_tick, k + 1 ticks

    @property
    def inputs(self) -> Array:
        return np.asarray(self.run.inputs[0])


@dataclass(frozen=True, slots=True)
class Effort:
    """What the search simulated: runs from the initial state, their length, and the
    counterfactual windows compared."""

    scenarios: int = 0
    ticks: int = 0
    windows: int = 0


@dataclass(frozen=True, slots=True)
class Falsification:
    found: Mapping[Pair, ConflictRun]
    effort: Effort
    closest: Mapping[Pair, float]  # the largest effect / threshold seen, for pairs not found
    spurious: int = 0  # candidates that did not reproduce on their own (a simulator bug)
    floors: Mapping[str, float] = field(default_factory=dict)  # every objective's floor


def run_ticks(ts: TransitionSystem, k: int, scenarios: int) -> int:
    """How long the pattern runs last: four hyperperiods (at least ``MIN_RUN`` ticks) plus
    the deepest window, within ``RUN_VALUES`` state values and ``MAX_RUN`` ticks."""
    want = max(4 * ts.hyperperiod, MIN_RUN) + k + 1
    width = max(len(ts.states) + len(ts.lets), 1)
    cap = max(RUN_VALUES // (width * max(scenarios, 1)), 2 * ts.hyperperiod + k + 1, k + 2)
    return int(min(want, cap, max(MAX_RUN, k + 2)))


def values(e: Expr, trace: Trace, start: NDArray[np.int64] | int = 0) -> Array:
    """``e`` at every tick of ``trace`` [S, T], the tick of the first being ``start``."""
    f = compile_expr(e)
    env = trace.env_all()
    env["__t"] = np.arange(trace.ticks)[None, :] + np.asarray(start).reshape(-1, 1)
    with np.errstate(all="ignore"):
        out = f(env)
    return np.array(np.broadcast_to(np.asarray(out, dtype=float), (trace.scenarios, trace.ticks)))


def _objective_effect(
    o: ObjectiveIR,
    acting: Trace,
    holding: Trace,
    start: NDArray[np.int64] | int,
    floor: float,
) -> tuple[Array, Array, Array, Array]:
    """(effect, threshold, acting value, holding value) per window and tick [C, k + 1]; for
    keep objectives the values are the objective's, the effect compares the violations."""
    va = values(o.expr, acting, start)
    vh = values(o.expr, holding, start)
    ba = bh = None
    if o.kind == "keep":
        assert o.bound is not None
        ba, bh = values(o.bound, acting, start), values(o.bound, holding, start)
    eff = meaning.effect(o, va, vh, ba, bh)
    thr = meaning.threshold(o, vh, floor)
    return eff, thr, va, vh


def _ratio(eff: Array, thr: Array) -> Array:
    """effect / threshold (0 where not finite or not worse): > 1 is material."""
    with np.errstate(all="ignore"):
        r = np.where(thr > 0, eff / np.where(thr > 0, thr, 1.0), np.where(eff > 0, np.inf, 0.0))
    r = np.where(np.isfinite(eff) & np.isfinite(thr), r, 0.0)
    r[:, 0] = 0.0  # the tick of the action itself: both windows start from the same state
    return np.asarray(r)


def floors(ts: TransitionSystem, nominal: Trace) -> dict[str, float]:
    """Every objective's floor, from the spec or from scenario 0 of ``nominal``."""
    out: dict[str, float] = {}
    for o in ts.objectives:
        v = values(o.expr, nominal)[0]
        b = values(o.bound, nominal)[0] if o.bound is not None else None
        out[o.name] = meaning.default_floor(o, v, b)
    return out


def _windows(base: Trace, rows: NDArray[np.int64], starts: NDArray[np.int64], k: int) -> Trace:
    """The acting windows: ticks ``start .. start + k`` of the given runs, one per row."""
    span = starts[:, None] + np.arange(k + 2)[None, :]
    r = rows[:, None]
    ts = base.ts
    params = {n: np.asarray(v)[rows] for n, v in base.params.items()}
    return Trace(
        ts,
        base.states[r, span],
        base.inputs[r, span[:, :-1]],
        base.lets[r, span[:, :-1]],
        base.clipped[r, span[:, :-1]],
        params,
    )


def _starts(
    ts: TransitionSystem, base: Trace, a: str, k: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Candidate (run, start) pairs for loop ``a``: ticks at which it acts and moves its
    actuators, the ``STARTS`` largest moves (relative to each actuator's range) per run."""
    lp = ts.loop(a)
    T = base.ticks
    fires = base.let(lp.fires)[:, : T - k] > 0.5
    move = np.zeros(fires.shape)
    for act in lp.actions:
        st = ts.state(act.state)
        x = base.state(act.state)
        span = st.hi - st.lo if np.isfinite(st.hi - st.lo) and st.hi > st.lo else 1.0
        with np.errstate(all="ignore"):
            d = np.abs(x[:, 1 : T - k + 1] - x[:, : T - k]) / span
        move += np.where(np.isfinite(d), d, 0.0)
    score = np.where(fires & (move > 0), move, 0.0)
    rows: list[int] = []
    starts: list[int] = []
    for s in range(score.shape[0]):
        hit = np.flatnonzero(score[s] > 0)
        if not hit.size:
            continue
        order = hit[np.argsort(-score[s, hit], kind="stable")][:STARTS]
        for t in sorted(order.tolist()):
            rows.append(s)
            starts.append(int(t))
    return np.array(rows, dtype=np.int64), np.array(starts, dtype=np.int64)


@dataclass(slots=True)
class _Best:
    ratio: float = 0.0
    row: int = -1
    start: int = -1
    tick: int = -1
    objective: str = ""


class _Judge:
    """Compares acting and holding windows for every affected loop of one acting loop."""

    def __init__(self, ts: TransitionSystem, floor: Mapping[str, float]) -> None:
        self.ts = ts
        self.floor = floor

    def judge(
        self,
        a: str,
        targets: Mapping[str, int],
        base: Trace,
        rows: NDArray[np.int64],
        starts: NDArray[np.int64],
    ) -> tuple[dict[str, _Best], dict[str, Array]]:
        """The best candidate per affected loop, and per affected loop the largest effect /
        threshold of each candidate window."""
        ts = self.ts
        out = {b: _Best() for b in targets}
        per = {b: np.zeros(rows.size) for b in targets}
        if not rows.size:
            return out, per
        k = max(targets.values())
        acting = _windows(base, rows, starts, k)
        held = compiled(hold_loop(ts, a))
        init = {n: acting.states[:, 0, i] for i, n in enumerate(ts.state_names)}
        params = {p.name: acting.params[p.name] for p in ts.params}
        with np.errstate(all="ignore"):
            holding = simulate(
                held, k + 1, inputs=acting.inputs, params=params, init=init, start_tick=starts
            )
        acting = acting.prefix(k + 1)
        for b, kb in targets.items():
            best = out[b]
            for o in objectives_of(ts, b):
                eff, thr, _, _ = _objective_effect(o, acting, holding, starts, self.floor[o.name])
                r = _ratio(eff, thr)[:, : kb + 1]
                per[b] = np.maximum(per[b], r.max(axis=1))
                c, j = np.unravel_index(int(np.argmax(r)), r.shape)
                if r[c, j] > best.ratio:
                    out[b] = best = _Best(
                        float(r[c, j]), int(rows[c]), int(starts[c]), int(j), o.name
                    )
        return out, per


def _replay(
    ts: TransitionSystem,
    a: str,
    b: str,
    k: int,
    inputs: Array,
    start: int,
    objective: str,
    floor: float,
    pattern: str,
    leaves: int,
) -> ConflictRun | None:
    """The candidate simulated again as one scenario, from the initial state; the witness if
    A's action is still materially worse for the objective there."""
    o = ts.objective(objective)
    with np.errstate(all="ignore"):
        run = simulate(ts, start + k + 1, inputs=inputs[None, : start + k + 1])
        init = {n: run.states[:, start, i] for i, n in enumerate(ts.state_names)}
        cf = simulate(
            compiled(hold_loop(ts, a)),
            k + 1,
            inputs=run.inputs[:, start : start + k + 1],
            init=init,
            start_tick=start,
        )
    window = _windows(run, np.zeros(1, dtype=np.int64), np.array([start]), k).prefix(k + 1)
    eff, thr, va, vh = _objective_effect(o, window, cf, start, floor)
    r = _ratio(eff, thr)
    j = int(np.argmax(r[0]))
    if not r[0, j] > 1.0:
        return None
    change = ""
    if o.kind == "keep":
        assert o.bound is not None
        bound = float(values(o.bound, cf, start)[0, j])
        held = float(meaning.violation(o, np.array([vh[0, j]]), np.array([bound]))[0])
        change = "deepens" if held > 0 else "causes"
    return ConflictRun(
        a,
        b,
        objective,
        pattern,
        "nominal" if 0 < start <= leaves else "initial",
        start,
        j,
        float(eff[0, j]),
        float(thr[0, j]),
        float(va[0, j]),
        float(vh[0, j]),
        change,
        floor,
        run,
        cf,
    )


def falsify(ts: TransitionSystem, pairs: Mapping[Pair, int], seed: int = 0) -> Falsification:
    """Search a witness for every pair ``(A, B) -> k`` (see the module docstring).

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", '''system s { tick 1s
    ...   input u in [0, 1] nominal 0.5
    ...   state x in [0, 100] init 10
    ...   state y in [0, 100] init 10
    ...   next x = x
    ...   loop up { every 1s actuates y by 1 objective maximize y }
    ...   loop down { every 1s actuates y by -0.5 objective minimize y } }''').systems[0]
    >>> r = falsify(ts, {("up", "down"): 2, ("down", "up"): 2})
    >>> sorted(r.found), r.found[("up", "down")].origin
    ([('down', 'up'), ('up', 'down')], 'nominal')
    """
    if not pairs:
        return Falsification({}, Effort(), {}, 0, {})
    kmax = max(pairs.values())
    probe = input_patterns(ts, max(4 * ts.hyperperiod, MIN_RUN) + kmax + 1, seed)
    T = run_ticks(ts, kmax, probe.count)
    pats = input_patterns(ts, T, seed)
    with np.errstate(all="ignore"):
        base = simulate(ts, T, inputs=pats.inputs)
    floor = floors(ts, base)
    judge = _Judge(ts, floor)
    by_actor: dict[str, dict[str, int]] = {}
    for (a, b), k in pairs.items():
        by_actor.setdefault(a, {})[b] = k
    best: dict[Pair, _Best] = {}
    windows = 0
    for a in sorted(by_actor):
        targets = by_actor[a]
        rows, starts = _starts(ts, base, a, max(targets.values()))
        got, _ = judge.judge(a, targets, base, rows, starts)
        windows += int(rows.size)
        for b, g in got.items():
            best[(a, b)] = g
    found: dict[Pair, ConflictRun] = {}
    spurious = 0
    for p in sorted(pairs):
        g = best[p]
        if g.ratio > 1.0:
            w = _replay(ts, p[0], p[1], pairs[p], np.asarray(base.inputs[g.row]), g.start,
                        g.objective, floor[g.objective], pats.names[g.row], pats.leaves[g.row])  # fmt: skip
            if w is not None:
                found[p] = w
            else:
                spurious += 1
    scenarios = pats.count
    # the closest pairs not found: a cross-entropy search over input sequences
    todo = sorted(
        (p for p in pairs if p not in found and best[p].ratio >= CE_NEAR),
        key=lambda p: (-best[p].ratio, p),
    )[:CE_PAIRS]
    for p in todo:
        w, n_runs, n_windows, ratio = _optimise(ts, p, pairs[p], T, floor, judge, seed)
        scenarios += n_runs
        windows += n_windows
        best[p].ratio = max(best[p].ratio, ratio)
        if w is not None:
            found[p] = w
    closest = {p: best[p].ratio for p in pairs if p not in found}
    return Falsification(found, Effort(scenarios, T, windows), closest, spurious, floor)


def _optimise(
    ts: TransitionSystem,
    pair: Pair,
    k: int,
    T: int,
    floor: Mapping[str, float],
    judge: _Judge,
    seed: int,
) -> tuple[ConflictRun | None, int, int, float]:
    """Cross-entropy search (Rubinstein & Kroese, *The Cross-Entropy Method*, 2004) over
    piecewise-constant inputs: ``CE_SEGMENTS`` levels per input, a Gaussian per level in
    ``[0, 1]`` of the input's range, refitted to the ``CE_ELITE`` runs with the largest
    effect on B, ``CE_GENERATIONS`` times. Returns the witness (or None), the runs and the
    windows it simulated, and the largest effect / threshold it saw."""
    a, b = pair
    nu = len(ts.inputs)
    if nu == 0:
        return None, 0, 0, 0.0
    rng = np.random.default_rng([seed, zlib.crc32(f"ce:{a}->{b}".encode())])
    mean = np.array([(u.nominal - u.lo) / (u.hi - u.lo) if u.hi > u.lo else 0.5 for u in ts.inputs])
    mu = np.broadcast_to(mean, (CE_SEGMENTS, nu)).copy()
    sigma = np.full((CE_SEGMENTS, nu), 0.35)
    runs = windows = 0
    top = 0.0
    for _ in range(CE_GENERATIONS):
        levels = np.clip(rng.normal(mu, sigma, (CE_POPULATION, CE_SEGMENTS, nu)), 0.0, 1.0)
        inputs = piecewise(ts, levels, T)
        with np.errstate(all="ignore"):
            base = simulate(ts, T, inputs=inputs)
        rows, starts = _starts(ts, base, a, k)
        runs += CE_POPULATION
        windows += int(rows.size)
        got, per = judge.judge(a, {b: k}, base, rows, starts)
        g = got[b]
        top = max(top, g.ratio)
        if g.ratio > 1.0:
            leaves = leaves_of(ts, np.asarray(base.inputs[g.row : g.row + 1]))[0]
            w = _replay(ts, a, b, k, np.asarray(base.inputs[g.row]), g.start, g.objective,
                        floor[g.objective], "input sequence found by optimisation", leaves)  # fmt: skip
            if w is not None:
                return w, runs, windows, top
        # each run's score: its best window's effect / threshold
        score = np.zeros(CE_POPULATION)
        if rows.size:
            np.maximum.at(score, rows, per[b])
        elite = np.argsort(-score, kind="stable")[:CE_ELITE]
        mu = levels[elite].mean(axis=0)
        sigma = np.maximum(levels[elite].std(axis=0), 0.05)
    return None, runs, windows, top
