"""What a new version of a spec asks less of than the old: requirements and objectives
removed or weakened (``coherence diff`` flags them; they are never "no regression")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from coherence.diff.compare import Relaxation
from coherence.ir.nodes import Expr, Requirement, TransitionSystem


def _value(ts: TransitionSystem, e: Expr | None) -> float | None:
    """A bound's value when it is a number or a parameter (else None)."""
    from coherence.ir.nodes import Const, Unary, Var

    if isinstance(e, Const):
        return e.value
    if isinstance(e, Unary) and e.op == "neg":
        inner = _value(ts, e.arg)
        return None if inner is None else -inner
    if isinstance(e, Var):
        for p in ts.params:
            if p.name == e.name:
                return p.value
    return None


def _amount(v: float, relative: bool) -> str:
    return f"{v:.4g}%" if relative else f"{v:.4g}"


def _objective_relaxations(old: TransitionSystem, new: TransitionSystem) -> list[Relaxation]:
    out = []
    after = {o.name: o for o in new.objectives}
    for o in old.objectives:
        subject = f"objective `{o.name}`"
        n = after.get(o.name)
        if n is None:
            out.append(Relaxation(new.name, subject, "removed"))
            continue
        if o.relative == n.relative and n.tolerance > o.tolerance:
            scale = 100.0 if o.relative else 1.0
            out.append(
                Relaxation(
                    new.name,
                    subject,
                    f"tolerance raised from {_amount(o.tolerance * scale, o.relative)} to "
                    f"{_amount(n.tolerance * scale, n.relative)}",
                )
            )
        if o.floor is not None and (n.floor is None or n.floor > o.floor):
            was = f"{o.floor:g}"
            now = "the default" if n.floor is None else f"{n.floor:g}"
            out.append(
                Relaxation(new.name, subject, f"materiality floor raised from {was} to {now}")
            )
        if o.kind == "keep" and n.kind == "keep" and o.cmp == n.cmp:
            a, b = _value(old, o.bound), _value(new, n.bound)
            if (
                a is not None
                and b is not None
                and ((o.cmp in ("<", "<=") and b > a) or (o.cmp in (">", ">=") and b < a))
            ):
                unit = "" if n.unit in ("", "1") else f" {n.unit}"
                out.append(
                    Relaxation(
                        new.name,
                        subject,
                        f"bound loosened from {o.cmp} {a / o.scale:.4g}{unit} to "
                        f"{n.cmp} {b / n.scale:.4g}{unit}",
                    )
                )
        elif o.kind != n.kind:
            out.append(Relaxation(new.name, subject, f"changed from {o.kind} to {n.kind}"))
    return out


def _requirement_relaxations(old: TransitionSystem, new: TransitionSystem) -> list[Relaxation]:
    """Requirements paired by kind and their order among that kind (a requirement whose
    bound changed is the same requirement, asking something else)."""
    out = []

    def by_kind(ts: TransitionSystem) -> dict[tuple[str, int], Requirement]:
        seen: Counter[str] = Counter()
        keyed = {}
        for r in ts.requirements:
            keyed[(r.kind, seen[r.kind])] = r
            seen[r.kind] += 1
        return keyed

    before, after = by_kind(old), by_kind(new)
    for key, r in before.items():
        subject = f"`{r.text or r.kind}`"
        n = after.get(key)
        if n is None:
            out.append(Relaxation(new.name, subject, "removed"))
            continue
        changes = []
        if 0 < n.horizon < r.horizon:
            changes.append(f"horizon shortened from {r.horizon} to {n.horizon} ticks")
        if r.kind == "flapping":
            if n.max_reversals > r.max_reversals:
                changes.append(
                    f"reversals allowed raised from {r.max_reversals} to {n.max_reversals}"
                )
            if n.within < r.within:
                changes.append(f"window shortened from {r.within} to {n.within} ticks")
        if r.kind == "response" and n.within > r.within:
            changes.append(f"response time raised from {r.within} to {n.within} ticks")
        if r.kind == "always" and r.cond is not None and n.cond is not None:
            looser = _looser_condition(old, r.cond, new, n.cond)
            if looser:
                changes.append(looser)
        if changes:
            out.append(Relaxation(new.name, subject, "; ".join(changes) + f" (now `{n.text}`)"))
    return out


def _looser_condition(
    old_ts: TransitionSystem, old: Expr, new_ts: TransitionSystem, new: Expr
) -> str:
    """``bound loosened from <= 30 to <= 60`` for ``x <= c`` conditions over the same
    left-hand side whose constant moved the permissive way; else empty."""
    from coherence.ir.nodes import Binary

    if not (isinstance(old, Binary) and isinstance(new, Binary) and old.op == new.op):
        return ""
    if old.op not in ("<", "<=", ">", ">=") or repr(_unspanned(old.left)) != repr(
        _unspanned(new.left)
    ):
        return ""
    a, b = _value(old_ts, old.right), _value(new_ts, new.right)
    if a is None or b is None:
        return ""
    if (old.op in ("<", "<=") and b > a) or (old.op in (">", ">=") and b < a):
        return f"bound loosened from {old.op} {a:.4g} to {new.op} {b:.4g}"
    return ""


def _unspanned(e: Any) -> Any:
    """``e`` without its spans (two versions of a spec put the same term on other lines)."""
    import dataclasses

    if dataclasses.is_dataclass(e) and not isinstance(e, type):
        values = {
            f.name: _unspanned(getattr(e, f.name))
            for f in dataclasses.fields(e)
            if f.name != "span"
        }
        return (type(e).__name__, tuple(sorted(values.items())))
    if isinstance(e, tuple):
        return tuple(_unspanned(v) for v in e)
    return e


def relaxations(
    old: Sequence[TransitionSystem], new: Sequence[TransitionSystem]
) -> list[Relaxation]:
    """What the new version asks less of than the old, system by system (paired by name):
    objectives and requirements removed or weakened. A system removed altogether relaxes
    every requirement it had."""
    out = []
    after = {ts.name: ts for ts in new}
    for ts in old:
        n = after.get(ts.name)
        if n is None:
            if ts.requirements:
                out.append(
                    Relaxation(ts.name, f"system `{ts.name}`", "removed, with its requirements")
                )
            continue
        out += _requirement_relaxations(ts, n)
        out += _objective_relaxations(ts, n)
    return out
