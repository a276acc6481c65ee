"""Semantic checks: names, kinds, dimensions, ranges, ticks; typed conversion to IR expressions.

:func:`check_system` walks one AST system, reports every semantic error it finds (undefined
and duplicate names, cyclic lets, dimension mismatches, bad ranges, durations that are not
whole ticks ...) and, when there are none, returns a :class:`Checked` system: declarations
with their values in canonical units and their expressions converted to IR. Lowering
(:mod:`coherence.ir.lower`) turns that into the flat transition system.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from coherence.diagnostics import Diagnostic, Severity
from coherence.frontend import ast
from coherence.frontend.units import DIMENSIONLESS, TIME, Dim, Unit, UnitError, UnitTable
from coherence.ir import nodes as ir
from coherence.ir.evaluate import EvalError, eval_scalar
from coherence.source import Span


class _Any:
    """The type of a bare literal 0: adapts to any dimension."""

    def __repr__(self) -> str:
        return "any"


class _Bool:
    def __repr__(self) -> str:
        return "bool"


ANY = _Any()
BOOL = _Bool()
Type = Dim | _Any | _Bool

FUNCTION_ARITY: dict[str, tuple[int, int]] = {
    "min": (2, 64),
    "max": (2, 64),
    "abs": (1, 1),
    "ceil": (1, 1),
    "floor": (1, 1),
    "round": (1, 1),
    "sqrt": (1, 1),
    "exp": (1, 1),
    "log": (1, 1),
    "clamp": (3, 3),
    "pow": (2, 2),
}


def _tname(t: Type) -> str:
    if isinstance(t, _Bool):
        return "a boolean"
    if isinstance(t, _Any):
        return "a number"
    return "a dimensionless number" if t.dimensionless else f"a quantity in {t}"


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    kind: str  # input | param | state | let | sensed
    dim: Dim
    unit: str
    scale: float
    span: Span
    owner: str | None = None


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


@dataclass(slots=True)
class Checked:
    """A system that passed the semantic checks, ready to lower."""

    system: ast.System
    tick: float
    symbols: dict[str, Symbol]
    inputs: list[ir.InputVar]
    params: list[ir.ParamVar]
    states: list[tuple[ast.StateDecl, float, float, float]]  # decl, lo, hi, init (canonical)
    lets: list[ir.Let]  # in evaluation order
    nexts: dict[str, ir.Expr]
    loops: list[CheckedLoop]
    objectives: list[ir.ObjectiveIR]
    requirements: list[ir.Requirement]
    bindings: list[ir.Binding] = field(default_factory=list)


class _Checker:
    def __init__(
        self,
        system: ast.System,
        broken: frozenset[str],
        profile_paths: Mapping[str, str] | None = None,
    ) -> None:
        self.profile_paths = dict(profile_paths or {})
        self.system = system
        self.path = system.span.path
        self.diags: list[Diagnostic] = []
        self.units = UnitTable.new()
        self.symbols: dict[str, Symbol] = {}
        self.broken = broken
        self.tick = 1.0
        self.param_values: dict[str, float] = {}
        self.scope_sensed: dict[str, Symbol] = {}
        self.reads: set[str] = set()
        self.profiles: dict[str, object | None] = {}
        self.profile_errors: dict[str, str] = {}
        self.bindings: list[ir.Binding] = []
        # after syntax recovery some statements are gone: skip checks for what is missing
        self.recovered = bool(broken) or "<syntax>" in broken

    # ---- reporting
    def error(
        self,
        code: str,
        message: str,
        span: Span,
        label: str = "",
        help: str = "",
        notes: tuple[str, ...] = (),
        severity: Severity | None = None,
    ) -> None:
        self.diags.append(Diagnostic(code, message, span, severity, label, notes, help))

    # ---- units and quantities
    def unit(self, text: str | None, span: Span) -> Unit:
        if text is None:
            return Unit(1.0, DIMENSIONLESS)
        try:
            u = self.units.parse(text)
        except UnitError as e:
            self.error("COH208", e.message, span, label="unknown unit", help=e.hint)
            return Unit(1.0, DIMENSIONLESS)
        if u.ticks:
            return Unit(self.tick, TIME)
        return u

    def quantity(
        self,
        num: ast.Num,
        default: Unit | None = None,
        want: Dim | None = None,
        what: str = "value",
    ) -> float:
        """Canonical value of a literal; a bare number takes ``default``'s unit."""
        if num.unit is None:
            u = default or Unit(1.0, DIMENSIONLESS)
        else:
            u = self.unit(num.unit, num.span)
        if want is not None and u.dim != want and not (num.unit is None and num.value == 0):
            self.error(
                "COH207",
                f"the {what} must be {_tname(want)}, not {_tname(u.dim)}",
                num.span,
                label=f"this is {_tname(u.dim)}",
                help=f"write it with a unit of dimension {want}"
                if not want.dimensionless
                else "write a plain number or a percentage",
            )
        return num.value * u.scale

    def duration_ticks(self, num: ast.Num, what: str, allow_zero: bool = True) -> int:
        seconds = self.quantity(num, default=Unit(self.tick, TIME), want=TIME, what=what)
        ticks = seconds / self.tick
        n = round(ticks)
        if abs(ticks - n) > 1e-9 * max(1.0, abs(ticks)):
            self.error(
                "COH209",
                f"the {what} ({_show_num(num)}) is not a whole number of ticks",
                num.span,
                label=f"{ticks:g} ticks",
                help=f"the tick is {self.tick:g}s; use a multiple of it",
            )
        if n < 0 or (n == 0 and not allow_zero):
            self.error(
                "COH213",
                f"the {what} must be {'non-negative' if allow_zero else 'positive'}",
                num.span,
            )
        return max(n, 0)

    # ---- declarations
    def declare(
        self,
        name: str,
        kind: str,
        dim: Dim,
        unit: str,
        scale: float,
        span: Span,
        owner: str | None = None,
    ) -> None:
        if name in self.symbols:
            prev = self.symbols[name]
            self.error(
                "COH202",
                f"`{name}` is declared twice",
                span,
                label="second declaration",
                notes=(f"first declared as {prev.kind} at {prev.span}",),
                help="rename one of them",
            )
            return
        self.symbols[name] = Symbol(name, kind, dim, unit, scale, span, owner)

    def run(self) -> Checked | None:
        items = self.system.items
        for item in items:
            if isinstance(item, ast.UnitDecl):
                self._unit_decl(item)
            elif isinstance(item, ast.ProfileDecl):
                self._profile_decl(item)
        ticks = [i for i in items if isinstance(i, ast.TickDecl)]
        if not ticks:
            self.error(
                "COH214",
                f"system `{self.system.name}` does not declare its tick",
                self.system.name_span,
                help="add `tick 1s` (or the step you want)",
            )
        else:
            t = ticks[0]
            self.tick = self.quantity(t.duration, want=TIME, what="tick")
            if self.tick <= 0 or not math.isfinite(self.tick):
                self.error("COH213", "the tick must be a positive duration", t.span)
                self.tick = 1.0
            for extra in ticks[1:]:
                self.error("COH219", "the tick is declared twice", extra.span)
        inputs = [self._input(i) for i in items if isinstance(i, ast.InputDecl)]
        params = self._params([i for i in items if isinstance(i, ast.ParamDecl)])
        states = [self._state(i) for i in items if isinstance(i, ast.StateDecl)]
        let_decls = [i for i in items if isinstance(i, ast.LetDecl)]
        loops_ast = [i for i in items if isinstance(i, ast.LoopDecl)]
        for d in let_decls:
            # dimension is known after typing; declare with a placeholder first
            self.declare(d.name, "let", DIMENSIONLESS, "1", 1.0, d.name_span)
        for lp in loops_ast:
            if lp.name in self.symbols:
                self.declare(lp.name, "loop", DIMENSIONLESS, "1", 1.0, lp.name_span)
        lets = self._lets(let_decls)
        nexts = self._nexts([i for i in items if isinstance(i, ast.NextDecl)])
        loops = [self._loop(lp) for lp in loops_ast]
        self._loop_names(loops_ast)
        global_objs = [
            self._objective(o, None, i)
            for i, o in enumerate(i for i in items if isinstance(i, ast.Objective))
        ]
        objectives = [o for lp in loops for o in lp.objectives] + [o for o in global_objs if o]
        self._objective_names(objectives)
        reqs = [r for r in (self._require(i) for i in items if isinstance(i, ast.Require)) if r]
        self._state_updates(states, nexts, loops)
        self._unused(inputs, params, lets)
        if any(d.level == Severity.ERROR for d in self.diags):
            return None
        return Checked(
            self.system,
            self.tick,
            self.symbols,
            inputs,
            params,
            states,
            lets,
            nexts,
            loops,
            objectives,
            reqs,
            self.bindings,
        )

    def _profile_decl(self, d: ast.ProfileDecl) -> None:
        from pathlib import Path

        from coherence.frontend import profiles

        if d.name in self.profiles:
            self.error("COH202", f"profile `{d.name}` is declared twice", d.name_span)
            return
        base = Path(self.path).parent
        path = Path(self.profile_paths[d.name]) if d.name in self.profile_paths else base / d.path
        try:
            self.profiles[d.name] = profiles.LoadedProfile(d.name, str(path), profiles.load(path))
        except Exception as exc:  # ProfileError, OSError: reported, never raised
            # Bound parameters keep their assumed values without the profile, so a missing
            # profile is a note here; a plant function that needs it is an error where used.
            self.profiles[d.name] = None
            self.profile_errors[d.name] = str(exc)
            self.error(
                "COH222",
                f"cannot load calibration profile `{d.path}`: {exc}",
                d.span,
                severity=Severity.NOTE,
                help="bound parameters keep the values the spec assumes; measure a "
                "profile with `coherence calibrate --out PATH` (relative to the spec)",
            )

    def _profile(self, name: str, span: Span) -> object | None:
        if name not in self.profiles:
            known = ", ".join(sorted(self.profiles)) or "none declared"
            self.error(
                "COH201",
                f"unknown profile `{name}`",
                span,
                help=f'declare it: `profile {name} = "PATH.json"` (profiles: {known})',
            )
            return None
        loaded = self.profiles[name]
        return None if loaded is None else loaded.profile  # type: ignore[attr-defined]

    def _bind(self, d: ast.ParamDecl, value: float, dim: Dim, unit_text: str, scale: float) -> None:
        from coherence.frontend import profiles

        b = d.bind
        assert b is not None
        prof = self._profile(b.profile, b.span)
        spec = profiles.PROFILE_FUNCTIONS.get(b.key) or profiles.PROFILE_KEYS.get(b.key)
        if spec is None:
            names = ", ".join(sorted([*profiles.PROFILE_FUNCTIONS, *profiles.PROFILE_KEYS]))
            self.error("COH201", f"a profile has no `{b.key}`", b.span, help=f"use one of: {names}")
            return
        if spec[0] != dim:
            self._mismatch(b.span, dim, spec[0], f"`{b.key}` bound to `{d.name}`")
            return
        if prof is None:
            return
        args = tuple(a.value for a in b.args or ())
        try:
            measured = profiles.key_value(prof, b.key, args)
        except (ValueError, KeyError) as exc:
            self.error("COH213", f"cannot evaluate `{b.profile}.{b.key}`: {exc}", b.span)
            return
        argtext = f"({', '.join(f'{a:g}' for a in args)})" if b.args else ""
        loaded = self.profiles[b.profile]
        path = getattr(loaded, "path", "")
        self.bindings.append(
            ir.Binding(
                d.name,
                b.profile,
                path,
                f"{b.profile}.{b.key}{argtext}",
                value,
                measured,
                unit_text,
                scale,
                d.span,
            )
        )

    def _unit_decl(self, d: ast.UnitDecl) -> None:
        if d.name in self.units.declared:
            self.error("COH202", f"unit `{d.name}` is declared twice", d.name_span)
            return
        if self.units.lookup(d.name) is not None:
            self.error(
                "COH202",
                f"`{d.name}` is a built-in unit",
                d.name_span,
                help="choose another name for the declared unit",
            )
            return
        if d.definition is None:
            self.units.declared[d.name] = Unit(1.0, Dim.base(d.name))
        else:
            u = self.unit(d.definition.unit, d.definition.span)
            self.units.declared[d.name] = Unit(d.definition.value * u.scale, u.dim)

    def _range(self, rng: ast.Range, unit: Unit, what: str) -> tuple[float, float]:
        lo = self.quantity(rng.lo, unit, unit.dim, f"lower bound of {what}")
        hi = self.quantity(rng.hi, unit, unit.dim, f"upper bound of {what}")
        if lo > hi:
            self.error(
                "COH212",
                f"the range of {what} is empty: {_show_num(rng.lo)} > {_show_num(rng.hi)}",
                rng.span,
                help="write the range as `[lo, hi]` with lo <= hi",
            )
        return lo, hi

    def _input(self, d: ast.InputDecl) -> ir.InputVar:
        u = self.unit(d.unit, d.span)
        lo, hi = self._range(d.range, u, f"input `{d.name}`")
        nominal = self.quantity(d.nominal, u, u.dim, "nominal value")
        if lo <= hi and not lo <= nominal <= hi:
            self.error(
                "COH205",
                f"the nominal value of `{d.name}` lies outside its range",
                d.nominal.span,
                label="outside the range",
                help=f"choose a value in [{_show_num(d.range.lo)}, {_show_num(d.range.hi)}]",
            )
        self.declare(d.name, "input", u.dim, d.unit or "1", u.scale, d.name_span)
        slew = math.inf
        if d.slew is not None:
            amount = self.quantity(d.slew.amount, u, u.dim, "slew amount")
            per = self.quantity(d.slew.per, Unit(self.tick, TIME), TIME, "slew duration")
            if amount <= 0 or per <= 0:
                self.error(
                    "COH213",
                    f"the slew of `{d.name}` must be a positive amount per positive duration",
                    d.slew.span,
                    help="write `slew 5 req/s per 1s`: at most 5 req/s of change in a second",
                )
            else:
                slew = amount * self.tick / per
        return ir.InputVar(d.name, lo, hi, nominal, d.unit or "1", u.scale, d.span, slew)

    def _params(self, decls: list[ast.ParamDecl]) -> list[ir.ParamVar]:
        out: list[ir.ParamVar] = []
        for d in decls:
            ann = self.unit(d.unit, d.span) if d.unit else None
            if isinstance(d.value, ast.Num) and d.value.unit is None and ann is not None:
                value_expr: ir.Expr = ir.Const(d.value.value * ann.scale, d.value.span)
                dim: Type = ann.dim
            else:
                value_expr, dim = self.expr(d.value, only_params=True)
            if isinstance(dim, _Bool):
                self.error("COH216", "a parameter must be a number", d.value.span)
                dim = DIMENSIONLESS
            if isinstance(dim, _Any):
                dim = ann.dim if ann else DIMENSIONLESS
            if ann is not None and ann.dim != dim:
                self._mismatch(d.value.span, ann.dim, dim, f"parameter `{d.name}`")
            try:
                value = eval_scalar(value_expr, self.param_values)
            except EvalError as e:
                self.error("COH213", f"cannot compute parameter `{d.name}`: {e}", d.value.span)
                value = 0.0
            if ann is not None:
                unit_text, scale = d.unit or str(dim), ann.scale
            elif isinstance(d.value, ast.Num):
                unit_text = d.value.unit or str(dim)
                scale = _scale_of(d.value, self.units, self.tick)
            else:  # computed: shown (and bare range bounds read) in a declared unit of its dimension
                unit_text, scale = self._display_unit(dim)
            lo = hi = value
            if d.range is not None:
                lo, hi = self._range(d.range, Unit(scale, dim), f"parameter `{d.name}`")
                if lo <= hi and not lo <= value <= hi:
                    self.error(
                        "COH205", f"the value of `{d.name}` lies outside its range", d.value.span
                    )
            self.declare(d.name, "param", dim, unit_text, scale, d.name_span)
            self.param_values[d.name] = value
            if d.bind is not None:
                self._bind(d, value, dim, unit_text, scale)
            out.append(ir.ParamVar(d.name, value, lo, hi, unit_text, scale, False, d.span))
        return out

    def _state(self, d: ast.StateDecl) -> tuple[ast.StateDecl, float, float, float]:
        u = self.unit(d.unit, d.span)
        lo, hi = self._range(d.range, u, f"state `{d.name}`")
        init = self.quantity(d.init, u, u.dim, "initial value")
        if lo <= hi and not lo <= init <= hi:
            self.error(
                "COH205",
                f"the initial value of `{d.name}` lies outside its range",
                d.init.span,
                label="outside the range",
                help=f"choose a value in [{_show_num(d.range.lo)}, {_show_num(d.range.hi)}]",
            )
        if d.integer:
            if any(abs(v - round(v)) > 1e-9 for v in (lo, hi) if math.isfinite(v)):
                self.error(
                    "COH217",
                    f"the bounds of integer state `{d.name}` are rounded inwards",
                    d.range.span,
                    help="write whole-number bounds",
                )
            if any(abs(v - round(v)) > 1e-9 for v in (init,)):
                self.error(
                    "COH217",
                    f"integer state `{d.name}` has a fractional initial value",
                    d.init.span,
                    severity=Severity.ERROR,
                )
            lo, hi = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
        self.declare(d.name, "state", u.dim, d.unit or "1", u.scale, d.name_span)
        return d, float(lo), float(hi), init

    def _lets(self, decls: list[ast.LetDecl]) -> list[ir.Let]:
        names = {d.name for d in decls}
        deps: dict[str, set[str]] = {
            d.name: {n for n in _names(d.value) if n in names} for d in decls
        }
        order: list[str] = []
        state: dict[str, int] = {}
        by_name = {d.name: d for d in decls}

        def visit(n: str, stack: list[str]) -> None:
            if state.get(n) in (2, 3):
                return
            if state.get(n) == 1:
                cyc = [*stack[stack.index(n) :], n]
                d = by_name[n]
                self.error(
                    "COH203",
                    "`let` definitions form a cycle: " + " -> ".join(cyc),
                    d.name_span,
                    help="make one of them a state with a `next` update",
                )
                return
            state[n] = 1
            for m in sorted(deps[n]):
                visit(m, [*stack, n])
            if any(state.get(m) in (1, 3) for m in deps[n]):
                state[n] = 3  # on or behind a cycle: not typed
                return
            state[n] = 2
            order.append(n)

        for d in decls:
            visit(d.name, [])
        cyclic = {n for n in names if n not in order}
        for n in cyclic:
            self.symbols.pop(n, None)
        self.broken = self.broken | frozenset(cyclic)
        out: list[ir.Let] = []
        for n in order:
            d = by_name[n]
            e, t = self.expr(d.value)
            if isinstance(t, _Any):
                t = DIMENSIONLESS
            if d.unit is not None:
                ann = self.unit(d.unit, d.span)
                if not isinstance(t, _Bool) and ann.dim != t:
                    self._mismatch(d.value.span, ann.dim, t, f"`{d.name}`")
                unit_text, scale = d.unit, ann.scale
            else:
                unit_text, scale = self._display_unit(t)
            dim = DIMENSIONLESS if isinstance(t, _Bool) else t
            kind = "bool" if isinstance(t, _Bool) else "let"
            self.symbols[n] = Symbol(n, kind, dim, unit_text, scale, d.name_span)
            out.append(ir.Let(n, e, unit_text, scale, None, d.span))
        return out

    def _display_unit(self, t: Type) -> tuple[str, float]:
        """The unit to show a value of type ``t`` in: the first declaration with that dimension."""
        if isinstance(t, _Bool):
            return "bool", 1.0
        if isinstance(t, _Any) or t.dimensionless:
            return "1", 1.0
        for sym in self.symbols.values():
            if sym.kind in ("input", "param", "state") and sym.dim == t and sym.unit != "1":
                return sym.unit, sym.scale
        return str(t), 1.0

    def _nexts(self, decls: list[ast.NextDecl]) -> dict[str, ir.Expr]:
        out: dict[str, ir.Expr] = {}
        for d in decls:
            sym = self.symbols.get(d.name)
            e, t = self.expr(d.value)
            if sym is None:
                if d.name not in self.broken:
                    self._undefined(d.name, d.name_span, "a state")
                continue
            if sym.kind != "state":
                self.error(
                    "COH215",
                    f"`next` updates states; `{d.name}` is {_article(sym.kind)}",
                    d.name_span,
                    help="declare it with `state`",
                )
                continue
            if d.name in out:
                self.error("COH202", f"state `{d.name}` has two `next` updates", d.span)
                continue
            self._expect(d.value.span, sym.dim, t, f"the next value of `{d.name}`")
            out[d.name] = e
        return out

    def _loop(self, lp: ast.LoopDecl) -> CheckedLoop:
        c = CheckedLoop(lp)
        seen: dict[str, Span] = {}
        for item in lp.items:
            key = type(item).__name__ + (item.kind if isinstance(item, ast.LoopClause) else "")
            if key in seen and not isinstance(
                item, (ast.Sense, ast.Actuate, ast.Objective, ast.Stabilize)
            ):
                self.error(
                    "COH219",
                    f"loop `{lp.name}` repeats a clause",
                    item.span,
                    notes=(f"first at {seen[key]}",),
                )
            seen.setdefault(key, item.span)
        # senses first: they define the loop's view of the world
        self.scope_sensed = {}
        phase_span = lp.name_span
        for item in lp.items:
            if isinstance(item, ast.Sense):
                self._sense(c, item)
        for item in lp.items:
            match item:
                case ast.LoopClause("every", value):
                    c.period = self.duration_ticks(value, "period", allow_zero=False) or 1
                case ast.LoopClause("phase", value):
                    c.phase = self.duration_ticks(value, "phase")
                    phase_span = value.span
                case ast.LoopClause("cooldown", value):
                    c.cooldown = self.duration_ticks(value, "cooldown")
                case ast.LoopClause("deadband", value):
                    pass  # needs the actuator's unit: handled after actions
                case ast.LoopClause("tolerance", value):
                    c.tolerance = self.quantity(value, want=DIMENSIONLESS, what="tolerance")
                    if c.tolerance < 0:
                        self.error("COH213", "a tolerance must be non-negative", value.span)
                case ast.Actuate():
                    self._actuate(c, item)
                case ast.Guard(cond):
                    e, t = self.expr(cond)
                    if not isinstance(t, _Bool):
                        self.error(
                            "COH216",
                            "`when` needs a condition",
                            cond.span,
                            label=f"this is {_tname(t)}",
                            help="compare it: `when x > 0.5`",
                        )
                    c.guard = e
                case ast.Stabilize(direction, window):
                    n = self.duration_ticks(window, "stabilization window")
                    if direction in ("down", "both"):
                        c.stabilize_down = n
                    if direction in ("up", "both"):
                        c.stabilize_up = n
        if c.phase >= c.period and c.period > 0:
            self.error(
                "COH213",
                f"the phase of loop `{lp.name}` must be less than its period",
                phase_span,
                help=f"the loop acts every {c.period} ticks; use a phase below that",
            )
        if not any(isinstance(i, ast.Actuate) for i in lp.items) and not self.recovered:
            self.error(
                "COH215",
                f"loop `{lp.name}` actuates nothing",
                lp.name_span,
                help="add `actuates STATE to EXPR` or `actuates STATE by EXPR`",
            )
        act_unit = self._actuator_unit(c)
        shaping = [
            i
            for i in lp.items
            if isinstance(i, (ast.LimitClause, ast.RateLimit))
            or (isinstance(i, ast.LoopClause) and i.kind == "deadband")
        ]
        dims = {self.symbols[a[0]].dim for a in c.actions if a[0] in self.symbols}
        if shaping and len(dims) > 1:
            self.error(
                "COH219",
                f"loop `{lp.name}` shapes actuators of different dimensions with one clause",
                shaping[0].span,
                notes=("`limit`, `rate` and `deadband` apply to every action of the loop",),
                help="split the loop into one loop per actuator",
            )
            act_unit = None
        for item in lp.items:
            if isinstance(item, ast.LoopClause) and item.kind == "deadband" and act_unit:
                c.deadband = self.quantity(item.value, act_unit, act_unit.dim, "deadband")
            elif isinstance(item, ast.LimitClause) and act_unit:
                c.limit = self._range(item.range, act_unit, f"the limit of loop `{lp.name}`")
            elif isinstance(item, ast.RateLimit) and act_unit:
                c.rate_up = self._rate(item.up, act_unit)
                c.rate_down = self._rate(item.down, act_unit)
        if (c.stabilize_up or c.stabilize_down) and c.period:
            for n, label in ((c.stabilize_up, "up"), (c.stabilize_down, "down")):
                if n % c.period:
                    self.error(
                        "COH209",
                        f"the {label} stabilization window is not a whole number of periods",
                        lp.name_span,
                        help=f"the loop acts every {c.period} ticks",
                    )
        self.scope_sensed = {}
        for i, o in enumerate(item for item in lp.items if isinstance(item, ast.Objective)):
            obj = self._objective(o, lp.name, i)
            if obj:
                c.objectives.append(obj)
        return c

    def _actuator_unit(self, c: CheckedLoop) -> Unit | None:
        if not c.actions:
            return None
        sym = self.symbols.get(c.actions[0][0])
        if sym is None:
            return None
        return Unit(sym.scale, sym.dim)

    def _rate(self, num: ast.Num | None, unit: Unit) -> tuple[float, bool] | None:
        if num is None:
            return None
        if num.unit == "%":
            return (num.value / 100.0, True)
        value = self.quantity(num, unit, unit.dim, "rate limit")
        if value < 0:
            self.error("COH213", "a rate limit must be non-negative", num.span)
        return (value, False)

    def _sense(self, c: CheckedLoop, s: ast.Sense) -> None:
        # a loop senses the world: its other sensed values are not in scope here
        own, self.scope_sensed = self.scope_sensed, {}
        e, t = self.expr(s.expr)
        self.scope_sensed = own
        if isinstance(t, _Bool):
            self.error("COH216", "a loop senses a number, not a condition", s.expr.span)
            return
        if isinstance(t, _Any):
            t = DIMENSIONLESS
        alias = s.alias
        if alias is None:
            if isinstance(s.expr, ast.Name):
                alias = s.expr.name
            else:
                self.error(
                    "COH215",
                    "a sensed expression needs a name",
                    s.expr.span,
                    help="write `senses EXPR as NAME` and use NAME in the control law",
                )
                return
        delay = self.duration_ticks(s.delay, "delay") if s.delay else 0
        window = self.duration_ticks(s.window, "window", allow_zero=False) if s.window else 1
        if alias in self.scope_sensed:
            self.error("COH202", f"loop `{c.decl.name}` senses `{alias}` twice", s.span)
            return
        src = self.symbols.get(alias)
        unit, scale = (src.unit, src.scale) if src and src.dim == t else (str(t), 1.0)
        self.scope_sensed[alias] = Symbol(alias, "sensed", t, unit, scale, s.span, c.decl.name)
        c.sensors.append((alias, e, delay, max(window, 1), s.span, t))

    def _actuate(self, c: CheckedLoop, a: ast.Actuate) -> None:
        e, t = self.expr(a.law)
        sym = self.symbols.get(a.state)
        if sym is None:
            if a.state not in self.broken:
                self._undefined(a.state, a.name_span, "a state")
            return
        if sym.kind != "state":
            self.error(
                "COH215",
                f"a loop actuates states; `{a.state}` is {_article(sym.kind)}",
                a.name_span,
                help="declare what the loop sets with `state`",
            )
            return
        if any(x[0] == a.state for x in c.actions):
            self.error("COH202", f"loop `{c.decl.name}` actuates `{a.state}` twice", a.span)
            return
        what = "the new value" if a.mode == "to" else "the increment"
        self._expect(a.law.span, sym.dim, t, f"{what} of `{a.state}`")
        c.actions.append((a.state, a.mode, e, a.span))

    def _loop_names(self, loops: list[ast.LoopDecl]) -> None:
        seen: dict[str, Span] = {}
        for lp in loops:
            if lp.name in seen:
                self.error(
                    "COH202",
                    f"loop `{lp.name}` is declared twice",
                    lp.name_span,
                    notes=(f"first declared at {seen[lp.name]}",),
                )
            seen[lp.name] = lp.name_span

    def _objective(self, o: ast.Objective, owner: str | None, index: int) -> ir.ObjectiveIR | None:
        e, t = self.expr(o.expr)
        if isinstance(t, _Bool):
            self.error(
                "COH216",
                "an objective is a number, not a condition",
                o.expr.span,
                help="to require a condition, write `objective keep A <= B`",
            )
            return None
        if isinstance(t, _Any):
            t = DIMENSIONLESS
        bound: ir.Expr | None = None
        if o.kind == "keep":
            assert o.bound is not None and o.cmp is not None
            if o.cmp in ("==", "!="):
                self.error("COH215", "`keep` needs an ordering comparison (<, <=, >, >=)", o.span)
            bound, bt = self.expr(o.bound)
            self._expect(o.bound.span, t, bt, "the bound of the objective")
        base = o.name or (o.expr.name if isinstance(o.expr, ast.Name) else f"objective{index + 1}")
        name = f"{owner}.{base}" if owner else base
        tol, relative = 0.0, False
        if o.tolerance is not None:
            if o.tolerance.unit == "%" or (o.tolerance.unit is None and o.kind != "keep"):
                tol = self.quantity(o.tolerance, want=DIMENSIONLESS, what="tolerance")
                relative = True
            else:
                tol = self.quantity(o.tolerance, want=t, what="tolerance")
            if tol < 0:
                self.error("COH213", "a tolerance must be non-negative", o.tolerance.span)
        unit, scale = self._display(o.expr, t)
        floor = None if o.floor is None else self._objective_floor(o.floor, t, name, unit)
        return ir.ObjectiveIR(
            name, owner, o.kind, e, o.cmp, bound, tol, relative, unit, scale, o.span, floor
        )

    def _objective_floor(self, num: ast.Num, t: Dim, name: str, unit: str) -> float | None:
        """The canonical value of ``floor Q``: absolute, in the objective's own dimension.

        Unlike a tolerance a floor is never relative: ``%`` fits only a dimensionless
        objective, and a bare number needs a unit unless the objective is dimensionless
        (a bare ``0`` adapts).
        """
        reported = len(self.diags)
        u = self.unit(num.unit, num.span)
        if len(self.diags) > reported:  # an unknown unit, already reported
            return None
        if u.dim != t and not (num.unit is None and num.value == 0):
            example = f"floor {num.value:g}" + ("" if t.dimensionless else f" {unit}")
            why = "never relative (that is `tolerance`)" if num.unit == "%" else "absolute"
            self.error(
                "COH207",
                f"the floor of objective `{name}` must be {_tname(t)}, not {_tname(u.dim)}",
                num.span,
                label="no unit" if num.unit is None else f"this is {_tname(u.dim)}",
                help=f"a floor is {why}, in the objective's own units: write `{example}`",
            )
            return None
        value = num.value * u.scale
        if not math.isfinite(value) or value < 0:
            self.error(
                "COH213",
                f"the floor of objective `{name}` must be finite and non-negative",
                num.span,
                help="the floor is the smallest change of the objective that matters",
            )
            return None
        return value

    def _display(self, e: ast.Expr, t: Dim) -> tuple[str, float]:
        if isinstance(e, ast.Name) and e.name in self.symbols:
            s = self.symbols[e.name]
            return s.unit, s.scale
        return str(t), 1.0

    def _objective_names(self, objectives: list[ir.ObjectiveIR]) -> None:
        seen: dict[str, Span] = {}
        for o in objectives:
            if o.name in seen:
                self.error(
                    "COH202",
                    f"objective `{o.name}` is declared twice",
                    o.span,
                    help="name it: `objective minimize NAME = EXPR`",
                )
            seen[o.name] = o.span

    def _require(self, r: ast.Require) -> ir.Requirement | None:
        text = _req_text(r)
        if r.kind in ("stable", "coherent", "no_bad_equilibrium"):
            return ir.Requirement(r.kind, text=text, span=r.span)
        if r.kind == "always":
            assert r.cond is not None and r.horizon is not None
            cond, t = self.expr(r.cond)
            self._want_bool(r.cond, t)
            horizon = self.duration_ticks(r.horizon, "horizon", allow_zero=False)
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
            trig, tt = self.expr(r.trigger)
            self._want_bool(r.trigger, tt)
            cond, t = self.expr(r.cond)
            self._want_bool(r.cond, t)
            within = self.duration_ticks(r.within, "response time")
            horizon = (
                self.duration_ticks(r.horizon, "horizon", False)
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
            sym = self.symbols.get(r.state)
            if sym is None:
                self._undefined(r.state, r.span, "a state")
                return None
            if sym.kind != "state":
                self.error(
                    "COH215",
                    f"`no flapping of` names a state; `{r.state}` is {_article(sym.kind)}",
                    r.span,
                )
                return None
            if r.max_reversals is not None and r.max_reversals != int(r.max_reversals):
                self.error(
                    "COH213",
                    f"`max {r.max_reversals:g}`: a number of reversals is whole",
                    r.span,
                    help="write a whole number, for example `max 2`",
                )
            window = self.duration_ticks(r.within, "flapping window", allow_zero=False)
            horizon = self.duration_ticks(r.horizon, "horizon", False) if r.horizon else 2 * window
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

    def _want_bool(self, e: ast.Expr, t: Type) -> None:
        if not isinstance(t, _Bool):
            self.error(
                "COH216",
                "a condition is needed here",
                e.span,
                label=f"this is {_tname(t)}",
                help="compare it, for example `latency <= 2s`",
            )

    def _state_updates(
        self,
        states: list[tuple[ast.StateDecl, float, float, float]],
        nexts: dict[str, ir.Expr],
        loops: list[CheckedLoop],
    ) -> None:
        actuated: dict[str, list[tuple[str, Span]]] = {}
        for lp in loops:
            for st, _mode, _law, span in lp.actions:
                actuated.setdefault(st, []).append((lp.decl.name, span))
        for d, *_ in states:
            if d.name in nexts and d.name in actuated:
                self.error(
                    "COH210",
                    f"state `{d.name}` has a `next` update and is actuated by "
                    f"loop `{actuated[d.name][0][0]}`",
                    actuated[d.name][0][1],
                    help="a state is either plant (next) or actuated by loops",
                )
            elif d.name not in nexts and d.name not in actuated and not self.recovered:
                self.error(
                    "COH204",
                    f"state `{d.name}` has no update and no actuator",
                    d.name_span,
                    help=f"add `next {d.name} = ...`, actuate it from a loop, or make it a `param`",
                )
            users = actuated.get(d.name, [])
            if len(users) > 1:
                names = ", ".join(f"`{u}`" for u, _ in users)
                self.error(
                    "COH206",
                    f"state `{d.name}` is actuated by {len(users)} loops: {names}",
                    users[1][1],
                    label="second actuator",
                    notes=("on a tick where several loops act, their changes add up",),
                    help="make sure the loops do not fight; the coupling analysis checks them",
                )

    def _unused(
        self, inputs: list[ir.InputVar], params: list[ir.ParamVar], lets: list[ir.Let]
    ) -> None:
        decls: list[ir.InputVar | ir.ParamVar | ir.Let] = [*inputs, *params, *lets]
        for decl in decls:
            if decl.name not in self.reads:
                sym = self.symbols.get(decl.name)
                kind = sym.kind if sym else "declaration"
                self.error(
                    "COH218", f"{kind} `{decl.name}` is never used", sym.span if sym else decl.span
                )

    # ---- expressions
    def _undefined(self, name: str, span: Span, what: str = "") -> None:
        cands = sorted(set(self.symbols) | set(self.scope_sensed))
        close = difflib.get_close_matches(name, cands, n=1)
        hint = (
            f"did you mean `{close[0]}`?"
            if close
            else "declare it with `param`, `input`, `state` or `let`"
        )
        self.error("COH201", f"unknown name `{name}`", span, label="not declared", help=hint)

    def _mismatch(self, span: Span, want: Type, got: Type, what: str) -> None:
        self.error(
            "COH207",
            f"{what} must be {_tname(want)}, but this is {_tname(got)}",
            span,
            label=f"{_tname(got)}",
            help=_dim_hint(want, got),
        )

    def _expect(self, span: Span, want: Type, got: Type, what: str) -> None:
        if isinstance(got, _Any) or isinstance(want, _Any):
            return
        if isinstance(want, _Bool) != isinstance(got, _Bool):
            self.error("COH216", f"{what} must be {_tname(want)}, but this is {_tname(got)}", span)
            return
        if want != got:
            if isinstance(want, Dim) and isinstance(got, Dim) and got.dimensionless:
                self.error(
                    "COH207",
                    f"{what} must be {_tname(want)}, but this is {_tname(got)}",
                    span,
                    label="no unit",
                    help=f"write the unit, for example `1 {want}`",
                )
                return
            self._mismatch(span, want, got, what)

    def expr(self, e: ast.Expr, only_params: bool = False) -> tuple[ir.Expr, Type]:
        return _ExprTyper(self, only_params).visit(e)


class _ExprTyper:
    def __init__(self, ck: _Checker, only_params: bool) -> None:
        self.ck = ck
        self.only_params = only_params

    def visit(self, e: ast.Expr) -> tuple[ir.Expr, Type]:
        ck = self.ck
        match e:
            case ast.Num(value, unit, span):
                if unit is None:
                    return ir.Const(value, span), (ANY if value == 0 else DIMENSIONLESS)
                u = ck.unit(unit, span)
                return ir.Const(value * u.scale, span), u.dim
            case ast.TickRef(span):
                return ir.Const(ck.tick, span), TIME
            case ast.Name(name, span):
                sensed = ck.scope_sensed.get(name)
                if sensed is not None:
                    return ir.Var(f"{sensed.owner}.{name}", span), sensed.dim
                sym = ck.symbols.get(name)
                if sym is None or sym.kind == "loop":
                    if name not in ck.broken:
                        ck._undefined(name, span)
                    return ir.Const(0.0, span), ANY
                if self.only_params and sym.kind != "param":
                    ck.error(
                        "COH215",
                        f"a parameter's value may only use numbers and other parameters; "
                        f"`{name}` is {_article(sym.kind)}",
                        span,
                    )
                ck.reads.add(name)
                return ir.Var(name, span), (BOOL if sym.kind == "bool" else sym.dim)
            case ast.Neg(arg, span):
                a, t = self.visit(arg)
                self._num(arg, t)
                return ir.Unary("neg", a, span), t
            case ast.BinOp(op, left, right, span):
                a, ta = self.visit(left)
                b, tb = self.visit(right)
                self._num(left, ta)
                self._num(right, tb)
                if op in ("+", "-"):
                    verb = "add" if op == "+" else "subtract"
                    if self._bare_number_hint(e, left, ta, right, tb, verb):
                        return ir.Binary(op, a, b, span), ta if isinstance(
                            ta, Dim
                        ) and not ta.dimensionless else tb
                    return ir.Binary(op, a, b, span), self._unify(e, ta, tb, verb)
                if isinstance(ta, _Any) or isinstance(tb, _Any):
                    return ir.Binary(op, a, b, span), ANY
                assert isinstance(ta, Dim) and isinstance(tb, Dim)
                return ir.Binary(op, a, b, span), (ta * tb if op == "*" else ta / tb)
            case ast.Pow(base, exponent, span):
                return self._pow(base, exponent, span)
            case ast.Compare(op, left, right, span):
                a, ta = self.visit(left)
                b, tb = self.visit(right)
                self._num(left, ta)
                self._num(right, tb)
                if not self._bare_number_hint(e, left, ta, right, tb, "compare"):
                    self._unify(e, ta, tb, "compare")
                return ir.Binary(op, a, b, span), BOOL
            case ast.BoolOp(op, left, right, span):
                a, ta = self.visit(left)
                b, tb = self.visit(right)
                self._bool(left, ta)
                self._bool(right, tb)
                return ir.Binary(op, a, b, span), BOOL
            case ast.Not(arg, span):
                a, t = self.visit(arg)
                self._bool(arg, t)
                return ir.Unary("not", a, span), BOOL
            case ast.Ite(cond, then, other, span):
                c, tc = self.visit(cond)
                self._bool(cond, tc)
                a, ta = self.visit(then)
                b, tb = self.visit(other)
                if isinstance(ta, _Bool) and isinstance(tb, _Bool):
                    return ir.Ite(c, a, b, span), BOOL
                self._num(then, ta)
                self._num(other, tb)
                return ir.Ite(c, a, b, span), self._unify(e, ta, tb, "choose between")
            case ast.Call(fn, args, span, fn_span):
                return self._call(fn, args, span, fn_span)
            case ast.ProfileCall(profile, fn, args, span):
                return self._profile_call(profile, fn, args, span)
        raise AssertionError(f"unknown expression {e!r}")

    def _profile_call(
        self, profile: str, fn: str, args: tuple[ast.Expr, ...], span: Span
    ) -> tuple[ir.Expr, Type]:
        from coherence.frontend import profiles

        typed = [self.visit(a) for a in args]
        prof = self.ck._profile(profile, span)
        if fn not in profiles.PROFILE_FUNCTIONS:
            names = ", ".join(sorted(profiles.PROFILE_FUNCTIONS))
            self.ck.error(
                "COH211",
                f"a profile has no function `{fn}`",
                span,
                help=f"profile functions: {names}",
            )
            return ir.Const(0.0, span), ANY
        dim = profiles.PROFILE_FUNCTIONS[fn][0]
        if len(args) != 1:
            self.ck.error(
                "COH211",
                f"`{profile}.{fn}` takes 1 argument (the batch size), not {len(args)}",
                span,
            )
            return ir.Const(0.0, span), dim
        arg, t = typed[0]
        self._num(args[0], t)
        if isinstance(t, Dim) and not t.dimensionless:
            self.ck.error(
                "COH207",
                f"`{profile}.{fn}` takes a batch size (a plain number)",
                args[0].span,
                label=f"this is {_tname(t)}",
            )
        if prof is None:
            if profile in self.ck.profile_errors:
                self.ck.error(
                    "COH222",
                    f"`{profile}.{fn}` needs calibration profile `{profile}`, "
                    "which could not be loaded",
                    span,
                    notes=(self.ck.profile_errors[profile],),
                    help="a plant function has no assumed value to fall back on",
                )
            return ir.Const(0.0, span), dim
        return profiles.pwl(prof, fn, arg), dim

    def _num(self, e: ast.Expr, t: Type) -> None:
        if isinstance(t, _Bool):
            self.ck.error(
                "COH216",
                "a number is needed here, not a condition",
                e.span,
                label="this is a condition",
            )

    def _bool(self, e: ast.Expr, t: Type) -> None:
        if not isinstance(t, _Bool):
            self.ck.error(
                "COH216",
                "a condition is needed here",
                e.span,
                label=f"this is {_tname(t)}",
                help="compare it, for example `x > 0`",
            )

    def _bare_number_hint(
        self, e: ast.Expr, left: ast.Expr, ta: Type, right: ast.Expr, tb: Type, verb: str
    ) -> bool:
        """A plain number against a quantity: say which unit to write. True if reported."""
        for num, tn, other in ((left, ta, tb), (right, tb, ta)):
            if (
                isinstance(num, ast.Num)
                and num.unit is None
                and num.value != 0
                and isinstance(tn, Dim)
                and tn.dimensionless
                and isinstance(other, Dim)
                and not other.dimensionless
            ):
                self.ck.error(
                    "COH207",
                    f"cannot {verb} a plain number and {_tname(other)}",
                    e.span,
                    label="no unit on this number" if num is left else "",
                    help=f"write the unit: `{num.value:g} {other}`",
                )
                return True
        return False

    def _unify(self, e: ast.Expr, ta: Type, tb: Type, verb: str) -> Type:
        if isinstance(ta, _Bool) or isinstance(tb, _Bool):
            return ANY
        if isinstance(ta, _Any):
            return tb
        if isinstance(tb, _Any):
            return ta
        if ta != tb:
            self.ck.error(
                "COH207",
                f"cannot {verb} {_tname(ta)} and {_tname(tb)}",
                e.span,
                label=f"{ta} vs {tb}",
                help=_dim_hint(ta, tb),
            )
        return ta

    def _pow(self, base: ast.Expr, exponent: ast.Expr, span: Span) -> tuple[ir.Expr, Type]:
        a, ta = self.visit(base)
        b, tb = self.visit(exponent)
        self._num(base, ta)
        self._num(exponent, tb)
        if isinstance(tb, Dim) and not tb.dimensionless:
            self.ck.error(
                "COH207",
                "an exponent must be dimensionless",
                exponent.span,
                label=f"this is {_tname(tb)}",
            )
        if isinstance(ta, Dim) and not ta.dimensionless:
            const = _const_value(exponent)
            if const is None:
                self.ck.error(
                    "COH207",
                    "a quantity with a unit can only be raised to a constant power",
                    span,
                    help="divide by a reference value to make it dimensionless first",
                )
                return ir.Binary("^", a, b, span), ta
            return ir.Binary("^", a, b, span), ta ** Fraction(const).limit_denominator(1000)
        return ir.Binary("^", a, b, span), ta if isinstance(ta, Dim) else DIMENSIONLESS

    def _call(
        self, fn: str, args: tuple[ast.Expr, ...], span: Span, fn_span: Span
    ) -> tuple[ir.Expr, Type]:
        ck = self.ck
        if fn not in FUNCTION_ARITY:
            close = difflib.get_close_matches(fn, list(FUNCTION_ARITY), n=1)
            ck.error(
                "COH211",
                f"unknown function `{fn}`",
                fn_span,
                label="not a function",
                help=f"did you mean `{close[0]}`?"
                if close
                else "the functions are " + ", ".join(sorted(FUNCTION_ARITY)),
            )
            for a in args:
                self.visit(a)
            return ir.Const(0.0, span), ANY
        lo, hi = FUNCTION_ARITY[fn]
        if not lo <= len(args) <= hi:
            want = f"{lo}" if lo == hi else f"at least {lo}"
            ck.error(
                "COH211",
                f"`{fn}` takes {want} argument{'s' if lo != 1 else ''}, not {len(args)}",
                span,
            )
            return ir.Const(0.0, span), ANY
        if fn == "pow":
            return self._pow(args[0], args[1], span)
        typed = [self.visit(a) for a in args]
        for a, (_, ta) in zip(args, typed, strict=True):
            self._num(a, ta)
        exprs = tuple(x for x, _ in typed)
        types = [t for _, t in typed]
        if fn in ("min", "max", "clamp"):
            joined: Type = types[0]
            for other in types[1:]:
                joined = self._unify(ast.Call(fn, args, span), joined, other, f"take the {fn} of")
            if fn == "clamp":
                return ir.Call(
                    "min", (ir.Call("max", (exprs[0], exprs[1]), span), exprs[2]), span
                ), joined
            return ir.Call(fn, exprs, span), joined
        if fn in ("abs", "ceil", "floor", "round"):
            return ir.Call(fn, exprs, span), types[0]
        if fn == "sqrt":
            t0 = types[0]
            return ir.Call(fn, exprs, span), (t0 ** Fraction(1, 2) if isinstance(t0, Dim) else t0)
        # exp, log
        if isinstance(types[0], Dim) and not types[0].dimensionless:
            ck.error(
                "COH207",
                f"`{fn}` needs a dimensionless argument",
                args[0].span,
                label=f"this is {_tname(types[0])}",
                help="divide by a reference value of the same unit first",
            )
        return ir.Call(fn, exprs, span), DIMENSIONLESS


def _const_value(e: ast.Expr) -> float | None:
    if isinstance(e, ast.Num) and e.unit is None:
        return e.value
    if isinstance(e, ast.Neg):
        v = _const_value(e.arg)
        return None if v is None else -v
    return None


def _dim_hint(a: Type, b: Type) -> str:
    if isinstance(a, Dim) and isinstance(b, Dim):
        ratio = a / b
        if ratio == TIME:
            return f"multiply the {b} side by a duration (for example `tick`), or divide the other by one"
        if ratio == TIME**-1:
            return f"divide the {b} side by a duration, or multiply the other by one"
        return f"both sides need the same dimension; they differ by a factor of ({ratio})"
    return "both sides must have the same dimension"


def _names(e: ast.Expr) -> Iterator[str]:
    match e:
        case ast.Name(name):
            yield name
        case ast.Neg(arg) | ast.Not(arg):
            yield from _names(arg)
        case ast.BinOp(_, l, r) | ast.Compare(_, l, r) | ast.BoolOp(_, l, r) | ast.Pow(l, r):
            yield from _names(l)
            yield from _names(r)
        case ast.Ite(c, a, b):
            yield from _names(c)
            yield from _names(a)
            yield from _names(b)
        case ast.Call(_, args) | ast.ProfileCall(_, _, args):
            for a in args:
                yield from _names(a)


def _unit_text_of(e: ast.Expr) -> str | None:
    return e.unit if isinstance(e, ast.Num) else None


def _scale_of(e: ast.Expr, units: UnitTable, tick: float) -> float:
    if isinstance(e, ast.Num) and e.unit is not None:
        try:
            u = units.parse(e.unit)
        except UnitError:
            return 1.0
        return tick if u.ticks else u.scale
    return 1.0


def _article(kind: str) -> str:
    return {
        "input": "an input",
        "param": "a parameter",
        "state": "a state",
        "let": "a `let`",
        "bool": "a condition",
        "loop": "a loop",
        "sensed": "a sensed value",
    }.get(kind, kind)


def _show_num(n: ast.Num) -> str:
    return f"{n.value:g}" + (f" {n.unit}" if n.unit else "")


def _req_text(r: ast.Require) -> str:
    from coherence.frontend.format import format_require

    return format_require(r)


def check_system(
    system: ast.System,
    broken: frozenset[str] = frozenset(),
    profile_paths: Mapping[str, str] | None = None,
) -> tuple[Checked | None, list[Diagnostic]]:
    """Check one system; returns the checked form (None if it has errors) and diagnostics.

    ``profile_paths`` overrides the path of named calibration profiles.
    """
    ck = _Checker(system, broken, profile_paths)
    checked = ck.run()
    return checked, ck.diags
