"""The checks of objectives and requirements.

:func:`objective` checks one objective, a loop's or the system's (its tolerance and floor in
the objective's own units: COH207, COH213, COH216) and returns its IR;
:func:`objective_names` reports names used twice; :func:`require` checks one `require`
statement (COH201, COH213, COH215, COH216) and returns the IR requirement.
"""

from __future__ import annotations

import math

from coherence.frontend import ast
from coherence.frontend.scope import Checker
from coherence.frontend.types import AnyDim, Boolean, article, tname
from coherence.frontend.units import DIMENSIONLESS, Dim
from coherence.ir import nodes as ir
from coherence.source import Span


def objective(
    ck: Checker, o: ast.Objective, owner: str | None, index: int
) -> ir.ObjectiveIR | None:
    e, t = ck.expr(o.expr)
    if isinstance(t, Boolean):
        ck.error(
            "COH216",
            "an objective is a number, not a condition",
            o.expr.span,
            help="to require a condition, write `objective keep A <= B`",
        )
        return None
    if isinstance(t, AnyDim):
        t = DIMENSIONLESS
    bound: ir.Expr | None = None
    if o.kind == "keep":
        assert o.bound is not None and o.cmp is not None
        if o.cmp in ("==", "!="):
            ck.error("COH215", "`keep` needs an ordering comparison (<, <=, >, >=)", o.span)
        bound, bt = ck.expr(o.bound)
        ck.expect(o.bound.span, t, bt, "the bound of the objective")
    ck.reserved(o.name, o.span)
    base = o.name or (o.expr.name if isinstance(o.expr, ast.Name) else f"objective{index + 1}")
    name = f"{owner}.{base}" if owner else base
    tol, relative = 0.0, False
    if o.tolerance is not None:
        if o.tolerance.unit == "%" or (o.tolerance.unit is None and o.kind != "keep"):
            tol = ck.quantity(o.tolerance, want=DIMENSIONLESS, what="tolerance")
            relative = True
        else:
            tol = ck.quantity(o.tolerance, want=t, what="tolerance")
        if tol < 0:
            ck.error("COH213", "a tolerance must be non-negative", o.tolerance.span)
    unit, scale = _display(ck, o.expr, t)
    floor = None if o.floor is None else _floor(ck, o.floor, t, name, unit)
    return ir.ObjectiveIR(
        name, owner, o.kind, e, o.cmp, bound, tol, relative, unit, scale, o.span, floor
    )


def _floor(ck: Checker, num: ast.Num, t: Dim, name: str, unit: str) -> float | None:
    """The canonical value of ``floor Q``: absolute, in the objective's own dimension.

    Unlike a tolerance a floor is never relative: ``%`` fits only a dimensionless
    objective, and a bare number needs a unit unless the objective is dimensionless
    (a bare ``0`` adapts).
    """
    reported = len(ck.diags)
    u = ck.unit(num.unit, num.span)
    if len(ck.diags) > reported:  # an unknown unit, already reported
        return None
    if u.dim != t and not (num.unit is None and num.value == 0):
        example = f"floor {num.value:g}" + ("" if t.dimensionless else f" {unit}")
        why = "never relative (that is `tolerance`)" if num.unit == "%" else "absolute"
        ck.error(
            "COH207",
            f"the floor of objective `{name}` must be {tname(t)}, not {tname(u.dim)}",
            num.span,
            label="no unit" if num.unit is None else f"this is {tname(u.dim)}",
            help=f"a floor is {why}, in the objective's own units: write `{example}`",
        )
        return None
    value = num.value * u.scale
    if not math.isfinite(num.value):
        return None  # a literal beyond the largest double: reported by the parser
    if not math.isfinite(value) or value < 0:
        ck.error(
            "COH213",
            f"the floor of objective `{name}` must be finite and non-negative",
            num.span,
            help="the floor is the smallest change of the objective that matters",
        )
        return None
    return value


def _display(ck: Checker, e: ast.Expr, t: Dim) -> tuple[str, float]:
    if isinstance(e, ast.Name) and e.name in ck.symbols:
        s = ck.symbols[e.name]
        return s.unit, s.scale
    return str(t), 1.0


def objective_names(ck: Checker, objectives: list[ir.ObjectiveIR]) -> None:
    seen: dict[str, Span] = {}
    for o in objectives:
        if o.name in seen:
            ck.error(
                "COH202",
                f"objective `{o.name}` is declared twice",
                o.span,
                help="name it: `objective minimize NAME = EXPR`",
            )
        seen[o.name] = o.span


def require(ck: Checker, r: ast.Require) -> ir.Requirement | None:
    text = _req_text(r)
    if r.kind in ("stable", "coherent", "no_bad_equilibrium"):
        return ir.Requirement(r.kind, text=text, span=r.span)
    if r.kind == "always":
        assert r.cond is not None and r.horizon is not None
        cond, t = ck.expr(r.cond)
        ck.want_bool(r.cond, t)
        horizon = ck.duration_ticks(r.horizon, "horizon", allow_zero=False)
        return ir.Requirement(
            "always",
            cond=cond,
            horizon=horizon,
            inputs=r.inputs or "free",
            text=text,
            span=r.span,
        )
    if r.kind == "response":
        assert r.cond is not None and r.trigger is not None and r.within is not None
        trig, tt = ck.expr(r.trigger)
        ck.want_bool(r.trigger, tt)
        cond, t = ck.expr(r.cond)
        ck.want_bool(r.cond, t)
        within = ck.duration_ticks(r.within, "response time")
        horizon = (
            ck.duration_ticks(r.horizon, "horizon", False)
            if r.horizon
            else max(2 * within, within + 10)
        )
        return ir.Requirement(
            "response",
            cond=cond,
            trigger=trig,
            within=within,
            horizon=horizon,
            inputs=r.inputs or "free",
            text=text,
            span=r.span,
        )
    if r.kind == "flapping":
        assert r.state is not None and r.within is not None
        sym = ck.symbols.get(r.state)
        if sym is None:
            ck.undefined(r.state, r.span, "a state")
            return None
        if sym.kind != "state":
            ck.error(
                "COH215",
                f"`no flapping of` names a state; `{r.state}` is {article(sym.kind)}",
                r.span,
            )
            return None
        if r.max_reversals is not None and r.max_reversals != int(r.max_reversals):
            ck.error(
                "COH213",
                f"`max {r.max_reversals:g}`: a number of reversals is whole",
                r.span,
                help="write a whole number, for example `max 2`",
            )
        window = ck.duration_ticks(r.within, "flapping window", allow_zero=False)
        horizon = ck.duration_ticks(r.horizon, "horizon", False) if r.horizon else 2 * window
        return ir.Requirement(
            "flapping",
            state=r.state,
            within=window,
            horizon=max(horizon, window),
            max_reversals=2 if r.max_reversals is None else int(r.max_reversals),
            text=text,
            span=r.span,
        )
    return None


def _req_text(r: ast.Require) -> str:
    from coherence.frontend.format import format_require

    return format_require(r)
