"""Numbers and conditions as Z3 terms: the layer under the encoder.

- A spec constant is the rational it denotes (:func:`rational`); bounds are rounded outward to
  short rationals (:func:`q_down`, :func:`q_up`).
- :class:`Num` is a numeric term with a sound :class:`~coherence.intervals.arith.Interval`
  bound, its value when it is a constant, and its affine form over the encoder's atoms;
  :class:`Cond` is a boolean term with its value when the bounds decide it.
- Relaxations of nonlinear terms: McCormick envelopes of products (:func:`mccormick`),
  tangents and chords of convex and concave functions (:func:`tangent`, :func:`secant`).
- An unknown start phase as one boolean per phase (:class:`SymbolicPhase`).

Envelopes, tangents, chords and bounds are built through Z3's C API, one call per node, and
are exactly the terms the Python operators build, created in the same order: Z3's search
follows the ids of terms (``tests/smt/test_smt_encode.py``). The encoder that turns IR
expressions into these terms is :mod:`coherence.smt.encode`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import z3

from coherence.intervals.arith import INF, Interval
from coherence.smt.solver import ctx, scope_cache

Term = Any  # z3 terms are untyped


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
