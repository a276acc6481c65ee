"""Canonical formatting of the AST back to spec text (``parse(format(ast)) == ast``)."""

from __future__ import annotations

import math

from coherence.frontend import ast

_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "^": 8}


def _num(n: ast.Num) -> str:
    v = n.value
    if not math.isfinite(v):  # only in a module with errors (COH105): never re-parsed
        return ("-" if v < 0 else "") + "1e999" + (f" {n.unit}" if n.unit else "")
    text = repr(v) if v != int(v) or abs(v) >= 1e16 else str(int(v))
    if "e" in text or "inf" in text or "nan" in text:
        text = repr(v)
    return text + (f" {n.unit}" if n.unit else "")


def format_expr(e: ast.Expr, parent: int = 0) -> str:
    match e:
        case ast.Num():
            s = _num(e)
            return f"({s})" if e.value < 0 and parent > 0 else s
        case ast.Name(name):
            return name
        case ast.TickRef():
            return "tick"
        case ast.Neg(arg):
            return _wrap(f"-{format_expr(arg, _PREC['neg'])}", _PREC["neg"], parent)
        case ast.BinOp(op, l, r):
            p = _PREC[op]
            return _wrap(f"{format_expr(l, p)} {op} {format_expr(r, p + 1)}", p, parent)
        case ast.Pow(b, x):
            p = _PREC["^"]
            return _wrap(f"{format_expr(b, p + 1)} ^ {format_expr(x, _PREC['neg'])}", p, parent)
        case ast.Compare(op, l, r):
            p = _PREC["cmp"]
            return _wrap(f"{format_expr(l, p + 1)} {op} {format_expr(r, p + 1)}", p, parent)
        case ast.BoolOp(op, l, r):
            p = _PREC[op]
            return _wrap(f"{format_expr(l, p)} {op} {format_expr(r, p + 1)}", p, parent)
        case ast.Not(arg):
            return _wrap(f"not {format_expr(arg, _PREC['not'])}", _PREC["not"], parent)
        case ast.Call(fn, args):
            return f"{fn}({', '.join(format_expr(a) for a in args)})"
        case ast.ProfileCall(profile, fn, args):
            return f"{profile}.{fn}({', '.join(format_expr(a) for a in args)})"
        case ast.Ite(c, a, b):
            return _wrap(
                f"if {format_expr(c)} then {format_expr(a)} else {format_expr(b)}", 0, parent
            )
    raise AssertionError(e)


def _wrap(text: str, prec: int, parent: int) -> str:
    return f"({text})" if prec < parent else text


def _range(r: ast.Range) -> str:
    return f"[{_num(r.lo)}, {_num(r.hi)}]"


def format_require(r: ast.Require) -> str:
    tail = f" inputs {r.inputs}" if r.inputs else ""
    if r.kind == "stable":
        return "require stable"
    if r.kind == "coherent":
        return "require coherent"
    if r.kind == "no_bad_equilibrium":
        return "require no bad equilibrium"
    if r.kind == "always":
        assert r.cond is not None and r.horizon is not None
        return f"require always {format_expr(r.cond)} for {_num(r.horizon)}{tail}"
    if r.kind == "response":
        assert r.cond is not None and r.trigger is not None and r.within is not None
        h = f" for {_num(r.horizon)}" if r.horizon else ""
        return (
            f"require after {format_expr(r.trigger)} then {format_expr(r.cond)} "
            f"within {_num(r.within)}{h}{tail}"
        )
    assert r.within is not None
    m = f" max {r.max_reversals:g}" if r.max_reversals is not None else ""
    h = f" for {_num(r.horizon)}" if r.horizon else ""
    return f"require no flapping of {r.state}{m} within {_num(r.within)}{h}"


def _objective(o: ast.Objective) -> str:
    name = f"{o.name} = " if o.name else ""
    tol = f" tolerance {_num(o.tolerance)}" if o.tolerance else ""
    tol += f" floor {_num(o.floor)}" if o.floor else ""
    if o.kind == "keep":
        assert o.bound is not None
        return (
            f"objective keep {name}{format_expr(o.expr, 5)} {o.cmp} {format_expr(o.bound, 5)}{tol}"
        )
    return f"objective {o.kind} {name}{format_expr(o.expr)}{tol}"


def _loop_item(i: ast.LoopItem) -> str:
    match i:
        case ast.LoopClause(kind, value):
            return f"{kind} {_num(value)}"
        case ast.Sense(expr, alias, delay, window):
            s = f"senses {format_expr(expr)}"
            s += f" as {alias}" if alias else ""
            s += f" delay {_num(delay)}" if delay else ""
            s += f" window {_num(window)}" if window else ""
            return s
        case ast.Actuate(state, mode, law):
            return f"actuates {state} {mode} {format_expr(law)}"
        case ast.LimitClause(rng):
            return f"limit {_range(rng)}"
        case ast.RateLimit(up, down):
            if up is not None and down is not None and up == down:
                return f"rate {_num(up)}"
            parts = ([f"up {_num(up)}"] if up else []) + ([f"down {_num(down)}"] if down else [])
            return "rate " + " ".join(parts)
        case ast.Stabilize(direction, window):
            d = "" if direction == "both" else f"{direction} "
            return f"stabilize {d}{_num(window)}"
        case ast.Guard(cond):
            return f"when {format_expr(cond)}"
        case ast.Timing(mode):
            return f"timing {mode}"
        case ast.Objective():
            return _objective(i)
    raise AssertionError(i)


def _ann(unit: str | None) -> str:
    return f" : {unit}" if unit else ""


def format_item(i: ast.SysItem) -> list[str]:
    match i:
        case ast.TickDecl(d):
            return [f"tick {_num(d)}"]
        case ast.UnitDecl(name, definition):
            return [f"unit {name}" + (f" = {_num(definition)}" if definition else "")]
        case ast.InputDecl(name, unit, rng, nominal, _, _, slew):
            extra = f" slew {_num(slew.amount)} per {_num(slew.per)}" if slew else ""
            return [f"input {name}{_ann(unit)} in {_range(rng)} nominal {_num(nominal)}{extra}"]
        case ast.ParamDecl(name, unit, value, rng, bind):
            r = f" in {_range(rng)}" if rng else ""
            b = ""
            if bind is not None:
                b = f" from {bind.profile}.{bind.key}"
                if bind.args is not None:
                    b += f"({', '.join(_num(a) for a in bind.args)})"
            return [f"param {name}{_ann(unit)} = {format_expr(value)}{r}{b}"]
        case ast.ProfileDecl(name, path):
            return [f'profile {name} = "{path}"']
        case ast.StateDecl(name, unit, integer, rng, init, _, _, combine):
            ann = _ann(unit) if unit else (" : 1" if integer else "")
            integer_kw = " integer" if integer else ""
            rule = f" combine {combine}" if combine else ""
            return [f"state {name}{ann}{integer_kw} in {_range(rng)} init {_num(init)}{rule}"]
        case ast.LetDecl(name, unit, value):
            return [f"let {name}{_ann(unit)} = {format_expr(value)}"]
        case ast.NextDecl(name, value):
            return [f"next {name} = {format_expr(value)}"]
        case ast.ContinuousDecl(equations):
            eqs = [f"  der({q.state}) = {format_expr(q.expr)}" for q in equations]
            return ["continuous {", *eqs, "}"]
        case ast.LoopDecl(name, doc, items):
            head = f' "{doc}"' if doc else ""
            return [f"loop {name}{head} {{", *("  " + _loop_item(x) for x in items), "}"]
        case ast.Objective():
            return [_objective(i)]
        case ast.Require():
            return [format_require(i)]
    raise AssertionError(i)


def format_module(m: ast.Module) -> str:
    """Pretty-print a module in canonical layout."""
    out: list[str] = []
    for s in m.systems:
        d = f' "{s.doc}"' if s.doc else ""
        out.append(f"system {s.name}{d} {{")
        for item in s.items:
            out += ["  " + line for line in format_item(item)]
        out.append("}")
    return "\n".join(out) + "\n"
