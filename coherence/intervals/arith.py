"""Interval arithmetic with outward rounding: the one arithmetic every interval bound is
built on.

It owns two forms of the same arithmetic, sound in exact real arithmetic:

- :class:`Interval`, one closed interval of floats: the bound that every term of the solver
  encoding carries (propagated from the declared ranges, the input ranges and, from the
  initial state, the concrete initial values tick by tick). McCormick envelopes and
  secant/tangent bounds take their coefficients from it;
- :class:`Iv` and :class:`Bv`, one numeric value or three-valued condition per box (NumPy
  arrays of shape [N]): what the vectorised interval engines (:mod:`coherence.intervals.compile`,
  :mod:`~coherence.intervals.reach`, :mod:`~coherence.intervals.pairs`,
  :mod:`~coherence.intervals.fixedpoint`) compute with.

It takes float ends and returns enclosures. Each floating-point result is widened by one ulp
(``math.nextafter``, ``np.nextafter``) for the correctly rounded operations and by a relative
``1e-12`` for the library functions (sqrt, exp, log, pow); an operation that may be undefined
(a divisor holding 0, ``log`` of a possibly non-positive number, ``sqrt`` or a fractional
power of a possibly negative one) says so beside its result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]
B = NDArray[np.bool_]

INF = math.inf
_LIB_REL = 1e-12


def _down(x: float) -> float:
    return x if math.isinf(x) or math.isnan(x) else math.nextafter(x, -INF)


def _up(x: float) -> float:
    return x if math.isinf(x) or math.isnan(x) else math.nextafter(x, INF)


def _lib_down(x: float) -> float:
    if math.isinf(x):
        return x
    return _down(x - abs(x) * _LIB_REL - 1e-300)


def _lib_up(x: float) -> float:
    if math.isinf(x):
        return x
    return _up(x + abs(x) * _LIB_REL + 1e-300)


def _mul(a: float, b: float) -> float:
    """Product with 0 * inf = 0 (a bound of 0 times an unbounded side contributes 0)."""
    if a == 0.0 or b == 0.0:
        return 0.0
    return a * b


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed interval ``[lo, hi]``; infinite ends are allowed. ``lo > hi`` is empty."""

    lo: float
    hi: float

    @staticmethod
    def point(v: float) -> Interval:
        return Interval(v, v)

    @staticmethod
    def top() -> Interval:
        return Interval(-INF, INF)

    @property
    def empty(self) -> bool:
        return self.lo > self.hi

    @property
    def finite(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    def contains(self, v: float) -> bool:
        return self.lo <= v <= self.hi

    def excludes_zero(self) -> bool:
        return self.lo > 0.0 or self.hi < 0.0

    def hull(self, other: Interval) -> Interval:
        if self.empty:
            return other
        if other.empty:
            return self
        return Interval(min(self.lo, other.lo), max(self.hi, other.hi))

    def meet(self, other: Interval) -> Interval:
        return Interval(max(self.lo, other.lo), min(self.hi, other.hi))

    def __neg__(self) -> Interval:
        return Interval(-self.hi, -self.lo)

    def __add__(self, other: Interval) -> Interval:
        return Interval(_down(self.lo + other.lo), _up(self.hi + other.hi))

    def __sub__(self, other: Interval) -> Interval:
        return Interval(_down(self.lo - other.hi), _up(self.hi - other.lo))

    def __mul__(self, other: Interval) -> Interval:
        cands = [
            _mul(self.lo, other.lo),
            _mul(self.lo, other.hi),
            _mul(self.hi, other.lo),
            _mul(self.hi, other.hi),
        ]
        return Interval(_down(min(cands)), _up(max(cands)))

    def reciprocal(self) -> Interval:
        """``1 / x``; the whole line when the interval holds zero."""
        if not self.excludes_zero():
            return Interval.top()
        lo = 0.0 if math.isinf(self.hi) else 1.0 / self.hi
        hi = 0.0 if math.isinf(self.lo) else 1.0 / self.lo
        return Interval(_down(lo), _up(hi))

    def __truediv__(self, other: Interval) -> Interval:
        return self * other.reciprocal()

    def minimum(self, other: Interval) -> Interval:
        return Interval(min(self.lo, other.lo), min(self.hi, other.hi))

    def maximum(self, other: Interval) -> Interval:
        return Interval(max(self.lo, other.lo), max(self.hi, other.hi))

    def abs(self) -> Interval:
        if self.lo >= 0:
            return self
        if self.hi <= 0:
            return -self
        return Interval(0.0, max(-self.lo, self.hi))

    def floor(self) -> Interval:
        return Interval(
            float(math.floor(self.lo)) if math.isfinite(self.lo) else self.lo,
            float(math.floor(self.hi)) if math.isfinite(self.hi) else self.hi,
        )

    def ceil(self) -> Interval:
        return Interval(
            float(math.ceil(self.lo)) if math.isfinite(self.lo) else self.lo,
            float(math.ceil(self.hi)) if math.isfinite(self.hi) else self.hi,
        )

    def round(self) -> Interval:
        return (self + Interval.point(0.5)).floor()

    def sqrt(self) -> Interval:
        lo = max(self.lo, 0.0)
        hi = self.hi
        if hi < 0:
            return Interval(0.0, 0.0)
        return Interval(max(0.0, _lib_down(math.sqrt(lo))), _lib_up(math.sqrt(hi)))

    def exp(self) -> Interval:
        return Interval(max(0.0, _lib_down(_exp(self.lo))), _lib_up(_exp(self.hi)))

    def log(self) -> Interval:
        lo = -INF if self.lo <= 0 else _lib_down(math.log(self.lo))
        hi = -INF if self.hi <= 0 else _lib_up(math.log(self.hi)) if math.isfinite(self.hi) else INF
        return Interval(lo, max(lo, hi))

    def power(self, c: float) -> Interval:
        """``x ** c`` for a constant exponent (``x >= 0`` assumed for fractional ``c``)."""
        if c == int(c) and c >= 0:
            n = int(c)
            out = Interval.point(1.0)
            for _ in range(n):
                out = out * self
            if n % 2 == 0 and n > 0:
                out = out.meet(Interval(0.0, INF))
            return out
        if c == int(c):
            return Interval.point(1.0) / self.power(-c)
        lo, hi = max(self.lo, 0.0), self.hi
        if hi < 0:
            return Interval(0.0, 0.0)
        vals = [_pow(lo, c), _pow(hi, c)]
        return Interval(max(0.0, _lib_down(min(vals))), _lib_up(max(vals)))


def _exp(x: float) -> float:
    if x > 709.0:
        return INF
    return math.exp(x)


def _pow(x: float, c: float) -> float:
    if math.isinf(x):
        return INF if c > 0 else 0.0
    if x == 0.0:
        return INF if c < 0 else 0.0
    try:
        return float(x**c)
    except OverflowError:
        return INF


# ---- intervals per box (NumPy) ----------------------------------------------------------------


class Unsupported(Exception):
    """An expression the interval evaluator does not handle (no verdict from this engine)."""


# ---- outward rounding, per box ----------------------------------------------------------------


def _down_v(x: F) -> F:
    if _finite(x):
        return _nextafter(x, -INF)
    r = _nextafter(x, -INF)
    odd = ~np.isfinite(x)  # infinities stay, NaN (an undefined end) goes to -inf
    return np.where(np.isnan(x), -INF, np.where(odd, x, r))


def _up_v(x: F) -> F:
    if _finite(x):
        return _nextafter(x, INF)
    r = _nextafter(x, INF)
    odd = ~np.isfinite(x)
    return np.where(np.isnan(x), INF, np.where(odd, x, r))


_nextafter = np.nextafter
_sum = np.add.reduce


def _finite(x: F) -> bool:
    return bool(np.isfinite(x).all())


def _ends_finite(lo: F, hi: F) -> bool:
    """Whether every end is finite, in two operations (``hi - lo`` is finite only when both
    ends are; where it overflows the answer is no, and the caller takes its general path).
    Call it where NumPy's invalid and overflow warnings are off."""
    return math.isfinite(_sum(hi - lo, axis=None))


def _lib_down_v(x: F) -> F:
    x = np.where(np.isnan(x), -INF, x)
    return np.where(np.isinf(x), x, np.nextafter(x - np.abs(x) * _LIB_REL - 1e-300, -INF))


def _lib_up_v(x: F) -> F:
    x = np.where(np.isnan(x), INF, x)
    return np.where(np.isinf(x), x, np.nextafter(x + np.abs(x) * _LIB_REL + 1e-300, INF))


def const_interval(v: float) -> tuple[float, float]:
    """The interval of floats around the rational a spec constant denotes."""
    if not math.isfinite(v):
        return (v, v)
    exact = Fraction(repr(v))
    if exact == Fraction(v):
        return (v, v)
    return (math.nextafter(v, -INF), math.nextafter(v, INF))


# ---- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Iv:
    """Intervals ``[lo, hi]`` of one numeric value, one per box (arrays of shape [N])."""

    lo: F
    hi: F


@dataclass(frozen=True, slots=True)
class Bv:
    """A three-valued condition per box: may be true, may be false."""

    t: B
    f: B


Val = Iv | Bv
Env = dict[str, Val]


def as_iv(v: Val) -> Iv:
    if isinstance(v, Iv):
        return v
    return Iv(np.where(v.f, 0.0, 1.0), np.where(v.t, 1.0, 0.0))


def as_bv(v: Val) -> Bv:
    if isinstance(v, Bv):
        return v
    zero_possible = (v.lo <= 0.0) & (v.hi >= 0.0)
    only_zero = (v.lo == 0.0) & (v.hi == 0.0)
    return Bv(~only_zero, zero_possible)


# The arithmetic below rounds outward by one ulp. Its fast path, taken when every end it
# produced is finite, is exactly what the general path computes there: no NaN or infinity
# needs mending, and a product's signed zero rounds to the same neighbour as +0.0. The
# ``_r`` forms leave NumPy's floating-point warnings to their caller (a compiled expression
# turns them off once, :func:`compile_iv`); the public forms turn them off themselves.


def _rounded(lo: F, hi: F) -> Iv:
    if _ends_finite(lo, hi):
        return Iv(_nextafter(lo, -INF), _nextafter(hi, INF))
    return Iv(_down_v(lo), _up_v(hi))


def add_r(a: Iv, b: Iv) -> Iv:
    return _rounded(a.lo + b.lo, a.hi + b.hi)


def sub_r(a: Iv, b: Iv) -> Iv:
    return _rounded(a.lo - b.hi, a.hi - b.lo)


def mul_r(a: Iv, b: Iv) -> Iv:
    p1, p2, p3, p4 = a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi
    lo = np.minimum(np.minimum(p1, p2), np.minimum(p3, p4))
    hi = np.maximum(np.maximum(p1, p2), np.maximum(p3, p4))
    if _ends_finite(lo, hi):
        return Iv(_nextafter(lo, -INF), _nextafter(hi, INF))
    return _mul_general(a, b)


def scale_r(k: float, x: Iv) -> Iv:
    """``mul_r`` of the point interval ``k`` and ``x``: two of the four products are the
    other two again."""
    p, q = k * x.lo, k * x.hi
    lo, hi = np.minimum(p, q), np.maximum(p, q)
    if _ends_finite(lo, hi):
        return Iv(_nextafter(lo, -INF), _nextafter(hi, INF))
    return _mul_general(Iv(np.full(x.lo.shape, k), np.full(x.lo.shape, k)), x)


def _mul_general(a: Iv, b: Iv) -> Iv:
    alo, ahi, blo, bhi = np.broadcast_arrays(a.lo, a.hi, b.lo, b.hi)
    ends_a = np.stack((alo, alo, ahi, ahi))
    ends_b = np.stack((blo, bhi, blo, bhi))
    with np.errstate(invalid="ignore", over="ignore"):
        p = ends_a * ends_b
    zero = (ends_a == 0.0) | (ends_b == 0.0)
    if zero.any():
        p[zero] = 0.0
    return Iv(_down_v(p.min(axis=0)), _up_v(p.max(axis=0)))


def div_r(a: Iv, b: Iv) -> tuple[Iv, B]:
    zero = (b.lo <= 0.0) & (b.hi >= 0.0)
    rlo = np.where(np.isinf(b.hi), 0.0, 1.0 / b.hi)
    rhi = np.where(np.isinf(b.lo), 0.0, 1.0 / b.lo)
    q = mul_r(a, _rounded(rlo, rhi))
    return Iv(np.where(zero, -INF, q.lo), np.where(zero, INF, q.hi)), zero


def add(a: Iv, b: Iv) -> Iv:
    with np.errstate(all="ignore"):
        return add_r(a, b)


def sub(a: Iv, b: Iv) -> Iv:
    with np.errstate(all="ignore"):
        return sub_r(a, b)


def mul(a: Iv, b: Iv) -> Iv:
    """The product's enclosure: the least and greatest of the four products of the ends
    (``0 * inf = 0``)."""
    with np.errstate(all="ignore"):
        return mul_r(a, b)


def div(a: Iv, b: Iv) -> tuple[Iv, B]:
    """``a / b``; where ``b`` may be 0 the result is the whole line and undefined is flagged."""
    with np.errstate(all="ignore"):
        return div_r(a, b)


def minimum(a: Iv, b: Iv) -> Iv:
    return Iv(np.minimum(a.lo, b.lo), np.minimum(a.hi, b.hi))


def maximum(a: Iv, b: Iv) -> Iv:
    return Iv(np.maximum(a.lo, b.lo), np.maximum(a.hi, b.hi))


def neg(a: Iv) -> Iv:
    return Iv(-a.hi, -a.lo)


def absolute(a: Iv) -> Iv:
    lo = np.where(a.lo >= 0, a.lo, np.where(a.hi <= 0, -a.hi, 0.0))
    hi = np.maximum(np.abs(a.lo), np.abs(a.hi))
    return Iv(lo, hi)


def floor(a: Iv) -> Iv:
    return Iv(np.floor(a.lo), np.floor(a.hi))


def ceil(a: Iv) -> Iv:
    return Iv(np.ceil(a.lo), np.ceil(a.hi))


def hull(c: Bv, a: Iv, b: Iv) -> Iv:
    both = c.t & c.f
    lo = np.where(both, np.minimum(a.lo, b.lo), np.where(c.t, a.lo, b.lo))
    hi = np.where(both, np.maximum(a.hi, b.hi), np.where(c.t, a.hi, b.hi))
    return Iv(lo, hi)


def compare(op: str, a: Iv, b: Iv) -> Bv:
    if op == "<":
        return Bv(a.lo < b.hi, a.hi >= b.lo)
    if op == "<=":
        return Bv(a.lo <= b.hi, a.hi > b.lo)
    if op == ">":
        return Bv(a.hi > b.lo, a.lo <= b.hi)
    if op == ">=":
        return Bv(a.hi >= b.lo, a.lo < b.hi)
    overlap = (a.lo <= b.hi) & (b.lo <= a.hi)
    same_point = (a.lo == a.hi) & (b.lo == b.hi) & (a.lo == b.lo)
    if op == "==":
        return Bv(overlap, ~same_point)
    if op == "!=":
        return Bv(~same_point, overlap)
    raise Unsupported(f"comparison {op}")


def _power_int(a: Iv, n: int) -> Iv:
    out = Iv(np.ones_like(a.lo), np.ones_like(a.lo))
    for _ in range(n):
        out = mul(out, a)
    if n % 2 == 0 and n > 0:
        out = Iv(np.maximum(out.lo, 0.0), out.hi)
    return out


def power(a: Iv, c: float) -> tuple[Iv, B]:
    """``a ^ c`` for a constant exponent."""
    if c == int(c) and 0 <= c <= 16:
        return _power_int(a, int(c)), np.zeros(a.lo.shape, dtype=bool)
    if c == int(c) and -16 <= c < 0:
        return div(Iv(np.ones_like(a.lo), np.ones_like(a.lo)), _power_int(a, int(-c)))
    bad = a.lo < 0.0 if c > 0 else a.lo <= 0.0
    lo = np.maximum(a.lo, 0.0)
    hi = np.maximum(a.hi, 0.0)
    with np.errstate(all="ignore"):
        p1, p2 = np.power(lo, c), np.power(hi, c)
    plo, phi = np.minimum(p1, p2), np.maximum(p1, p2)
    return Iv(np.maximum(0.0, _lib_down_v(plo)), _lib_up_v(phi)), bad


def sqrt(a: Iv) -> tuple[Iv, B]:
    """``sqrt(a)``; undefined where ``a`` may be negative."""
    with np.errstate(all="ignore"):
        lo, hi = np.maximum(a.lo, 0.0), np.maximum(a.hi, 0.0)
        r = Iv(np.maximum(0.0, _lib_down_v(np.sqrt(lo))), _lib_up_v(np.sqrt(hi)))
        return r, a.lo < 0.0


def exp(a: Iv) -> tuple[Iv, B]:
    """``exp(a)``; an end past 709 (where the float overflows) is infinite and undefined."""
    with np.errstate(all="ignore"):
        elo = np.where(a.lo > 709.0, INF, np.exp(np.minimum(a.lo, 709.0)))
        ehi = np.where(a.hi > 709.0, INF, np.exp(np.minimum(a.hi, 709.0)))
        return Iv(np.maximum(0.0, _lib_down_v(elo)), _lib_up_v(ehi)), a.hi > 709.0


def log(a: Iv) -> tuple[Iv, B]:
    """``log(a)``; undefined where ``a`` may be non-positive."""
    with np.errstate(all="ignore"):
        llo = np.where(a.lo <= 0.0, -INF, np.log(np.maximum(a.lo, 1e-300)))
        lhi = np.where(a.hi <= 0.0, -INF, np.log(np.maximum(a.hi, 1e-300)))
        return Iv(_lib_down_v(llo), _lib_up_v(lhi)), a.lo <= 0.0


def falses(n: int) -> B:
    """No box flagged (``n`` of them)."""
    return np.zeros(n, dtype=bool)
