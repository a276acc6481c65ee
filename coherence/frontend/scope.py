"""Names, scopes and quantities: the state every semantic check shares.

A :class:`Checker` holds one system's symbols (what each name is, its dimension and display
unit), the sensed values in scope inside a loop, the declared units and the tick, the loaded
calibration profiles and the diagnostics reported so far. It converts literals to canonical
units (:meth:`Checker.quantity`, :meth:`Checker.duration_ticks`, :meth:`Checker.bounds`),
declares names (COH202), and types expressions (:meth:`Checker.expr`, through
:class:`coherence.frontend.exprs.ExprTyper`). The checks themselves are
:mod:`coherence.frontend.check` (declarations), :mod:`.loops` and :mod:`.requirements`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coherence.diagnostics import Diagnostic, Severity
from coherence.frontend import ast
from coherence.frontend.exprs import ExprTyper
from coherence.frontend.limits import MAX_REGISTER_TICKS, MAX_TIME_TICKS, RESERVED_PREFIX
from coherence.frontend.types import AnyDim, Boolean, Type, dim_hint, show_num, tname
from coherence.frontend.units import DIMENSIONLESS, TIME, Dim, Unit, UnitError, UnitTable
from coherence.ir import nodes as ir
from coherence.source import Span

if TYPE_CHECKING:
    from coherence.frontend.dynamics import Hidden


_LIMIT_NOTES = {
    MAX_REGISTER_TICKS: "each tick of a delay, window or stabilization window is one extra state",
    MAX_TIME_TICKS: "horizons, response times, periods, phases and cooldowns are bounded so "
    "that every analysis finishes",
}


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    kind: str  # input | param | state | let | sensed
    dim: Dim
    unit: str
    scale: float
    span: Span
    owner: str | None = None


class Checker:
    """One system's names, scopes, units and diagnostics (see the module docstring)."""

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
        self.hidden: dict[str, Hidden] = {}  # the states lag() and delay() add, by name
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
            label = "unknown unit" if e.code == "COH208" else "beyond a limit"
            self.error(e.code, e.message, span, label=label, help=e.hint)
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
                f"the {what} must be {tname(want)}, not {tname(u.dim)}",
                num.span,
                label=f"this is {tname(u.dim)}",
                help=f"write it with a unit of dimension {want}"
                if not want.dimensionless
                else "write a plain number or a percentage",
            )
        value = num.value * u.scale
        if not math.isfinite(num.value):
            return value  # a literal beyond the largest double: reported by the parser
        if not math.isfinite(value):
            self.error(
                "COH223",
                f"the {what} ({show_num(num)}) is too large once converted to canonical units",
                num.span,
                label="beyond the largest number (about 1.8e308)",
                help="write a smaller value",
            )
        return value  # infinite only when reported

    def duration_ticks(
        self, num: ast.Num, what: str, allow_zero: bool = True, limit: int = MAX_TIME_TICKS
    ) -> int:
        """The whole number of ticks of a duration; at most ``limit`` (COH223 beyond it)."""
        seconds = self.quantity(num, default=Unit(self.tick, TIME), want=TIME, what=what)
        ticks = seconds / self.tick
        if not math.isfinite(seconds):
            return 1  # reported: by the parser (COH105) or by `quantity` (COH223)
        if not math.isfinite(ticks) or abs(ticks) > limit:
            shown = f"{ticks:.4g} ticks" if math.isfinite(ticks) else "too many ticks"
            self.error(
                "COH223",
                f"the {what} ({show_num(num)}) is beyond the limit of {limit:,} ticks",
                num.span,
                label=shown,
                notes=(_LIMIT_NOTES.get(limit, ""),) if limit in _LIMIT_NOTES else (),
                help=f"the tick is {self.tick:g}s; use a shorter {what} or a longer tick",
            )
            return limit
        n = round(ticks)
        if abs(ticks - n) > 1e-9 * max(1.0, abs(ticks)):
            self.error(
                "COH209",
                f"the {what} ({show_num(num)}) is not a whole number of ticks",
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

    def bounds(self, rng: ast.Range, unit: Unit, what: str) -> tuple[float, float]:
        lo = self.quantity(rng.lo, unit, unit.dim, f"lower bound of {what}")
        hi = self.quantity(rng.hi, unit, unit.dim, f"upper bound of {what}")
        if lo > hi:
            self.error(
                "COH212",
                f"the range of {what} is empty: {show_num(rng.lo)} > {show_num(rng.hi)}",
                rng.span,
                help="write the range as `[lo, hi]` with lo <= hi",
            )
        return lo, hi

    # ---- names
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
        self.reserved(name, span)
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

    def reserved(self, name: str | None, span: Span) -> None:
        """COH224 for a name in the tool's own namespace (``__t`` is the simulator's tick)."""
        if name and name.startswith(RESERVED_PREFIX):
            self.error(
                "COH224",
                f"`{name}` is a reserved name",
                span,
                label=f"names starting with `{RESERVED_PREFIX}` are the tool's own",
                notes=(
                    "the simulator and the other analyses keep internal values under such "
                    "names (the tick number is `__t`)",
                ),
                help=f"rename it, for example `{name.lstrip('_') or 'value'}`",
            )

    def profile(self, name: str, span: Span) -> object | None:
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

    # ---- expressions
    def undefined(self, name: str, span: Span, what: str = "") -> None:
        cands = sorted(set(self.symbols) | set(self.scope_sensed))
        close = difflib.get_close_matches(name, cands, n=1)
        hint = (
            f"did you mean `{close[0]}`?"
            if close
            else "declare it with `param`, `input`, `state` or `let`"
        )
        self.error("COH201", f"unknown name `{name}`", span, label="not declared", help=hint)

    def mismatch(self, span: Span, want: Type, got: Type, what: str) -> None:
        self.error(
            "COH207",
            f"{what} must be {tname(want)}, but this is {tname(got)}",
            span,
            label=f"{tname(got)}",
            help=dim_hint(want, got),
        )

    def expect(self, span: Span, want: Type, got: Type, what: str) -> None:
        if isinstance(got, AnyDim) or isinstance(want, AnyDim):
            return
        if isinstance(want, Boolean) != isinstance(got, Boolean):
            self.error("COH216", f"{what} must be {tname(want)}, but this is {tname(got)}", span)
            return
        if want != got:
            if isinstance(want, Dim) and isinstance(got, Dim) and got.dimensionless:
                self.error(
                    "COH207",
                    f"{what} must be {tname(want)}, but this is {tname(got)}",
                    span,
                    label="no unit",
                    help=f"write the unit, for example `1 {want}`",
                )
                return
            self.mismatch(span, want, got, what)

    def want_bool(self, e: ast.Expr, t: Type) -> None:
        if not isinstance(t, Boolean):
            self.error(
                "COH216",
                "a condition is needed here",
                e.span,
                label=f"this is {tname(t)}",
                help="compare it, for example `latency <= 2s`",
            )

    def expr(self, e: ast.Expr, only_params: bool = False) -> tuple[ir.Expr, Type]:
        return ExprTyper(self, only_params).visit(e)
