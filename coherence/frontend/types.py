"""The types of front-end expressions, and how a diagnostic names them.

An expression is a quantity of some dimension (:class:`~coherence.frontend.units.Dim`), a
condition (:data:`BOOL`), or a bare literal ``0`` that adapts to any dimension (:data:`ANY`).
"""

from __future__ import annotations

from coherence.frontend import ast
from coherence.frontend.units import TIME, Dim


class AnyDim:
    """The type of a bare literal 0: adapts to any dimension."""

    def __repr__(self) -> str:
        return "any"


class Boolean:
    """The type of a condition."""

    def __repr__(self) -> str:
        return "bool"


ANY = AnyDim()
BOOL = Boolean()
Type = Dim | AnyDim | Boolean


def tname(t: Type) -> str:
    if isinstance(t, Boolean):
        return "a boolean"
    if isinstance(t, AnyDim):
        return "a number"
    return "a dimensionless number" if t.dimensionless else f"a quantity in {t}"


def dim_hint(a: Type, b: Type) -> str:
    if isinstance(a, Dim) and isinstance(b, Dim):
        ratio = a / b
        if ratio == TIME:
            return f"multiply the {b} side by a duration (for example `tick`), or divide the other by one"
        if ratio == TIME**-1:
            return f"divide the {b} side by a duration, or multiply the other by one"
        return f"both sides need the same dimension; they differ by a factor of ({ratio})"
    return "both sides must have the same dimension"


def article(kind: str) -> str:
    return {
        "input": "an input",
        "param": "a parameter",
        "state": "a state",
        "let": "a `let`",
        "bool": "a condition",
        "loop": "a loop",
        "sensed": "a sensed value",
    }.get(kind, kind)


def show_num(n: ast.Num) -> str:
    return f"{n.value:g}" + (f" {n.unit}" if n.unit else "")
