"""Which states take whole values: integer states whose update is integral by construction.

It takes a transition system and returns the names of its integer states
(:func:`integer_states`): marked ``integer``, with whole bounds and a whole initial value, and
an update that is whole whenever those states are (:func:`integral`, syntactically). Every
backend reads the same answer: the solver encodes them as integers, the interval engines round
their ends inward to integers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    StateVar,
    TransitionSystem,
    Unary,
    Var,
)


def integral(e: Expr, states: Mapping[str, StateVar], ints: set[str]) -> bool:
    """Whether ``e`` takes whole values whenever the states in ``ints`` do (syntactically)."""
    match e:
        case Const(v):
            return float(v).is_integer()
        case Var(name):
            return name in ints
        case Unary("neg", a):
            return integral(a, states, ints)
        case Binary(op, a, b) if op in ("+", "-", "*"):
            return integral(a, states, ints) and integral(b, states, ints)
        case Call(fn, _) if fn in ("floor", "ceil", "round"):
            return True
        case Call(fn, args) if fn in ("min", "max", "abs"):
            return all(integral(a, states, ints) for a in args)
        case Ite(_, a, b):
            return integral(a, states, ints) and integral(b, states, ints)
    return False


def integer_states(ts: TransitionSystem) -> set[str]:
    """States that are whole at every tick: marked integer, whole bounds and init, integral update.

    Lets are not followed (a let is taken as non-integral), so the answer is conservative.
    """
    by_name = {s.name: s for s in ts.states}
    cands = {
        s.name
        for s in ts.states
        if s.integer
        and isinstance(s.init, Const)
        and float(s.init.value).is_integer()
        and all(math.isinf(b) or float(b).is_integer() for b in (s.lo, s.hi))
    }
    changed = True
    while changed:
        changed = False
        for name in sorted(cands):
            upd = by_name[name].update
            if not integral(_inline_lets(upd, ts, cands), by_name, cands):
                cands.discard(name)
                changed = True
    return cands


def _inline_lets(e: Expr, ts: TransitionSystem, ints: set[str], depth: int = 0) -> Expr:
    """Replace lets by their definitions (bounded depth) so integrality can be seen through."""
    if depth > 8:
        return e
    match e:
        case Var(name) if name not in ints:
            for d in ts.lets:
                if d.name == name:
                    return _inline_lets(d.expr, ts, ints, depth + 1)
            return e
        case Unary(op, a):
            return Unary(op, _inline_lets(a, ts, ints, depth))
        case Binary(op, a, b):
            return Binary(op, _inline_lets(a, ts, ints, depth), _inline_lets(b, ts, ints, depth))
        case Call(fn, args):
            return Call(fn, tuple(_inline_lets(a, ts, ints, depth) for a in args))
        case Ite(c, a, b):
            return Ite(c, _inline_lets(a, ts, ints, depth), _inline_lets(b, ts, ints, depth))
    return e
