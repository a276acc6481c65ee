"""The abstract syntax tree of a spec: frozen dataclasses that keep their source spans.

Spans are excluded from equality, so two trees that say the same thing compare equal wherever
they were written (``parse(format(ast)) == ast``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coherence.source import Span

_NOSPAN = Span.unknown()


def _span() -> Span:
    return field(default=_NOSPAN, compare=False, repr=False)


# ---- expressions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Num:
    """A number with an optional unit as written (``100 req/s``, ``5%``, ``3 ticks``)."""

    value: float
    unit: str | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class TickRef:
    """``tick`` in an expression: the duration of one tick."""

    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Neg:
    arg: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # + - * /
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Pow:
    base: Expr
    exponent: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # < <= > >= == !=
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # and or
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Not:
    arg: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call:
    fn: str
    args: tuple[Expr, ...]
    span: Span = _span()
    fn_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Ite:
    cond: Expr
    then: Expr
    other: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ProfileCall:
    """A plant function measured by a calibration profile: ``h100.step_time(batch)``."""

    profile: str
    fn: str
    args: tuple[Expr, ...]
    span: Span = _span()


Expr = Num | Name | TickRef | Neg | BinOp | Pow | Compare | BoolOp | Not | Call | Ite | ProfileCall


# ---- declarations --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Range:
    lo: Num
    hi: Num
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class TickDecl:
    duration: Num
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class UnitDecl:
    name: str
    definition: Num | None
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Slew:
    """``slew AMOUNT per DURATION``: an input moves by at most AMOUNT in DURATION."""

    amount: Num
    per: Num
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class InputDecl:
    name: str
    unit: str | None
    range: Range
    nominal: Num
    span: Span = _span()
    name_span: Span = _span()
    slew: Slew | None = None


@dataclass(frozen=True, slots=True)
class Bind:
    """``from PROFILE.KEY`` or ``from PROFILE.FUNCTION(ARGS)``: where a parameter is measured."""

    profile: str
    key: str
    args: tuple[Num, ...] | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ProfileDecl:
    """``profile NAME = "path.json"``: a calibration profile, path relative to the spec."""

    name: str
    path: str
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class ParamDecl:
    name: str
    unit: str | None
    value: Expr
    range: Range | None
    bind: Bind | None = None
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class StateDecl:
    name: str
    unit: str | None
    integer: bool
    range: Range
    init: Num
    span: Span = _span()
    name_span: Span = _span()
    combine: str | None = None  # sum | last | max | min, as written (None: the default, sum)


@dataclass(frozen=True, slots=True)
class LetDecl:
    name: str
    unit: str | None
    value: Expr
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class NextDecl:
    name: str
    value: Expr
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class DerEq:
    """``der(x) = expr``: the time derivative of state ``x``, linear in the block's states."""

    state: str
    expr: Expr
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class ContinuousDecl:
    """``continuous { der(x) = ... }``: linear continuous-time state equations, discretised
    exactly at the tick with a zero-order hold on everything that is not a state of a block."""

    equations: tuple[DerEq, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Objective:
    """``objective minimize|maximize [name =] expr`` or ``objective keep [name =] a CMP b``,
    each with an optional ``tolerance Q`` and ``floor Q`` (the smallest material change)."""

    kind: str  # minimize | maximize | keep
    name: str | None
    expr: Expr
    cmp: str | None = None
    bound: Expr | None = None
    tolerance: Num | None = None
    span: Span = _span()
    floor: Num | None = None


@dataclass(frozen=True, slots=True)
class Sense:
    expr: Expr
    alias: str | None
    delay: Num | None
    window: Num | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Actuate:
    state: str
    mode: str  # to | by
    law: Expr
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class RateLimit:
    up: Num | None
    down: Num | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Stabilize:
    direction: str  # up | down | both
    window: Num
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LoopClause:
    """A one-value clause of a loop: every, phase, deadband, tolerance, cooldown."""

    kind: str
    value: Num
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Guard:
    cond: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class LimitClause:
    range: Range
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Timing:
    """``timing immediate|delayed``: whether the plant update of the tick on which the loop acts
    reads the new actuator value (immediate, the sampled-data textbook convention) or the value
    it held (delayed, the default: the action reaches the plant one tick later)."""

    mode: str
    span: Span = _span()


LoopItem = (
    Sense | Actuate | RateLimit | Stabilize | LoopClause | Guard | LimitClause | Timing | Objective
)


@dataclass(frozen=True, slots=True)
class LoopDecl:
    name: str
    doc: str | None
    items: tuple[LoopItem, ...]
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Require:
    """A requirement. ``kind`` is stable, coherent, always, response, flapping, no_bad_equilibrium."""

    kind: str
    cond: Expr | None = None
    trigger: Expr | None = None
    within: Num | None = None
    horizon: Num | None = None
    state: str | None = None
    max_reversals: float | None = None
    inputs: str | None = None  # held | free
    span: Span = _span()


SysItem = (
    TickDecl
    | UnitDecl
    | ProfileDecl
    | InputDecl
    | ParamDecl
    | StateDecl
    | LetDecl
    | NextDecl
    | ContinuousDecl
    | LoopDecl
    | Objective
    | Require
)


@dataclass(frozen=True, slots=True)
class System:
    name: str
    doc: str | None
    items: tuple[SysItem, ...]
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Module:
    """A parsed file: one or more systems."""

    path: str
    systems: tuple[System, ...]
