"""Scalar evaluation of IR expressions over a name -> value environment.

Used where a single number is needed at compile time (parameter values, bounds) and by
tests as an independent, obviously-correct interpreter. The simulator has its own
vectorised evaluator with the same semantics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from coherence.ir.nodes import Binary, Call, Const, Expr, Ite, Phase, Unary, Var


class EvalError(Exception):
    pass


def eval_scalar(expr: Expr, env: Mapping[str, float], tick: int = 0) -> float:
    """Evaluate ``expr``; booleans are 1.0/0.0.

    >>> from coherence.ir.nodes import Binary, Const, Var
    >>> eval_scalar(Binary("+", Var("x"), Const(2.0)), {"x": 1.0})
    3.0
    """
    match expr:
        case Const(value):
            return value
        case Var(name):
            try:
                return env[name]
            except KeyError:
                raise EvalError(f"no value for `{name}`") from None
        case Unary("neg", arg):
            return -eval_scalar(arg, env, tick)
        case Unary("not", arg):
            return 0.0 if eval_scalar(arg, env, tick) else 1.0
        case Binary(op, left, right):
            a = eval_scalar(left, env, tick)
            if op == "and":
                return 1.0 if a and eval_scalar(right, env, tick) else 0.0
            if op == "or":
                return 1.0 if a or eval_scalar(right, env, tick) else 0.0
            b = eval_scalar(right, env, tick)
            return _binary(op, a, b)
        case Call(fn, args):
            vals = [eval_scalar(a, env, tick) for a in args]
            return _call(fn, vals)
        case Ite(cond, then, other):
            return eval_scalar(then if eval_scalar(cond, env, tick) else other, env, tick)
        case Phase(period, offset):
            return 1.0 if tick % period == offset else 0.0
    raise EvalError(f"cannot evaluate {expr!r}")


def _binary(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise EvalError("division by zero")
        return a / b
    if op == "^":
        try:
            return float(a**b)
        except (OverflowError, ZeroDivisionError) as exc:
            raise EvalError(str(exc)) from None
    if op == "<":
        return float(a < b)
    if op == "<=":
        return float(a <= b)
    if op == ">":
        return float(a > b)
    if op == ">=":
        return float(a >= b)
    if op == "==":
        return float(a == b)
    if op == "!=":
        return float(a != b)
    raise EvalError(f"unknown operator {op}")


def _call(fn: str, vals: list[float]) -> float:
    try:
        if fn == "min":
            return min(vals)
        if fn == "max":
            return max(vals)
        if fn == "abs":
            return abs(vals[0])
        if fn == "ceil":
            return float(math.ceil(vals[0]))
        if fn == "floor":
            return float(math.floor(vals[0]))
        if fn == "round":
            return float(math.floor(vals[0] + 0.5))
        if fn == "sqrt":
            return math.sqrt(vals[0])
        if fn == "exp":
            return math.exp(vals[0])
        if fn == "log":
            return math.log(vals[0])
    except (ValueError, OverflowError) as exc:
        raise EvalError(f"{fn}: {exc}") from None
    raise EvalError(f"unknown function {fn}")
