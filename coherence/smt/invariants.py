"""Auxiliary invariants for k-induction: candidates mined from simulation, kept by Houdini.

An ``always`` requirement that holds because of a relation between states (a clock cap
against the replica count, a queue against the workers that drain it) is rarely inductive on
its own: the induction step starts from any state within the declared bounds, and most of
those states are unreachable. This module strengthens the step with auxiliary invariants.

1. **Candidates** (:func:`mine`) come from seeded simulations from the initial state (random
   piecewise-constant admissible inputs, the structured input patterns, uncertain parameters
   sampled): per-state bounds tightened from the declared ones (two margins), bounds of the
   lets the requirement and the updates read, linear relations ``x - a*y <= b`` over pairs of
   states and lets that occur together (in the requirement, or in the support of one state's
   update), with slopes from the edges of the observed points' convex hull and ``b`` the upper
   envelope plus a margin, and the requirement itself. Every candidate holds on every
   simulated point; their number is capped.
2. **Houdini** (:func:`houdini`): candidates that fail at the initial state (any input and
   parameter) are dropped; then, from a free start (any state within the declared bounds and
   the candidates' box, any phase, any input), all remaining candidates are assumed at tick 0
   and checked at tick 1; those a model violates are dropped, and the check is repeated to a
   fixpoint. A query the solver cannot decide drops what it could not settle (conservative).
   The whole attempt spends a fixed rlimit (deterministic). In ``auto`` and ``overapprox``
   mode the checks are in the linear over-approximation, whose ``unsat`` is a proof.
3. :func:`coherence.smt.induction.k_induction_with_invariants` runs the k-induction step of
   the requirement with the surviving invariants assumed at every tick (and their per-state
   bounds as the start box).

Soundness: the surviving set ``I`` holds at the initial state (checked for every input and
parameter) and is inductive relative to itself (each member holds at tick 1 of every
defined step from a state satisfying all of ``I``), so every state of a run whose operations
are defined satisfies ``I``; the k-induction step proves the requirement and definedness
together, so restricting its start to ``I`` removes only unreachable states.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import z3
from numpy.typing import NDArray

from coherence.intervals.arith import Interval
from coherence.ir.integers import integer_states
from coherence.ir.nodes import (
    Expr,
    Requirement,
    TransitionSystem,
    names_in,
)
from coherence.search.bounded import pattern_inputs
from coherence.simulate.engine import simulate
from coherence.smt.encode import EXACT, OVERAPPROX, Encoder
from coherence.smt.options import SmtOptions
from coherence.smt.solver import (
    Answer,
    Outcome,
    SolverStats,
    assert_all,
    check,
    ctx,
    new_solver,
)
from coherence.smt.terms import Cond, EncodeError, Num, SymbolicPhase, const
from coherence.smt.unroll import Inputs, Path, free_start, param_values

F = NDArray[np.float64]

MAX_CANDIDATES = 240  # a cap on the candidates one requirement gets
BOUND_MARGINS = (0.02, 0.25, 1.0)  # per-state bounds: fractions of the observed span added
RELATION_MARGIN = 0.02  # relations: fraction of the span of x - a*y added
SLOPES_PER_SIDE = 2  # hull-edge slopes per pair and side, besides the least-squares one


@dataclass(frozen=True, slots=True)
class Candidate:
    """``sum(c * v for v, c in coeffs) <= bound`` over states and lets of one tick, or
    (``expr`` set) the requirement's own condition."""

    coeffs: tuple[tuple[str, Fraction], ...]
    bound: Fraction
    text: str
    expr: Expr | None = None

    @property
    def state_bound(self) -> tuple[str, bool, Fraction] | None:
        """``(state, upper, value)`` when this is a bound of one variable."""
        if self.expr is None and len(self.coeffs) == 1:
            name, c = self.coeffs[0]
            if c == 1:
                return name, True, self.bound
            if c == -1:
                return name, False, -self.bound
        return None


@dataclass(frozen=True, slots=True)
class Invariants:
    """A set of candidates proved invariant (initial and inductive) for one system."""

    cands: tuple[Candidate, ...]
    box: dict[str, Interval] = field(default_factory=dict)
    mined: int = 0  # candidates before Houdini
    rounds: int = 0  # Houdini iterations

    def __len__(self) -> int:
        return len(self.cands)


# ---- candidates -------------------------------------------------------------------------------


def _support(e: Expr, lets: dict[str, Expr], memo: dict[str, set[str]]) -> set[str]:
    """The states and inputs ``e`` depends on, through lets."""
    out: set[str] = set()
    for n in names_in(e):
        if n in lets:
            if n not in memo:
                memo[n] = set()  # lets are acyclic; guards recursion anyway
                memo[n] = _support(lets[n], lets, memo)
            out |= memo[n]
        else:
            out.add(n)
    return out


def _short(x: float, up: bool) -> Fraction:
    """A short rational at or beyond ``x`` (above when ``up``)."""
    if x == 0.0:
        return Fraction(0)
    mag = 10.0 ** (math.floor(math.log10(abs(x))) - 5)
    q = (math.ceil(x / mag) if up else math.floor(x / mag)) * mag
    fr = Fraction(q).limit_denominator(10**9)
    exact = Fraction(x)
    if up and fr < exact:
        fr = exact
    if not up and fr > exact:
        fr = exact
    return fr


def _slope(a: float) -> Fraction:
    """A short rational slope (three significant digits)."""
    if a == 0.0 or not math.isfinite(a):
        return Fraction(0)
    mag = 10.0 ** (math.floor(math.log10(abs(a))) - 2)
    return Fraction(round(a / mag) * mag).limit_denominator(10**6)


def _hull_slopes(y: F, x: F, upper: bool) -> list[float]:
    """Slopes of the longest edges of the upper (lower) hull of the points ``(y, x)``."""
    if y.size < 2 or np.ptp(y) == 0.0:
        return []
    bins = 48
    edges = np.linspace(float(y.min()), float(y.max()), bins + 1)
    idx = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, bins - 1)
    pts: list[tuple[float, float]] = []
    for b in range(bins):
        sel = idx == b
        if not sel.any():
            continue
        xs, ys = x[sel], y[sel]
        j = int(np.argmax(xs) if upper else np.argmin(xs))
        pts.append((float(ys[j]), float(xs[j])))
    pts.sort()
    hull: list[tuple[float, float]] = []
    for p in pts:  # monotone chain: keep right turns (upper) or left turns (lower)
        while len(hull) >= 2:
            (y1, x1), (y2, x2) = hull[-2], hull[-1]
            cross = (y2 - y1) * (p[1] - x1) - (x2 - x1) * (p[0] - y1)
            if (cross >= 0) if upper else (cross <= 0):
                hull.pop()
            else:
                break
        hull.append(p)
    segs = [
        (b[0] - a[0], (b[1] - a[1]) / (b[0] - a[0]))
        for a, b in itertools.pairwise(hull)
        if b[0] > a[0]
    ]
    segs.sort(key=lambda s: -s[0])
    return [s for _, s in segs[:SLOPES_PER_SIDE]]


def _inputs(ts: TransitionSystem, ticks: int, held: bool, seed: int, runs: int) -> F:
    """Random piecewise-constant admissible inputs ``[runs, ticks, n]`` (corners often)."""
    n = len(ts.inputs)
    lo = np.array([u.lo for u in ts.inputs])
    hi = np.array([u.hi for u in ts.inputs])
    rng = np.random.default_rng(seed + 7919)
    pats = [pattern_inputs(ts, ticks, held, seed)]
    out = np.empty((runs, ticks, n))
    for s in range(runs):
        t = 0
        while t < ticks:
            length = ticks if held else int(rng.integers(1, max(2, min(60, ticks)) + 1))
            if rng.random() < 0.4:
                v = np.where(rng.random(n) < 0.5, lo, hi)
            else:
                v = lo + (hi - lo) * rng.random(n)
            out[s, t : t + length] = v
            t += length
    pats.append(out)
    return np.concatenate(pats)


def _simulate(ts: TransitionSystem, req: Requirement, ticks: int, seed: int) -> Any:
    held = req.inputs == "held"
    inputs = _inputs(ts, ticks, held, seed, 96)
    s = inputs.shape[0]
    rng = np.random.default_rng(seed + 104729)
    params: dict[str, F] = {}
    for p in ts.params:
        if not p.internal and p.lo < p.hi:
            v: F = np.asarray(p.lo + (p.hi - p.lo) * rng.random(s), dtype=np.float64)
            v[:3] = (p.value, p.lo, p.hi)  # the declared value and both ends first
            params[p.name] = v
    with np.errstate(all="ignore"):
        return simulate(ts, ticks, inputs=inputs, params=params or None)


def mine(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, ticks: int
) -> list[Candidate]:
    """Candidate invariants that hold on every point of seeded simulations from the start."""
    trace = _simulate(ts, req, ticks, options.seed)
    lets = {d.name: d.expr for d in ts.lets}
    states = {s.name: s for s in ts.states}
    values: dict[str, F] = {}
    for i, s in enumerate(ts.states):
        values[s.name] = trace.states[:, :-1, i].ravel()
    for k, d in enumerate(ts.lets):
        values[d.name] = trace.lets[:, :, k].ravel()

    def ok(name: str) -> bool:
        v = values.get(name)
        if v is None or not bool(np.all(np.isfinite(v))):
            return False
        # conditions (0/1 lets) carry no useful linear relation
        return name not in lets or not bool(np.all((v == 0.0) | (v == 1.0)))

    main = [s.name for s in ts.states if s.kind in ("plant", "actuator")]
    out: list[Candidate] = []
    seen: set[tuple[tuple[tuple[str, Fraction], ...], Fraction]] = set()

    def add(coeffs: tuple[tuple[str, Fraction], ...], bound: Fraction, text: str) -> None:
        key = (coeffs, bound)
        if key not in seen:
            seen.add(key)
            out.append(Candidate(coeffs, bound, text))

    assert req.cond is not None
    out.append(Candidate((), Fraction(0), f"the requirement {req.text}", req.cond))
    # per-state bounds (registers and history too: they bound what a loop can set)
    for s in ts.states:
        if not ok(s.name):
            continue
        v = values[s.name]
        vlo, vhi = float(v.min()), float(v.max())
        span = max(vhi - vlo, 1e-6 * max(1.0, abs(vlo), abs(vhi)))
        for m in BOUND_MARGINS:
            hi = vhi + m * span
            lo = vlo - m * span
            if s.integer:
                hi, lo = math.floor(hi), math.ceil(lo)
            if hi < s.hi:
                add(((s.name, Fraction(1)),), _short(hi, True), f"{s.name} <= {hi:.6g}")
            if lo > s.lo:
                add(((s.name, Fraction(-1)),), -_short(lo, False), f"{s.name} >= {lo:.6g}")
    # the lets the requirement and the updates read, and pairs that occur together
    memo: dict[str, set[str]] = {}
    words: list[str] = [n for n in sorted(names_in(req.cond)) if n in lets or n in states]
    groups: list[list[str]] = [[n for n in words if n in lets or n in main]]
    req_states = sorted(_support(req.cond, lets, memo) & set(main))
    groups[0] += [n for n in req_states if n not in groups[0]]
    for name in main:
        upd = states[name].update
        sup = sorted((_support(upd, lets, memo) & set(main)) | {name})
        direct = sorted(n for n in names_in(upd) if n in lets)
        groups.append(sup + direct)
        words += [n for n in direct if n not in words]
    for name in words:
        if name in lets and ok(name):
            v = values[name]
            vlo, vhi = float(v.min()), float(v.max())
            span = max(vhi - vlo, 1e-6 * max(1.0, abs(vlo), abs(vhi)))
            add(((name, Fraction(1)),), _short(vhi + 0.05 * span, True), f"{name} <= {vhi:.6g}")
            add(((name, Fraction(-1)),), -_short(vlo - 0.05 * span, False), f"{name} >= {vlo:.6g}")
    pairs: list[tuple[str, str]] = []
    for g in groups:
        g = [n for n in dict.fromkeys(g) if ok(n)]
        for i, x in enumerate(g):
            for y in g[i + 1 :]:
                if (x, y) not in pairs and (y, x) not in pairs:
                    pairs.append((x, y))
    for x, y in pairs:
        if len(out) >= MAX_CANDIDATES:
            break
        _relations(values[x], values[y], x, y, add)
    return out[:MAX_CANDIDATES]


def _relations(xv: F, yv: F, x: str, y: str, add: Any) -> None:
    """``x - a*y <= b`` and ``x - a*y >= b`` for a few slopes ``a``: upper/lower envelopes."""
    if np.ptp(yv) == 0.0 or np.ptp(xv) == 0.0:
        return
    # subsample (deterministically) for the slopes; the offsets use every point
    step = max(1, xv.size // 20000)
    xs, ys = xv[::step], yv[::step]
    ls = float(np.polyfit(ys, xs, 1)[0]) if ys.size > 2 else 0.0
    for upper in (True, False):
        slopes = [ls, *_hull_slopes(ys, xs, upper)]
        done: set[Fraction] = set()
        for a in slopes:
            q = _slope(a)
            if q == 0 or q in done:
                continue
            done.add(q)
            r = xv - float(q) * yv
            rlo, rhi = float(r.min()), float(r.max())
            span = max(rhi - rlo, 1e-6 * max(1.0, abs(rlo), abs(rhi)))
            coeffs = ((x, Fraction(1)), (y, -q)) if x < y else ((y, -q), (x, Fraction(1)))
            if upper:
                b = _short(rhi + RELATION_MARGIN * span, True)
                add(coeffs, b, f"{x} <= {float(q):.4g}*{y} + {float(b):.6g}")
            else:
                b = _short(rlo - RELATION_MARGIN * span, False)
                neg = tuple((n, -c) for n, c in coeffs)
                add(neg, -b, f"{x} >= {float(q):.4g}*{y} + {float(b):.6g}")


# ---- encoding ---------------------------------------------------------------------------------


def encode(path: Path, c: Candidate, t: int) -> Cond:
    """The candidate at tick ``t`` of ``path``."""
    enc = path.enc
    if c.expr is not None:
        return path.holds(c.expr, t)
    terms: list[Num] = []
    for name, k in c.coeffs:
        v = enc.num(path.value(t, name))
        terms.append(v if k == 1 else enc.scale(k, v))
    lhs = terms[0] if len(terms) == 1 else enc.sum(terms)
    return enc.compare("<=", lhs, const(c.bound))


def box_of(
    cands: list[Candidate] | tuple[Candidate, ...], ts: TransitionSystem
) -> dict[str, Interval]:
    """The tightest per-state bounds among ``cands`` (a box for the free start)."""
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    names = set(ts.state_names)
    for c in cands:
        sb = c.state_bound
        if sb is None or sb[0] not in names:
            continue
        name, upper, v = sb
        if upper:
            f = float(v)
            if Fraction(f) < v:
                f = math.nextafter(f, math.inf)
            hi[name] = min(hi.get(name, math.inf), f)
        else:
            f = float(v)
            if Fraction(f) > v:
                f = math.nextafter(f, -math.inf)
            lo[name] = max(lo.get(name, -math.inf), f)
    return {
        n: Interval(lo.get(n, -math.inf), hi.get(n, math.inf)) for n in sorted(set(lo) | set(hi))
    }


def _start(
    enc: Encoder, ts: TransitionSystem, req: Requirement, box: dict[str, Interval]
) -> tuple[Path, SymbolicPhase]:
    params = param_values(enc, ts)
    ints = integer_states(ts)
    start = free_start(enc, ts, params, ints, box=box)
    h = ts.hyperperiod
    phase = SymbolicPhase(f"{enc.tag}phase", h)
    enc.constraints += phase.constraints()
    inputs = Inputs(enc, ts, "held" if req.inputs == "held" else "free")
    return Path(enc, params, inputs, start, phase if h > 1 else 0, ints), phase


class _Budget:
    def __init__(self, total: int, stats: SolverStats) -> None:
        self.left = total
        self.stats = stats

    def ask(self, solver: Any, rlimit: int, assumptions: list[Any]) -> Answer:
        if self.left <= 0:
            return Answer(Outcome.UNKNOWN, "the budget is spent")
        ans = check(solver, min(rlimit, self.left), assumptions, stats=self.stats)
        self.left -= ans.rlimit_used
        return ans


def _prune(
    solver: Any,
    post: list[Cond],
    live: list[int],
    assume: list[Any],
    budget: _Budget,
    rlimit: int,
    tag: str,
) -> tuple[list[int], bool]:
    """Drop from ``live`` every candidate whose ``post`` condition can fail under ``assume``
    (plus the live candidates' own assumption literals, given as ``assume[i]``); a fixpoint.

    Returns the survivors and whether the fixpoint was reached (False: budget spent).
    """
    count = 0
    while True:
        open_ = [i for i in live if post[i].value is not True]
        if not open_:
            return live, True
        dead = [i for i in open_ if post[i].value is False]
        if dead:
            live = [i for i in live if i not in dead]
            continue
        count += 1
        flag = z3.Bool(f"{tag}flag{count}", ctx())
        solver.add(z3.Implies(flag, z3.Or(*[z3.Not(post[i].term) for i in open_])))
        lits = [assume[i] for i in live if assume[i] is not None]
        ans = budget.ask(solver, rlimit, [flag, *lits])
        if ans.unsat:
            return live, True
        if ans.sat:
            m = ans.model
            dead = [i for i in open_ if not z3.is_true(m.eval(post[i].term, model_completion=True))]
            if not dead:  # cannot happen with a model of the disjunction; stay sound
                return [], True
            live = [i for i in live if i not in dead]
            continue
        if budget.left <= 0:
            return [], False
        # undecided: settle each open candidate alone, drop those the solver cannot prove
        keep: list[int] = []
        for i in open_:
            count += 1
            flag = z3.Bool(f"{tag}flag{count}", ctx())
            solver.add(z3.Implies(flag, z3.Not(post[i].term)))
            a = budget.ask(solver, max(1, rlimit // 8), [flag, *lits])
            if a.unsat:
                keep.append(i)
        live = [i for i in live if i in keep or i not in open_]
        if budget.left <= 0:
            return [], False


class _Initial:
    """The candidates at tick 0 of the initial state, for every input and parameter."""

    def __init__(
        self, ts: TransitionSystem, req: Requirement, cands: list[Candidate], mode: str
    ) -> None:
        enc = Encoder(ts, mode, tag=f"hi{mode[0]}.")
        params = param_values(enc, ts)
        inputs = Inputs(enc, ts, "held" if req.inputs == "held" else "free")
        path = Path(enc, params, inputs, "init")
        self.post = [encode(path, c, 0) for c in cands]
        undef0 = path.undefined([0])
        self.solver = new_solver()
        assert_all(self.solver, enc.drain())
        if undef0.value is not False:  # only defined initial ticks matter (see above)
            self.solver.add(z3.Not(undef0.term))
        self.assume: list[Any] = [None] * len(cands)

    def prune(self, live: list[int], bud: _Budget, rl: int) -> tuple[list[int], bool]:
        return _prune(self.solver, self.post, live, self.assume, bud, rl, "hi.")


def _inductive(
    ts: TransitionSystem,
    req: Requirement,
    cands: list[Candidate],
    live: list[int],
    mode: str,
    bud: _Budget,
    rl: int,
    rounds: int,
) -> tuple[list[int], int, bool]:
    """The largest subset of ``live`` inductive relative to itself (a Houdini fixpoint):
    assumed at tick 0 of a free start within their box, checked at tick 1."""
    while live:
        rounds += 1
        box = box_of([cands[i] for i in live], ts)
        enc = Encoder(ts, mode, tag=f"h{rounds}{mode[0]}.")
        path, _ = _start(enc, ts, req, box)
        path.extend()
        pre = {i: encode(path, cands[i], 0) for i in live}
        post = {i: encode(path, cands[i], 1) for i in live}
        solver = new_solver()
        assert_all(solver, enc.drain())
        for t in (0, 1):  # a defined step: undefined operations are k-induction's to refute
            u = path.undefined([t])
            if u.value is not False:
                solver.add(z3.Not(u.term))
        assume: list[Any] = [None] * len(cands)
        for i in live:
            if pre[i].value is None:
                lit = z3.Bool(f"{enc.tag}a{i}", ctx())
                solver.add(z3.Implies(lit, pre[i].term))
                assume[i] = lit
        top = Cond(z3.BoolVal(True, ctx()))
        full = [post.get(i, top) for i in range(len(cands))]
        survivors, done = _prune(solver, full, live, assume, bud, rl, enc.tag)
        if not done:
            return [], rounds, False
        same = box_of([cands[i] for i in survivors], ts) == box
        live = survivors
        if same:  # the fixpoint under this start box is the fixpoint
            break
    return live, rounds, True


def houdini(
    ts: TransitionSystem,
    req: Requirement,
    cands: list[Candidate],
    options: SmtOptions,
    stats: SolverStats,
    budget: int | None = None,
) -> Invariants:
    """The largest subset of ``cands`` that holds initially and is inductive (Houdini).

    Runs in the caller's Z3 context. An empty result means nothing survived, or the budget
    was spent before the fixpoint (then nothing is claimed).
    """
    mode = EXACT if options.mode == EXACT else OVERAPPROX
    bud = _Budget(budget if budget is not None else 3 * options.rlimit // 2, stats)
    rl = options.rlimit
    try:
        # the step first (it drops most candidates), then the initial state; a candidate
        # the initial state drops sends the rest through the step again
        live = list(range(len(cands)))
        rounds = 0
        init: _Initial | None = None
        while live:
            live, rounds, done = _inductive(ts, req, cands, live, mode, bud, rl, rounds)
            if not done:
                return Invariants((), {}, len(cands), rounds)
            if not live:
                break
            init = init or _Initial(ts, req, cands, mode)
            at_start, done = init.prune(live, bud, rl)
            if not done:
                return Invariants((), {}, len(cands), rounds)
            if at_start == live:
                break
            live = at_start
    except EncodeError:
        return Invariants((), {}, len(cands), 0)
    kept = tuple(cands[i] for i in live)
    return Invariants(kept, box_of(list(kept), ts), len(cands), rounds)
