"""Canonical text of a transition system, for golden tests and `coherence ir`."""

from __future__ import annotations

import math

from coherence.ir.nodes import Binary, Call, Const, Expr, Ite, Phase, TransitionSystem, Unary, Var

_PREC = {
    "or": 1,
    "and": 2,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "==": 4,
    "!=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "^": 8,
}


def fmt_num(v: float) -> str:
    if v != v or v in (float("inf"), float("-inf")):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.12g}"


def format_expr(e: Expr, parent: int = 0) -> str:
    """Print an IR expression with minimal parentheses."""
    match e:
        case Const(v):
            s = fmt_num(v)
            return f"({s})" if v < 0 and parent else s
        case Var(name):
            return name
        case Unary("neg", a):
            return _wrap(f"-{format_expr(a, 7)}", 7, parent)
        case Unary(_, a):
            return _wrap(f"not {format_expr(a, 3)}", 3, parent)
        case Binary(op, left, right):
            p = _PREC[op]
            rp = p + 1 if op != "^" else 7
            lp = p if op != "^" else p + 1
            return _wrap(f"{format_expr(left, lp)} {op} {format_expr(right, rp)}", p, parent)
        case Call(fn, args):
            return f"{fn}({', '.join(format_expr(a) for a in args)})"
        case Ite(c, a, b):
            return _wrap(
                f"if {format_expr(c)} then {format_expr(a)} else {format_expr(b)}", 0, parent
            )
        case Phase(period, offset):
            return f"phase({period}, {offset})"
    raise AssertionError(e)


def _wrap(text: str, prec: int, parent: int) -> str:
    return f"({text})" if prec < parent else text


def dump(ts: TransitionSystem) -> str:
    """The canonical dump: declarations in order, one per line."""
    out = [f"system {ts.name}", f"  tick {fmt_num(ts.tick)}s  hyperperiod {ts.hyperperiod}"]
    for u in ts.inputs:
        slew = f" slew {fmt_num(u.slew)}/tick" if math.isfinite(u.slew) else ""
        out.append(
            f"  input {u.name} [{fmt_num(u.lo)}, {fmt_num(u.hi)}] nominal {fmt_num(u.nominal)}"
            f"{slew}  ({u.unit})"
        )
    for p in ts.params:
        rng = f" in [{fmt_num(p.lo)}, {fmt_num(p.hi)}]" if p.lo != p.hi and not p.internal else ""
        tag = "  internal" if p.internal else ""
        out.append(f"  param {p.name} = {fmt_num(p.value)}{rng}{tag}")
    for s in ts.states:
        flags = (" integer" if s.integer else "") + (f" owner={s.owner}" if s.owner else "")
        out.append(f"  state {s.name} {s.kind} [{fmt_num(s.lo)}, {fmt_num(s.hi)}]{flags}")
        out.append(f"    init {format_expr(s.init)}")
        out.append(f"    next {format_expr(s.update)}")
    for d in ts.lets:
        owner = f"  [{d.owner}]" if d.owner else ""
        out.append(f"  let {d.name} = {format_expr(d.expr)}{owner}")
    for lp in ts.loops:
        out.append(
            f"  loop {lp.name} period {lp.period} phase {lp.phase} fires {lp.fires}"
            f" cooldown {lp.cooldown}"
        )
        for sn in lp.sensors:
            out.append(
                f"    senses {sn.alias} = {format_expr(sn.signal)} delay {sn.delay}"
                f" window {sn.window}"
            )
        for a in lp.actions:
            out.append(f"    actuates {a.state} {a.mode} {format_expr(a.law)}")
    for o in ts.objectives:
        tol = f" tolerance {fmt_num(o.tolerance)}{' relative' if o.relative else ''}"
        tol += "" if o.floor is None else f" floor {fmt_num(o.floor)}"
        if o.kind == "keep":
            assert o.bound is not None
            body = f"keep {format_expr(o.expr)} {o.cmp} {format_expr(o.bound)}"
        else:
            body = f"{o.kind} {format_expr(o.expr)}"
        out.append(f"  objective {o.name} {body}{tol}")
    for r in ts.requirements:
        out.append(f"  require {r.kind}: {r.text}  [horizon {r.horizon}, within {r.within}]")
    return "\n".join(out) + "\n"
