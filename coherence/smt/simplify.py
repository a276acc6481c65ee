"""Equivalence-preserving rewrites of the transition system before it is encoded.

Lowering guards each action's contribution ``If(changes, target - a, 0)`` with
``changes = fires and not hold and target != a``. Inside that contribution the conjunct
``target != a`` is redundant (when ``target == a`` the contribution is 0 either way), but a
disequality costs the solver a case split on every tick. :func:`for_solver` drops it from the
state updates, exactly (in real arithmetic the two updates are the same function). The
``changes`` lets themselves are untouched: cooldown counters and traces read them.
"""

from __future__ import annotations

from dataclasses import replace

from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    TransitionSystem,
    Unary,
    Var,
    conjunction,
)


def _conjuncts(e: Expr) -> list[Expr]:
    if isinstance(e, Binary) and e.op == "and":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def for_solver(ts: TransitionSystem) -> TransitionSystem:
    """``ts`` with each action's ``target != a`` guard dropped from the state updates."""
    lets = {d.name: d.expr for d in ts.lets}
    guards: dict[str, Expr] = {}
    for lp in ts.loops:
        for act in lp.actions:
            expr = lets.get(act.changes)
            if expr is None:
                continue
            redundant = Binary("!=", Var(act.target), Var(act.state))
            parts = _conjuncts(expr)
            kept = [p for p in parts if p != redundant]
            if len(kept) < len(parts):
                guards[act.changes] = conjunction(kept)

    def rw(e: Expr) -> Expr:
        match e:
            case Ite(Var(c), Binary("-", Var(t), Var(s)) as then, Const(0.0) as zero) if (
                c in guards
            ):
                act_ok = any(
                    a.changes == c and a.target == t and a.state == s
                    for lp in ts.loops
                    for a in lp.actions
                )
                if act_ok:
                    return Ite(guards[c], then, zero, e.span)
                return e
            case Unary(op, a):
                return Unary(op, rw(a), e.span)
            case Binary(op, a, b):
                return Binary(op, rw(a), rw(b), e.span)
            case Call(fn, args):
                return Call(fn, tuple(rw(a) for a in args), e.span)
            case Ite(c, a, b):
                return Ite(rw(c), rw(a), rw(b), e.span)
        return e

    if not guards:
        return ts
    states = tuple(replace(s, update=rw(s.update)) for s in ts.states)
    return replace(ts, states=states)
