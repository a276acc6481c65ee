"""The fixed-point query of bad equilibria: Z3 terms for ``F^H(x) = x`` at nominal input.

A *bad equilibrium* is a state ``x`` that the system returns to after one hyperperiod at
nominal input (every state, registers and counters included: ``F^H(x) = x``, starting at
phase 0 of the hyperperiod, through which every periodic orbit passes) and at which some
keep-objective is violated at some tick of that hyperperiod. Parameters take their declared
values. :class:`FixedPointQuery` asks the solver for one within the declared bounds
(registers within their signal's range); ``unsat`` proves there is none.

The query encodes only what a fixed point needs (docs/formal.md section 6): shift registers
are the values their signal takes during the hyperperiod (:class:`Chain`), each tick is
specialised to its phase and lets are encoded where read, and the start box is narrowed by
the bounds of where a hyperperiod ends. The order of the queries, their limits and the
confirmation of candidates in simulation are :mod:`coherence.formal.equilibria`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import z3

from coherence.intervals.arith import Interval
from coherence.ir.integers import integer_states
from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    ObjectiveIR,
    Phase,
    StateVar,
    TransitionSystem,
    Unary,
    Var,
)
from coherence.simulate.engine import simulate
from coherence.smt.encode import Encoder, Frame
from coherence.smt.objectives import violated
from coherence.smt.solver import (
    Answer,
    Outcome,
    SolverStats,
    assert_all,
    check,
    new_solver,
    to_float,
)
from coherence.smt.terms import Cond, Num, Term, Value, const, q_down, q_up, real
from coherence.smt.unroll import Inputs, param_values, signal_ranges


@dataclass(frozen=True, slots=True)
class Chain:
    """Shift registers ``s_1 <- E``, ``s_k <- s_(k-1)`` that shift on the ticks ``shifts``.

    At a fixed point of the hyperperiod the ``n = len(shifts)`` values shifted in during one
    hyperperiod are the whole content of the chain: ``s_k`` holds, at tick ``t``, the value
    shifted in ``k`` shifts before ``t``, i.e. ``w[(c(t) - k) mod n]`` where ``c(t)`` counts
    the shifts before ``t`` and ``w[i]`` is ``E`` (clamped) at tick ``shifts[i]``.
    """

    states: tuple[str, ...]  # s_1, s_2, ...
    source: Expr  # E, read on a shift tick
    shifts: tuple[int, ...]  # the ticks of [0, H) on which the chain shifts
    lo: float
    hi: float
    integer: bool

    def before(self, t: int) -> int:
        """How many shifts happen on the ticks before ``t``."""
        return sum(1 for s in self.shifts if s < t)


def _shift_of(s: StateVar) -> tuple[tuple[int, int] | None, Expr] | None:
    """A register's update as (shift condition, source): ``E`` every tick (a sensor register)
    or ``if Phase(p, o) then E else itself`` (a stabilization window's history)."""
    match s.update:
        case Ite(Phase(p, o), src, Var(me)) if me == s.name:
            return (p, o), src
    if s.kind == "sensor":
        return None, s.update
    return None


def find_chains(ts: TransitionSystem, ints: set[str]) -> list[Chain]:
    """The shift-register chains of ``ts`` (sensor registers, stabilization histories)."""
    h = ts.hyperperiod
    parsed: dict[str, tuple[tuple[int, int] | None, Expr]] = {}
    by_name = {s.name: s for s in ts.states}
    for s in ts.states:
        if s.kind in ("sensor", "history"):
            p = _shift_of(s)
            if p is not None:
                parsed[s.name] = p
    succ: dict[str, str] = {}
    pred: dict[str, str] = {}
    for name, (cond, src) in parsed.items():
        if not isinstance(src, Var) or src.name not in parsed or src.name == name:
            continue
        prev = src.name
        a, b = by_name[prev], by_name[name]
        same = (
            parsed[prev][0] == cond
            and (a.lo, a.hi) == (b.lo, b.hi)
            and (prev in ints) == (name in ints)
        )
        if same and prev not in succ:
            succ[prev] = name
            pred[name] = prev
    out = []
    for name, (cond, src) in parsed.items():
        if name in pred:
            continue
        members = [name]
        while members[-1] in succ and len(members) <= len(parsed):
            members.append(succ[members[-1]])
        shifts = tuple(t for t in range(h) if cond is None or t % cond[0] == cond[1])
        if not shifts:
            continue  # never shifts: an ordinary (constant) state
        s = by_name[name]
        out.append(Chain(tuple(members), src, shifts, s.lo, s.hi, name in ints))
    return out


def _phased_lets(ts: TransitionSystem) -> set[str]:
    """The lets whose value depends on the tick (a ``Phase``, directly or through a let)."""
    out: set[str] = set()

    def has(e: Expr) -> bool:
        match e:
            case Phase():
                return True
            case Var(name):
                return name in out
            case Unary(_, a):
                return has(a)
            case Binary(_, a, b):
                return has(a) or has(b)
            case Call(_, args):
                return any(has(a) for a in args)
            case Ite(c, a, b):
                return has(c) or has(a) or has(b)
        return False

    for d in ts.lets:
        if has(d.expr):
            out.add(d.name)
    return out


_TRUE, _FALSE = Const(1.0), Const(0.0)


class _Lazy(dict[str, Value]):
    """A frame's values, computed on first use (lets, registers)."""

    def __init__(self, resolve: Callable[[str], Value]) -> None:
        super().__init__()
        self._resolve = resolve

    def __missing__(self, key: str) -> Value:
        v = self._resolve(key)
        self[key] = v
        return v


class FixedPointQuery:
    """A free start at phase 0, one hyperperiod at nominal input, back to the start.

    What a fixed point does not need is left out: each tick's expressions are specialised to
    its phase (a loop that does not act on a tick contributes nothing, and its sensed means
    are not encoded there), lets are encoded only where something reads them, and the shift
    registers (delays, windows, stabilization histories) are not free: at a fixed point they
    hold the values their signal takes during the hyperperiod (:class:`Chain`), so a window of
    300 ticks over a hyperperiod of 60 is a weighted sum of 60 values.
    """

    def __init__(
        self,
        ts: TransitionSystem,
        keeps: list[ObjectiveIR],
        mode: str,
        box: Mapping[str, Interval] | None = None,
    ) -> None:
        from coherence.ir.simplify import for_solver

        self.box = dict(box or {})
        self.ts = ts
        sys_ = for_solver(ts)
        self.sys = sys_
        enc = Encoder(sys_, mode, tag=f"e{mode[0]}.")
        self.enc = enc
        self.h = h = sys_.hyperperiod
        self.params = param_values(enc, sys_, free=False)
        self.ints = ints = integer_states(sys_)
        self.inputs = Inputs(enc, sys_, "nominal").at(0)
        self.let_exprs = {d.name: d.expr for d in sys_.lets}
        self.phased = _phased_lets(sys_)
        self._spec: dict[tuple[str, int], Expr] = {}
        self.chains = find_chains(sys_, ints)
        self.member: dict[str, tuple[Chain, int]] = {}
        for c in self.chains:
            for k, name in enumerate(c.states, start=1):
                self.member[name] = (c, k)
        ranges = signal_ranges(sys_, self.params)
        self.ranges = ranges
        self.w: dict[tuple[int, int], Num] = {}  # (chain index, i) -> w[i]
        self._chain_index = {id(c): j for j, c in enumerate(self.chains)}
        self._pending: list[tuple[int, int]] = []
        # the free start: every state that is not a register
        self.start: dict[str, Num] = {}
        for s in sys_.states:
            if s.name in self.member:
                continue
            iv = self.box.get(s.name, Interval(s.lo, s.hi))
            self.start[s.name] = enc.named(f"{s.name}@0", iv, integer=s.name in ints)
        self.frames = [self._frame(0, self.start)]
        for t in range(h):
            self.frames.append(self._frame(t + 1, self._step(t)))
        # the goals: per objective, a violation at some tick of the hyperperiod
        self.goals: dict[str, Cond] = {}
        for o in keeps:
            self.goals[o.name] = enc.or_(
                [violated(enc, o, self.frames[j], Fraction(0)) for j in range(h)]
            )
        # back to the start: ordinary states, and each register value that was read
        base: list[Term] = []
        end = self.frames[h].values
        self.ends: dict[str, Interval] = {}  # interval of each start variable's value at H
        for name, x in self.start.items():
            y = end[name]
            assert isinstance(y, Num)
            self.ends[name] = y.iv
            if not z3.eq(x.term, y.term):
                base.append(x.term == y.term)
        done = 0
        while done < len(self._pending):
            j, i = self._pending[done]
            done += 1
            c = self.chains[j]
            t = c.shifts[i]
            u = enc.num(enc.expr(self._specialise(c.source, t), self.frames[t]))
            u = _clamp(enc, u, c.lo, c.hi)
            self.ends[f"{c.states[0]}~{i}"] = u.iv
            base.append(self.w[(j, i)].term == u.term)
        undefined = enc.or_([Cond(u) for f in self.frames for u in f.undefined])
        if undefined.value is not False:
            base.append(z3.Not(undefined.term))
        self.base = [*enc.drain(), *base]
        self.blocks: list[Term] = []

    def narrowed(self) -> dict[str, Interval] | None:
        """The start box met with the bounds of where one hyperperiod ends from it.

        A fixed point ``x`` in the box is ``F^H(x)``, so it lies in the bounds the encoder
        propagated to tick ``H`` (sound interval arithmetic): the met box holds every fixed
        point the box held. ``None``: the meet is empty, there is no fixed point at all.
        Only changes of more than 1% of a width (or to an infinite end) are kept.
        """
        out = dict(self.box)
        for name, iv in self.ends.items():
            cur = self.start[name].iv if name in self.start else self.w_iv(name)
            met = cur.meet(iv)
            if met.empty:
                return None
            width = cur.hi - cur.lo
            if not math.isfinite(width) or (met.hi - met.lo) < 0.99 * width:
                out[name] = met
        return out

    def w_iv(self, name: str) -> Interval:
        for (j, i), w in self.w.items():
            if f"{self.chains[j].states[0]}~{i}" == name:
                return w.iv
        return Interval.top()

    # ---- building ---------------------------------------------------------------------------
    def _frame(self, t: int, states: Mapping[str, Num]) -> Frame:
        vals = _Lazy(lambda key: self._resolve(t, key))
        vals.update(self.params)
        vals.update(self.inputs)
        vals.update(states)
        return Frame(t, t, vals)

    def _resolve(self, t: int, key: str) -> Value:
        if key in self.member:
            c, k = self.member[key]
            return self._w(c, (c.before(t) - k) % len(c.shifts))
        if key in self.let_exprs:
            return self.enc.expr(self._specialise(Var(key), t, top=True), self.frames[t])
        raise KeyError(key)

    def _w(self, c: Chain, i: int) -> Num:
        j = self._chain_index[id(c)]
        out = self.w.get((j, i))
        if out is None:
            iv = Interval(c.lo, c.hi)
            if c.states[0] in self.ranges:
                iv = self.ranges[c.states[0]].meet(iv)
            iv = self.box.get(f"{c.states[0]}~{i}", iv)
            out = self.w[(j, i)] = self.enc.named(f"{c.states[0]}~{i}", iv, integer=c.integer)
            self._pending.append((j, i))
        return out

    def _step(self, t: int) -> dict[str, Num]:
        """The ordinary states at tick ``t + 1`` (as :meth:`Path.extend`)."""
        enc = self.enc
        f = self.frames[t]
        out: dict[str, Num] = {}
        for s in self.sys.states:
            if s.name in self.member:
                continue
            u = _clamp(enc, enc.num(enc.expr(self._specialise(s.update, t), f)), s.lo, s.hi)
            iv = u.iv.meet(Interval(s.lo, s.hi))
            if s.name in self.ints:
                iv = Interval(
                    math.ceil(iv.lo) if math.isfinite(iv.lo) else iv.lo,
                    math.floor(iv.hi) if math.isfinite(iv.hi) else iv.hi,
                )
            if iv.empty:
                iv = u.iv
            if u.const is not None or z3.is_const(u.term):
                out[s.name] = Num(u.term, iv, u.const, u.lin, u.alts)
                continue
            v = enc.named(f"{s.name}@{t + 1}", iv, integer=s.name in self.ints)
            enc.constraints.append(v.term == u.term)
            out[s.name] = v
        return out

    def _specialise(self, e: Expr, t: int, top: bool = False) -> Expr:
        """``e`` at tick ``t``: phases decided, conditions they decide folded away.

        ``top`` on a ``Var`` of a let returns the let's specialised definition.
        """
        match e:
            case Phase(p, o):
                return _TRUE if t % p == o else _FALSE
            case Var(name):
                if name not in self.let_exprs or name not in self.phased:
                    return self.let_exprs[name] if top and name in self.let_exprs else e
                key = (name, t)
                d = self._spec.get(key)
                if d is None:
                    d = self._spec[key] = self._specialise(self.let_exprs[name], t)
                return d if top or isinstance(d, Const) else e
            case Unary(op, a):
                a2 = self._specialise(a, t)
                if isinstance(a2, Const) and op == "not":
                    return _FALSE if a2.value != 0 else _TRUE
                return e if a2 is a else Unary(op, a2, e.span)
            case Binary(op, a, b) if op in ("and", "or"):
                a2 = self._specialise(a, t)
                decisive = _FALSE if op == "and" else _TRUE
                if _truth(a2) is (op == "or"):
                    return decisive
                b2 = self._specialise(b, t)
                if _truth(b2) is (op == "or"):
                    return decisive
                if isinstance(a2, Const) and isinstance(b2, Const):
                    return _TRUE if op == "and" else _FALSE
                return e if (a2 is a and b2 is b) else Binary(op, a2, b2, e.span)
            case Binary(op, a, b):
                a2, b2 = self._specialise(a, t), self._specialise(b, t)
                match op, a2, b2:
                    case "+", Var(x), Binary("-", target, Var(y)) if x == y:
                        return target  # an action that acts: a + (target - a) is the target
                return e if (a2 is a and b2 is b) else Binary(op, a2, b2, e.span)
            case Call(fn, args):
                new = tuple(self._specialise(a, t) for a in args)
                return (
                    e
                    if all(x is y for x, y in zip(new, args, strict=True))
                    else Call(fn, new, e.span)
                )
            case Ite(c, a, b):
                c2 = self._specialise(c, t)
                if isinstance(c2, Const):
                    return self._specialise(a if c2.value != 0 else b, t)
                a2, b2 = self._specialise(a, t), self._specialise(b, t)
                return e if (c2 is c and a2 is a and b2 is b) else Ite(c2, a2, b2, e.span)
        return e

    # ---- asking -----------------------------------------------------------------------------
    def solve(
        self,
        objectives: list[str],
        rlimit: int,
        stats: SolverStats,
        near: Mapping[str, float] | None = None,
    ) -> Answer:
        """A fixed point violating one of ``objectives`` (near ``near``: every declared state
        within 2% of its range of it). A fresh solver each time: full preprocessing."""
        goal = self.enc.or_([self.goals[o] for o in objectives])
        if goal.value is False:
            return Answer(Outcome.UNSAT)
        solver = new_solver()
        assert_all(solver, self.base)
        assert_all(solver, self.blocks)
        if goal.value is None:
            solver.add(goal.term)
        if near is not None:
            solver.add(*self._near(near))
        return check(solver, rlimit, stats=stats)

    def _near(self, point: Mapping[str, float]) -> list[Term]:
        """Every start variable within 0.5% of its range (registers: of their value)."""
        pairs: list[tuple[Num, str, float]] = []
        for s in self.sys.states:
            if s.name in self.start:
                pairs.append((self.start[s.name], s.name, s.hi - s.lo))
        for (j, i), w in self.w.items():
            c = self.chains[j]
            k = (-i) % len(c.shifts) or len(c.shifts)  # the member that holds w[i] at tick 0
            if k <= len(c.states):
                pairs.append((w, c.states[k - 1], c.hi - c.lo))
        out = []
        for x, name, span in pairs:
            v = point.get(name, math.nan)
            if not math.isfinite(v):
                continue
            d = 0.005 * span if math.isfinite(span) else 0.005 * abs(v) + 1e-6
            out.append(x.term >= real(q_down(v - d)))
            out.append(x.term <= real(q_up(v + d)))
        return out

    def refine(self, model: Any) -> bool:
        if self.enc.refine(model):
            self.base += self.enc.drain()
            return True
        return False

    def state(self, model: Any) -> dict[str, float]:
        """The fixed point in ``model``: every state at tick 0, registers included."""
        out: dict[str, float] = {}
        f0 = self.frames[0]
        for s in self.sys.states:
            if s.name in self.member:
                c, k = self.member[s.name]
                j = self._chain_index[id(c)]
                w = self.w.get((j, (-k) % len(c.shifts)))
                if w is None:
                    continue  # read by nothing the query needs; filled in below
                out[s.name] = _value(model, w)
            else:
                v = f0.values[s.name]
                assert isinstance(v, Num)
                out[s.name] = _value(model, v)
        missing = [s.name for s in self.sys.states if s.name not in out]
        if missing:
            # registers nothing reads: a hyperperiod from the start fills them with the
            # values they hold at the fixed point (nothing else depends on them)
            trial = dict(out)
            for name in missing:
                trial[name] = 0.0
            with np.errstate(all="ignore"):
                tr = simulate(self.ts, self.h, init=trial)
            names = self.ts.state_names
            for name in missing:
                out[name] = float(tr.states[0, -1, names.index(name)])
        return out

    def block(self, point: Mapping[str, float]) -> None:
        """Exclude a neighbourhood of ``point`` (1% of each declared state's range)."""
        parts = []
        for s in self.ts.states:
            if s.kind not in ("plant", "actuator") or not (
                math.isfinite(s.lo) and math.isfinite(s.hi)
            ):
                continue
            d = max(0.01 * (s.hi - s.lo), 1e-9)
            x = self.start[s.name]
            parts.append(x.term >= real(q_down(point[s.name] + d)))
            parts.append(x.term <= real(q_down(point[s.name] - d)))
        if parts:
            self.blocks.append(z3.Or(*parts))


def _truth(e: Expr) -> bool | None:
    return (e.value != 0) if isinstance(e, Const) else None


def _clamp(enc: Encoder, u: Num, lo: float, hi: float) -> Num:
    if math.isfinite(lo):
        u = enc.maximum(u, const(lo))
    if math.isfinite(hi):
        u = enc.minimum(u, const(hi))
    return u


def _value(model: Any, v: Num) -> float:
    if v.const is not None:
        return float(v.const)
    return to_float(model.eval(v.term, model_completion=True))
