"""Semantic checks of one system: its declarations in order, then its loops and requirements.

:func:`check_system` walks one AST system, reports every semantic error it finds (undefined
and duplicate names, cyclic lets, dimension mismatches, bad ranges, durations that are not
whole ticks ...) and, when there are none, returns a :class:`Checked` system: declarations
with their values in canonical units and their expressions converted to IR. Lowering
(:mod:`coherence.ir.lower`) turns that into the flat transition system.

The checks, each stage in its own module:

- :mod:`.scope`         names, scopes and quantities (the :class:`~.scope.Checker` every
                        check shares); expressions are typed by :mod:`.exprs` (:mod:`.types`);
- this module           the tick, units, profiles and bindings, inputs, parameters, states,
                        lets (their order and cycles), `next` updates, unused declarations;
- :mod:`.loops`         sensors, actions, timing and shaping clauses; which states have an
                        update;
- :mod:`.requirements`  objectives and `require` statements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from coherence.diagnostics import Diagnostic, Severity
from coherence.frontend import ast
from coherence.frontend.dynamics import Continuous, Hidden, check_continuous
from coherence.frontend.exprs import ast_names, scale_of
from coherence.frontend.loops import CheckedLoop, check_loop, loop_names, state_updates
from coherence.frontend.requirements import objective, objective_names, require
from coherence.frontend.scope import Checker, Symbol
from coherence.frontend.types import AnyDim, Boolean, Type, article, show_num
from coherence.frontend.units import DIMENSIONLESS, TIME, Dim, Unit
from coherence.ir import nodes as ir
from coherence.ir.evaluate import EvalError, eval_scalar

__all__ = ["Checked", "CheckedLoop", "Symbol", "check_system"]


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
    hidden: list[Hidden] = field(default_factory=list)  # lag() and delay() states
    continuous: Continuous | None = None  # the `continuous` equations, x' = A x + w


class _Checker(Checker):
    """The system-level pass: declarations in order, then loops, objectives, requirements."""

    def run(self) -> Checked | None:
        items = self.system.items
        self.reserved(self.system.name, self.system.name_span)
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
            if not math.isfinite(t.duration.value):
                self.tick = 1.0  # a literal beyond the largest double (COH105)
            elif self.tick <= 0 or not math.isfinite(self.tick):
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
        blocks = [i for i in items if isinstance(i, ast.ContinuousDecl)]
        continuous = check_continuous(self, blocks, nexts, lets) if blocks else None
        loops = [check_loop(self, lp) for lp in loops_ast]
        loop_names(self, loops_ast)
        global_objs = [
            objective(self, o, None, i)
            for i, o in enumerate(i for i in items if isinstance(i, ast.Objective))
        ]
        objectives = [o for lp in loops for o in lp.objectives] + [o for o in global_objs if o]
        objective_names(self, objectives)
        reqs = [r for r in (require(self, i) for i in items if isinstance(i, ast.Require)) if r]
        der = {q.state for b in blocks for q in b.equations}
        state_updates(self, states, nexts, loops, der)
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
            list(self.hidden.values()),
            continuous,
        )

    def _profile_decl(self, d: ast.ProfileDecl) -> None:
        from pathlib import Path

        from coherence.frontend import profiles

        self.reserved(d.name, d.name_span)
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

    def _bind(self, d: ast.ParamDecl, value: float, dim: Dim, unit_text: str, scale: float) -> None:
        from coherence.frontend import profiles

        b = d.bind
        assert b is not None
        prof = self.profile(b.profile, b.span)
        spec = profiles.PROFILE_FUNCTIONS.get(b.key) or profiles.PROFILE_KEYS.get(b.key)
        if spec is None:
            names = ", ".join(sorted([*profiles.PROFILE_FUNCTIONS, *profiles.PROFILE_KEYS]))
            self.error("COH201", f"a profile has no `{b.key}`", b.span, help=f"use one of: {names}")
            return
        if spec[0] != dim:
            self.mismatch(b.span, dim, spec[0], f"`{b.key}` bound to `{d.name}`")
            return
        if prof is None:
            return
        args = tuple(a.value for a in b.args or ())
        try:
            measured = profiles.key_value(prof, b.key, args)
        except Exception as exc:  # a profile is data: whatever it holds, a located error
            self.error("COH213", f"cannot evaluate `{b.profile}.{b.key}`: {exc}", b.span)
            return
        if not math.isfinite(measured):
            self.error(
                "COH213",
                f"`{b.profile}.{b.key}` is not a finite number in this profile ({measured})",
                b.span,
                help="re-measure the profile with `coherence calibrate`",
            )
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
        self.reserved(d.name, d.name_span)
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

    def _input(self, d: ast.InputDecl) -> ir.InputVar:
        u = self.unit(d.unit, d.span)
        lo, hi = self.bounds(d.range, u, f"input `{d.name}`")
        nominal = self.quantity(d.nominal, u, u.dim, "nominal value")
        if lo <= hi and not lo <= nominal <= hi:
            self.error(
                "COH205",
                f"the nominal value of `{d.name}` lies outside its range",
                d.nominal.span,
                label="outside the range",
                help=f"choose a value in [{show_num(d.range.lo)}, {show_num(d.range.hi)}]",
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
            if isinstance(dim, Boolean):
                self.error("COH216", "a parameter must be a number", d.value.span)
                dim = DIMENSIONLESS
            if isinstance(dim, AnyDim):
                dim = ann.dim if ann else DIMENSIONLESS
            if ann is not None and ann.dim != dim:
                self.mismatch(d.value.span, ann.dim, dim, f"parameter `{d.name}`")
            try:
                value = eval_scalar(value_expr, self.param_values)
            except EvalError as e:
                self.error("COH213", f"cannot compute parameter `{d.name}`: {e}", d.value.span)
                value = 0.0
            except (OverflowError, ZeroDivisionError, ValueError) as e:
                self.error("COH223", f"cannot compute parameter `{d.name}`: {e}", d.value.span)
                value = 0.0
            if not math.isfinite(value) and not self.recovered:
                self.error(
                    "COH223",
                    f"the value of parameter `{d.name}` is not a finite number",
                    d.value.span,
                    label=f"{value}",
                    help="parameters are double-precision numbers; keep them finite",
                )
                value = 0.0
            if ann is not None:
                unit_text, scale = d.unit or str(dim), ann.scale
            elif isinstance(d.value, ast.Num):
                unit_text = d.value.unit or str(dim)
                scale = scale_of(d.value, self.units, self.tick)
            else:  # computed: shown (and bare range bounds read) in a declared unit of its dimension
                unit_text, scale = self._display_unit(dim)
            lo = hi = value
            if d.range is not None:
                lo, hi = self.bounds(d.range, Unit(scale, dim), f"parameter `{d.name}`")
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
        lo, hi = self.bounds(d.range, u, f"state `{d.name}`")
        init = self.quantity(d.init, u, u.dim, "initial value")
        if lo <= hi and not lo <= init <= hi:
            self.error(
                "COH205",
                f"the initial value of `{d.name}` lies outside its range",
                d.init.span,
                label="outside the range",
                help=f"choose a value in [{show_num(d.range.lo)}, {show_num(d.range.hi)}]",
            )
        if d.integer:
            if any(abs(v - round(v)) > 1e-9 for v in (lo, hi) if math.isfinite(v)):
                self.error(
                    "COH217",
                    f"the bounds of integer state `{d.name}` are rounded inwards",
                    d.range.span,
                    help="write whole-number bounds",
                )
            if math.isfinite(init) and abs(init - round(init)) > 1e-9:
                self.error(
                    "COH217",
                    f"integer state `{d.name}` has a fractional initial value",
                    d.init.span,
                    severity=Severity.ERROR,
                )
            if math.isfinite(lo):
                lo = math.ceil(lo - 1e-9)
            if math.isfinite(hi):
                hi = math.floor(hi + 1e-9)
        self.declare(d.name, "state", u.dim, d.unit or "1", u.scale, d.name_span)
        return d, float(lo), float(hi), init

    def _lets(self, decls: list[ast.LetDecl]) -> list[ir.Let]:
        names = {d.name for d in decls}
        deps: dict[str, set[str]] = {
            d.name: {n for n in ast_names(d.value) if n in names} for d in decls
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
            if isinstance(t, AnyDim):
                t = DIMENSIONLESS
            if d.unit is not None:
                ann = self.unit(d.unit, d.span)
                if not isinstance(t, Boolean) and ann.dim != t:
                    self.mismatch(d.value.span, ann.dim, t, f"`{d.name}`")
                unit_text, scale = d.unit, ann.scale
            else:
                unit_text, scale = self._display_unit(t)
            dim = DIMENSIONLESS if isinstance(t, Boolean) else t
            kind = "bool" if isinstance(t, Boolean) else "let"
            self.symbols[n] = Symbol(n, kind, dim, unit_text, scale, d.name_span)
            out.append(ir.Let(n, e, unit_text, scale, None, d.span))
        return out

    def _display_unit(self, t: Type) -> tuple[str, float]:
        """The unit to show a value of type ``t`` in: the first declaration with that dimension."""
        if isinstance(t, Boolean):
            return "bool", 1.0
        if isinstance(t, AnyDim) or t.dimensionless:
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
                    self.undefined(d.name, d.name_span, "a state")
                continue
            if sym.kind != "state":
                self.error(
                    "COH215",
                    f"`next` updates states; `{d.name}` is {article(sym.kind)}",
                    d.name_span,
                    help="declare it with `state`",
                )
                continue
            if d.name in out:
                self.error("COH202", f"state `{d.name}` has two `next` updates", d.span)
                continue
            self.expect(d.value.span, sym.dim, t, f"the next value of `{d.name}`")
            out[d.name] = e
        return out

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
