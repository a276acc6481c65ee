"""The encoder: IR expressions as Z3 terms, tick by tick.

One encoder serves every formal analysis (BMC, k-induction, conflict witnesses, equilibria).
Its terms are those of :mod:`coherence.smt.terms` (numbers and conditions with their bounds,
envelopes, tangents and chords); the runs it unrolls are :mod:`coherence.smt.unroll`.
It reads the transition system of :mod:`coherence.ir.nodes` with the simulator's meaning:
lets in order, then every state update, each clamped to its ``[lo, hi]``; ``Phase`` true on
ticks ``t`` with ``t % period == offset``; ``round(x) = floor(x + 1/2)``.

- Numbers are Z3 reals; states marked integer whose update is integral by construction are Z3
  integers. ``min``/``max``/``abs``/``if``/saturations/deadbands are ``If`` terms, ``floor`` is
  ``ToInt`` (``ceil(x) = -floor(-x)``), booleans are Z3 booleans (a number used as a condition
  means ``!= 0``, a condition used as a number is 1 or 0).
- Every term carries an :class:`~coherence.intervals.arith.Interval` bound, propagated from the
  declared ranges (and, from the initial state, tick by tick), and an affine form over atoms
  so that sums cancel (``x + (t - x)`` is bounded like ``t``). Comparisons, ``min`` and
  ``max`` that the bounds decide are folded away.
- Nonlinear terms: in ``exact`` mode products and quotients stay nonlinear (Z3's nonlinear
  real arithmetic), ``sqrt`` and ``x ^ (p/q)`` become auxiliary variables (``y >= 0,
  y^q = x^p``). In ``overapprox`` mode each product ``x*y`` becomes an auxiliary variable
  bounded by its McCormick envelope over the interval bounds of ``x`` and ``y``, a quotient
  ``x/y`` an auxiliary ``q`` with the envelope of ``q*y = x``, and convex or concave functions
  are bounded by secants and tangents: linear arithmetic only. ``exp`` and ``log`` use those
  bounds in both modes (Z3 has no exact theory for them); the encoder then marks itself
  ``relaxed`` and every answer it gives is a candidate that replay must confirm.
- Operations that the simulator would turn into ``inf``/``nan`` (division by zero, ``log`` of a
  non-positive number, ``sqrt`` of a negative one, ``exp`` overflow) are recorded as
  *undefinedness* conditions of their tick; the engines count them as failures to prove.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from coherence.intervals.arith import INF, Interval
from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    Phase,
    TransitionSystem,
    Unary,
    Var,
    sum_terms,
)
from coherence.smt.solver import ctx
from coherence.smt.terms import (
    Cond,
    EncodeError,
    Lin,
    Num,
    Relaxation,
    SymbolicTick,
    Term,
    Value,
    bound_cmp,
    cond_of,
    const,
    false,
    in_box,
    in_domain,
    mccormick,
    point,
    q_down,
    q_up,
    real,
    secant,
    sum_of,
    tangent,
    true,
)

EXACT = "exact"
OVERAPPROX = "overapprox"


def _split(b: Interval, at: float) -> list[Interval]:
    if b.lo < at < b.hi:
        return [Interval(b.lo, at), Interval(at, b.hi)]
    return [b]


def _ipow(term: Term, n: int) -> Term:
    out = term
    for _ in range(n - 1):
        out = out * term
    return out


@dataclass(slots=True)
class Frame:
    """The values of one tick of an unrolled run (states, inputs, params, lets)."""

    index: int  # ticks since the start of the run
    tick: int | SymbolicTick | None  # the absolute tick; None: any tick (phases unknown)
    values: dict[str, Value]
    undefined: list[Term] = field(default_factory=list)
    lets_done: bool = False


class Encoder:
    """Turns IR expressions into Z3 terms; collects the side constraints it needs.

    ``mode`` is ``exact`` or ``overapprox``. ``constraints`` accumulates definitions of
    auxiliary variables and bounds; :meth:`drain` hands the new ones to a solver.

    ``laws`` is the localization abstraction (:func:`coherence.smt.localize.localize`): the lets
    named there (a loop's recommendation, the value of its control law before shaping) are
    not encoded; a run takes a fresh real variable per tick for each, within the given
    interval (a sound enclosure of the let; unbounded ends leave it free). Everything that
    reads them (stabilization history, tolerance, rate limits, limits, rounding) stays exact,
    so the runs are a superset of the system's: an ``unsat`` is a proof, a ``sat`` nothing.

    ``loose_extrema``: a ``min``/``max`` of three or more arguments keeps only its bounds
    (``m >= a_i`` for ``max``, ``m <= a_i`` for ``min``) and drops "``m`` equals one of
    them": ``m`` may exceed the true maximum (fall below the true minimum). Every run of the
    system is still a run of the encoding, so an ``unsat`` stays a proof; the solver no longer
    splits cases over which argument is the extremum, which a proof that needs only the bounds
    (a stabilization window's maximum is at least each past recommendation) does not need.
    The encoding counts as relaxed (:attr:`relaxed`).
    """

    def __init__(
        self,
        ts: TransitionSystem,
        mode: str = EXACT,
        tag: str = "",
        laws: Mapping[str, Interval] | None = None,
        loose_extrema: bool = False,
    ) -> None:
        if mode not in (EXACT, OVERAPPROX):
            raise ValueError(f"unknown mode {mode!r}")
        self.ts = ts
        self.mode = mode
        self.tag = tag
        self.laws: dict[str, Interval] = dict(laws or {})
        self.loose_extrema = loose_extrema
        self.constraints: list[Term] = []
        self.nonlinear = False  # exact nonlinear terms were produced
        self.relaxed = False  # some term is only bounded, not defined exactly
        self.relaxed_ops: set[str] = set()
        self._count = 0
        self.atoms: list[Interval] = []
        self.relaxations: list[Relaxation] = []
        self.atom_terms: list[Term] = []

    # ---- bookkeeping ------------------------------------------------------------------------
    def drain(self) -> list[Term]:
        out, self.constraints = self.constraints, []
        return out

    def atom(self, term: Term, iv: Interval, alts: tuple[Term, Num, Num] | None = None) -> Num:
        """An opaque term: a new atom of the affine forms."""
        self.atoms.append(iv)
        self.atom_terms.append(term)
        return Num(term, iv, None, (Fraction(0), ((len(self.atoms) - 1, Fraction(1)),)), alts)

    def fresh(self, hint: str, iv: Interval, integer: bool = False) -> Num:
        """A new auxiliary variable bounded by ``iv``."""
        self._count += 1
        return self.named(f"{hint}#{self._count}", iv, integer)

    def named(self, name: str, iv: Interval, integer: bool = False) -> Num:
        """A variable with a readable name (states, inputs, params), bounded by ``iv``."""
        full = f"{self.tag}{name}"
        if integer:
            v = z3.Int(full, ctx())
            if math.isfinite(iv.lo):
                self.constraints.append(v >= math.ceil(iv.lo - 1e-9))
            if math.isfinite(iv.hi):
                self.constraints.append(v <= math.floor(iv.hi + 1e-9))
            return self.atom(z3.ToReal(v), iv)
        term = z3.Real(full, ctx())
        self.bound(term, iv)
        return self.atom(term, iv)

    def lin_iv(self, lin: Lin) -> Interval:
        out = point(lin[0])
        atoms = self.atoms
        for aid, c in lin[1]:
            out = out + point(c) * atoms[aid]
        return out

    @staticmethod
    def lin_add(a: Lin, b: Lin) -> Lin:
        coefs = dict(a[1])
        for k, c in b[1]:
            coefs[k] = coefs.get(k, Fraction(0)) + c
        return (a[0] + b[0], tuple(sorted((k, c) for k, c in coefs.items() if c != 0)))

    @staticmethod
    def lin_scale(c: Fraction, a: Lin) -> Lin:
        return (c * a[0], tuple((k, c * v) for k, v in a[1]))

    def bound(self, term: Term, iv: Interval) -> None:
        if math.isfinite(iv.lo):
            self.constraints.append(bound_cmp(term, ">=", q_down(iv.lo)))
        if math.isfinite(iv.hi):
            self.constraints.append(bound_cmp(term, "<=", q_up(iv.hi)))

    def _relax(self, op: str) -> None:
        self.relaxed = True
        self.relaxed_ops.add(op)

    # ---- conversions ------------------------------------------------------------------------
    def num(self, v: Value) -> Num:
        if isinstance(v, Num):
            return v
        if v.value is not None:
            return const(1 if v.value else 0)
        one, zero = const(1), const(0)
        return self.atom(
            z3.If(v.term, one.term, zero.term), Interval(0.0, 1.0), (v.term, one, zero)
        )

    @staticmethod
    def cond(v: Value) -> Cond:
        if isinstance(v, Cond):
            return v
        if v.const is not None:
            return cond_of(v.const != 0)
        if v.iv.excludes_zero():
            return true()
        if v.iv.lo == 0.0 and v.iv.hi == 0.0:
            return false()
        return Cond(v.term != 0)

    # ---- expressions ------------------------------------------------------------------------
    def expr(self, e: Expr, frame: Frame) -> Value:
        match e:
            case Const(v):
                return const(v)
            case Var(name):
                try:
                    return frame.values[name]
                except KeyError:
                    raise EncodeError(f"no value for `{name}`") from None
            case Unary("neg", a):
                return self.neg(self.num(self.expr(a, frame)))
            case Unary(_, a):
                return self.not_(self.cond(self.expr(a, frame)))
            case Binary("and", a, b):
                return self.and_([self.cond(self.expr(a, frame)), self.cond(self.expr(b, frame))])
            case Binary("or", a, b):
                return self.or_([self.cond(self.expr(a, frame)), self.cond(self.expr(b, frame))])
            case Binary(op, a, b) if op in ("<", "<=", ">", ">=", "==", "!="):
                return self.compare(
                    op, self.num(self.expr(a, frame)), self.num(self.expr(b, frame))
                )
            case Binary("+", _, _):
                return self.sum([self.num(self.expr(t, frame)) for t in sum_terms(e)])
            case Binary(op, a, b):
                x, y = self.num(self.expr(a, frame)), self.num(self.expr(b, frame))
                if op == "+":
                    return self.add(x, y)
                if op == "-":
                    return self.sub(x, y)
                if op == "*":
                    return self.mul(x, y)
                if op == "/":
                    return self.div(x, y, frame)
                if op == "^":
                    return self.power(x, y, frame)
                raise EncodeError(f"unknown operator {op}")
            case Call(fn, args):
                vals = [self.num(self.expr(a, frame)) for a in args]
                return self.call(fn, vals, frame)
            case Ite(c, a, b):
                cv = self.cond(self.expr(c, frame))
                if cv.value is True:
                    return self.expr(a, frame)
                if cv.value is False:
                    return self.expr(b, frame)
                return self.ite(cv, self.expr(a, frame), self.expr(b, frame))
            case Phase(period, offset):
                if isinstance(frame.tick, int):
                    return cond_of(frame.tick % period == offset)
                if isinstance(frame.tick, SymbolicTick):
                    return frame.tick.phase.at(frame.tick.index, period, offset)
                self._count += 1
                return Cond(z3.Bool(f"{self.tag}phase?#{self._count}", ctx()))
        raise EncodeError(f"cannot encode {e!r}")

    # ---- arithmetic -------------------------------------------------------------------------
    def neg(self, x: Num) -> Num:
        return self.scale(Fraction(-1), x)

    def add(self, x: Num, y: Num) -> Num:
        if x.const is not None and y.const is not None:
            return const(x.const + y.const)
        if x.const == 0:
            return y
        if y.const == 0:
            return x
        # distribute into an open If (x + If(c, a, b) = If(c, x + a, x + b)), while small
        if y.alts is not None and x.leaves * y.leaves <= 8:
            c, a, b = y.alts
            return self._open_ite(c, self.add(x, a), self.add(x, b))
        if x.alts is not None and x.leaves * y.leaves <= 8:
            c, a, b = x.alts
            return self._open_ite(c, self.add(a, y), self.add(b, y))
        iv = x.iv + y.iv
        if x.lin is not None and y.lin is not None:
            lin = self.lin_add(x.lin, y.lin)
            if not lin[1]:
                return const(lin[0])
            iv = iv.meet(self.lin_iv(lin))
            if len(lin[1]) < len(x.lin[1]) + len(y.lin[1]):
                return Num(self.lin_term(lin), iv, None, lin)  # terms merged or cancelled
            return Num(x.term + y.term, iv, None, lin)
        return Num(x.term + y.term, iv)

    def lin_term(self, lin: Lin) -> Term:
        """The term of an affine form (cancellations done: ``x + (t - x)`` is ``t``)."""
        parts = []
        for k, c in lin[1]:
            t = self.atom_terms[k]
            parts.append(t if c == 1 else -t if c == -1 else real(c) * t)
        if lin[0] != 0:
            parts.append(real(lin[0]))
        return parts[0] if len(parts) == 1 else sum_of(parts)

    def sub(self, x: Num, y: Num) -> Num:
        return self.add(x, self.neg(y))

    def sum(self, terms: list[Num]) -> Num:
        """A sum of many terms at once (a window's registers): one affine form, one term."""
        if len(terms) <= 2 or any(t.lin is None or t.alts is not None for t in terms):
            out = terms[0]
            for t in terms[1:]:
                out = self.add(out, t)
            return out
        coefs: dict[int, Fraction] = {}
        c0 = Fraction(0)
        iv = Interval.point(0.0)
        for t in terms:
            assert t.lin is not None
            c0 += t.lin[0]
            for k, c in t.lin[1]:
                coefs[k] = coefs.get(k, Fraction(0)) + c
            iv = iv + t.iv
        lin = (c0, tuple(sorted((k, c) for k, c in coefs.items() if c != 0)))
        if not lin[1]:
            return const(c0)
        return Num(self.lin_term(lin), iv.meet(self.lin_iv(lin)), None, lin)

    def scale(self, c: Fraction, x: Num) -> Num:
        if c == 0:
            return const(0)
        if c == 1:
            return x
        if x.const is not None:
            return const(c * x.const)
        if x.alts is not None:
            cond, a, b = x.alts
            return self._open_ite(cond, self.scale(c, a), self.scale(c, b))
        lin = None if x.lin is None else self.lin_scale(c, x.lin)
        term = -x.term if c == -1 else real(c) * x.term
        return Num(term, const(c).iv * x.iv, None, lin)

    def _open_ite(self, c: Term, a: Num, b: Num) -> Num:
        """``If(c, a, b)`` kept open for distribution, and an atom for affine forms."""
        if a.const is not None and a.const == b.const:
            return a
        return self.atom(z3.If(c, a.term, b.term), a.iv.hull(b.iv), (c, a, b))

    def mul(self, x: Num, y: Num) -> Num:
        if x.const is not None:
            return self.scale(x.const, y)
        if y.const is not None:
            return self.scale(y.const, x)
        if z3.eq(x.term, y.term):
            return self.square(x)
        iv = x.iv * y.iv
        if self.mode == EXACT:
            self.nonlinear = True
            return self.atom(x.term * y.term, iv)
        self._relax("*")
        w = self.fresh("mul", iv)
        self._product(w.term, x, y)
        return w

    def _product(self, w: Term, x: Num, y: Num) -> None:
        """Relax ``w = x * y``: its McCormick envelope, remembered for refinement."""
        self.constraints += mccormick(w, x.term, y.term, x.iv, y.iv)
        self.relaxations.append(Relaxation("product", w, x, y))

    def square(self, x: Num) -> Num:
        iv = (x.iv * x.iv).meet(Interval(0.0, INF))
        if self.mode == EXACT:
            self.nonlinear = True
            return self.atom(x.term * x.term, iv)
        self._relax("^")
        w = self.fresh("sq", iv)
        self._convex(w, x, lambda v: v * v, lambda v: 2 * v, convex=True)
        return w

    def div(self, x: Num, y: Num, frame: Frame) -> Num:
        if y.const is not None:
            if y.const == 0:
                frame.undefined.append(z3.BoolVal(True, ctx()))
                return self.fresh("div0", Interval.top())
            return self.scale(1 / y.const, x)
        if not y.iv.excludes_zero():
            frame.undefined.append(y.term == 0)
        iv = x.iv / y.iv
        if self.mode == EXACT:
            self.nonlinear = True
            return self.atom(x.term / y.term, iv)
        self._relax("/")
        q = self.fresh("div", iv)
        if y.iv.excludes_zero():
            # q = x / y  <=>  q * y = x  (y != 0): the envelope of the product q * y is x
            self._product(x.term, q, y)
        return q

    def power(self, x: Num, y: Num, frame: Frame) -> Num:
        if y.const is None:
            # a variable exponent: only the interval of exp(y * log x) bounds it
            self._relax("^")
            if x.iv.lo <= 0:
                frame.undefined.append(x.term < 0)
            iv = (y.iv * x.iv.log()).exp() if x.iv.lo > 0 else Interval.top()
            return self.fresh("pow", iv)
        c = y.const
        if c == 0:
            return const(1)
        if c == 1:
            return x
        if c.denominator == 1 and 2 <= c <= 8:
            out = x
            for _ in range(int(c) - 1):
                out = self.mul(out, x)
            return out
        if c.denominator == 1 and c < 0:
            return self.div(const(1), self.power(x, const(-c), frame), frame)
        if c == Fraction(1, 2):
            return self.call("sqrt", [x], frame)
        # a fractional power: defined for x >= 0 (x = 0 needs c > 0)
        if x.iv.lo < 0 or (x.iv.lo <= 0 and c < 0):
            frame.undefined.append(x.term < 0 if c > 0 else x.term <= 0)
        dom = x.iv.meet(Interval(0.0, INF))
        iv = dom.power(float(c))
        cf = float(c)
        if self.mode == EXACT and c > 0 and c.denominator <= 4 and c.numerator <= 8:
            self.nonlinear = True
            w = self.fresh("pow", iv)
            lhs = _ipow(w.term, c.denominator)
            rhs = _ipow(x.term, c.numerator)
            self.constraints.append(w.term >= 0)
            self.constraints.append(z3.Implies(x.term >= 0, lhs == rhs))
            return w
        self._relax("^")
        w = self.fresh("pow", iv)
        convex = cf > 1 or cf < 0
        self._convex(
            w,
            x,
            lambda v: float(v**cf),
            lambda v: cf * float(v ** (cf - 1)),
            convex,
            domain=Interval(0.0 if cf > 0 else 1e-300, INF),
        )
        return w

    def call(self, fn: str, args: list[Num], frame: Frame) -> Num:
        if fn in ("min", "max"):
            return self.extremum(fn, args)
        (x,) = args
        if fn == "abs":
            if x.const is not None:
                return const(abs(x.const))
            if x.iv.lo >= 0:
                return x
            if x.iv.hi <= 0:
                return self.neg(x)
            m = self._open_ite(x.term >= 0, x, self.neg(x))
            return Num(m.term, m.iv.meet(x.iv.abs()), None, m.lin, m.alts)
        if fn == "floor":
            return self.floor(x)
        if fn == "ceil":
            return self.neg(self.floor(self.neg(x)))
        if fn == "round":
            return self.floor(self.add(x, const(Fraction(1, 2))))
        if fn == "sqrt":
            return self.sqrt(x, frame)
        if fn == "exp":
            return self.exp(x, frame)
        if fn == "log":
            return self.log(x, frame)
        raise EncodeError(f"unknown function `{fn}`")

    def floor(self, x: Num) -> Num:
        if x.const is not None:
            return const(math.floor(x.const))
        iv = x.iv.floor()
        if iv.finite and iv.lo == iv.hi:
            return const(Fraction(int(iv.lo)))
        return self.atom(z3.ToReal(z3.ToInt(x.term)), iv)

    def extremum(self, fn: str, args: list[Num]) -> Num:
        """``min``/``max`` of several terms. Arguments the bounds rule out are dropped; three
        or more that remain become one variable ``m`` with ``m >= a_i`` (``<=`` for min) for
        every ``i`` and ``m = a_i`` for some ``i``: the same value as the nested ``If`` chain,
        but the solver sees ``m >= a_i`` directly instead of splitting cases to find it."""
        pick = self.maximum if fn == "max" else self.minimum
        live: list[Num] = []
        for a in args:
            dominated = any(
                (b.iv.lo >= a.iv.hi if fn == "max" else b.iv.hi <= a.iv.lo) for b in live
            )
            if dominated:
                continue
            live = [
                b for b in live if not (a.iv.lo >= b.iv.hi if fn == "max" else a.iv.hi <= b.iv.lo)
            ]
            live.append(a)
        consts = [a for a in live if a.const is not None]
        if len(consts) > 1:
            folded = consts[0]
            for c in consts[1:]:
                folded = pick(folded, c)
            live = [a for a in live if a.const is None] + [folded]
        if len(live) <= 2:
            out = live[0]
            for a in live[1:]:
                out = pick(out, a)
            return out
        iv = live[0].iv
        for a in live[1:]:
            iv = iv.maximum(a.iv) if fn == "max" else iv.minimum(a.iv)
        m = self.fresh(fn, iv)
        for a in live:
            self.constraints.append(m.term >= a.term if fn == "max" else m.term <= a.term)
        if self.loose_extrema:
            self._relax(fn)
        else:
            self.constraints.append(z3.Or(*[m.term == a.term for a in live]))
        return m

    def minimum(self, x: Num, y: Num) -> Num:
        if x.const is not None and y.const is not None:
            return const(min(x.const, y.const))
        if x.iv.hi <= y.iv.lo:
            return x
        if y.iv.hi <= x.iv.lo:
            return y
        m = self._open_ite(x.term <= y.term, x, y)
        return Num(m.term, m.iv.meet(x.iv.minimum(y.iv)), None, m.lin, m.alts)

    def maximum(self, x: Num, y: Num) -> Num:
        if x.const is not None and y.const is not None:
            return const(max(x.const, y.const))
        if x.iv.lo >= y.iv.hi:
            return x
        if y.iv.lo >= x.iv.hi:
            return y
        m = self._open_ite(x.term >= y.term, x, y)
        return Num(m.term, m.iv.meet(x.iv.maximum(y.iv)), None, m.lin, m.alts)

    def sqrt(self, x: Num, frame: Frame) -> Num:
        if x.const is not None and x.const >= 0:
            r = math.isqrt(x.const.numerator), math.isqrt(x.const.denominator)
            if Fraction(r[0] ** 2, r[1] ** 2) == x.const:
                return const(Fraction(r[0], r[1]))
        if x.iv.lo < 0:
            frame.undefined.append(x.term < 0)
        iv = x.iv.sqrt()
        w = self.fresh("sqrt", iv)
        self.constraints.append(w.term >= 0)
        if self.mode == EXACT:
            self.nonlinear = True
            self.constraints.append(z3.Implies(x.term >= 0, w.term * w.term == x.term))
            return w
        self._relax("sqrt")
        self._convex(
            w, x, math.sqrt, lambda v: 0.5 / math.sqrt(v), convex=False, domain=Interval(0.0, INF)
        )
        return w

    def exp(self, x: Num, frame: Frame) -> Num:
        self._relax("exp")
        if x.iv.hi > 709.0:
            frame.undefined.append(x.term > 709)
        w = self.fresh("exp", x.iv.exp())
        self._convex(
            w, x, lambda v: math.exp(min(v, 709.0)), lambda v: math.exp(min(v, 709.0)), convex=True
        )
        return w

    def log(self, x: Num, frame: Frame) -> Num:
        self._relax("log")
        if x.iv.lo <= 0:
            frame.undefined.append(x.term <= 0)
        w = self.fresh("log", x.iv.log())
        self._convex(w, x, math.log, lambda v: 1.0 / v, convex=False, domain=Interval(1e-300, INF))
        return w

    def _convex(
        self,
        w: Num,
        x: Num,
        f: Callable[[float], float],
        df: Callable[[float], float],
        convex: bool,
        domain: Interval | None = None,
    ) -> None:
        """Secant and tangent bounds of ``w = f(x)`` for convex (or concave) ``f``.

        Tangents bound a convex function from below everywhere on its domain; the secant over
        ``[lo, hi]`` bounds it from above there (reversed for concave). Float evaluation of
        ``f`` and ``f'`` is made safe by loosening each line by a relative 1e-9 plus the
        slope error times the width of the box. Constraints apply where ``x`` lies in the
        domain of ``f`` (elsewhere the tick is undefined anyway).
        """
        dom = domain or Interval.top()
        box = x.iv.meet(dom)
        if box.empty:
            return
        lo, hi = box.lo, box.hi
        points: list[float] = []
        if math.isfinite(lo) and math.isfinite(hi):
            points = [lo + (hi - lo) * k / 4 for k in range(5)]
        elif math.isfinite(lo):
            points = [lo, lo + 1.0, lo + 10.0, lo + 100.0]
        elif math.isfinite(hi):
            points = [hi, hi - 1.0, hi - 10.0, hi - 100.0]
        else:
            points = [-10.0, -1.0, 0.0, 1.0, 10.0]
        lines = [t for p in points for t in tangent(w.term, x.term, f, df, convex, p, box, dom)]
        lines += secant(w.term, x.term, f, convex, lo, hi)
        if lines:
            self.constraints.append(z3.Implies(in_domain(x.term, dom), z3.And(*lines)))
        self.relaxations.append(Relaxation("function", w.term, x, None, f, df, convex, dom))

    def refine(self, model: Any, limit: int = 6) -> int:
        """Tighten the relaxations a spurious model exploits; returns how many were refined.

        A product ``w = x*y`` whose model value is off is split at the model's ``x`` and
        ``y`` into four boxes, each with its own McCormick envelope (a disjunction: sound,
        as the boxes cover the whole box). A convex or concave function gets a tangent at
        the model's ``x`` and the secant split there. Each relaxation is refined at most
        ``limit`` times.
        """
        from coherence.smt.solver import to_float

        def val(t: Term) -> float:
            return to_float(model.eval(t, model_completion=True))

        done = 0
        for r in self.relaxations:
            if r.splits >= limit:
                continue
            try:
                xm, wm = val(r.x.term), val(r.w)
                ym = val(r.y.term) if r.y is not None else 0.0
            except (ValueError, z3.Z3Exception):
                continue
            if r.kind == "product":
                assert r.y is not None
                if abs(wm - xm * ym) <= 1e-9 * (1 + abs(wm)):
                    continue
                boxes = []
                for bx in _split(r.x.iv, xm):
                    for by in _split(r.y.iv, ym):
                        cons = [*in_box(r.x.term, bx), *in_box(r.y.term, by)]
                        cons += mccormick(r.w, r.x.term, r.y.term, bx, by)
                        boxes.append(z3.And(*cons))
                if len(boxes) < 2:
                    continue
                self.constraints.append(z3.Or(*boxes))
            else:
                assert r.f is not None and r.df is not None and r.domain is not None
                try:
                    fx = r.f(xm)
                except (ValueError, ZeroDivisionError, OverflowError):
                    continue
                if not math.isfinite(fx) or abs(wm - fx) <= 1e-9 * (1 + abs(fx)):
                    continue
                box = r.x.iv.meet(r.domain)
                lines = tangent(r.w, r.x.term, r.f, r.df, r.convex, xm, box, r.domain)
                parts = []
                for b in _split(box, xm):
                    sec = secant(r.w, r.x.term, r.f, r.convex, b.lo, b.hi)
                    parts.append(z3.And(*in_box(r.x.term, b), *sec))
                if len(parts) >= 2:
                    lines.append(z3.Or(*parts))
                if not lines:
                    continue
                self.constraints.append(z3.Implies(in_domain(r.x.term, r.domain), z3.And(*lines)))
            r.splits += 1
            done += 1
        return done

    # ---- conditions -------------------------------------------------------------------------
    @staticmethod
    def compare(op: str, x: Num, y: Num, margin: Fraction = Fraction(0)) -> Cond:
        """``x op y``; with ``margin > 0`` the comparison must hold with that much room."""
        if x.const is not None and y.const is not None and margin == 0:
            a, b = x.const, y.const
            return cond_of(
                {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[op]
            )
        xl, xu, yl, yu = x.iv.lo, x.iv.hi, y.iv.lo, y.iv.hi
        m = float(margin)
        if op in (">", ">="):
            op = "<" if op == ">" else "<="
            x, y = y, x
            xl, xu, yl, yu = yl, yu, xl, xu
        if op in ("<", "<="):
            if margin:  # x + m <= y
                if xu + m < yl:
                    return true()
                if xl + m > yu:
                    return false()
                return Cond(x.term + real(margin) <= y.term)
            if xu < yl or (op == "<=" and xu <= yl):
                return true()
            if xl > yu or (op == "<" and xl >= yu):
                return false()
            return Cond(x.term < y.term if op == "<" else x.term <= y.term)
        if op == "==":
            if xu < yl or yu < xl:
                return false()
            return Cond(x.term == y.term)
        if xu + m < yl or yu + m < xl:
            return true()
        if margin:
            d = x.term - y.term
            return Cond(z3.Or(d >= real(margin), d <= -real(margin)))
        return Cond(x.term != y.term)

    @staticmethod
    def not_(c: Cond) -> Cond:
        if c.value is not None:
            return cond_of(not c.value)
        return Cond(z3.Not(c.term))

    @staticmethod
    def and_(parts: Iterable[Cond]) -> Cond:
        terms = []
        for p in parts:
            if p.value is False:
                return false()
            if p.value is None:
                terms.append(p.term)
        if not terms:
            return true()
        return Cond(terms[0] if len(terms) == 1 else z3.And(*terms))

    @staticmethod
    def or_(parts: Iterable[Cond]) -> Cond:
        terms = []
        for p in parts:
            if p.value is True:
                return true()
            if p.value is None:
                terms.append(p.term)
        if not terms:
            return false()
        return Cond(terms[0] if len(terms) == 1 else z3.Or(*terms))

    def ite(self, c: Cond, a: Value, b: Value) -> Value:
        if isinstance(a, Cond) and isinstance(b, Cond):
            if a.value is not None and a.value == b.value:
                return a
            return Cond(z3.If(c.term, a.term, b.term))
        return self._open_ite(c.term, self.num(a), self.num(b))

    def robust(self, e: Expr, frame: Frame, margin: Fraction, positive: bool = True) -> Cond:
        """``e`` (or its negation) holding with ``margin`` of room in every comparison.

        With ``margin = 0`` this is exactly ``e`` (or ``not e``). The encoding of a violation
        uses a small positive margin first, so a counterexample the solver finds survives the
        float rounding of the replay.
        """
        match e:
            case Unary("not", a):
                return self.robust(a, frame, margin, not positive)
            case Binary("and", a, b) | Binary("or", a, b):
                parts = [
                    self.robust(a, frame, margin, positive),
                    self.robust(b, frame, margin, positive),
                ]
                conj = (e.op == "and") == positive
                return self.and_(parts) if conj else self.or_(parts)
            case Binary(op, a, b) if op in ("<", "<=", ">", ">=", "==", "!="):
                if not positive:
                    op = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}[op]
                x, y = self.num(self.expr(a, frame)), self.num(self.expr(b, frame))
                return self.compare(op, x, y, margin)
        c = self.cond(self.expr(e, frame))
        return c if positive else self.not_(c)
