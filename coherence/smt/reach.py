"""Sound interval reachability from the initial state, vectorised over boxes of the unknowns.

A run from the initial state is a function of the inputs (one value per input for the whole
run when the requirement says ``inputs held``, a value per tick otherwise) and of the
uncertain parameters. This module encloses every such run in intervals, tick by tick, with
exactly the simulator's meaning (lets in order, then every update, clamped to the state's
range), in exact real arithmetic:

- every arithmetic result is rounded outward by one ulp (``np.nextafter``; a relative
  ``1e-12`` for ``sqrt``, ``exp``, ``log`` and fractional powers); a spec constant that is not
  a binary float (``0.1``) is the interval of the two floats around it;
- ``floor``/``ceil``/``round`` of an interval are the rounded ends; ``min``, ``max``, ``abs``
  and the clamps are monotone; an ``if`` whose condition the intervals do not decide is the
  hull of both branches; conditions are three-valued (may be true, may be false);
- registers, history and cooldowns are states like the others (a register copies its source);
  integer states whose update is integral by construction
  (:func:`coherence.smt.encode.integer_states`) have their ends rounded inward to integers;
- an operation that may be undefined (a divisor interval holding 0, ``log`` of a possibly
  non-positive number, ``sqrt`` or a fractional power of a possibly negative one) counts as a
  possible violation, as in BMC.

The *unknowns* (held inputs and uncertain parameters) form a box; it is split into sub-boxes,
all propagated at once as NumPy arrays. Free inputs are their whole range at every tick (they
cannot be split over time). A box whose enclosure may violate the requirement is bisected along
its widest unknown (relative to its range) and run again, up to a budget of boxes. If every box
keeps the requirement at every tick up to the horizon, no run violates it there: a proof over
the horizon, never a sample.

**For all time.** Interval evaluation over a box encloses the image of every point of the
box (the fundamental property of interval arithmetic), and the step at tick ``t`` depends on
``t`` only through ``t mod H`` (held inputs and parameters are the same box at every tick, free
inputs their whole range). So when, for one box of the unknowns, the box of every state
(registers, history and cooldowns included) at tick ``t + H`` lies within the box at tick
``t``, the boxes of ticks ``t .. t + H - 1`` are an inductive invariant: every run in that box
is, at every tick ``s >= t``, inside the box of tick ``t + ((s - t) mod H)``. The requirement
was checked on exactly those boxes, so it holds for all time. When that happens for every box
of the cover (``always`` requirements) the verdict is ``proved``; otherwise a proof to the
horizon is ``holds`` at the horizon.

Not handled: ``no flapping`` (a reversal compares consecutive values of a state, which
independent intervals cannot relate), and the relational invariants that free-input feedback
loops often need (a box enclosure of a queue fed through a product of two actuators widens
at each tick); those requirements fall through to k-induction and BMC.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    Phase,
    Requirement,
    TransitionSystem,
    Unary,
    Var,
    sum_terms,
)
from coherence.smt.encode import integer_states
from coherence.smt.intervals import Interval
from coherence.smt.simplify import cancel_factors, nonzero_names

F = NDArray[np.float64]
B = NDArray[np.bool_]
INF = math.inf
_LIB_REL = 1e-12


class Unsupported(Exception):
    """An expression the interval evaluator does not handle (no verdict from this engine)."""


# ---- outward rounding ---------------------------------------------------------------------------


def _dn(x: F) -> F:
    if _finite(x):
        return _nextafter(x, -INF)
    r = _nextafter(x, -INF)
    odd = ~np.isfinite(x)  # infinities stay, NaN (an undefined end) goes to -inf
    return np.where(np.isnan(x), -INF, np.where(odd, x, r))


def _up(x: F) -> F:
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


def _lib_dn(x: F) -> F:
    x = np.where(np.isnan(x), -INF, x)
    return np.where(np.isinf(x), x, np.nextafter(x - np.abs(x) * _LIB_REL - 1e-300, -INF))


def _lib_up(x: F) -> F:
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
Out = tuple[Val, B]  # the value and "an operation on the way may be undefined"
Fn = Callable[[Env, int], Out]


def _num(v: Val) -> Iv:
    if isinstance(v, Iv):
        return v
    return Iv(np.where(v.f, 0.0, 1.0), np.where(v.t, 1.0, 0.0))


def _cond(v: Val) -> Bv:
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
    return Iv(_dn(lo), _up(hi))


def _add_r(a: Iv, b: Iv) -> Iv:
    return _rounded(a.lo + b.lo, a.hi + b.hi)


def _sub_r(a: Iv, b: Iv) -> Iv:
    return _rounded(a.lo - b.hi, a.hi - b.lo)


def _mul_r(a: Iv, b: Iv) -> Iv:
    p1, p2, p3, p4 = a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi
    lo = np.minimum(np.minimum(p1, p2), np.minimum(p3, p4))
    hi = np.maximum(np.maximum(p1, p2), np.maximum(p3, p4))
    if _ends_finite(lo, hi):
        return Iv(_nextafter(lo, -INF), _nextafter(hi, INF))
    return _mul_general(a, b)


def _scale_r(k: float, x: Iv) -> Iv:
    """``_mul_r`` of the point interval ``k`` and ``x``: two of the four products are the
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
    return Iv(_dn(p.min(axis=0)), _up(p.max(axis=0)))


def _div_r(a: Iv, b: Iv) -> tuple[Iv, B]:
    zero = (b.lo <= 0.0) & (b.hi >= 0.0)
    rlo = np.where(np.isinf(b.hi), 0.0, 1.0 / b.hi)
    rhi = np.where(np.isinf(b.lo), 0.0, 1.0 / b.lo)
    q = _mul_r(a, _rounded(rlo, rhi))
    return Iv(np.where(zero, -INF, q.lo), np.where(zero, INF, q.hi)), zero


def add(a: Iv, b: Iv) -> Iv:
    with np.errstate(all="ignore"):
        return _add_r(a, b)


def sub(a: Iv, b: Iv) -> Iv:
    with np.errstate(all="ignore"):
        return _sub_r(a, b)


def mul(a: Iv, b: Iv) -> Iv:
    """The product's enclosure: the least and greatest of the four products of the ends
    (``0 * inf = 0``)."""
    with np.errstate(all="ignore"):
        return _mul_r(a, b)


def div(a: Iv, b: Iv) -> tuple[Iv, B]:
    """``a / b``; where ``b`` may be 0 the result is the whole line and undefined is flagged."""
    with np.errstate(all="ignore"):
        return _div_r(a, b)


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
    return Iv(np.maximum(0.0, _lib_dn(plo)), _lib_up(phi)), bad


# ---- a linear normal form -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lin:
    """``c0 + sum(coef * atom)`` with exact rational coefficients (not an IR node: it only
    lives between :func:`normalize` and :func:`compile_iv`)."""

    c0: Fraction
    terms: tuple[tuple[Expr, Fraction], ...]


LinForm = tuple[Fraction, dict[Expr, Fraction]]


def _frac(v: float) -> Fraction:
    return Fraction(repr(float(v)))


def normalize(e: Expr, consts: dict[str, float]) -> Expr:
    """``e`` with fixed parameters as constants and sums in a linear normal form.

    Sums are collected into :class:`Lin` forms over their non-linear parts (atoms) with exact
    rational coefficients, so that ``x + (t - x)`` is ``t``; a sum with an ``if`` term is
    pushed into the branches when that cancels an atom (``a + if(c, t - a, 0)`` is
    ``if(c, t, a)``). Every rewrite is an identity in real arithmetic.
    """
    match e:
        case Var(name) if name in consts:
            return Const(consts[name])
        case Const() | Var() | Phase():
            return e
        case Unary("neg", _) | Binary("+" | "-", _, _):
            return _lin_expr(_linform(e, consts))
        case Binary("*", a, b):
            na, nb = normalize(a, consts), normalize(b, consts)
            if isinstance(na, Const) or isinstance(nb, Const):
                return _lin_expr(_linform(e, consts))
            return Binary("*", na, nb)
        case Binary("/", a, b):
            nb = normalize(b, consts)
            if isinstance(nb, Const) and nb.value != 0 and math.isfinite(nb.value):
                return _lin_expr(_linform(e, consts))
            return Binary("/", normalize(a, consts), nb)
        case Unary(op, a):
            return Unary(op, normalize(a, consts))
        case Binary(op, a, b):
            return Binary(op, normalize(a, consts), normalize(b, consts))
        case Call(fn, args):
            return Call(fn, tuple(normalize(x, consts) for x in args))
        case Ite(c, a, b):
            return Ite(normalize(c, consts), normalize(a, consts), normalize(b, consts))
    return e


def _scale(c: Fraction, f: LinForm) -> LinForm:
    return (c * f[0], {k: c * v for k, v in f[1].items()})


def _plus(f: LinForm, g: LinForm) -> LinForm:
    out = dict(f[1])
    for k, v in g[1].items():
        out[k] = out.get(k, Fraction(0)) + v
    return (f[0] + g[0], {k: v for k, v in out.items() if v != 0})


def _linform(e: Expr, consts: dict[str, float]) -> LinForm:
    match e:
        case Const(v) if math.isfinite(v):
            return (_frac(v), {})
        case Var(name) if name in consts and math.isfinite(consts[name]):
            return (_frac(consts[name]), {})
        case Unary("neg", a):
            return _scale(Fraction(-1), _linform(a, consts))
        case Binary("+", a, b):
            return _distribute(_plus(_linform(a, consts), _linform(b, consts)))
        case Binary("-", a, b):
            g = _scale(Fraction(-1), _linform(b, consts))
            return _distribute(_plus(_linform(a, consts), g))
        case Binary("*", a, b):
            fa, fb = _linform(a, consts), _linform(b, consts)
            if not fa[1]:
                return _scale(fa[0], fb)
            if not fb[1]:
                return _scale(fb[0], fa)
        case Binary("/", a, b):
            fb = _linform(b, consts)
            if not fb[1] and fb[0] != 0:
                return _scale(1 / fb[0], _linform(a, consts))
    n = normalize(e, consts)
    if isinstance(n, Const) and math.isfinite(n.value):
        return (_frac(n.value), {})
    if isinstance(n, Lin):
        return (n.c0, dict(n.terms))
    return (Fraction(0), {n: Fraction(1)})


def _distribute(f: LinForm) -> LinForm:
    """Push the rest of a sum into an ``if`` term's branches where that cancels an atom."""
    c0, terms = f
    for atom, k in terms.items():
        if not isinstance(atom, Ite):
            continue
        rest: LinForm = (c0, {a: v for a, v in terms.items() if a != atom})
        fa = _plus(rest, _scale(k, _atom_form(atom.then)))
        fb = _plus(rest, _scale(k, _atom_form(atom.other)))
        size = len(rest[1]) + 1
        if len(fa[1]) < size or len(fb[1]) < size:
            return (Fraction(0), {Ite(atom.cond, _lin_expr(fa), _lin_expr(fb)): Fraction(1)})
    return f


def _atom_form(e: Expr) -> LinForm:
    if isinstance(e, Lin):
        return (e.c0, dict(e.terms))
    if isinstance(e, Const) and math.isfinite(e.value):
        return (_frac(e.value), {})
    return (Fraction(0), {e: Fraction(1)})


def _lin_expr(f: LinForm) -> Expr:
    c0, terms = f
    if not terms and Fraction(float(c0)) == c0 and _frac(float(c0)) == c0:
        return Const(float(c0))
    if c0 == 0 and len(terms) == 1:
        ((atom, k),) = terms.items()
        if k == 1:
            return atom
    # a Lin node may sit where the IR expects an Expr (an if's branch): compile_iv knows it
    return cast(Expr, Lin(c0, tuple(sorted(terms.items(), key=lambda kv: repr(kv[0])))))


def _frac_interval(c: Fraction) -> tuple[float, float]:
    f = float(c)
    if Fraction(f) == c:
        return (f, f)
    return (math.nextafter(f, -INF), math.nextafter(f, INF))


# ---- compiling expressions ----------------------------------------------------------------------


def _none(n: int) -> B:
    return np.zeros(n, dtype=bool)


def compile_iv(e: Expr, size: int) -> Fn:
    """An interval function of the environment and the (concrete) tick. NumPy's
    floating-point warnings are off while it runs: the interval operations mend infinities
    and undefined ends themselves."""
    f = _compile_iv(e, size)

    def run(env: Env, t: int) -> Out:
        with np.errstate(all="ignore"):
            return f(env, t)

    return run


def _compile_iv(e: Expr, size: int) -> Fn:
    z = _none(size)
    if isinstance(e, Lin):
        return _compile_lin(e, size)
    match e:
        case Const(v):
            lo, hi = const_interval(float(v))
            c = Iv(np.full(size, lo), np.full(size, hi))
            return lambda env, t: (c, z)
        case Var(name):
            return lambda env, t: (env[name], z)
        case Unary("neg", a):
            fa = _compile_iv(a, size)

            def _neg(env: Env, t: int) -> Out:
                v, u = fa(env, t)
                return neg(_num(v)), u

            return _neg
        case Unary(_, a):
            fa = _compile_iv(a, size)

            def _not(env: Env, t: int) -> Out:
                v, u = fa(env, t)
                c = _cond(v)
                return Bv(c.f, c.t), u

            return _not
        case Binary("and" | "or" as op, a, b):
            fa, fb = _compile_iv(a, size), _compile_iv(b, size)

            def _bool(env: Env, t: int) -> Out:
                va, ua = fa(env, t)
                vb, ub = fb(env, t)
                ca, cb = _cond(va), _cond(vb)
                if op == "and":
                    return Bv(ca.t & cb.t, ca.f | cb.f), ua | ub
                return Bv(ca.t | cb.t, ca.f & cb.f), ua | ub

            return _bool
        case Binary(op, a, b) if op in ("<", "<=", ">", ">=", "==", "!="):
            fa, fb = _compile_iv(a, size), _compile_iv(b, size)

            def _cmp(env: Env, t: int) -> Out:
                va, ua = fa(env, t)
                vb, ub = fb(env, t)
                return compare(op, _num(va), _num(vb)), ua | ub

            return _cmp
        case Binary("+", _, _):
            terms = [_compile_iv(x, size) for x in sum_terms(e)]

            def _sum(env: Env, t: int) -> Out:
                v0, u = terms[0](env, t)
                acc = _num(v0)
                for g in terms[1:]:
                    v, u2 = g(env, t)
                    acc = _add_r(acc, _num(v))
                    u = u | u2
                return acc, u

            return _sum
        case Binary("^", a, Const(cexp)):
            fa = _compile_iv(a, size)

            def _pow(env: Env, t: int) -> Out:
                v, u = fa(env, t)
                r, bad = power(_num(v), float(cexp))
                return r, u | bad

            return _pow
        case Binary(op, a, b) if op in ("-", "*", "/"):
            fa, fb = _compile_iv(a, size), _compile_iv(b, size)

            def _arith(env: Env, t: int) -> Out:
                va, ua = fa(env, t)
                vb, ub = fb(env, t)
                x, y = _num(va), _num(vb)
                if op == "-":
                    return _sub_r(x, y), ua | ub
                if op == "*":
                    return _mul_r(x, y), ua | ub
                q, bad = _div_r(x, y)
                return q, ua | ub | bad

            return _arith
        case Call("min" | "max" as fn, args):
            fs = [_compile_iv(x, size) for x in args]
            red = minimum if fn == "min" else maximum

            def _ext(env: Env, t: int) -> Out:
                v0, u = fs[0](env, t)
                acc = _num(v0)
                for g in fs[1:]:
                    v, u2 = g(env, t)
                    acc = red(acc, _num(v))
                    u = u | u2
                return acc, u

            return _ext
        case Call(fn, (arg,)):
            fa = _compile_iv(arg, size)
            return _unary_call(fn, fa)
        case Ite(c, a, b):
            fc, fa, fb = _compile_iv(c, size), _compile_iv(a, size), _compile_iv(b, size)

            def _ite(env: Env, t: int) -> Out:
                vc, uc = fc(env, t)
                cc = _cond(vc)
                va, ua = fa(env, t)
                vb, ub = fb(env, t)
                u = uc | (cc.t & ua) | (cc.f & ub)
                if isinstance(va, Bv) and isinstance(vb, Bv):
                    both = cc.t & cc.f
                    tt = np.where(both, va.t | vb.t, np.where(cc.t, va.t, vb.t))
                    ff = np.where(both, va.f | vb.f, np.where(cc.t, va.f, vb.f))
                    return Bv(tt, ff), u
                return hull(cc, _num(va), _num(vb)), u

            return _ite
        case Phase(period, offset):
            yes, no = np.ones(size, dtype=bool), _none(size)
            tv, fv = Bv(yes, no), Bv(no, yes)
            return lambda env, t: (tv if t % period == offset else fv, z)
    raise Unsupported(f"cannot evaluate {e!r} on intervals")


def _compile_lin(e: Lin, size: int) -> Fn:
    z = _none(size)
    lo0, hi0 = _frac_interval(e.c0)
    c0 = Iv(np.full(size, lo0), np.full(size, hi0))
    # each term: the coefficient as a float (exactly representable), or as an interval, or
    # None for +1 and -1 (then ``sign``)
    parts: list[tuple[float | Iv | None, int, Fn]] = []
    for atom, k in e.terms:
        sign = 1 if k > 0 else -1
        g = _compile_iv(atom, size)
        if abs(k) == 1:
            parts.append((None, sign, g))
            continue
        klo, khi = _frac_interval(k)
        coef = klo if klo == khi else Iv(np.full(size, klo), np.full(size, khi))
        parts.append((coef, 1, g))

    def f(env: Env, t: int) -> Out:
        acc = c0
        u = z
        for coef, sign, g in parts:
            v, u2 = g(env, t)
            x = _num(v)
            u = u | u2
            if coef is None:
                acc = _add_r(acc, x) if sign > 0 else _sub_r(acc, x)
            elif isinstance(coef, float):
                acc = _add_r(acc, _scale_r(coef, x))
            else:
                acc = _add_r(acc, _mul_r(coef, x))
        return acc, u

    return f


def _unary_call(fn: str, fa: Fn) -> Fn:
    def f(env: Env, t: int) -> Out:
        v, u = fa(env, t)
        x = _num(v)
        if fn == "abs":
            return absolute(x), u
        if fn == "floor":
            return floor(x), u
        if fn == "ceil":
            return ceil(x), u
        if fn == "round":
            half = Iv(np.full(x.lo.shape, 0.5), np.full(x.lo.shape, 0.5))
            return floor(_add_r(x, half)), u
        with np.errstate(all="ignore"):
            if fn == "sqrt":
                lo, hi = np.maximum(x.lo, 0.0), np.maximum(x.hi, 0.0)
                r = Iv(np.maximum(0.0, _lib_dn(np.sqrt(lo))), _lib_up(np.sqrt(hi)))
                return r, u | (x.lo < 0.0)
            if fn == "exp":
                elo = np.where(x.lo > 709.0, INF, np.exp(np.minimum(x.lo, 709.0)))
                ehi = np.where(x.hi > 709.0, INF, np.exp(np.minimum(x.hi, 709.0)))
                return Iv(np.maximum(0.0, _lib_dn(elo)), _lib_up(ehi)), u | (x.hi > 709.0)
            if fn == "log":
                llo = np.where(x.lo <= 0.0, -INF, np.log(np.maximum(x.lo, 1e-300)))
                lhi = np.where(x.hi <= 0.0, -INF, np.log(np.maximum(x.hi, 1e-300)))
                return Iv(_lib_dn(llo), _lib_up(lhi)), u | (x.lo <= 0.0)
        raise Unsupported(f"function {fn}")

    return f


# ---- the reachability run ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unknowns:
    """What a run from the initial state depends on: held inputs and uncertain parameters."""

    names: tuple[str, ...]
    lo: F  # the full range of each
    hi: F
    held: tuple[str, ...]  # the held inputs among names


def unknowns(ts: TransitionSystem, held: bool) -> Unknowns:
    names: list[str] = []
    lo: list[float] = []
    hi: list[float] = []
    heldn: list[str] = []
    if held:
        for u in ts.inputs:
            if u.lo < u.hi:
                names.append(u.name)
                lo.append(const_interval(u.lo)[0])
                hi.append(const_interval(u.hi)[1])
                heldn.append(u.name)
    for p in ts.params:
        if not p.internal and p.lo < p.hi:
            names.append(p.name)
            lo.append(const_interval(p.lo)[0])
            hi.append(const_interval(p.hi)[1])
    return Unknowns(tuple(names), np.array(lo), np.array(hi), tuple(heldn))


@dataclass(slots=True)
class Sweep:
    """The outcome of running a batch of boxes to the horizon."""

    fail: NDArray[np.int64]  # first tick at which the box may violate, -1 if none
    forever: B  # the box's enclosure returned into itself with no violation (see above)


Compiled = tuple[list[tuple[str, Fn]], list[Fn], list[Fn], Fn, Fn | None]


def _full(n: int, v: float) -> F:
    return np.full(n, v)


class Reach:
    """The interval semantics of one system and requirement, compiled for batches of boxes."""

    def __init__(self, ts: TransitionSystem, req: Requirement) -> None:
        if req.kind not in ("always", "response"):
            raise Unsupported(f"{req.kind} requirements are not checked on intervals")
        self.ts = ts
        self.req = req
        self.held = req.inputs == "held"
        self.unk = unknowns(ts, self.held)
        self.ints = integer_states(ts)
        self.free = tuple(u.name for u in ts.inputs if u.lo < u.hi and u.name not in self.unk.held)
        self._compiled: dict[int, Compiled] = {}
        self._lets = {d.name: d.expr for d in ts.lets}
        self._nonzero = nonzero_names(ts)
        self._consts = {p.name: p.value for p in ts.params if p.name not in self.unk.names}
        # each state's range, as the intervals of its two ends (an update is clamped to it)
        self._bounds = [(const_interval(s.lo), const_interval(s.hi)) for s in ts.states]
        # the same ends as columns, for clamping every state's [lo, hi] at once (:meth:`step`)
        ends = np.array([[lo[0], lo[1], hi[0], hi[1]] for lo, hi in self._bounds]).reshape(-1, 4)
        self._clamp = tuple(ends[:, j : j + 1] for j in range(4))
        self._int_rows = np.array(
            [i for i, s in enumerate(ts.states) if s.name in self.ints], dtype=np.intp
        )

    def compile_expr(self, e: Expr, n: int) -> Fn:
        """``e`` as an interval function of this system's environments for ``n`` boxes
        (shared factors cancelled, parameters other than the unknowns folded)."""
        return compile_iv(normalize(cancel_factors(e, self._lets, self._nonzero), self._consts), n)

    def _compile(self, n: int) -> Compiled:
        if n not in self._compiled:
            ts, req = self.ts, self.req

            def comp(e: Expr) -> Fn:
                return self.compile_expr(e, n)

            lets = [(d.name, comp(d.expr)) for d in ts.lets]
            ups = [comp(s.update) for s in ts.states]
            inits = [comp(s.init) for s in ts.states]
            assert req.cond is not None
            cond = comp(req.cond)
            trig = comp(req.trigger) if req.trigger is not None else None
            self._compiled[n] = (lets, ups, inits, cond, trig)
        return self._compiled[n]

    def base(self, blo: F, bhi: F) -> Env:
        """Parameters and inputs of boxes of the unknowns (free inputs: their whole range)."""
        ts, unk = self.ts, self.unk
        n = blo.shape[0]
        env: Env = {}
        for p in ts.params:
            if p.name in unk.names:
                j = unk.names.index(p.name)
                env[p.name] = Iv(blo[:, j].copy(), bhi[:, j].copy())
            else:
                lo, hi = const_interval(p.value)
                env[p.name] = Iv(_full(n, lo), _full(n, hi))
        for u in ts.inputs:
            if u.name in unk.held:
                j = unk.names.index(u.name)
                env[u.name] = Iv(blo[:, j].copy(), bhi[:, j].copy())
            else:
                lo, hi = const_interval(u.lo)[0], const_interval(u.hi)[1]
                env[u.name] = Iv(_full(n, lo), _full(n, hi))
        return env

    def initial(self, base: Env, n: int) -> tuple[list[Iv], B]:
        """The initial state, as the simulator computes it (registers from their signals)."""
        ts = self.ts
        lets, _, inits, _, _ = self._compile(n)
        env: Env = dict(base)
        undef = _none(n)
        pending = []
        for i, s in enumerate(ts.states):
            if isinstance(s.init, Const):
                v, _ = inits[i](env, 0)
                env[s.name] = v
            else:
                pending.append(i)
        if pending:
            for d, (name, f) in zip(ts.lets, lets, strict=True):
                if d.owner is None:
                    v, u = f(env, 0)
                    env[name] = v
                    undef = undef | u
            for i in pending:
                v, u = inits[i](env, 0)
                env[ts.states[i].name] = _num(v)
                undef = undef | u
        return [_num(env[nm]) for nm in ts.state_names], undef

    def lets(self, base: Env, state: list[Iv], t: int, n: int) -> tuple[Env, B]:
        """The environment of tick ``t``: the states, inputs, parameters and every let."""
        lets = self._compile(n)[0]
        env: Env = dict(base)
        for nm, sv in zip(self.ts.state_names, state, strict=True):
            env[nm] = sv
        undef = _none(n)
        for name, f in lets:
            v, u = f(env, t)
            env[name] = v
            undef = undef | u
        return env, undef

    def condition(self, env: Env, t: int, n: int) -> tuple[Bv, B, Bv | None]:
        """The requirement's condition (and trigger) at tick ``t``, with their undefinedness."""
        _, _, _, cond, trig = self._compile(n)
        c, uc = cond(env, t)
        tv: Bv | None = None
        if trig is not None:
            tr, ut = trig(env, t)
            tb = _cond(tr)
            tv = Bv(tb.t | ut, tb.f)
        return _cond(c), uc, tv

    def step(self, env: Env, t: int, n: int) -> tuple[list[Iv], B]:
        """Every state's update at tick ``t``, clamped to its range (integers rounded in)."""
        ups = self._compile(n)[1]
        undef = _none(n)
        m = len(ups)
        xlo, xhi = np.empty((m, n)), np.empty((m, n))
        for i, f in enumerate(ups):
            v, u = f(env, t)
            undef = undef | u
            x = _num(v)
            xlo[i], xhi[i] = x.lo, x.hi
        # every state clamped at once, row by row with its own ends (the same operations)
        lo0, lo1, hi0, hi1 = self._clamp
        xlo = np.minimum(np.maximum(xlo, lo0), hi0)
        xhi = np.minimum(np.maximum(xhi, lo1), hi1)
        rows = self._int_rows
        if rows.size:
            xlo[rows], xhi[rows] = np.ceil(xlo[rows]), np.floor(xhi[rows])
        return [Iv(xlo[i], xhi[i]) for i in range(m)], undef

    def sweep(self, blo: F, bhi: F, horizon: int) -> Sweep:
        """Run the boxes ``[blo, bhi]`` (shape [N, D]) for ``horizon`` ticks."""
        req = self.req
        n = blo.shape[0]
        base = self.base(blo, bhi)
        state, undef = self.initial(base, n)
        fail = np.full(n, -1, dtype=np.int64)
        forever = _none(n)
        h = self.ts.hyperperiod
        hist_lo: list[F] = []
        hist_hi: list[F] = []
        trig_hist: list[B] = []
        run = np.zeros(n, dtype=np.int64)  # ticks in a row the condition may be false
        for t in range(horizon):
            env, ul = self.lets(base, state, t, n)
            undef = undef | ul
            cb, uc, tv = self.condition(env, t, n)
            if req.kind == "always":
                bad = cb.f | undef | uc
            else:
                assert tv is not None
                trig_hist.append(np.broadcast_to(tv.t, (n,)))
                run = np.where(cb.f | uc, run + 1, 0)
                bad = undef | uc
                k = req.within
                if t >= k:
                    bad = bad | (trig_hist[t - k] & (run >= k + 1))
            bad = np.broadcast_to(bad, (n,))
            fail[bad & (fail < 0) & ~forever] = t
            # the box of every state within the box one hyperperiod back: an invariant
            lo_now = np.stack([x.lo for x in state], axis=1)
            hi_now = np.stack([x.hi for x in state], axis=1)
            if req.kind == "always" and t >= h:
                inside = np.all((lo_now >= hist_lo[t - h]) & (hi_now <= hist_hi[t - h]), axis=1)
                forever = forever | (inside & (fail < 0))
            hist_lo.append(lo_now)
            hist_hi.append(hi_now)
            if np.all((fail >= 0) | forever):
                break
            state, us = self.step(env, t, n)
            undef = undef | us
        return Sweep(fail, forever)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What interval reachability established."""

    status: str  # "proved" (all time), "holds" (to the horizon), "unknown"
    depth: int  # ticks established for every box
    boxes: int  # boxes in the final cover of the unknowns
    runs: int  # boxes run in all
    detail: str


def _bisect(blo: F, bhi: F, width: F) -> tuple[F, F]:
    """Each box cut in two across its widest unknown (relative to the unknown's range)."""
    rel = (bhi - blo) / width[None, :]
    axis = np.argmax(rel, axis=1)
    rows = np.arange(blo.shape[0])
    mid = (blo[rows, axis] + bhi[rows, axis]) / 2.0
    hi1, lo2 = bhi.copy(), blo.copy()
    hi1[rows, axis] = mid
    lo2[rows, axis] = mid
    return np.concatenate([blo, lo2]), np.concatenate([hi1, bhi])


def check_reach(
    ts: TransitionSystem, req: Requirement, horizon: int, max_boxes: int = 1024
) -> Outcome:
    """Enclose every run from the initial state for ``horizon`` ticks, splitting the unknowns.

    ``max_boxes`` bounds the boxes in the cover (and so the work: a deterministic budget).
    A box that may violate is bisected; when every box holds, boxes whose enclosure did not
    return into itself are bisected too (within the budget) to try for all time.
    """
    try:
        reach = Reach(ts, req)
    except Unsupported as exc:
        return Outcome("unknown", 0, 0, 0, str(exc))
    unk = reach.unk
    d = len(unk.names)
    width = np.where(unk.hi > unk.lo, unk.hi - unk.lo, 1.0)
    todo_lo, todo_hi = unk.lo[None, :].copy(), unk.hi[None, :].copy()
    done = 0  # boxes that hold to the horizon
    runs = 0
    open_lo: list[F] = []  # boxes that hold but whose enclosure did not return into itself
    open_hi: list[F] = []
    try:
        while todo_lo.shape[0]:
            sw = reach.sweep(todo_lo, todo_hi, horizon)
            runs += todo_lo.shape[0]
            ok = sw.fail < 0
            done += int(ok.sum())
            keep = ok & ~sw.forever
            open_lo.append(todo_lo[keep])
            open_hi.append(todo_hi[keep])
            bad = ~ok
            if not bad.any():
                break
            blo, bhi = todo_lo[bad], todo_hi[bad]
            first = int(sw.fail[bad].min())
            tiny = d > 0 and float(((bhi - blo) / width[None, :]).max(axis=1).min()) <= 1e-9
            if d == 0 or tiny or done + 2 * blo.shape[0] > max_boxes:
                return Outcome(
                    "unknown",
                    first,
                    done + blo.shape[0],
                    runs,
                    f"the interval enclosure may violate at tick {first} "
                    f"({blo.shape[0]} of {done + blo.shape[0]} boxes of "
                    f"{', '.join(unk.names) or 'no unknowns'} undecided"
                    f"{', down to a tiny box' if tiny else ''})",
                )
            todo_lo, todo_hi = _bisect(blo, bhi, width)
        # every box holds over the horizon; try to show the rest returns into itself
        olo, ohi = np.concatenate(open_lo), np.concatenate(open_hi)
        total = done
        while req.kind == "always" and d > 0 and olo.shape[0] and total + olo.shape[0] <= max_boxes:
            olo, ohi = _bisect(olo, ohi, width)
            sw = reach.sweep(olo, ohi, horizon)
            runs += olo.shape[0]
            total += olo.shape[0] // 2
            if not np.all(sw.fail < 0):
                break
            olo, ohi = olo[~sw.forever], ohi[~sw.forever]
    except Unsupported as exc:
        return Outcome("unknown", 0, 0, runs, str(exc))
    what = f"{total} boxes of {', '.join(unk.names)}" if d else "one box (nothing to split)"
    inputs = "inputs held" if reach.held else "inputs free per tick"
    if req.kind == "always" and olo.shape[0] == 0:
        return Outcome(
            "proved",
            horizon,
            total,
            runs,
            f"proved for all time by interval reachability ({what}, {inputs}): each box's "
            "enclosure returns into itself one hyperperiod later",
        )
    return Outcome(
        "holds",
        horizon,
        total,
        runs,
        f"no violation in {horizon} ticks by interval reachability ({what}, {inputs}; "
        f"{runs} box runs)",
    )


# ---- the reachable enclosure ----------------------------------------------------------------


WIDEN_STEPS = 6  # widenings of one end by growing steps before it goes to the declared bound
GEOMETRIC = 0.99  # moves shrinking by at most this ratio per hyperperiod are a converging series
WORK = 40_000  # state-ticks the reachable enclosure may take (a deterministic budget)


@dataclass(frozen=True, slots=True)
class Enclosure:
    """Boxes that hold every state of every run from the initial state, for all time."""

    box: dict[str, tuple[float, float]]  # per state (registers, history and cooldowns too)
    ticks: int  # the tick at which the enclosure returned into itself


def reachable_enclosure(
    ts: TransitionSystem, max_ticks: int = 2000, widen_after: int = 200
) -> Enclosure | None:
    """The hull of every state over all runs from the initial state (inputs free per tick
    within their ranges, uncertain parameters within theirs), or None.

    One box of the unknowns is run until the box of every state at tick ``t + H`` lies within
    its box at tick ``t`` (``H`` the hyperperiod). As in :func:`check_reach`, the boxes of
    ticks ``t .. t + H - 1`` are then an inductive invariant for every tick ``s >= t``, and
    the boxes of ticks ``0 .. t - 1`` hold the ticks before: their hull encloses every
    reachable state at every tick.

    *Widening* (Cousot and Cousot, POPL '77): from tick ``max(widen_after, 4 H)`` on, an end
    of a state's box that still moves outward from one hyperperiod to the next is set to that
    state's declared bound. This stays sound: the box only grows, every update is clamped to
    the declared range anyway, and interval evaluation over a larger box encloses the image
    of the smaller one. It makes a queue that creeps towards its bound over thousands of ticks
    close at once.

    None when the enclosure does not return into itself within ``max_ticks``, when an
    operation may be undefined on the way (an undefined run is not a run of the simulator's
    meaning), or when an expression is not handled here.
    """
    true_ = Requirement(kind="always", cond=Const(1.0), horizon=max_ticks)
    try:
        reach = Reach(ts, true_)
    except Unsupported:
        return None
    unk = reach.unk
    blo, bhi = unk.lo[None, :].copy(), unk.hi[None, :].copy()
    h = ts.hyperperiod
    decl_lo = np.array([s.lo for s in ts.states], dtype=float)
    decl_hi = np.array([s.hi for s in ts.states], dtype=float)
    start_widening = max(widen_after, 4 * h)
    widened_lo = np.zeros(len(ts.states), dtype=np.int64)
    widened_hi = np.zeros(len(ts.states), dtype=np.int64)
    max_ticks = min(max_ticks, WORK // max(1, len(ts.states)))
    if max_ticks <= 4 * h:
        return None  # too large a system to enclose within the budget
    hist: list[tuple[F, F]] = []
    lo_all = np.full(len(ts.states), INF)
    hi_all = np.full(len(ts.states), -INF)
    try:
        base = reach.base(blo, bhi)
        state, undef = reach.initial(base, 1)
        for t in range(max_ticks):
            lo_now = np.array([float(x.lo[0]) for x in state])
            hi_now = np.array([float(x.hi[0]) for x in state])
            if t >= h:
                plo, phi = hist[t - h]
                grow_lo, grow_hi = lo_now < plo, hi_now > phi
                if not (grow_lo.any() or grow_hi.any()):
                    names = ts.state_names
                    box = {n: (float(lo_all[i]), float(hi_all[i])) for i, n in enumerate(names)}
                    return Enclosure(box, t)
                if t >= start_widening and (t - start_widening) % h == 0:
                    # widening, once a hyperperiod (so that each move compared spans one): an
                    # end that still moves is pushed out by 2^j times its last move (j: how
                    # often it was widened), or, when its moves shrink geometrically (ratio
                    # q < 1), past the limit of that series (twice q / (1 - q) times its last
                    # move); after WIDEN_STEPS widenings, to its declared bound
                    wl = np.where(grow_lo, widened_lo, 0)
                    wh = np.where(grow_hi, widened_hi, 0)
                    far_lo = wl >= WIDEN_STEPS
                    far_hi = wh >= WIDEN_STEPS
                    glo, ghi = plo - lo_now, hi_now - phi
                    qlo, qhi = np.zeros_like(glo), np.zeros_like(ghi)
                    if t >= 2 * h:
                        pplo, pphi = hist[t - 2 * h]
                        with np.errstate(divide="ignore", invalid="ignore"):
                            qlo = np.nan_to_num(glo / (pplo - plo), nan=0.0, posinf=0.0)
                            qhi = np.nan_to_num(ghi / (phi - pphi), nan=0.0, posinf=0.0)
                    geo_lo = 2.0 * qlo / (1.0 - np.clip(qlo, 0.0, GEOMETRIC))
                    geo_hi = 2.0 * qhi / (1.0 - np.clip(qhi, 0.0, GEOMETRIC))
                    conv_lo = (qlo > 0.0) & (qlo < GEOMETRIC)
                    conv_hi = (qhi > 0.0) & (qhi < GEOMETRIC)
                    step_lo = glo * np.where(conv_lo, np.maximum(geo_lo, 2.0), np.exp2(wl + 1))
                    step_hi = ghi * np.where(conv_hi, np.maximum(geo_hi, 2.0), np.exp2(wh + 1))
                    lo_new = np.where(grow_lo, lo_now - step_lo, lo_now)
                    hi_new = np.where(grow_hi, hi_now + step_hi, hi_now)
                    fin_lo, fin_hi = np.isfinite(decl_lo), np.isfinite(decl_hi)
                    lo_new = np.where(fin_lo & (far_lo | (lo_new < decl_lo)), decl_lo, lo_new)
                    hi_new = np.where(fin_hi & (far_hi | (hi_new > decl_hi)), decl_hi, hi_new)
                    lo_now = np.where(grow_lo, lo_new, lo_now)
                    hi_now = np.where(grow_hi, hi_new, hi_now)
                    widened_lo = widened_lo + grow_lo
                    widened_hi = widened_hi + grow_hi
                    state = [
                        Iv(np.array([lo_now[i]]), np.array([hi_now[i]])) for i in range(len(state))
                    ]
            if not (np.all(np.isfinite(lo_now)) and np.all(np.isfinite(hi_now))):
                return None
            hist.append((lo_now, hi_now))
            lo_all = np.minimum(lo_all, lo_now)
            hi_all = np.maximum(hi_all, hi_now)
            env, ul = reach.lets(base, state, t, 1)
            undef = undef | ul
            if bool(np.any(undef)):
                return None
            state, us = reach.step(env, t, 1)
            undef = undef | us
    except Unsupported:
        return None
    return None


ENCLOSURES_KEPT = 64  # a check of a whole library computes them all before its workers start
_ENCLOSURES: dict[int, tuple[TransitionSystem, Enclosure | None]] = {}


def reachable(ts: TransitionSystem) -> Enclosure | None:
    """:func:`reachable_enclosure` of ``ts``, computed once per system (it holds no solver
    terms, so one computation serves every analysis of the system; the last few are kept)."""
    got = _ENCLOSURES.get(id(ts))
    if got is None or got[0] is not ts:
        remember_enclosure(ts, reachable_enclosure(ts))
        got = _ENCLOSURES[id(ts)]
    return got[1]


def remember_enclosure(ts: TransitionSystem, enclosure: Enclosure | None) -> None:
    """Keep ``enclosure`` (:func:`reachable_enclosure` of ``ts``, computed elsewhere: in a
    worker process) for :func:`reachable` (the last ``ENCLOSURES_KEPT`` are kept)."""
    while len(_ENCLOSURES) >= ENCLOSURES_KEPT:
        _ENCLOSURES.pop(next(iter(_ENCLOSURES)))
    _ENCLOSURES[id(ts)] = (ts, enclosure)


def enclosure_box(ts: TransitionSystem) -> dict[str, Interval] | None:
    """The reachable enclosure as intervals per state, or None."""
    enc = reachable(ts)
    if enc is None:
        return None
    return {n: Interval(lo, hi) for n, (lo, hi) in enc.box.items()}


def interval_envs(
    ts: TransitionSystem, box: Mapping[str, tuple[float, float]], ticks: int, phase: int
) -> list[Env] | None:
    """The interval environment (states, inputs, parameters, every let) at ticks
    ``0..ticks`` of every run that starts in ``box`` at tick ``phase`` of the hyperperiod
    (inputs free per tick, uncertain parameters free). None when an operation may be
    undefined on the way or an expression is not handled here."""
    true_ = Requirement(kind="always", cond=Const(1.0), horizon=ticks + 1)
    try:
        reach = Reach(ts, true_)
        unk = reach.unk
        base = reach.base(unk.lo[None, :].copy(), unk.hi[None, :].copy())
        state = [Iv(np.array([box[n][0]]), np.array([box[n][1]])) for n in ts.state_names]
        out: list[Env] = []
        for t in range(ticks + 1):
            env, undef = reach.lets(base, state, phase + t, 1)
            if bool(np.any(undef)):
                return None
            out.append(env)
            if t < ticks:
                state, us = reach.step(env, phase + t, 1)
                if bool(np.any(us)):
                    return None
    except Unsupported:
        return None
    return out


def evaluate_envs(
    ts: TransitionSystem, envs: Sequence[Env], phase: int, exprs: Sequence[Expr]
) -> list[list[tuple[float, float]]] | None:
    """``exprs`` enclosed in each environment of :func:`interval_envs`: ``out[t][i]``; None
    when one may be undefined or is not handled here."""
    got = evaluate_batch(ts, envs, phase, exprs, 1)
    if got is None or bool(got[2][0]):
        return None
    lo, hi, _ = got
    return [
        [(float(lo[t, i, 0]), float(hi[t, i, 0])) for i in range(len(exprs))]
        for t in range(len(envs))
    ]


def evaluate_batch(
    ts: TransitionSystem, envs: Sequence[Env], phase: int, exprs: Sequence[Expr], size: int
) -> tuple[F, F, B] | None:
    """``exprs`` enclosed in environments of batches of ``size`` boxes: ``lo[t, i, k]`` and
    ``hi[t, i, k]`` (tick, expression, box), and per box whether one may be undefined; None
    when an expression is not handled here."""
    consts = {p.name: p.value for p in ts.params if p.lo == p.hi or p.internal}
    lo = np.full((len(envs), len(exprs), size), -INF)
    hi = np.full((len(envs), len(exprs), size), INF)
    undef = _none(size)
    try:
        let_exprs = {d.name: d.expr for d in ts.lets}
        nonzero = nonzero_names(ts)
        fns = [
            compile_iv(normalize(cancel_factors(e, let_exprs, nonzero), consts), size)
            for e in exprs
        ]
        with np.errstate(all="ignore"):
            for t, env in enumerate(envs):
                for i, f in enumerate(fns):
                    v, u = f(env, phase + t)
                    undef = undef | u
                    x = _num(v)
                    lo[t, i] = x.lo
                    hi[t, i] = x.hi
    except Unsupported:
        return None
    return lo, hi, undef


def interval_frames(
    ts: TransitionSystem,
    box: Mapping[str, tuple[float, float]],
    ticks: int,
    phase: int,
    exprs: Sequence[Expr],
) -> list[list[tuple[float, float]]] | None:
    """Enclosures of ``exprs`` at ticks ``0..ticks`` of every run that starts in ``box`` at
    tick ``phase`` (:func:`interval_envs`, :func:`evaluate_envs`)."""
    envs = interval_envs(ts, box, ticks, phase)
    return None if envs is None else evaluate_envs(ts, envs, phase, exprs)


@dataclass(frozen=True, slots=True)
class Contraction:
    """Where every fixed point of one hyperperiod at nominal input within a box lies
    (:func:`fixed_point_contraction`): ``box`` per state, and the interval environment of
    each tick ``0..H`` of a hyperperiod from it (``envs``), or ``empty``: there is none."""

    box: dict[str, tuple[float, float]]
    envs: list[Env]
    rounds: int
    empty: bool = False


@dataclass(slots=True)
class Contracted:
    """Boxes of states contracted around the fixed points of one hyperperiod at nominal input
    (:func:`contract_boxes`), per box ``i``: ``lo[i]``, ``hi[i]`` (shape [N, D], the system's
    states in order), ``empty[i]`` (no fixed point in the box), ``undef[i]`` (an operation
    may be undefined in the box: it is not contracted and ``envs`` say nothing of it), and
    ``envs``, the interval environments of ticks ``0..H`` of a hyperperiod from the boxes."""

    lo: F
    hi: F
    empty: B
    undef: B
    envs: list[Env]
    rounds: int


def _drift(e: Expr, x: Var) -> Expr:
    """``e - x``, the subtraction pushed into the arms of a ``min``, ``max`` or ``if`` (the
    same value), so that ``x`` cancels in each arm where it occurs linearly:
    ``max(0, x + d) - x`` is ``max(-x, d)``."""
    match e:
        case Call("min" | "max" as fn, args):
            return Call(fn, tuple(_drift(a, x) for a in args), e.span)
        case Ite(c, a, b):
            return Ite(c, _drift(a, x), _drift(b, x), e.span)
    return Binary("-", e, x)


class FixedPoints:
    """The interval semantics of one hyperperiod at nominal input (inputs at their nominal
    values, parameters at their declared values, from phase 0), compiled once for batches of
    ``size`` boxes of states."""

    def __init__(self, ts: TransitionSystem, size: int) -> None:
        true_ = Requirement(kind="always", cond=Const(1.0), horizon=1)
        self.ts = ts
        self.size = size
        self.reach = Reach(ts, true_)  # Unsupported when an expression is not handled here
        unk = self.reach.unk
        value = {p.name: p.value for p in ts.params}
        plo = np.array([const_interval(value[n])[0] for n in unk.names])
        phi = np.array([const_interval(value[n])[1] for n in unk.names])
        self.base = self.reach.base(
            np.tile(plo[None, :], (size, 1)).reshape(size, len(unk.names)),
            np.tile(phi[None, :], (size, 1)).reshape(size, len(unk.names)),
        )
        for u in ts.inputs:
            nlo, nhi = const_interval(u.nominal)
            self.base[u.name] = Iv(np.full(size, nlo), np.full(size, nhi))
        # the drift of each plant state, ``next x - x``, with ``x`` cancelled where it occurs
        # linearly: its sign over a whole hyperperiod pins the fixed points (see run)
        self.drifts: list[tuple[int, Fn]] = []
        for i, st in enumerate(ts.states):
            if st.kind == "plant":
                f = self.reach.compile_expr(_drift(st.update, Var(st.name)), size)
                self.drifts.append((i, f))
        self.decl_lo = np.array([s.lo for s in ts.states], dtype=float)
        self.decl_hi = np.array([s.hi for s in ts.states], dtype=float)

    def run(self, lo: F, hi: F) -> tuple[list[Env], F, F, B]:
        """One hyperperiod from the boxes: the environments of ticks ``0..H``, the boxes of
        the states at its end (met with what the drifts allow), and per box whether an
        operation may be undefined.

        A plant state whose drift ``next x - x`` is negative at every tick of the
        hyperperiod over a box only falls along every orbit from it (its clamped update
        stays below it, or at its lower bound when it is already there), so a fixed point
        in the box has it at its declared lower bound at every tick; a positive drift, at
        its upper bound. The end box says so.
        """
        n = self.size
        reach = self.reach
        h = self.ts.hyperperiod
        state = [Iv(lo[:, i].copy(), hi[:, i].copy()) for i in range(lo.shape[1])]
        undef = _none(n)
        envs: list[Env] = []
        falls = np.ones((n, len(self.drifts)), dtype=bool)
        rises = np.ones((n, len(self.drifts)), dtype=bool)
        with np.errstate(all="ignore"):
            for t in range(h + 1):
                env, ul = reach.lets(self.base, state, t, n)
                envs.append(env)
                undef = undef | ul
                if t < h:
                    for k, (_, f) in enumerate(self.drifts):
                        v, u = f(env, t)
                        d = _num(v)
                        falls[:, k] &= ~u & (d.hi < 0.0)
                        rises[:, k] &= ~u & (d.lo > 0.0)
                    state, us = reach.step(env, t, n)
                    undef = undef | us
        end_lo = np.stack([np.broadcast_to(x.lo, (n,)) for x in state], axis=1).copy()
        end_hi = np.stack([np.broadcast_to(x.hi, (n,)) for x in state], axis=1).copy()
        for k, (i, _) in enumerate(self.drifts):
            end_hi[:, i] = np.where(
                falls[:, k], np.minimum(end_hi[:, i], self.decl_lo[i]), end_hi[:, i]
            )
            end_lo[:, i] = np.where(
                rises[:, k], np.maximum(end_lo[:, i], self.decl_hi[i]), end_lo[:, i]
            )
        undef = undef | ~np.all(np.isfinite(end_lo) & np.isfinite(end_hi), axis=1)
        return envs, end_lo, end_hi, undef

    def contract(self, lo: F, hi: F, max_rounds: int) -> Contracted:
        """Contract each box ``[lo[i], hi[i]]`` (shape [size, D]).

        A state ``x`` with ``F^H(x) = x`` that lies in a box ``B`` lies in ``F^H(B)`` too,
        so in ``B ∩ F^H(B)``; iterating keeps every fixed point of the first box (a Kleene
        iteration downwards, with the interval semantics of this module, sound by outward
        rounding). A box stops when no end moves by more than a millionth of its width (or
        of 1), when its meet is empty (no fixed point in it), or at the first run where an
        operation may be undefined (it keeps the box before that run). The environments are
        those of one more run from the final boxes.
        """
        n = self.size
        lo, hi = lo.copy(), hi.copy()
        active = np.ones(n, dtype=bool)
        empty = _none(n)
        undef_first = _none(n)
        rounds = 0
        for r in range(max_rounds):
            rounds = r + 1
            _, end_lo, end_hi, undef = self.run(lo, hi)
            if r == 0:
                undef_first = undef.copy()
            new_lo, new_hi = np.maximum(lo, end_lo), np.minimum(hi, end_hi)
            ok = active & ~undef
            gone = ok & np.any(new_lo > new_hi, axis=1)
            empty |= gone
            width = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
            tol = 1e-6 * np.maximum(width, 1.0)
            moved = np.any((new_lo - lo > tol) | (hi - new_hi > tol), axis=1)
            take = ok & ~gone
            lo = np.where(take[:, None], new_lo, lo)
            hi = np.where(take[:, None], new_hi, hi)
            active = take & moved
            if not active.any():
                break
        envs, _, _, undef = self.run(lo, hi)
        return Contracted(lo, hi, empty, (undef | undef_first) & ~empty, envs, rounds)


def fixed_point_contraction(
    ts: TransitionSystem, box: Mapping[str, tuple[float, float]], max_rounds: int = 200
) -> Contraction | None:
    """Contract ``box`` around the fixed points of one hyperperiod at nominal input
    (:meth:`FixedPoints.contract` of one box); an empty meet proves there is no fixed point
    in ``box``. None when an operation may be undefined in the first box or an expression is
    not handled here; the rounds stay within the work budget."""
    h = ts.hyperperiod
    names = ts.state_names
    try:
        fp = FixedPoints(ts, 1)
        lo = np.array([[float(box[n][0]) for n in names]])
        hi = np.array([[float(box[n][1]) for n in names]])
        rounds = max(1, min(max_rounds, WORK // max(1, h * len(names))))
        got = fp.contract(lo, hi, rounds)
    except Unsupported:
        return None
    if bool(got.empty[0]):
        return Contraction({}, [], got.rounds, empty=True)
    if bool(got.undef[0]):
        return None
    out = {n: (float(got.lo[0, i]), float(got.hi[0, i])) for i, n in enumerate(names)}
    return Contraction(out, got.envs, got.rounds)
