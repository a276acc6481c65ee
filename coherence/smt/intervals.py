"""Interval arithmetic with outward rounding: the bounds the over-approximation is built on.

Every encoded term carries an :class:`Interval` that contains every value the term can take
(in exact real arithmetic). Intervals are propagated from the declared ranges, the input ranges
and, when a run starts from the initial state, from the concrete initial values tick by tick.
They give McCormick envelopes and secant/tangent bounds their coefficients, so they must be
sound: each floating-point result is widened by one ulp (``math.nextafter``) for the correctly
rounded operations and by a relative ``1e-12`` for the library functions (sqrt, exp, log, pow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
