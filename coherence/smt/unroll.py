"""Unrolled runs of a transition system: inputs, parameters, register ranges, paths.

A :class:`Path` is a run unrolled one tick at a time with an :class:`~coherence.smt.encode.Encoder`:
the lets of tick ``t`` in their order, then every state's update, clamped to its range (the
simulator's loop, term by term). :class:`Inputs` gives the inputs of a run tick by tick (free
within their ranges and slew, held, nominal or fixed); :func:`param_values` the parameters;
:func:`signal_ranges` sound ranges of every register; :func:`free_start` a start in which
every state is a variable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

import z3

from coherence.intervals.arith import Interval
from coherence.ir.integers import integer_states
from coherence.ir.nodes import Const, Expr, TransitionSystem
from coherence.smt.encode import OVERAPPROX, Encoder, Frame
from coherence.smt.solver import ctx, scope_cache
from coherence.smt.terms import (
    Cond,
    EncodeError,
    Num,
    SymbolicPhase,
    SymbolicTick,
    Value,
    const,
    rational,
    real,
)


class Inputs:
    """The inputs of a run, tick by tick: ``free`` (a variable per tick within its range),
    ``held`` (one variable per input for the whole run), ``nominal`` (the nominal values) or
    ``fixed`` (given values). Shared by the copies of a run that must see the same inputs."""

    def __init__(
        self,
        enc: Encoder,
        ts: TransitionSystem,
        mode: str = "free",
        fixed: Mapping[str, Iterable[float]] | None = None,
    ) -> None:
        self.enc = enc
        self.ts = ts
        self.mode = mode
        self.fixed = {k: list(v) for k, v in (fixed or {}).items()}
        self._ticks: list[dict[str, Num]] = []
        self._held: dict[str, Num] = {}

    def at(self, t: int) -> dict[str, Num]:
        while len(self._ticks) <= t:
            self._ticks.append(self._make(len(self._ticks)))
        return self._ticks[t]

    def _make(self, t: int) -> dict[str, Num]:
        out: dict[str, Num] = {}
        for u in self.ts.inputs:
            rng = Interval(u.lo, u.hi)
            if self.mode == "nominal" or u.lo == u.hi:
                out[u.name] = const(u.nominal if u.lo != u.hi else u.lo)
            elif self.mode == "fixed":
                out[u.name] = const(self.fixed[u.name][t])
            elif self.mode == "held":
                if u.name not in self._held:
                    self._held[u.name] = self.enc.named(u.name, rng)
                out[u.name] = self._held[u.name]
            else:
                x = self.enc.named(f"{u.name}@{t}", rng)
                out[u.name] = x
                if t > 0 and math.isfinite(u.slew):
                    self.enc.constraints += slew_bounds(x, self._ticks[t - 1][u.name], u.slew)
        return out


def slew_bounds(x: Num, before: Num, slew: float) -> list[Any]:
    """``|x - before| <= slew``: an input's move from one tick to the next (its ``slew``)."""
    r = real(rational(slew))
    return [x.term - before.term <= r, before.term - x.term <= r]


def param_values(enc: Encoder, ts: TransitionSystem, free: bool = True) -> dict[str, Num]:
    """Parameters: uncertain ones (``lo < hi``, not internal) free in their range when ``free``,
    every other one its value."""
    out: dict[str, Num] = {}
    for p in ts.params:
        if free and not p.internal and p.lo < p.hi:
            out[p.name] = enc.named(p.name, Interval(p.lo, p.hi))
        else:
            out[p.name] = const(p.value)
    return out


def signal_ranges(ts: TransitionSystem, params: Mapping[str, Num]) -> dict[str, Interval]:
    """Sound ranges of every register (the interval of its signal over the declared ranges).

    Registers hold past values of a sensed signal; every such value is the signal evaluated at
    some state within the declared bounds and inputs within their ranges, so it lies in the
    interval evaluation of the signal over those ranges.
    """
    key = ("ranges", ts.content_key, tuple((n, v.iv) for n, v in sorted(params.items())))
    cache = scope_cache()  # lives as long as the Z3 context (the terms it holds do too)
    if key not in cache:
        cache[key] = _signal_ranges(ts, params)
    return dict(cache[key])


def _signal_ranges(ts: TransitionSystem, params: Mapping[str, Num]) -> dict[str, Interval]:
    enc = Encoder(ts, OVERAPPROX, tag="__ranges__.")
    frame = Frame(0, None, {})  # any tick: phases undecided
    frame.values.update(params)
    for u in ts.inputs:
        frame.values[u.name] = enc.atom(
            z3.Real(f"__ranges__.{u.name}", ctx()), Interval(u.lo, u.hi)
        )
    for s in ts.states:
        frame.values[s.name] = enc.atom(
            z3.Real(f"__ranges__.{s.name}", ctx()), Interval(s.lo, s.hi)
        )
    sensor_names = {r for lp in ts.loops for sn in lp.sensors for r in sn.registers}
    out: dict[str, Interval] = {}
    try:
        for d in ts.lets:
            frame.values[d.name] = enc.expr(d.expr, frame)
    except EncodeError:
        return {r: Interval.top() for r in sensor_names}
    for lp in ts.loops:
        for sn in lp.sensors:
            try:
                v = enc.expr(sn.signal, frame)
            except EncodeError:
                v = Num(z3.RealVal(0, ctx()), Interval.top())
            iv = enc.num(v).iv
            for r in sn.registers:
                out[r] = iv
    return out


class Path:
    """An unrolled run of a transition system, built one tick at a time.

    ``start`` is ``"init"`` (the declared initial state, registers filled from the signals'
    tick-0 values as the simulator does) or a mapping from every state name to its value at
    the start (free variables for induction and witnesses). ``phase`` is the absolute tick of
    the start: an int, or a :class:`SymbolicPhase`. ``system`` runs a variant of the encoder's
    system (the counterfactual of a conflict query) and ``prefix`` keeps its variables apart.
    """

    def __init__(
        self,
        enc: Encoder,
        params: Mapping[str, Num],
        inputs: Inputs,
        start: str | Mapping[str, Num] = "init",
        phase: int | SymbolicPhase = 0,
        ints: set[str] | None = None,
        system: TransitionSystem | None = None,
        prefix: str = "",
    ) -> None:
        from coherence.ir.simplify import for_solver

        self.enc = enc
        self.ts = for_solver(system or enc.ts)
        self.prefix = prefix
        self.params = dict(params)
        self.inputs = inputs
        self.phase = phase
        self.ints = integer_states(self.ts) if ints is None else ints
        self.frames: list[Frame] = []
        f0 = self._frame(0)
        if isinstance(start, str):
            if start != "init":
                raise ValueError(start)
            self._initial(f0)
        else:
            for s in self.ts.states:
                f0.values[s.name] = start[s.name]
        self.frames.append(f0)

    def _frame(self, index: int) -> Frame:
        tick = (
            self.phase + index if isinstance(self.phase, int) else SymbolicTick(self.phase, index)
        )
        f = Frame(index, tick, {})
        f.values.update(self.params)
        f.values.update(self.inputs.at(index))
        return f

    def _initial(self, f0: Frame) -> None:
        enc = self.enc
        pending = []
        for s in self.ts.states:
            if isinstance(s.init, Const):
                f0.values[s.name] = const(s.init.value)
            else:
                pending.append(s)
        if pending:
            for d in self.ts.lets:
                if d.owner is None:
                    f0.values[d.name] = enc.expr(d.expr, f0)
            for s in pending:
                f0.values[s.name] = enc.num(enc.expr(s.init, f0))

    @property
    def depth(self) -> int:
        """The last tick whose states exist."""
        return len(self.frames) - 1

    def lets(self, t: int) -> Frame:
        """Frame ``t`` with its lets computed (extending the run as needed)."""
        while self.depth < t:
            self.extend()
        f = self.frames[t]
        if not f.lets_done:
            laws = self.enc.laws
            for d in self.ts.lets:
                if d.name in f.values:
                    continue
                if d.name in laws:  # localization: a fresh value per tick (Encoder.laws)
                    name = f"{self.prefix}{d.name}@{t}"
                    f.values[d.name] = self.enc.named(name, laws[d.name])
                else:
                    f.values[d.name] = self.enc.expr(d.expr, f)
            f.lets_done = True
        return f

    def extend(self) -> Frame:
        """Add the next tick: every state's update, clamped to its range."""
        t = self.depth
        f = self.lets(t)
        nxt = self._frame(t + 1)
        enc = self.enc
        for s in self.ts.states:
            u = enc.num(enc.expr(s.update, f))
            if math.isfinite(s.lo):
                u = enc.maximum(u, const(s.lo))
            if math.isfinite(s.hi):
                u = enc.minimum(u, const(s.hi))
            iv = u.iv.meet(Interval(s.lo, s.hi))
            if s.name in self.ints:
                iv = Interval(
                    math.ceil(iv.lo) if math.isfinite(iv.lo) else iv.lo,
                    math.floor(iv.hi) if math.isfinite(iv.hi) else iv.hi,
                )
            if iv.empty:  # float noise at a bound; the exact term is still right
                iv = u.iv
            if u.const is not None or z3.is_const(u.term) or s.kind == "sensor":
                nxt.values[s.name] = Num(u.term, iv, u.const, u.lin, u.alts)
                continue
            v = enc.named(f"{self.prefix}{s.name}@{t + 1}", iv, integer=s.name in self.ints)
            enc.constraints.append(v.term == u.term)
            nxt.values[s.name] = v
        self.frames.append(nxt)
        return nxt

    def value(self, t: int, name: str) -> Value:
        f = self.frames[t] if t <= self.depth else self.lets(t)
        if name not in f.values:
            f = self.lets(t)
        return f.values[name]

    def holds(self, e: Expr, t: int, margin: Fraction = Fraction(0), positive: bool = True) -> Cond:
        """``e`` (or its negation) at tick ``t`` of the run."""
        return self.enc.robust(e, self.lets(t), margin, positive)

    def undefined(self, ticks: Iterable[int]) -> Cond:
        terms = [u for t in ticks for u in self.frames[t].undefined]
        return self.enc.or_([Cond(u) for u in terms])

    def state_terms(self, t: int) -> dict[str, Num]:
        f = self.frames[t]
        out = {}
        for s in self.ts.states:
            v = f.values[s.name]
            assert isinstance(v, Num)
            out[s.name] = v
        return out


def free_start(
    enc: Encoder,
    ts: TransitionSystem,
    params: Mapping[str, Num],
    ints: set[str],
    box: Mapping[str, Interval] | None = None,
    ranges: Mapping[str, Interval] | None = None,
) -> dict[str, Num]:
    """Every state a variable: declared states within their ranges (or ``box``), registers
    within the range of their signal (``ranges``, computed when not given), integer states
    integral."""
    regs = signal_ranges(ts, params) if ranges is None else ranges
    out: dict[str, Num] = {}
    for s in ts.states:
        iv = Interval(s.lo, s.hi)
        if s.name in regs:
            iv = regs[s.name].meet(iv)
        if box is not None and s.name in box:
            iv = box[s.name].meet(iv)
        out[s.name] = enc.named(f"{s.name}@0", iv, integer=s.name in ints)
    return out
