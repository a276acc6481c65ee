"""The checks of a loop: its sensors, actions, timing and shaping clauses.

:func:`check_loop` checks one `loop` block (COH202, COH209, COH213, COH215, COH216, COH219)
and returns a :class:`CheckedLoop`, its values in canonical units and its expressions in IR;
:func:`loop_names` reports loops declared twice and :func:`state_updates` states with both a
`next` and an actuator, or neither (COH204, COH206, COH210).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from coherence.frontend import ast
from coherence.frontend.limits import MAX_REGISTER_TICKS
from coherence.frontend.requirements import objective
from coherence.frontend.scope import Checker, Symbol
from coherence.frontend.types import AnyDim, Boolean, article, tname
from coherence.frontend.units import DIMENSIONLESS, Dim, Unit
from coherence.ir import nodes as ir
from coherence.source import Span


@dataclass(slots=True)
class CheckedLoop:
    decl: ast.LoopDecl
    period: int = 1
    phase: int = 0
    sensors: list[tuple[str, ir.Expr, int, int, Span, Dim]] = field(default_factory=list)
    actions: list[tuple[str, str, ir.Expr, Span]] = field(default_factory=list)
    limit: tuple[float, float] | None = None
    rate_up: tuple[float, bool] | None = None  # (amount, relative)
    rate_down: tuple[float, bool] | None = None
    deadband: float | None = None
    tolerance: float | None = None
    cooldown: int = 0
    stabilize_up: int = 0
    stabilize_down: int = 0
    guard: ir.Expr | None = None
    objectives: list[ir.ObjectiveIR] = field(default_factory=list)
    timing: str = "delayed"  # immediate: the plant update of the tick reads the new value
    timing_span: Span | None = None


def check_loop(ck: Checker, lp: ast.LoopDecl) -> CheckedLoop:
    c = CheckedLoop(lp)
    seen: dict[str, Span] = {}
    for item in lp.items:
        key = type(item).__name__ + (item.kind if isinstance(item, ast.LoopClause) else "")
        if key in seen and not isinstance(
            item, (ast.Sense, ast.Actuate, ast.Objective, ast.Stabilize)
        ):
            ck.error(
                "COH219",
                f"loop `{lp.name}` repeats a clause",
                item.span,
                notes=(f"first at {seen[key]}",),
            )
        seen.setdefault(key, item.span)
    # senses first: they define the loop's view of the world
    ck.scope_sensed = {}
    phase_span = lp.name_span
    for item in lp.items:
        if isinstance(item, ast.Sense):
            _sense(ck, c, item)
    for item in lp.items:
        match item:
            case ast.LoopClause("every", value):
                c.period = ck.duration_ticks(value, "period", allow_zero=False) or 1
            case ast.LoopClause("phase", value):
                c.phase = ck.duration_ticks(value, "phase")
                phase_span = value.span
            case ast.LoopClause("cooldown", value):
                c.cooldown = ck.duration_ticks(value, "cooldown")
            case ast.LoopClause("deadband", value):
                pass  # needs the actuator's unit: handled after actions
            case ast.LoopClause("tolerance", value):
                c.tolerance = ck.quantity(value, want=DIMENSIONLESS, what="tolerance")
                if c.tolerance < 0:
                    ck.error("COH213", "a tolerance must be non-negative", value.span)
            case ast.Actuate():
                _actuate(ck, c, item)
            case ast.Timing(mode, tspan):
                c.timing, c.timing_span = mode, tspan
            case ast.Guard(cond):
                e, t = ck.expr(cond)
                if not isinstance(t, Boolean):
                    ck.error(
                        "COH216",
                        "`when` needs a condition",
                        cond.span,
                        label=f"this is {tname(t)}",
                        help="compare it: `when x > 0.5`",
                    )
                c.guard = e
            case ast.Stabilize(direction, window):
                n = ck.duration_ticks(window, "stabilization window", limit=MAX_REGISTER_TICKS)
                if direction in ("down", "both"):
                    c.stabilize_down = n
                if direction in ("up", "both"):
                    c.stabilize_up = n
    if c.phase >= c.period and c.period > 0:
        ck.error(
            "COH213",
            f"the phase of loop `{lp.name}` must be less than its period",
            phase_span,
            help=f"the loop acts every {c.period} ticks; use a phase below that",
        )
    if not any(isinstance(i, ast.Actuate) for i in lp.items) and not ck.recovered:
        ck.error(
            "COH215",
            f"loop `{lp.name}` actuates nothing",
            lp.name_span,
            help="add `actuates STATE to EXPR` or `actuates STATE by EXPR`",
        )
    act_unit = _actuator_unit(ck, c)
    shaping = [
        i
        for i in lp.items
        if isinstance(i, (ast.LimitClause, ast.RateLimit))
        or (isinstance(i, ast.LoopClause) and i.kind == "deadband")
    ]
    dims = {ck.symbols[a[0]].dim for a in c.actions if a[0] in ck.symbols}
    if shaping and len(dims) > 1:
        ck.error(
            "COH219",
            f"loop `{lp.name}` shapes actuators of different dimensions with one clause",
            shaping[0].span,
            notes=("`limit`, `rate` and `deadband` apply to every action of the loop",),
            help="split the loop into one loop per actuator",
        )
        act_unit = None
    for item in lp.items:
        if isinstance(item, ast.LoopClause) and item.kind == "deadband" and act_unit:
            c.deadband = ck.quantity(item.value, act_unit, act_unit.dim, "deadband")
        elif isinstance(item, ast.LimitClause) and act_unit:
            c.limit = ck.bounds(item.range, act_unit, f"the limit of loop `{lp.name}`")
        elif isinstance(item, ast.RateLimit) and act_unit:
            c.rate_up = _rate(ck, item.up, act_unit)
            c.rate_down = _rate(ck, item.down, act_unit)
    if (c.stabilize_up or c.stabilize_down) and c.period:
        for n, label in ((c.stabilize_up, "up"), (c.stabilize_down, "down")):
            if n % c.period:
                ck.error(
                    "COH209",
                    f"the {label} stabilization window is not a whole number of periods",
                    lp.name_span,
                    help=f"the loop acts every {c.period} ticks",
                )
    ck.scope_sensed = {}
    for i, o in enumerate(item for item in lp.items if isinstance(item, ast.Objective)):
        obj = objective(ck, o, lp.name, i)
        if obj:
            c.objectives.append(obj)
    return c


def _actuator_unit(ck: Checker, c: CheckedLoop) -> Unit | None:
    if not c.actions:
        return None
    sym = ck.symbols.get(c.actions[0][0])
    if sym is None:
        return None
    return Unit(sym.scale, sym.dim)


def _rate(ck: Checker, num: ast.Num | None, unit: Unit) -> tuple[float, bool] | None:
    if num is None:
        return None
    if num.unit == "%":
        return (num.value / 100.0, True)
    value = ck.quantity(num, unit, unit.dim, "rate limit")
    if value < 0:
        ck.error("COH213", "a rate limit must be non-negative", num.span)
    return (value, False)


def _sense(ck: Checker, c: CheckedLoop, s: ast.Sense) -> None:
    # a loop senses the world: its other sensed values are not in scope here
    own, ck.scope_sensed = ck.scope_sensed, {}
    e, t = ck.expr(s.expr)
    ck.scope_sensed = own
    if isinstance(t, Boolean):
        ck.error("COH216", "a loop senses a number, not a condition", s.expr.span)
        return
    if isinstance(t, AnyDim):
        t = DIMENSIONLESS
    alias = s.alias
    if alias is None:
        if isinstance(s.expr, ast.Name):
            alias = s.expr.name
        else:
            ck.error(
                "COH215",
                "a sensed expression needs a name",
                s.expr.span,
                help="write `senses EXPR as NAME` and use NAME in the control law",
            )
            return
    delay = ck.duration_ticks(s.delay, "delay", limit=MAX_REGISTER_TICKS) if s.delay else 0
    window = (
        ck.duration_ticks(s.window, "window", allow_zero=False, limit=MAX_REGISTER_TICKS)
        if s.window
        else 1
    )
    if delay + window - 1 > MAX_REGISTER_TICKS:
        ck.error(
            "COH223",
            f"the delay and window of `{alias}` are beyond the limit of "
            f"{MAX_REGISTER_TICKS:,} ticks together",
            s.span,
            label=f"{delay + window - 1} ticks of history",
            notes=("each tick of a delay or window is one extra state",),
            help="use a shorter delay or window, or a longer tick",
        )
    ck.reserved(alias, s.span)
    if alias in ck.scope_sensed:
        ck.error("COH202", f"loop `{c.decl.name}` senses `{alias}` twice", s.span)
        return
    src = ck.symbols.get(alias)
    unit, scale = (src.unit, src.scale) if src and src.dim == t else (str(t), 1.0)
    ck.scope_sensed[alias] = Symbol(alias, "sensed", t, unit, scale, s.span, c.decl.name)
    c.sensors.append((alias, e, delay, max(window, 1), s.span, t))


def _actuate(ck: Checker, c: CheckedLoop, a: ast.Actuate) -> None:
    e, t = ck.expr(a.law)
    sym = ck.symbols.get(a.state)
    if sym is None:
        if a.state not in ck.broken:
            ck.undefined(a.state, a.name_span, "a state")
        return
    if sym.kind != "state":
        ck.error(
            "COH215",
            f"a loop actuates states; `{a.state}` is {article(sym.kind)}",
            a.name_span,
            help="declare what the loop sets with `state`",
        )
        return
    if any(x[0] == a.state for x in c.actions):
        ck.error("COH202", f"loop `{c.decl.name}` actuates `{a.state}` twice", a.span)
        return
    what = "the new value" if a.mode == "to" else "the increment"
    ck.expect(a.law.span, sym.dim, t, f"{what} of `{a.state}`")
    c.actions.append((a.state, a.mode, e, a.span))


def loop_names(ck: Checker, loops: list[ast.LoopDecl]) -> None:
    seen: dict[str, Span] = {}
    for lp in loops:
        ck.reserved(lp.name, lp.name_span)
        if lp.name in seen:
            ck.error(
                "COH202",
                f"loop `{lp.name}` is declared twice",
                lp.name_span,
                notes=(f"first declared at {seen[lp.name]}",),
            )
        seen[lp.name] = lp.name_span


def state_updates(
    ck: Checker,
    states: list[tuple[ast.StateDecl, float, float, float]],
    nexts: dict[str, ir.Expr],
    loops: list[CheckedLoop],
    continuous: Collection[str] = (),
) -> None:
    """Every state has one kind of update: `next`, `der`, or its loops (combined by the
    state's `combine` rule, whose loops must agree on their `timing`)."""
    actuated: dict[str, list[tuple[str, Span]]] = {}
    timings: dict[str, set[str]] = {}
    for lp in loops:
        for st, _mode, _law, span in lp.actions:
            actuated.setdefault(st, []).append((lp.decl.name, span))
            timings.setdefault(st, set()).add(lp.timing)
    for d, *_ in states:
        if d.name in continuous and d.name in actuated:
            ck.error(
                "COH210",
                f"state `{d.name}` has a `der` equation and is actuated by "
                f"loop `{actuated[d.name][0][0]}`",
                actuated[d.name][0][1],
                help="a state is either plant (next or der) or actuated by loops",
            )
            continue
        if d.combine is not None and d.name not in actuated:
            ck.error(
                "COH219",
                f"`combine {d.combine}` on state `{d.name}`, which no loop actuates",
                d.span,
                help="`combine` says how the loops that actuate a state share it",
            )
        if len(timings.get(d.name, ())) > 1:
            ck.error(
                "COH219",
                f"the loops that actuate `{d.name}` disagree on their `timing`",
                actuated[d.name][1][1],
                help="give every loop that actuates it the same `timing` clause",
            )
        if d.name in continuous:
            continue
        if d.name in nexts and d.name in actuated:
            ck.error(
                "COH210",
                f"state `{d.name}` has a `next` update and is actuated by "
                f"loop `{actuated[d.name][0][0]}`",
                actuated[d.name][0][1],
                help="a state is either plant (next) or actuated by loops",
            )
        elif d.name not in nexts and d.name not in actuated and not ck.recovered:
            ck.error(
                "COH204",
                f"state `{d.name}` has no update and no actuator",
                d.name_span,
                help=f"add `next {d.name} = ...`, actuate it from a loop, or make it a `param`",
            )
        users = actuated.get(d.name, [])
        if len(users) > 1:
            names = ", ".join(f"`{u}`" for u, _ in users)
            ck.error(
                "COH206",
                f"state `{d.name}` is actuated by {len(users)} loops: {names}",
                users[1][1],
                label="second actuator",
                notes=(_COMBINE_NOTE[d.combine or "sum"],),
                help="make sure the loops do not fight; the coupling analysis checks them",
            )


_COMBINE_NOTE = {
    "sum": "on a tick where several loops act, their changes add up (`combine sum`, the "
    "default; `combine last`, `max` or `min` on the state choose another rule)",
    "last": "on a tick where several loops act, the one declared last wins (`combine last`)",
    "max": "on a tick where several loops act, the largest value they set wins (`combine max`)",
    "min": "on a tick where several loops act, the smallest value they set wins (`combine min`)",
}
