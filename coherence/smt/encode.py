"""The encoder: IR expressions and unrolled runs of a transition system as Z3 terms.

One encoder serves every formal analysis (BMC, k-induction, conflict witnesses, equilibria).
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

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from coherence.intervals.arith import INF, Interval
from coherence.ir.integers import integer_states
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
from coherence.smt.solver import ctx, scope_cache

Term = Any  # z3 terms are untyped
EXACT = "exact"
OVERAPPROX = "overapprox"


class EncodeError(Exception):
    """An expression the encoder cannot express (reported as unknown with this reason)."""


RATIONAL_DENOMINATORS = (10, 100, 1_000, 10_000, 100_000, 1_000_000)


@functools.lru_cache(maxsize=65536)
def rational(v: float) -> Fraction:
    """The rational a spec constant denotes: the shortest decimal that reads back as ``v``,
    unless a fraction with a smaller denominator (up to a million) also does.

    A constant folded from the spec's units is a float: 8 $/h is ``8 / 3600`` $/s, which
    prints as ``0.0022222222222222222`` (a denominator of 5e18) and is meant as ``1/450``.
    Both read back as the same float, so either is the constant within its rounding; the small
    denominator keeps the simplex's arithmetic on small numbers (3.6 times faster on a
    conflict query of ``specs/conflicts/tipping_point_fixed.coh``). A decimal literal such as
    ``0.3267`` comes back as itself: fractions with denominators up to a million lie at least
    1e-12 apart, far more than a float's rounding, so no other one reads back as it.
    """
    if not math.isfinite(v):
        raise EncodeError(f"the constant {v} is not finite")
    if v == 0.0:
        return Fraction(0)
    exact = Fraction(v)
    decimal = Fraction(repr(v))
    if exact.denominator == 1:
        return exact
    for d in RATIONAL_DENOMINATORS:
        if d >= decimal.denominator:
            break
        fr = exact.limit_denominator(d)
        if float(fr) == v:
            return fr
    return decimal


def q_down(x: float) -> Fraction:
    """A short rational at or below ``x`` (exact, rounded outward on a binary grid)."""
    if abs(x) < 1e-30:  # tiny values: round outward to 0 or -1e-30
        return Fraction(0) if x >= 0 else Fraction(-1, 10**30)
    if x == math.floor(x) and abs(x) < 2**53:
        return Fraction(int(x))
    # 4 significant decimal digits, rounded down (exactly: the float is converted exactly):
    # floor(x / 10**e) * 10**e, in integers (one Fraction, not five)
    e = math.floor(math.log10(abs(x))) - 3
    n, d = x.as_integer_ratio()
    if e >= 0:
        unit = 10**e
        return Fraction(n // (d * unit) * unit)
    unit = 10**-e
    return Fraction(n * unit // d, unit)


def q_up(x: float) -> Fraction:
    return -q_down(-x)


def real(fr: Fraction | int | float) -> Term:
    if isinstance(fr, float):
        fr = rational(fr)
    fr = Fraction(fr)
    return (
        z3.RealVal(f"{fr.numerator}/{fr.denominator}", ctx())
        if fr.denominator != 1
        else z3.RealVal(str(fr.numerator), ctx())
    )


# Terms built through Z3's C API, one call per node: exactly the terms the Python operators
# build (``a * y + x * b - a * b`` is mul, mul, add, mul, sub, as the operators make it), so
# the solver sees the same formulas, without the operators' coercions at every node
# (envelopes and bounds are most of what an encoding builds).


def _numeral(fr: Fraction, c: Any) -> Any:
    """The real numeral ``fr`` in context ``c``, as :func:`real` makes it. Not cached: Z3's
    search follows the ids of terms, which a cache keeping numerals alive would change."""
    text = f"{fr.numerator}/{fr.denominator}" if fr.denominator != 1 else str(fr.numerator)
    return z3.RatNumRef(z3.z3core.Z3_mk_numeral(c.ref(), text, z3.RealSort(c).ast), c)


def _bin(mk: Callable[..., Any], a: Any, b: Any) -> Any:
    """``a op b`` for Z3's n-ary arithmetic constructors (add, mul, sub), as the operators."""
    args = (z3.Ast * 2)(a.as_ast(), b.as_ast())
    return z3.ArithRef(mk(a.ctx.ref(), 2, args), a.ctx)


def _cmp(op: str, a: Any, b: Any) -> Term:
    mk = z3.z3core.Z3_mk_ge if op == ">=" else z3.z3core.Z3_mk_le
    return z3.BoolRef(mk(a.ctx.ref(), a.as_ast(), b.as_ast()), a.ctx)


def _add(a: Any, b: Any) -> Any:
    return _bin(z3.z3core.Z3_mk_add, a, b)


def sum_of(parts: Sequence[Any]) -> Any:
    """``z3.Sum(*parts)`` of two or more real terms: the same term, one ``Z3_mk_add`` over
    them, without ``z3.Sum``'s coercion (which looks at every operand's sort through several
    Python objects, and wraps an integer one in ``ToReal``: such sums go through it)."""
    c = parts[0].ctx
    ref = c.ref()
    asts = [t.as_ast() for t in parts]
    get_sort, kind = z3.z3core.Z3_get_sort, z3.z3core.Z3_get_sort_kind
    if any(
        not isinstance(t, z3.ArithRef)
        or t.ctx is not c
        or kind(ref, get_sort(ref, a)) != z3.Z3_REAL_SORT
        for t, a in zip(parts, asts, strict=True)
    ):
        return z3.Sum(*parts)
    arr = (z3.Ast * len(asts))(*asts)
    return z3.ArithRef(z3.z3core.Z3_mk_add(ref, len(asts), arr), c)


def _sub(a: Any, b: Any) -> Any:
    return _bin(z3.z3core.Z3_mk_sub, a, b)


def _mul(a: Any, b: Any) -> Any:
    return _bin(z3.z3core.Z3_mk_mul, a, b)


def bound_cmp(x: Term, op: str, fr: Fraction) -> Term:
    """``x >= fr`` or ``x <= fr`` (a bound), as the operators build it: a numeral's class
    derives from a term's, so Python asks the numeral's reflected comparison first and the
    term is ``fr <= x`` (``fr >= x``)."""
    n = _numeral(fr, x.ctx)
    if isinstance(x, z3.RatNumRef):
        return _cmp(op, x, n)
    return _cmp("<=" if op == ">=" else ">=", n, x)


Lin = tuple[Fraction, tuple[tuple[int, Fraction], ...]]  # c0 + sum(coef * atom)


@dataclass(frozen=True, slots=True)
class Num:
    """A numeric term, its sound bounds, and its value when it is a constant.

    ``lin`` is the term as an affine form over the encoder's atoms (variables and opaque
    subterms): bounds of sums are evaluated on it, so ``x + (t - x)`` is bounded like ``t``
    (interval arithmetic alone would widen it at every tick). ``alts`` keeps an ``If`` open
    (condition, then, else) so that sums and scalings distribute into its branches.
    """

    term: Term
    iv: Interval
    const: Fraction | None = None
    lin: Lin | None = None
    alts: tuple[Term, Num, Num] | None = None

    @property
    def leaves(self) -> int:
        return 1 if self.alts is None else self.alts[1].leaves + self.alts[2].leaves


@dataclass(frozen=True, slots=True)
class Cond:
    """A boolean term and its value when the bounds decide it."""

    term: Term
    value: bool | None = None


Value = Num | Cond


@dataclass(slots=True)
class Relaxation:
    """A nonlinear term the over-approximation only bounds: ``w = x * y`` or ``w = f(x)``."""

    kind: str  # product | function
    w: Term
    x: Num
    y: Num | None = None
    f: Callable[[float], float] | None = None
    df: Callable[[float], float] | None = None
    convex: bool = True
    domain: Interval | None = None
    splits: int = 0


def mccormick(w: Term, x: Term, y: Term, bx: Interval, by: Interval) -> list[Term]:
    """McCormick (1976) envelope of ``w = x * y`` over the box ``bx`` x ``by``.

    Valid for every point of the box; the box's ends are rounded outward to short rationals
    (a bigger box keeps the envelope valid) and infinite ends drop their inequalities.
    """
    out: list[Term] = []
    xl, xu, yl, yu = bx.lo, bx.hi, by.lo, by.hi
    # w >= a*y + x*b - a*b (under), w <= a*y + x*b - a*b (over), per corner (a, b)
    c = w.ctx

    def plane(op: str, a: Fraction, b: Fraction) -> Term:
        na, nb = _numeral(a, c), _numeral(b, c)
        return _cmp(op, w, _sub(_add(_mul(na, y), _mul(x, nb)), _mul(na, nb)))

    if math.isfinite(xl) and math.isfinite(yl):
        out.append(plane(">=", q_down(xl), q_down(yl)))
    if math.isfinite(xu) and math.isfinite(yu):
        out.append(plane(">=", q_up(xu), q_up(yu)))
    if math.isfinite(xu) and math.isfinite(yl):
        out.append(plane("<=", q_up(xu), q_down(yl)))
    if math.isfinite(xl) and math.isfinite(yu):
        out.append(plane("<=", q_down(xl), q_up(yu)))
    return out


def in_box(x: Term, b: Interval) -> list[Term]:
    out = []
    if math.isfinite(b.lo):
        out.append(bound_cmp(x, ">=", q_down(b.lo)))
    if math.isfinite(b.hi):
        out.append(bound_cmp(x, "<=", q_up(b.hi)))
    return out


def in_domain(x: Term, dom: Interval) -> Term:
    parts = in_box(x, dom)
    return z3.And(*parts) if parts else z3.BoolVal(True, ctx())


def _split(b: Interval, at: float) -> list[Interval]:
    if b.lo < at < b.hi:
        return [Interval(b.lo, at), Interval(at, b.hi)]
    return [b]


def tangent(
    w: Term,
    x: Term,
    f: Callable[[float], float],
    df: Callable[[float], float],
    convex: bool,
    p: float,
    box: Interval,
    dom: Interval,
) -> list[Term]:
    """The tangent of ``f`` at ``p``: below a convex ``f`` (above a concave one) everywhere.

    Float evaluation of ``f(p)`` and ``f'(p)`` is made safe by loosening the line by a
    relative 1e-9 plus the slope's error times the width of the box.
    """
    if not dom.contains(p) or not math.isfinite(p):
        return []
    try:
        fp, sp = f(p), df(p)
    except (ValueError, ZeroDivisionError, OverflowError):
        return []
    width = box.hi - box.lo
    if not (math.isfinite(fp) and math.isfinite(sp) and math.isfinite(width)):
        return []
    slack = abs(fp) * 1e-9 + 1e-12 + (abs(sp) * 1e-9 + 1e-15) * (width + abs(p - box.lo))
    c = w.ctx
    # the line f(p) + f'(p) (x - p), loosened by the slack
    line = _add(
        _numeral(rational(fp), c),
        _mul(_numeral(rational(sp), c), _sub(x, _numeral(rational(p), c))),
    )
    if convex:
        return [_cmp(">=", w, _sub(line, _numeral(q_up(slack), c)))]
    return [_cmp("<=", w, _add(line, _numeral(q_up(slack), c)))]


def secant(
    w: Term, x: Term, f: Callable[[float], float], convex: bool, lo: float, hi: float
) -> list[Term]:
    """The chord of ``f`` over ``[lo, hi]``: above a convex ``f`` there (below a concave)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return []
    try:
        flo, fhi = f(lo), f(hi)
    except (ValueError, ZeroDivisionError, OverflowError):
        return []
    if not (math.isfinite(flo) and math.isfinite(fhi)):
        return []
    slope = (fhi - flo) / (hi - lo)
    slack = (abs(flo) + abs(fhi)) * 1e-9 + 1e-12 + abs(slope) * 1e-9 * (hi - lo)
    c = w.ctx
    # the chord f(lo) + slope (x - lo), loosened by the slack
    line = _add(
        _numeral(rational(flo), c),
        _mul(_numeral(rational(slope), c), _sub(x, _numeral(rational(lo), c))),
    )
    if convex:
        return [_cmp("<=", w, _add(line, _numeral(q_up(slack), c)))]
    return [_cmp(">=", w, _sub(line, _numeral(q_up(slack), c)))]


def true() -> Cond:
    return cond_of(True)


def false() -> Cond:
    return cond_of(False)


def const(v: Fraction | float | int) -> Num:
    """A constant term; its interval is the float point, or the two floats around it."""
    fr = rational(v) if isinstance(v, float) else Fraction(v)
    return _const(fr)


def _const(fr: Fraction) -> Num:
    cache = scope_cache()
    key = ("const", fr)
    out = cache.get(key)
    if out is None:
        out = cache[key] = Num(real(fr), point(fr), fr, (fr, ()))
    return out


@functools.lru_cache(maxsize=65536)
def point(fr: Fraction) -> Interval:
    """The tightest float interval around a rational."""
    f = float(fr)
    if Fraction(f) == fr:
        return Interval(f, f)
    return Interval(math.nextafter(f, -INF), math.nextafter(f, INF))


def _ipow(term: Term, n: int) -> Term:
    out = term
    for _ in range(n - 1):
        out = out * term
    return out


def cond_of(v: bool) -> Cond:
    cache = scope_cache()
    key = ("bool", v)
    out = cache.get(key)
    if out is None:
        out = cache[key] = Cond(z3.BoolVal(v, ctx()), v)
    return out


class SymbolicPhase:
    """An unknown start tick within the hyperperiod, as one boolean per possible phase.

    ``Phase(p, o)`` at ``index`` ticks after the start is the disjunction of the start phases
    ``j`` with ``(j + index) % p == o``: plain propositional logic, no integer ``mod``.
    """

    def __init__(self, name: str, hyperperiod: int) -> None:
        self.hyperperiod = hyperperiod
        self.select = [z3.Bool(f"{name}={j}", ctx()) for j in range(hyperperiod)]

    def constraints(self) -> list[Term]:
        """Exactly one phase."""
        sel = self.select
        return [z3.Or(*sel), z3.AtMost(*sel, 1)]

    def at(self, index: int, period: int, offset: int) -> Cond:
        hits = [j for j in range(self.hyperperiod) if (j + index) % period == offset]
        if len(hits) == self.hyperperiod:
            return true()
        if not hits:
            return false()
        return Cond(z3.Or(*[self.select[j] for j in hits]))

    def value(self, model: Any) -> int:
        for j, b in enumerate(self.select):
            if z3.is_true(model.eval(b, model_completion=True)):
                return j
        return 0


@dataclass(frozen=True, slots=True)
class SymbolicTick:
    phase: SymbolicPhase
    index: int


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


# ---- unrolled runs ------------------------------------------------------------------------


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
    key = ("ranges", id(ts), tuple((n, v.iv) for n, v in sorted(params.items())))
    cache = scope_cache()
    if key not in cache:  # the system is kept with its entry, so its id stays unique
        cache[key] = (ts, _signal_ranges(ts, params))
    return dict(cache[key][1])


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
