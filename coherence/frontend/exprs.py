"""Expressions: their types (dimensions, conditions) and their conversion to IR.

:class:`ExprTyper` visits one AST expression in a checker's scope
(:class:`~coherence.frontend.scope.Checker`): it resolves names (a loop's sensed values
first), checks the dimensions of arithmetic, comparisons, functions and profile calls
(COH207, COH211, COH216), records what is read, and returns the IR expression in canonical
units with its type.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING

from coherence.frontend import ast
from coherence.frontend.types import ANY, BOOL, AnyDim, Boolean, Type, article, dim_hint, tname
from coherence.frontend.units import DIMENSIONLESS, TIME, Dim, UnitError, UnitTable
from coherence.ir import nodes as ir
from coherence.source import Span

if TYPE_CHECKING:
    from coherence.frontend.scope import Checker


FUNCTION_ARITY: dict[str, tuple[int, int]] = {
    "min": (2, 64),
    "max": (2, 64),
    "abs": (1, 1),
    "ceil": (1, 1),
    "floor": (1, 1),
    "round": (1, 1),
    "sqrt": (1, 1),
    "exp": (1, 1),
    "log": (1, 1),
    "clamp": (3, 3),
    "pow": (2, 2),
    "lag": (2, 3),  # lag(u, tau [, init]): coherence.frontend.dynamics
    "delay": (2, 3),  # delay(u, d [, init])
}


class ExprTyper:
    def __init__(self, ck: Checker, only_params: bool) -> None:
        self.ck = ck
        self.only_params = only_params

    def visit(self, e: ast.Expr) -> tuple[ir.Expr, Type]:
        ck = self.ck
        match e:
            case ast.Num(value, unit, span):
                if unit is None:
                    return ir.Const(value, span), (ANY if value == 0 else DIMENSIONLESS)
                u = ck.unit(unit, span)
                return ir.Const(value * u.scale, span), u.dim
            case ast.TickRef(span):
                return ir.Const(ck.tick, span), TIME
            case ast.Name(name, span):
                sensed = ck.scope_sensed.get(name)
                if sensed is not None:
                    return ir.Var(f"{sensed.owner}.{name}", span), sensed.dim
                sym = ck.symbols.get(name)
                if sym is None or sym.kind == "loop":
                    if name not in ck.broken:
                        ck.undefined(name, span)
                    return ir.Const(0.0, span), ANY
                if self.only_params and sym.kind != "param":
                    ck.error(
                        "COH215",
                        f"a parameter's value may only use numbers and other parameters; "
                        f"`{name}` is {article(sym.kind)}",
                        span,
                    )
                ck.reads.add(name)
                return ir.Var(name, span), (BOOL if sym.kind == "bool" else sym.dim)
            case ast.Neg(arg, span):
                a, t = self.visit(arg)
                self._num(arg, t)
                return ir.Unary("neg", a, span), t
            case ast.BinOp(op, left, right, span):
                a, ta = self.visit(left)
                b, tb = self.visit(right)
                self._num(left, ta)
                self._num(right, tb)
                if op in ("+", "-"):
                    verb = "add" if op == "+" else "subtract"
                    if self._bare_number_hint(e, left, ta, right, tb, verb):
                        return ir.Binary(op, a, b, span), ta if isinstance(
                            ta, Dim
                        ) and not ta.dimensionless else tb
                    return ir.Binary(op, a, b, span), self._unify(e, ta, tb, verb)
                if isinstance(ta, AnyDim) or isinstance(tb, AnyDim):
                    return ir.Binary(op, a, b, span), ANY
                assert isinstance(ta, Dim) and isinstance(tb, Dim)
                return ir.Binary(op, a, b, span), (ta * tb if op == "*" else ta / tb)
            case ast.Pow(base, exponent, span):
                return self._pow(base, exponent, span)
            case ast.Compare(op, left, right, span):
                a, ta = self.visit(left)
                b, tb = self.visit(right)
                self._num(left, ta)
                self._num(right, tb)
                if not self._bare_number_hint(e, left, ta, right, tb, "compare"):
                    self._unify(e, ta, tb, "compare")
                return ir.Binary(op, a, b, span), BOOL
            case ast.BoolOp(op, left, right, span):
                a, ta = self.visit(left)
                b, tb = self.visit(right)
                self._bool(left, ta)
                self._bool(right, tb)
                return ir.Binary(op, a, b, span), BOOL
            case ast.Not(arg, span):
                a, t = self.visit(arg)
                self._bool(arg, t)
                return ir.Unary("not", a, span), BOOL
            case ast.Ite(cond, then, other, span):
                c, tc = self.visit(cond)
                self._bool(cond, tc)
                a, ta = self.visit(then)
                b, tb = self.visit(other)
                if isinstance(ta, Boolean) and isinstance(tb, Boolean):
                    return ir.Ite(c, a, b, span), BOOL
                self._num(then, ta)
                self._num(other, tb)
                return ir.Ite(c, a, b, span), self._unify(e, ta, tb, "choose between")
            case ast.Call(fn, args, span, fn_span):
                return self._call(fn, args, span, fn_span)
            case ast.ProfileCall(profile, fn, args, span):
                return self._profile_call(profile, fn, args, span)
        raise AssertionError(f"unknown expression {e!r}")

    def _profile_call(
        self, profile: str, fn: str, args: tuple[ast.Expr, ...], span: Span
    ) -> tuple[ir.Expr, Type]:
        from coherence.frontend import profiles

        typed = [self.visit(a) for a in args]
        prof = self.ck.profile(profile, span)
        if fn not in profiles.PROFILE_FUNCTIONS:
            names = ", ".join(sorted(profiles.PROFILE_FUNCTIONS))
            self.ck.error(
                "COH211",
                f"a profile has no function `{fn}`",
                span,
                help=f"profile functions: {names}",
            )
            return ir.Const(0.0, span), ANY
        dim = profiles.PROFILE_FUNCTIONS[fn][0]
        if len(args) != 1:
            self.ck.error(
                "COH211",
                f"`{profile}.{fn}` takes 1 argument (the batch size), not {len(args)}",
                span,
            )
            return ir.Const(0.0, span), dim
        arg, t = typed[0]
        self._num(args[0], t)
        if isinstance(t, Dim) and not t.dimensionless:
            self.ck.error(
                "COH207",
                f"`{profile}.{fn}` takes a batch size (a plain number)",
                args[0].span,
                label=f"this is {tname(t)}",
            )
        if prof is None:
            if profile in self.ck.profile_errors:
                self.ck.error(
                    "COH222",
                    f"`{profile}.{fn}` needs calibration profile `{profile}`, "
                    "which could not be loaded",
                    span,
                    notes=(self.ck.profile_errors[profile],),
                    help="a plant function has no assumed value to fall back on",
                )
            return ir.Const(0.0, span), dim
        try:
            return profiles.pwl(prof, fn, arg), dim
        except Exception as exc:  # a profile is data: whatever it holds, a located error
            self.ck.error(
                "COH222",
                f"`{profile}.{fn}` cannot be built from calibration profile `{profile}`: {exc}",
                span,
                help="re-measure the profile with `coherence calibrate`",
            )
            return ir.Const(0.0, span), dim

    def _num(self, e: ast.Expr, t: Type) -> None:
        if isinstance(t, Boolean):
            self.ck.error(
                "COH216",
                "a number is needed here, not a condition",
                e.span,
                label="this is a condition",
            )

    def _bool(self, e: ast.Expr, t: Type) -> None:
        if not isinstance(t, Boolean):
            self.ck.error(
                "COH216",
                "a condition is needed here",
                e.span,
                label=f"this is {tname(t)}",
                help="compare it, for example `x > 0`",
            )

    def _bare_number_hint(
        self, e: ast.Expr, left: ast.Expr, ta: Type, right: ast.Expr, tb: Type, verb: str
    ) -> bool:
        """A plain number against a quantity: say which unit to write. True if reported."""
        for num, tn, other in ((left, ta, tb), (right, tb, ta)):
            if (
                isinstance(num, ast.Num)
                and num.unit is None
                and num.value != 0
                and isinstance(tn, Dim)
                and tn.dimensionless
                and isinstance(other, Dim)
                and not other.dimensionless
            ):
                self.ck.error(
                    "COH207",
                    f"cannot {verb} a plain number and {tname(other)}",
                    e.span,
                    label="no unit on this number" if num is left else "",
                    help=f"write the unit: `{num.value:g} {other}`",
                )
                return True
        return False

    def _unify(self, e: ast.Expr, ta: Type, tb: Type, verb: str) -> Type:
        if isinstance(ta, Boolean) or isinstance(tb, Boolean):
            return ANY
        if isinstance(ta, AnyDim):
            return tb
        if isinstance(tb, AnyDim):
            return ta
        if ta != tb:
            self.ck.error(
                "COH207",
                f"cannot {verb} {tname(ta)} and {tname(tb)}",
                e.span,
                label=f"{ta} vs {tb}",
                help=dim_hint(ta, tb),
            )
        return ta

    def _pow(self, base: ast.Expr, exponent: ast.Expr, span: Span) -> tuple[ir.Expr, Type]:
        a, ta = self.visit(base)
        b, tb = self.visit(exponent)
        self._num(base, ta)
        self._num(exponent, tb)
        if isinstance(tb, Dim) and not tb.dimensionless:
            self.ck.error(
                "COH207",
                "an exponent must be dimensionless",
                exponent.span,
                label=f"this is {tname(tb)}",
            )
        if isinstance(ta, Dim) and not ta.dimensionless:
            const = const_value(exponent)
            if const is None:
                self.ck.error(
                    "COH207",
                    "a quantity with a unit can only be raised to a constant power",
                    span,
                    help="divide by a reference value to make it dimensionless first",
                )
                return ir.Binary("^", a, b, span), ta
            return ir.Binary("^", a, b, span), ta ** Fraction(const).limit_denominator(1000)
        return ir.Binary("^", a, b, span), ta if isinstance(ta, Dim) else DIMENSIONLESS

    def _call(
        self, fn: str, args: tuple[ast.Expr, ...], span: Span, fn_span: Span
    ) -> tuple[ir.Expr, Type]:
        ck = self.ck
        if fn not in FUNCTION_ARITY:
            close = difflib.get_close_matches(fn, list(FUNCTION_ARITY), n=1)
            ck.error(
                "COH211",
                f"unknown function `{fn}`",
                fn_span,
                label="not a function",
                help=f"did you mean `{close[0]}`?"
                if close
                else "the functions are " + ", ".join(sorted(FUNCTION_ARITY)),
            )
            for a in args:
                self.visit(a)
            return ir.Const(0.0, span), ANY
        lo, hi = FUNCTION_ARITY[fn]
        if not lo <= len(args) <= hi:
            want = f"{lo}" if lo == hi else f"at least {lo}"
            ck.error(
                "COH211",
                f"`{fn}` takes {want} argument{'s' if lo != 1 else ''}, not {len(args)}",
                span,
            )
            return ir.Const(0.0, span), ANY
        if fn == "pow":
            return self._pow(args[0], args[1], span)
        if fn in ("lag", "delay"):
            from coherence.frontend.dynamics import dynamic_call

            return dynamic_call(self, fn, args, span)
        typed = [self.visit(a) for a in args]
        for a, (_, ta) in zip(args, typed, strict=True):
            self._num(a, ta)
        exprs = tuple(x for x, _ in typed)
        types = [t for _, t in typed]
        if fn in ("min", "max", "clamp"):
            joined: Type = types[0]
            for other in types[1:]:
                joined = self._unify(ast.Call(fn, args, span), joined, other, f"take the {fn} of")
            if fn == "clamp":
                return ir.Call(
                    "min", (ir.Call("max", (exprs[0], exprs[1]), span), exprs[2]), span
                ), joined
            return ir.Call(fn, exprs, span), joined
        if fn in ("abs", "ceil", "floor", "round"):
            return ir.Call(fn, exprs, span), types[0]
        if fn == "sqrt":
            t0 = types[0]
            return ir.Call(fn, exprs, span), (t0 ** Fraction(1, 2) if isinstance(t0, Dim) else t0)
        # exp, log
        if isinstance(types[0], Dim) and not types[0].dimensionless:
            ck.error(
                "COH207",
                f"`{fn}` needs a dimensionless argument",
                args[0].span,
                label=f"this is {tname(types[0])}",
                help="divide by a reference value of the same unit first",
            )
        return ir.Call(fn, exprs, span), DIMENSIONLESS


def const_value(e: ast.Expr) -> float | None:
    if isinstance(e, ast.Num) and e.unit is None:
        return e.value
    if isinstance(e, ast.Neg):
        v = const_value(e.arg)
        return None if v is None else -v
    return None


def ast_names(e: ast.Expr) -> Iterator[str]:
    match e:
        case ast.Name(name):
            yield name
        case ast.Neg(arg) | ast.Not(arg):
            yield from ast_names(arg)
        case ast.BinOp(_, l, r) | ast.Compare(_, l, r) | ast.BoolOp(_, l, r) | ast.Pow(l, r):
            yield from ast_names(l)
            yield from ast_names(r)
        case ast.Ite(c, a, b):
            yield from ast_names(c)
            yield from ast_names(a)
            yield from ast_names(b)
        case ast.Call(_, args) | ast.ProfileCall(_, _, args):
            for a in args:
                yield from ast_names(a)


def scale_of(e: ast.Expr, units: UnitTable, tick: float) -> float:
    if isinstance(e, ast.Num) and e.unit is not None:
        try:
            u = units.parse(e.unit)
        except UnitError:
            return 1.0
        return tick if u.ticks else u.scale
    return 1.0
