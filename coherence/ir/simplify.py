"""Equivalence-preserving rewrites of the transition system (IR in, IR out) before it is
encoded or enclosed.

Lowering guards each action's contribution ``If(changes, target - a, 0)`` with
``changes = fires and not hold and target != a``. Inside that contribution the conjunct
``target != a`` is redundant (when ``target == a`` the contribution is 0 either way), but a
disequality costs the solver a case split on every tick. :func:`for_solver` drops it from the
state updates, exactly (in real arithmetic the two updates are the same function). The
``changes`` lets themselves are untouched: cooldown counters and traces read them.

:func:`cancel_factors` cancels the factors a product and a quotient share (through lets),
where the cancelled name's range excludes 0: ``replicas * (demand / replicas)`` is
``demand``. Interval reachability evaluates every expression in that form, and
:func:`for_solver` hands it to the encoder too (a bound the encoder propagates, and a
product the over-approximation relaxes, are then as tight as the algebra allows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import cast

from coherence.caches import Kept
from coherence.ir.nodes import (
    Binary,
    Const,
    Expr,
    Ite,
    TransitionSystem,
    Var,
    conjunction,
    map_children,
)


def _conjuncts(e: Expr) -> list[Expr]:
    if isinstance(e, Binary) and e.op == "and":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


# the rewritten form of the last few systems, by the identity of the system (each entry keeps
# it, so an id is not reused while its entry lives): every query of an analysis asks for it
# a system and each of its counterfactuals (one per loop held), by content
_SOLVER_FORMS: Kept[TransitionSystem] = Kept("ir.solver_forms", 24)


def for_solver(ts: TransitionSystem) -> TransitionSystem:
    """``ts`` with each action's ``target != a`` guard dropped from the state updates, and
    the shared factors of products and quotients cancelled (:func:`cancel_factors`) in the
    updates and lets. Computed once for each of the last few systems asked (the same object
    each time)."""
    hit = _SOLVER_FORMS.get(ts.content_key)
    if hit is not None:
        return hit
    out = _rewritten(ts)
    _SOLVER_FORMS.put(ts.content_key, out)
    return out


def _rewritten(ts: TransitionSystem) -> TransitionSystem:
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
        return map_children(e, rw)

    nonzero = nonzero_names(ts)

    def final(e: Expr) -> Expr:
        return cancel_factors(rw(e) if guards else e, lets, nonzero)

    states = tuple(replace(s, update=final(s.update)) for s in ts.states)
    new_lets = tuple(replace(d, expr=cancel_factors(d.expr, lets, nonzero)) for d in ts.lets)
    if states == ts.states and new_lets == ts.lets:
        return ts
    return replace(ts, states=states, lets=new_lets)


def nonzero_names(ts: TransitionSystem) -> set[str]:
    """States, inputs and parameters whose declared range excludes 0 (a state is clamped to
    its range on every tick, an input and an uncertain parameter stay within theirs)."""
    out: set[str] = set()
    for s in ts.states:
        if s.lo > 0 or s.hi < 0:
            out.add(s.name)
    for u in ts.inputs:
        if u.lo > 0 or u.hi < 0:
            out.add(u.name)
    for p in ts.params:
        if p.lo > 0 or p.hi < 0:
            out.add(p.name)
    return out


def cancel_factors(e: Expr, lets: Mapping[str, Expr], nonzero: set[str]) -> Expr:
    """``e`` with the factors that a product and a quotient share cancelled.

    A chain of ``*`` and ``/`` is read as factors with powers, looking through the lets it
    names that are chains themselves; a name that ends with power 0 is dropped when its range
    excludes 0 (``nonzero``), so ``replicas * (demand / replicas)`` (an HPA's
    ``currentReplicas * metric / target`` on a per-pod metric) is ``demand``. The rewrite is
    an identity in real arithmetic wherever the original is defined, and the original is
    defined wherever a dropped divisor is nonzero: always, for a name in ``nonzero``. Interval
    arithmetic evaluates each occurrence of a name independently (the dependency problem), so
    the cancelled form has the tighter enclosure. A chain where nothing cancels is kept as it
    is (with its operands rewritten); constants stay factors, so no value is rounded anew.
    """

    def chain(x: Expr, power: int, out: list[tuple[Expr, int]]) -> None:
        match x:
            case Binary("*", a, b):
                chain(a, power, out)
                chain(b, power, out)
                return
            case Binary("/", a, b):
                chain(a, power, out)
                chain(b, -power, out)
                return
            case Var(name) if name in lets and (
                isinstance(lets[name], Var)
                or (isinstance(lets[name], Binary) and cast(Binary, lets[name]).op in ("*", "/"))
            ):
                chain(lets[name], power, out)
                return
        out.append((x, power))

    def rw(x: Expr) -> Expr:
        match x:
            case Binary("*" | "/", _, _):
                factors: list[tuple[Expr, int]] = []
                chain(x, 1, factors)
                total: dict[Expr, int] = {}
                for f, k in factors:
                    total[f] = total.get(f, 0) + k
                gone = {
                    f
                    for f, k in total.items()
                    if k == 0 and isinstance(f, Var) and f.name in nonzero
                }
                if not gone:
                    return Binary(x.op, rw(x.left), rw(x.right), x.span)
                num: list[Expr] = []
                den: list[Expr] = []
                for f, k in factors:
                    if f in gone:
                        continue
                    (num if k > 0 else den).append(rw(f))
                top = num[0] if num else Const(1.0)
                for f in num[1:]:
                    top = Binary("*", top, f)
                for f in den:
                    top = Binary("/", top, f)
                return top
        return map_children(x, rw)

    return rw(e)
