"""Expressions to interval functions: the IR's meaning on boxes, with outward rounding.

It takes an IR expression (:mod:`coherence.ir.nodes`) and returns a function of an interval
environment (one :class:`~coherence.intervals.arith.Iv` or
:class:`~coherence.intervals.arith.Bv` per name, one element per box) and of the concrete tick,
that gives the expression's enclosure and, per box, whether an operation on the way may be
undefined (:func:`compile_iv`). The meaning is the simulator's, in exact real arithmetic:

- every operation is :mod:`coherence.intervals.arith`'s (rounded outward); a spec constant that
  is not a binary float (``0.1``) is the interval of the two floats around it;
- ``floor``/``ceil``/``round`` of an interval are the rounded ends; ``min``, ``max`` and
  ``abs`` are monotone; an ``if`` whose condition the intervals do not decide is the hull of
  both branches; conditions are three-valued (may be true, may be false);
- an operation that may be undefined (a divisor interval holding 0, ``log`` of a possibly
  non-positive number, ``sqrt`` or a fractional power of a possibly negative one) is flagged.

Before compiling, :func:`normalize` folds fixed parameters and collects sums into a linear
normal form with exact rational coefficients (:class:`Lin`), so that ``x + (t - x)`` encloses
as tightly as ``t``. An expression not handled here raises
:class:`~coherence.intervals.arith.Unsupported`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import numpy as np

from coherence.intervals.arith import (
    INF,
    B,
    Bv,
    Env,
    Iv,
    Unsupported,
    Val,
    absolute,
    add_r,
    as_bv,
    as_iv,
    ceil,
    compare,
    const_interval,
    div_r,
    exp,
    falses,
    floor,
    hull,
    log,
    maximum,
    minimum,
    mul_r,
    neg,
    power,
    scale_r,
    sqrt,
    sub_r,
)
from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    Phase,
    Unary,
    Var,
    sum_terms,
)

Out = tuple[Val, B]  # the value and "an operation on the way may be undefined"
Fn = Callable[[Env, int], Out]

_LIBRARY: dict[str, Callable[[Iv], tuple[Iv, B]]] = {"sqrt": sqrt, "exp": exp, "log": log}


# ---- a linear normal form ------------------------------------------------------------------------


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


DISTRIBUTE_DEPTH = 4  # pushes into one sum's ``if`` terms, nested (see _distribute)


def _ite_depth(e: object, cap: int) -> int:
    """How deep ``if`` nodes nest in ``e``'s branches and linear forms (at most ``cap``)."""
    if cap <= 0:
        return 0
    if isinstance(e, Ite):
        return 1 + max(_ite_depth(e.then, cap - 1), _ite_depth(e.other, cap - 1))
    if isinstance(e, Lin):
        return max((_ite_depth(a, cap) for a, _ in e.terms), default=0)
    return 0


def _distribute(f: LinForm) -> LinForm:
    """Push the rest of a sum into an ``if`` term's branches where that cancels an atom.

    Only into an ``if`` nested at most :data:`DISTRIBUTE_DEPTH` deep in earlier pushes: each
    push copies the rest of the sum into both branches, so a sum of n ``if`` terms (n loops
    acting on one state) would grow as 2^n. Leaving a sum undistributed is exact all the
    same, only its enclosure is wider."""
    c0, terms = f
    for atom, k in terms.items():
        if not isinstance(atom, Ite) or _ite_depth(atom, DISTRIBUTE_DEPTH) >= DISTRIBUTE_DEPTH:
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


def frac_interval(c: Fraction) -> tuple[float, float]:
    f = float(c)
    if Fraction(f) == c:
        return (f, f)
    return (math.nextafter(f, -INF), math.nextafter(f, INF))


# ---- compiling expressions ----------------------------------------------------------------------


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
    z = falses(size)
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
                return neg(as_iv(v)), u

            return _neg
        case Unary(_, a):
            fa = _compile_iv(a, size)

            def _not(env: Env, t: int) -> Out:
                v, u = fa(env, t)
                c = as_bv(v)
                return Bv(c.f, c.t), u

            return _not
        case Binary("and" | "or" as op, a, b):
            fa, fb = _compile_iv(a, size), _compile_iv(b, size)

            def _bool(env: Env, t: int) -> Out:
                va, ua = fa(env, t)
                vb, ub = fb(env, t)
                ca, cb = as_bv(va), as_bv(vb)
                if op == "and":
                    return Bv(ca.t & cb.t, ca.f | cb.f), ua | ub
                return Bv(ca.t | cb.t, ca.f & cb.f), ua | ub

            return _bool
        case Binary(op, a, b) if op in ("<", "<=", ">", ">=", "==", "!="):
            fa, fb = _compile_iv(a, size), _compile_iv(b, size)

            def _cmp(env: Env, t: int) -> Out:
                va, ua = fa(env, t)
                vb, ub = fb(env, t)
                return compare(op, as_iv(va), as_iv(vb)), ua | ub

            return _cmp
        case Binary("+", _, _):
            terms = [_compile_iv(x, size) for x in sum_terms(e)]

            def _sum(env: Env, t: int) -> Out:
                v0, u = terms[0](env, t)
                acc = as_iv(v0)
                for g in terms[1:]:
                    v, u2 = g(env, t)
                    acc = add_r(acc, as_iv(v))
                    u = u | u2
                return acc, u

            return _sum
        case Binary("^", a, Const(cexp)):
            fa = _compile_iv(a, size)

            def _pow(env: Env, t: int) -> Out:
                v, u = fa(env, t)
                r, bad = power(as_iv(v), float(cexp))
                return r, u | bad

            return _pow
        case Binary(op, a, b) if op in ("-", "*", "/"):
            fa, fb = _compile_iv(a, size), _compile_iv(b, size)

            def _arith(env: Env, t: int) -> Out:
                va, ua = fa(env, t)
                vb, ub = fb(env, t)
                x, y = as_iv(va), as_iv(vb)
                if op == "-":
                    return sub_r(x, y), ua | ub
                if op == "*":
                    return mul_r(x, y), ua | ub
                q, bad = div_r(x, y)
                return q, ua | ub | bad

            return _arith
        case Call("min" | "max" as fn, args):
            fs = [_compile_iv(x, size) for x in args]
            red = minimum if fn == "min" else maximum

            def _ext(env: Env, t: int) -> Out:
                v0, u = fs[0](env, t)
                acc = as_iv(v0)
                for g in fs[1:]:
                    v, u2 = g(env, t)
                    acc = red(acc, as_iv(v))
                    u = u | u2
                return acc, u

            return _ext
        case Call(fn, (arg,)):
            fa = _compile_iv(arg, size)
            return unary_call(fn, fa)
        case Ite(c, a, b):
            fc, fa, fb = _compile_iv(c, size), _compile_iv(a, size), _compile_iv(b, size)

            def _ite(env: Env, t: int) -> Out:
                vc, uc = fc(env, t)
                cc = as_bv(vc)
                va, ua = fa(env, t)
                vb, ub = fb(env, t)
                u = uc | (cc.t & ua) | (cc.f & ub)
                if isinstance(va, Bv) and isinstance(vb, Bv):
                    both = cc.t & cc.f
                    tt = np.where(both, va.t | vb.t, np.where(cc.t, va.t, vb.t))
                    ff = np.where(both, va.f | vb.f, np.where(cc.t, va.f, vb.f))
                    return Bv(tt, ff), u
                return hull(cc, as_iv(va), as_iv(vb)), u

            return _ite
        case Phase(period, offset):
            yes, no = np.ones(size, dtype=bool), falses(size)
            tv, fv = Bv(yes, no), Bv(no, yes)
            return lambda env, t: (tv if t % period == offset else fv, z)
    raise Unsupported(f"cannot evaluate {e!r} on intervals")


def _compile_lin(e: Lin, size: int) -> Fn:
    z = falses(size)
    lo0, hi0 = frac_interval(e.c0)
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
        klo, khi = frac_interval(k)
        coef = klo if klo == khi else Iv(np.full(size, klo), np.full(size, khi))
        parts.append((coef, 1, g))

    def f(env: Env, t: int) -> Out:
        acc = c0
        u = z
        for coef, sign, g in parts:
            v, u2 = g(env, t)
            x = as_iv(v)
            u = u | u2
            if coef is None:
                acc = add_r(acc, x) if sign > 0 else sub_r(acc, x)
            elif isinstance(coef, float):
                acc = add_r(acc, scale_r(coef, x))
            else:
                acc = add_r(acc, mul_r(coef, x))
        return acc, u

    return f


def unary_call(fn: str, fa: Fn) -> Fn:
    """A function of one argument (``abs``, ``floor``, ``ceil``, ``round``, ``sqrt``, ``exp``,
    ``log``) applied to what ``fa`` computes."""

    def f(env: Env, t: int) -> Out:
        v, u = fa(env, t)
        x = as_iv(v)
        if fn == "abs":
            return absolute(x), u
        if fn == "floor":
            return floor(x), u
        if fn == "ceil":
            return ceil(x), u
        if fn == "round":
            half = Iv(np.full(x.lo.shape, 0.5), np.full(x.lo.shape, 0.5))
            return floor(add_r(x, half)), u
        if fn in _LIBRARY:
            r, bad = _LIBRARY[fn](x)
            return r, u | bad
        raise Unsupported(f"function {fn}")

    return f
