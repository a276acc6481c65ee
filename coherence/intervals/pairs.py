"""Paired interval enclosures: a run and its counterfactual, with their difference.

A conflict query compares two runs from the same start, at the same phase, under the same
inputs and parameters: the run where loop A acts and the one where A holds its actuators.
Enclosing each run on its own (:func:`coherence.intervals.reach.interval_envs`) forgets that the
two share almost everything: at a tick where A's action has moved a value by at most 0.01,
the two enclosures are each as wide as the whole reachable range, and their difference is
bounded only by that width. This module encloses the pair instead. Every value carries

- ``h``: its enclosure in the counterfactual run,
- ``a``: its enclosure in the acting run,
- ``d``: an enclosure of the difference ``a - h`` (the same run, the same tick, the same
  start, phase and inputs),
- ``same``: whether the two values are provably equal (then ``d`` is exactly 0). A value is
  the same when everything it is computed from is (the start, the inputs, the parameters
  and the phase are; what A's firing decides is not).

The difference follows each operation with a rule that is sound in real arithmetic and
evaluated with outward rounding: ``(x*y)_a - (x*y)_h = x_a * dy + dx * y_h``; a quotient
``(dx*y_h - x_h*dy) / (y_a*y_h)``; ``min`` and ``max`` move by no more than their arguments
do (the difference lies between the least and the greatest of the arguments' differences);
``abs`` and a clamp to a range are 1-Lipschitz and a monotone function keeps the sign of its
argument's difference; an ``if`` whose condition is the same in both runs moves by its
branch's difference. Wherever no rule applies the difference is the plain ``a - h``, and
every difference is intersected with ``a - h`` and every acting enclosure with ``h + d``, so
the pair is never wider than the two enclosures taken alone. An integer state's difference
is an integer.

The enclosures of all start phases of the hyperperiod are computed at once, one per element
of the arrays: the start phase is the only thing the phases' runs do not share.

:func:`aligned_by_pairs` then proves a pair of loops aligned where B's objective cannot move
by more than its tolerance: a relative tolerance is measured against the counterfactual's
value (its least magnitude in the enclosure), as the conflict query's ``worse`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from coherence.intervals.arith import (
    INF,
    B,
    Bv,
    F,
    Iv,
    Unsupported,
    as_bv,
    as_iv,
    compare,
    const_interval,
    div,
    hull,
    maximum,
    minimum,
    mul,
    neg,
    power,
)
from coherence.intervals.arith import add as _add
from coherence.intervals.arith import sub as _sub
from coherence.intervals.compile import Lin, frac_interval, normalize, unary_call
from coherence.intervals.reach import Reach
from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    ObjectiveIR,
    Phase,
    Requirement,
    TransitionSystem,
    Unary,
    Var,
    sum_terms,
)
from coherence.ir.simplify import cancel_factors, nonzero_names
from coherence.ir.transform import hold_loop

__all__ = ["PVal", "PairRuns", "Pc", "Pn", "aligned_by_pairs", "compile_pair", "tighten"]


def add(a: Iv, b: Iv) -> Iv:
    """:func:`coherence.intervals.arith.add`, but an end that is exactly 0 stays 0: a float sum or
    difference is 0 only when it is exact (gradual underflow), and a difference of two equal
    values must stay 0 for a keep-objective's test (``lo(d) >= 0``) to see it."""
    r = _add(a, b)
    with np.errstate(invalid="ignore"):
        lo, hi = a.lo + b.lo, a.hi + b.hi
    return Iv(np.where(lo == 0.0, 0.0, r.lo), np.where(hi == 0.0, 0.0, r.hi))


def sub(a: Iv, b: Iv) -> Iv:
    """:func:`coherence.intervals.arith.sub`, exact zeros kept (see :func:`add`)."""
    r = _sub(a, b)
    with np.errstate(invalid="ignore"):
        lo, hi = a.lo - b.hi, a.hi - b.lo
    return Iv(np.where(lo == 0.0, 0.0, r.lo), np.where(hi == 0.0, 0.0, r.hi))


# ---- values -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pn:
    """A number in both runs: counterfactual ``h``, acting ``a``, difference ``d = a - h``."""

    h: Iv
    a: Iv
    d: Iv
    same: bool


@dataclass(frozen=True, slots=True)
class Pc:
    """A condition in both runs (three-valued each); ``same``: provably equal in both."""

    h: Bv
    a: Bv
    same: bool


PVal = Pn | Pc
Ticks = NDArray[np.int64]  # one tick per element (each element its own start phase)
PEnv = dict[str, PVal]
POut = tuple[PVal, B]  # the value and "an operation on the way may be undefined" (either run)
PFn = Callable[[PEnv, Ticks], POut]  # of the environment and the ticks (one per element)


def _zeros(n: int) -> Iv:
    return Iv(np.zeros(n), np.zeros(n))


def _whole(n: int) -> Iv:
    return Iv(np.full(n, -INF), np.full(n, INF))


def _size(v: PVal) -> int:
    return int(v.h.lo.shape[0]) if isinstance(v, Pn) else int(v.h.t.shape[0])


def same_value(v: Iv | Bv) -> PVal:
    """A value that is the same in both runs."""
    if isinstance(v, Iv):
        return Pn(v, v, _zeros(v.lo.shape[0]), True)
    return Pc(v, v, True)


def tighten(h: Iv, a: Iv, d: Iv) -> Pn:
    """The pair with ``d`` cut to ``a - h`` and ``a`` cut to ``h + d``."""
    plain = sub(a, h)
    dlo, dhi = np.maximum(d.lo, plain.lo), np.minimum(d.hi, plain.hi)
    bad = ~(dlo <= dhi)  # only where a rounding or an undefined end crossed the ends
    if bad.any():
        dlo, dhi = np.where(bad, plain.lo, dlo), np.where(bad, plain.hi, dhi)
    dd = Iv(dlo, dhi)
    if not (np.any(dlo) or np.any(dhi)):  # a - h is exactly 0: the same value in both runs
        both = Iv(np.maximum(h.lo, a.lo), np.minimum(h.hi, a.hi))
        if bool(np.all(both.lo <= both.hi)):
            return Pn(both, both, dd, True)
        return Pn(h, h, dd, True)
    hd = add(h, dd)
    alo, ahi = np.maximum(a.lo, hd.lo), np.minimum(a.hi, hd.hi)
    bad = ~(alo <= ahi)
    if bad.any():
        alo, ahi = np.where(bad, a.lo, alo), np.where(bad, a.hi, ahi)
    return Pn(h, Iv(alo, ahi), dd, False)


def as_num(v: PVal) -> Pn:
    if isinstance(v, Pn):
        return v
    h, a = as_iv(v.h), as_iv(v.a)
    if v.same:
        return Pn(h, h, _zeros(h.lo.shape[0]), True)
    return tighten(h, a, _whole(h.lo.shape[0]))


def as_cond(v: PVal) -> Pc:
    if isinstance(v, Pc):
        return v
    return Pc(as_bv(v.h), as_bv(v.a), v.same)


def _pn(h: Iv, a: Iv, d: Iv, same: bool) -> Pn:
    if same:
        return Pn(h, h, _zeros(h.lo.shape[0]), True)
    return tighten(h, a, d)


def _monotone(d: Iv) -> Iv:
    """The difference of a nondecreasing function: the sign of its argument's difference."""
    return Iv(np.where(d.lo < 0.0, -INF, 0.0), np.where(d.hi > 0.0, INF, 0.0))


def lipschitz(d: Iv) -> Iv:
    """The difference of a 1-Lipschitz function: at most the argument's, in magnitude."""
    m = np.maximum(np.abs(d.lo), np.abs(d.hi))
    return Iv(-m, m)


def clamped(d: Iv) -> Iv:
    """The difference of a nondecreasing 1-Lipschitz function (a clamp): between 0 and the
    argument's difference."""
    return Iv(np.minimum(d.lo, 0.0), np.maximum(d.hi, 0.0))


# ---- the compiler -------------------------------------------------------------------------------


def compile_pair(e: Expr) -> PFn:
    """A paired interval function of the environment and the ticks (an int array: one tick
    per element; a :class:`~coherence.ir.nodes.Phase` is decided per element)."""
    if isinstance(e, Lin):
        return _compile_lin(e)
    match e:
        case Const(v):
            lo, hi = const_interval(float(v))

            def _const(env: PEnv, t: Ticks) -> POut:
                n = t.shape[0]
                return same_value(Iv(np.full(n, lo), np.full(n, hi))), np.zeros(n, dtype=bool)

            return _const
        case Var(name):
            return lambda env, t: (env[name], np.zeros(t.shape[0], dtype=bool))
        case Unary("neg", x):
            fx = compile_pair(x)

            def _neg(env: PEnv, t: Ticks) -> POut:
                v, u = fx(env, t)
                p = as_num(v)
                return Pn(neg(p.h), neg(p.a), neg(p.d), p.same), u

            return _neg
        case Unary(_, x):
            fx = compile_pair(x)

            def _not(env: PEnv, t: Ticks) -> POut:
                v, u = fx(env, t)
                c = as_cond(v)
                return Pc(Bv(c.h.f, c.h.t), Bv(c.a.f, c.a.t), c.same), u

            return _not
        case Binary("and" | "or" as op, x, y):
            fx, fy = compile_pair(x), compile_pair(y)

            def _bool(env: PEnv, t: Ticks) -> POut:
                vx, ux = fx(env, t)
                vy, uy = fy(env, t)
                cx, cy = as_cond(vx), as_cond(vy)

                def comb(p: Bv, q: Bv) -> Bv:
                    if op == "and":
                        return Bv(p.t & q.t, p.f | q.f)
                    return Bv(p.t | q.t, p.f & q.f)

                return Pc(comb(cx.h, cy.h), comb(cx.a, cy.a), cx.same and cy.same), ux | uy

            return _bool
        case Binary(op, x, y) if op in ("<", "<=", ">", ">=", "==", "!="):
            fx, fy = compile_pair(x), compile_pair(y)

            def _cmp(env: PEnv, t: Ticks) -> POut:
                vx, ux = fx(env, t)
                vy, uy = fy(env, t)
                px, py = as_num(vx), as_num(vy)
                h = compare(op, px.h, py.h)
                same = px.same and py.same
                a = h if same else compare(op, px.a, py.a)
                return Pc(h, a, same), ux | uy

            return _cmp
        case Binary("+", _, _):
            terms = [compile_pair(x) for x in sum_terms(e)]

            def _sum(env: PEnv, t: Ticks) -> POut:
                v0, u = terms[0](env, t)
                acc = as_num(v0)
                h, a, d, same = acc.h, acc.a, acc.d, acc.same
                for g in terms[1:]:
                    v, u2 = g(env, t)
                    p = as_num(v)
                    h, a, d, same = add(h, p.h), add(a, p.a), add(d, p.d), same and p.same
                    u = u | u2
                return _pn(h, a, d, same), u

            return _sum
        case Binary("^", x, Const(cexp)):
            fx = compile_pair(x)

            def _pow(env: PEnv, t: Ticks) -> POut:
                v, u = fx(env, t)
                p = as_num(v)
                h, bad = power(p.h, float(cexp))
                if p.same:
                    return _pn(h, h, p.d, True), u | bad
                a, bad_a = power(p.a, float(cexp))
                return _pn(h, a, _whole(t.shape[0]), False), u | bad | bad_a

            return _pow
        case Binary(op, x, y) if op in ("-", "*", "/"):
            fx, fy = compile_pair(x), compile_pair(y)

            def _arith(env: PEnv, t: Ticks) -> POut:
                vx, ux = fx(env, t)
                vy, uy = fy(env, t)
                px, py = as_num(vx), as_num(vy)
                u = ux | uy
                same = px.same and py.same
                if op == "-":
                    return _pn(sub(px.h, py.h), sub(px.a, py.a), sub(px.d, py.d), same), u
                if op == "*":
                    h = mul(px.h, py.h)
                    if same:
                        return _pn(h, h, px.d, True), u
                    if py.same:  # only x moves: (x_a - x_h) * y
                        d = mul(px.d, py.h)
                    elif px.same:
                        d = mul(px.a, py.d)
                    else:
                        d = add(mul(px.a, py.d), mul(px.d, py.h))
                    return _pn(h, mul(px.a, py.a), d, False), u
                h, bad = div(px.h, py.h)  # "/"
                if same:
                    return _pn(h, h, px.d, True), u | bad
                a, bad_a = div(px.a, py.a)
                if py.same:
                    num = mul(px.d, py.h)
                elif px.same:
                    num = neg(mul(px.h, py.d))
                else:
                    num = sub(mul(px.d, py.h), mul(px.h, py.d))
                d, _ = div(num, mul(py.a, py.h))
                return _pn(h, a, d, False), u | bad | bad_a

            return _arith
        case Call("min" | "max" as fn, args):
            fs = [compile_pair(x) for x in args]
            red = minimum if fn == "min" else maximum

            def _ext(env: PEnv, t: Ticks) -> POut:
                v0, u = fs[0](env, t)
                p = as_num(v0)
                h, a, same = p.h, p.a, p.same
                dlo, dhi = p.d.lo, p.d.hi
                for g in fs[1:]:
                    v, u2 = g(env, t)
                    q = as_num(v)
                    h, a, same = red(h, q.h), red(a, q.a), same and q.same
                    dlo, dhi = np.minimum(dlo, q.d.lo), np.maximum(dhi, q.d.hi)
                    u = u | u2
                return _pn(h, a, Iv(dlo, dhi), same), u

            return _ext
        case Call(fn, (arg,)):
            fx = compile_pair(arg)

            def _call(env: PEnv, t: Ticks) -> POut:
                v, u = fx(env, t)
                p = as_num(v)
                h, bad = unary_call(fn, lambda _e, _t: (p.h, np.zeros_like(u)))({}, 0)
                h = as_iv(h)
                if p.same:
                    return _pn(h, h, p.d, True), u | bad
                a, bad_a = unary_call(fn, lambda _e, _t: (p.a, np.zeros_like(u)))({}, 0)
                d = lipschitz(p.d) if fn == "abs" else _monotone(p.d)
                return _pn(h, as_iv(a), d, False), u | bad | bad_a

            return _call
        case Ite(c, x, y):
            fc, fx, fy = compile_pair(c), compile_pair(x), compile_pair(y)

            def _ite(env: PEnv, t: Ticks) -> POut:
                vc, uc = fc(env, t)
                cc = as_cond(vc)
                vx, ux = fx(env, t)
                vy, uy = fy(env, t)
                may_t, may_f = cc.h.t | cc.a.t, cc.h.f | cc.a.f
                u = uc | (may_t & ux) | (may_f & uy)
                if isinstance(vx, Pc) and isinstance(vy, Pc):
                    return _ite_cond(cc, vx, vy), u
                px, py = as_num(vx), as_num(vy)
                h = hull(cc.h, px.h, py.h)
                same = cc.same and px.same and py.same
                if same:
                    return _pn(h, h, px.d, True), u
                a = hull(cc.a, px.a, py.a)
                only_t = cc.h.t & ~cc.h.f & cc.a.t & ~cc.a.f
                only_f = cc.h.f & ~cc.h.t & cc.a.f & ~cc.a.t
                if cc.same:  # the same branch in both runs: its difference
                    other = Iv(np.minimum(px.d.lo, py.d.lo), np.maximum(px.d.hi, py.d.hi))
                else:
                    other = _whole(t.shape[0])
                d = Iv(
                    np.where(only_t, px.d.lo, np.where(only_f, py.d.lo, other.lo)),
                    np.where(only_t, px.d.hi, np.where(only_f, py.d.hi, other.hi)),
                )
                return _pn(h, a, d, False), u

            return _ite
        case Phase(period, offset):

            def _phase(env: PEnv, t: Ticks) -> POut:
                yes = t % period == offset
                return same_value(Bv(yes, ~yes)), np.zeros(t.shape[0], dtype=bool)

            return _phase
    raise Unsupported(f"cannot evaluate {e!r} on paired intervals")


def _ite_cond(c: Pc, x: Pc, y: Pc) -> Pc:
    def one(cb: Bv, xb: Bv, yb: Bv) -> Bv:
        both = cb.t & cb.f
        tt = np.where(both, xb.t | yb.t, np.where(cb.t, xb.t, yb.t))
        ff = np.where(both, xb.f | yb.f, np.where(cb.t, xb.f, yb.f))
        return Bv(tt, ff)

    return Pc(one(c.h, x.h, y.h), one(c.a, x.a, y.a), c.same and x.same and y.same)


def _compile_lin(e: Lin) -> PFn:
    lo0, hi0 = frac_interval(e.c0)
    parts = [(frac_interval(k), compile_pair(atom)) for atom, k in e.terms]

    def f(env: PEnv, t: Ticks) -> POut:
        n = t.shape[0]
        c0 = Iv(np.full(n, lo0), np.full(n, hi0))
        h, a, d, same = c0, c0, _zeros(n), True
        u = np.zeros(n, dtype=bool)
        for (klo, khi), g in parts:
            v, u2 = g(env, t)
            p = as_num(v)
            k = Iv(np.full(n, klo), np.full(n, khi))
            u = u | u2
            h = add(h, mul(k, p.h))
            if p.same:
                a = add(a, mul(k, p.h))
            else:
                a, d, same = add(a, mul(k, p.a)), add(d, mul(k, p.d)), False
        return _pn(h, a, d, same), u

    return f


# ---- the paired runs ----------------------------------------------------------------------------


class PairRuns:
    """The acting run of ``ts`` and loop A's counterfactual, enclosed together from ``box``
    for up to ``k`` ticks, at every start phase of the hyperperiod at once (element ``i`` of
    every array starts at phase ``i``). Ticks are enclosed as they are asked for
    (:meth:`env`), so a pair refuted at its first tick costs one tick."""

    def __init__(
        self, ts: TransitionSystem, a: str, box: Mapping[str, tuple[float, float]], k: int
    ) -> None:
        self.ts = ts
        self.a = a
        self.k = k
        self.held = hold_loop(ts, a)
        self.n = ts.hyperperiod
        self._act = _Normal(ts)
        self._hold = _Normal(self.held)
        self._envs: list[PEnv] = []
        self._broken = False  # an operation may be undefined, or one is not handled here
        self._phases = np.arange(self.n, dtype=np.int64)
        try:
            self._setup(box)
        except Unsupported:
            self._broken = True

    def fn(self, e_act: Expr, e_hold: Expr) -> Callable[[PEnv, Ticks], POut]:
        """The pair function of an expression that reads ``e_act`` in the acting run and
        ``e_hold`` in the counterfactual (one paired function where both normalize alike,
        else each evaluated on its own run)."""
        na, nh = self._act.norm(e_act), self._hold.norm(e_hold)
        if na == nh:
            return compile_pair(na)
        fa, fh = compile_pair(na), compile_pair(nh)

        def split(env: PEnv, t: Ticks) -> POut:
            va, ua = fa(_side(env, "a"), t)
            vh, uh = fh(_side(env, "h"), t)
            if isinstance(va, Pc) or isinstance(vh, Pc):
                ca, ch = as_cond(va), as_cond(vh)
                return Pc(ch.h, ca.a, False), ua | uh
            return tighten(vh.h, va.a, _whole(t.shape[0])), ua | uh

        return split

    def _setup(self, box: Mapping[str, tuple[float, float]]) -> None:
        ts, held, n = self.ts, self.held, self.n
        reach = Reach(ts, Requirement(kind="always", cond=Const(1.0), horizon=self.k + 1))
        unk = reach.unk
        base = reach.base(np.tile(unk.lo, (n, 1)), np.tile(unk.hi, (n, 1)))
        self._env0: PEnv = {name: same_value(v) for name, v in base.items()}
        self._lets = [
            (d.name, self.fn(d.expr, dh.expr)) for d, dh in zip(ts.lets, held.lets, strict=True)
        ]
        self._ups = [
            self.fn(s.update, sh.update) for s, sh in zip(ts.states, held.states, strict=True)
        ]
        self._bounds = [(const_interval(s.lo), const_interval(s.hi)) for s in ts.states]
        self._ints = reach.ints
        self._state: dict[str, PVal] = {
            nm: same_value(Iv(np.full(n, box[nm][0]), np.full(n, box[nm][1])))
            for nm in ts.state_names
        }

    def env(self, t: int) -> PEnv | None:
        """The paired environment of tick ``t <= k`` (states, inputs, parameters, lets);
        None when an operation on the way may be undefined or is not handled here."""
        while not self._broken and len(self._envs) <= t:
            try:
                self._tick()
            except Unsupported:
                self._broken = True
        return None if self._broken else self._envs[t]

    def _tick(self) -> None:
        t = len(self._envs)
        ticks = self._phases + t
        if t > 0:  # the states of tick t, from tick t - 1's environment
            last = self._envs[-1]
            new: dict[str, PVal] = {}
            for s, f, (lo, hi) in zip(self.ts.states, self._ups, self._bounds, strict=True):
                v, u = f(last, ticks - 1)
                if bool(np.any(u)):
                    self._broken = True
                    return
                new[s.name] = _clamp(as_num(v), lo, hi, s.name in self._ints)
            self._state = new
        env: PEnv = dict(self._env0)
        env.update(self._state)
        for name, f in self._lets:
            v, u = f(env, ticks)
            if bool(np.any(u)):
                self._broken = True
                return
            env[name] = v
        self._envs.append(env)

    def value(self, f: Callable[[PEnv, Ticks], POut], t: int) -> Pn | None:
        """A pair function (:meth:`fn`) at tick ``t``; None when it may be undefined."""
        env = self.env(t)
        if env is None:
            return None
        try:
            v, u = f(env, self._phases + t)
        except Unsupported:
            return None
        return None if bool(np.any(u)) else as_num(v)

    def values(self, e: Expr) -> list[Pn] | None:
        """``e`` (read the same way in both runs) at ticks ``0..k``; None when it may be
        undefined or is not handled here."""
        try:
            f = self.fn(e, e)
            out = []
            for t in range(self.k + 1):
                v = self.value(f, t)
                if v is None:
                    return None
                out.append(v)
        except Unsupported:
            return None
        return out


class _Normal:
    """Expressions of one system as the interval engine reads them: fixed parameters as
    constants, shared factors cancelled, sums in linear normal form."""

    def __init__(self, ts: TransitionSystem) -> None:
        self.lets = {d.name: d.expr for d in ts.lets}
        self.nonzero = nonzero_names(ts)
        self.consts = {p.name: p.value for p in ts.params if p.lo == p.hi or p.internal}

    def norm(self, e: Expr) -> Expr:
        return self._unchanged(normalize(cancel_factors(e, self.lets, self.nonzero), self.consts))

    def _unchanged(self, e: Expr) -> Expr:
        """``if (f and x != y) then x else y`` is ``if f then x else y`` (and ``if x != y
        then x else y`` is ``x``): where the test fails the branches are equal. An actuator's
        update reads so (it changes when the loop fires and its target differs), and the
        test, which the two runs may decide differently, would hide that both runs take the
        target whenever the loop fires. The condition may be a let."""
        match e:
            case Ite(c, x, y):
                x, y = self._unchanged(x), self._unchanged(y)
                test = self.lets.get(c.name, c) if isinstance(c, Var) else c
                match test:
                    case Binary("!=", p, q) if self._pair(p, q, x, y):
                        return x
                    case Binary("and", f, Binary("!=", p, q)) if self._pair(p, q, x, y):
                        return Ite(f, x, y)
                return Ite(self._unchanged(c), x, y)
            case Unary(op, x):
                return Unary(op, self._unchanged(x))
            case Binary(op, x, y):
                return Binary(op, self._unchanged(x), self._unchanged(y))
            case Call(fn, args):
                return Call(fn, tuple(self._unchanged(x) for x in args))
            case Lin(c0, terms):
                return Lin(c0, tuple((self._unchanged(x), k) for x, k in terms))
        return e

    def _pair(self, p: Expr, q: Expr, x: Expr, y: Expr) -> bool:
        np_, nq = (normalize(v, self.consts) for v in (p, q))
        return {np_, nq} == {x, y} and np_ != nq


def _side(env: PEnv, which: str) -> PEnv:
    """One run's values as values that are the same in both (to evaluate an expression that
    is read differently in the two runs on each run alone)."""
    out: PEnv = {}
    for name, v in env.items():
        if isinstance(v, Pn):
            out[name] = same_value(v.a if which == "a" else v.h)
        else:
            out[name] = same_value(v.a if which == "a" else v.h)
    return out


def _clamp(p: Pn, lo: tuple[float, float], hi: tuple[float, float], integer: bool) -> Pn:
    """A state's update clamped to its range (and rounded in, for an integer state)."""

    def cut(x: Iv) -> Iv:
        xlo = np.minimum(np.maximum(x.lo, lo[0]), hi[0])
        xhi = np.minimum(np.maximum(x.hi, lo[1]), hi[1])
        if integer:
            xlo, xhi = np.ceil(xlo), np.floor(xhi)
        return Iv(xlo, xhi)

    h = cut(p.h)
    if p.same:
        return Pn(h, h, p.d, True)
    a = cut(p.a)
    may_cut = (p.h.lo < lo[1]) | (p.h.hi > hi[0]) | (p.a.lo < lo[1]) | (p.a.hi > hi[0])
    wide = clamped(p.d)
    d = Iv(np.where(may_cut, wide.lo, p.d.lo), np.where(may_cut, wide.hi, p.d.hi))
    if integer:  # both values are integers: so is their difference
        d = Iv(np.ceil(d.lo), np.floor(d.hi))
    return tighten(h, a, d)


# ---- the alignment test -------------------------------------------------------------------------


def _pad(x: F) -> F:
    return 1e-9 * (np.abs(x) + 1e-9)


def not_worse(o: ObjectiveIR, p: Pn, floor: float | None = None) -> bool:
    """minimize / maximize: the acting run's value never exceeds the counterfactual's by more
    than the tolerance (relative to the counterfactual's least magnitude), at every phase."""
    h, d = p.h, p.d
    if p.same:
        return True
    vals = (h.lo, h.hi, d.lo, d.hi)
    if not all(bool(np.all(np.isfinite(x))) for x in vals):
        return False
    least = np.where((h.lo <= 0.0) & (h.hi >= 0.0), 0.0, np.minimum(np.abs(h.lo), np.abs(h.hi)))
    tol = o.tolerance * least if o.relative else np.full(h.lo.shape, o.tolerance)
    tol = np.maximum(tol, floor or 0.0)  # the threshold: at least the objective's floor
    diff = d.hi if o.kind == "minimize" else -d.lo
    return bool(np.all(diff + _pad(diff) + _pad(tol) <= tol))


def keep_not_worse(o: ObjectiveIR, slack: Pn, floor: float | None = None) -> bool:
    """keep: the acting run's violation amount ``max(0, -slack)`` never exceeds the
    counterfactual's: the acting run's slack is never below the counterfactual's, or the
    acting run never violates it."""
    if slack.same:
        return True
    s_a, d = slack.a, slack.d
    strict = o.cmp in ("<", ">")
    # both ends are rigorous (outward rounded): no margin is needed against rounding
    never = s_a.lo > 0.0 if strict else s_a.lo >= 0.0
    above = np.isfinite(d.lo) & (d.lo >= -(floor or 0.0))  # the violation grows by <= floor
    return bool(np.all(never | above))


def keep_slack(o: ObjectiveIR) -> Expr:
    """A keep objective's slack as an expression (:func:`coherence.smt.objectives.slack`)."""
    assert o.kind == "keep" and o.bound is not None
    tol: Expr = Const(o.tolerance)
    if o.relative:
        tol = Binary("*", tol, Call("abs", (o.bound,)))
    if o.cmp in ("<=", "<"):
        return Binary("-", Binary("+", o.bound, tol), o.expr)
    return Binary("-", o.expr, Binary("-", o.bound, tol))


def aligned_by_pairs(
    runs: PairRuns,
    objectives: list[ObjectiveIR],
    k: int,
    floors: Mapping[str, float] | None = None,
) -> bool:
    """Whether the paired enclosure shows that A's run is never worse than its counterfactual
    for any of ``objectives`` at ticks ``1..k``, from any start in the box at any phase (tick
    by tick: the first tick that fails ends it)."""
    if k > runs.k or not objectives:
        return False
    try:
        fns = [
            (o, runs.fn(*(2 * [keep_slack(o) if o.kind == "keep" else o.expr]))) for o in objectives
        ]
    except Unsupported:
        return False
    for j in range(1, k + 1):
        for o, f in fns:
            v = runs.value(f, j)
            if v is None:
                return False
            fl = (floors or {}).get(o.name)
            if not (keep_not_worse(o, v, fl) if o.kind == "keep" else not_worse(o, v, fl)):
                return False
    return True
