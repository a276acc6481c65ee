"""Property tests of policy changes: Hypothesis strategies and requirement assertions.

A policy change is a diff of a spec: a new gain, a shorter period, a bigger batch limit.
This module draws such changes within limits and checks that the fleet still meets its
requirements, so that a test says in a few lines "for any change of these gains within
±20%, the fleet stays stable and coherent"::

    from hypothesis import given, settings
    from coherence.strategies import assert_coherent, assert_requirement, load_spec, policy_changes

    SPEC = load_spec("specs/seed/tipping_point.coh")

    @given(policy_changes(SPEC, gains={"router": 0.2, "cost_controller": 0.2}))
    def test_retuning_keeps_the_fleet_coherent(change):
        ts = change.apply()
        assert_requirement(ts, "stable")
        assert_requirement(ts, "always")
        assert_coherent(ts)

What can change (each knob takes a :class:`Limit`, or a number meaning a relative limit):

- ``params``: parameters, by name (in the spec's unit), through
  :func:`coherence.ir.transform.with_params` on the lowered system. Thresholds belong here:
  write them as parameters (``param slo = 2s``) to vary them.
- ``gains``: a loop's gain, as a factor on every action of the loop (its internal gain
  parameters, 1 as written), also through ``with_params``.
- ``periods``, ``delays``, ``windows``, ``cooldowns``: a loop's timing in whole ticks
  (``delays``/``windows`` apply to every sensor of the loop, or name one as ``loop.alias``);
  ``bounds``: a state's range end, as ``"queue.hi"`` or ``"queue.lo"`` in the spec's unit.
  These change the structure of the lowered system (shift registers, saturations), so they
  edit the spec's syntax tree and lower it again (needs a :class:`Spec` from :func:`load_spec`,
  not a bare transition system). Literal numbers inside expressions are not varied.
- ``stabilizations``: a loop's stabilization window in ticks (``"hpa"`` for every window of the
  loop, ``"hpa.down"`` / ``"hpa.up"`` for one), drawn as whole numbers of the loop's period
  (what the language accepts), 0 meaning no window.
- ``tolerances``: a loop's ``tolerance`` clause (``"vpa"``) or an objective's tolerance
  (``"hpa.util"``, ``"pod_quota"``), in the unit the spec writes it in (``%`` where it writes
  none), never below 0.

The policy teams change most (stabilization windows, cooldowns, tolerances) has its edge
cases in range: a window or cooldown of 0 (none), a tolerance of 0. A draw that the language
rejects (a phase no longer below a shorter period, a window that is no longer a whole number
of a drawn period, a bound past the other end of a range) is filtered out, never raised:
every change a strategy gives applies.

Draws shrink towards the spec as written, so a failing example names the smallest change.

:func:`assert_requirement` and :func:`assert_coherent` run the analyses through
:mod:`coherence.pipeline` (those that are importable) and, for bounded requirements
(``always``, ``after ... within``, ``no flapping``), also replay the system in the simulator
under the nominal inputs and every input held at each end of its range: a violation there is
a real counterexample, with its trace. A requirement that no analysis decided (``stable``
before the linear analysis is available) passes unless ``strict=True``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coherence.diagnostics import CoherenceError, Severity
from coherence.frontend import ast
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import Coherence, Finding, Status, SystemReport, Verdict
from coherence.source import SourceFile

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from coherence.pipeline import CheckOptions

SIMULATED = ("always", "response", "flapping")
_CODE = {"always": "COH501", "response": "COH502", "flapping": "COH503"}
KINDS = ("stable", "coherent", "always", "response", "flapping", "no_bad_equilibrium")


# ---- specs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spec:
    """A spec system with its syntax tree, so that changes can be lowered again."""

    path: str
    system: ast.System = field(repr=False)
    ts: TransitionSystem = field(repr=False)
    text: str = field(default="", repr=False)


def load_spec(path: str | Path, system: str | None = None) -> Spec:
    """Compile a spec file; ``system`` picks one when the file declares several."""
    from coherence.compile import compile_path

    result = compile_path(path)
    if result.module is None:
        raise CoherenceError(f"`{path}` declares no system")
    pairs = [(s, ts) for s in result.module.systems for ts in result.systems if ts.name == s.name]
    if system is not None:
        pairs = [(s, ts) for s, ts in pairs if s.name == system]
    if len(pairs) != 1:
        names = ", ".join(ts.name for ts in result.systems)
        raise CoherenceError(f"`{path}`: choose one system ({names})")
    s, ts = pairs[0]
    return Spec(str(path), s, ts, result.source.text)


# ---- knobs and changes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limit:
    """How far a value may move from the spec: ``rel`` (0.2 = ±20%), ``abs`` (± in the
    spec's unit, or ticks), or an explicit range ``lo``..``hi``."""

    rel: float | None = None
    abs: float | None = None
    lo: float | None = None
    hi: float | None = None

    def bounds(self, current: float) -> tuple[float, float]:
        lo, hi = current, current
        if self.rel is not None:
            lo, hi = current - abs(current) * self.rel, current + abs(current) * self.rel
        if self.abs is not None:
            lo, hi = min(lo, current - self.abs), max(hi, current + self.abs)
        if self.lo is not None:
            lo = self.lo
        if self.hi is not None:
            hi = self.hi
        if lo > hi:
            raise ValueError(f"empty range [{lo}, {hi}]")
        return lo, hi


LimitLike = Limit | float | int


@dataclass(frozen=True, slots=True)
class Knob:
    """One thing a policy change may set, with the value the spec has and its range."""

    kind: str  # param | gain | period | delay | window | cooldown | bound
    target: str  # parameter, loop, `loop.alias` or `state.lo` / `state.hi`
    current: float
    lo: float
    hi: float
    unit: str = ""
    integer: bool = False
    step: int = 1  # integer knobs: values are current + k * step

    def describe(self, value: float) -> str:
        shown = f"{value:g}" if self.integer else f"{value:.6g}"
        if self.kind == "gain":
            return f"{self.target} gain x{shown}"
        unit = f" {self.unit}" if self.unit and self.unit != "1" else ""
        if self.kind == "param":
            return f"{self.target} = {shown}{unit}"
        if self.kind in ("bound", "tolerance"):
            return (
                f"{self.target} {'tolerance ' if self.kind == 'tolerance' else ''}= {shown}{unit}"
            )
        return f"{self.target} {self.kind} {shown} ticks"


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """A drawn change of a spec: knob values. ``apply()`` gives the changed system."""

    spec: Spec | TransitionSystem = field(repr=False, compare=False)
    values: tuple[tuple[Knob, float], ...]
    _applied: TransitionSystem | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        moved = [k.describe(v) for k, v in self.values if v != k.current]
        return f"PolicyChange({', '.join(moved) or 'as written'})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis prints a falsifying example: the change, not the whole spec."""
        printer.text(repr(self))

    def apply(self) -> TransitionSystem:
        """The transition system with this change (the input is never modified)."""
        if self._applied is None:
            object.__setattr__(self, "_applied", self._apply())
        assert self._applied is not None
        return self._applied

    def applies(self) -> bool:
        """Whether the change gives a valid spec (the strategies draw only those)."""
        try:
            self.apply()
        except InvalidChange:
            return False
        return True

    def _apply(self) -> TransitionSystem:
        from coherence.ir.transform import with_params

        structural = [(k, v) for k, v in self.values if k.kind not in ("param", "gain")]
        if isinstance(self.spec, Spec):
            ts = _relower(self.spec, structural) if structural else self.spec.ts
        else:
            if structural:
                raise TypeError("timing and bound changes need a Spec from load_spec()")
            ts = self.spec
        params: dict[str, float] = {}
        for k, v in self.values:
            if k.kind == "param":
                params[k.target] = v * ts.param(k.target).scale
            elif k.kind == "gain":
                for action in ts.loop(k.target).actions:
                    params[action.gain] = ts.param(action.gain).value * v
        return with_params(ts, params) if params else ts


def _limit(value: LimitLike, default: float) -> Limit:
    if isinstance(value, Limit):
        return value
    return Limit(rel=float(value) if value is not None else default)


def _items(values: Mapping[str, LimitLike] | Iterable[str], rel: float) -> list[tuple[str, Limit]]:
    if isinstance(values, Mapping):
        return [(k, _limit(v, rel)) for k, v in values.items()]
    return [(k, Limit(rel=rel)) for k in values]


def knobs(
    spec: Spec | TransitionSystem,
    *,
    params: Mapping[str, LimitLike] | Iterable[str] = (),
    gains: Mapping[str, LimitLike] | Iterable[str] = (),
    periods: Mapping[str, LimitLike] | Iterable[str] = (),
    delays: Mapping[str, LimitLike] | Iterable[str] = (),
    windows: Mapping[str, LimitLike] | Iterable[str] = (),
    cooldowns: Mapping[str, LimitLike] | Iterable[str] = (),
    bounds: Mapping[str, LimitLike] | Iterable[str] = (),
    stabilizations: Mapping[str, LimitLike] | Iterable[str] = (),
    tolerances: Mapping[str, LimitLike] | Iterable[str] = (),
    rel: float = 0.2,
) -> list[Knob]:
    """The knobs of a change, with their current values and ranges (unknown names raise)."""
    ts = spec.ts if isinstance(spec, Spec) else spec
    out: list[Knob] = []
    for name, limit in _items(params, rel):
        p = ts.param(name)
        cur = p.value / (p.scale or 1.0)
        lo, hi = limit.bounds(cur)
        out.append(Knob("param", name, cur, lo, hi, p.unit))
    for name, limit in _items(gains, rel):
        ts.loop(name)
        lo, hi = limit.bounds(1.0)
        out.append(Knob("gain", name, 1.0, max(lo, 0.0), hi))
    timing = (("period", periods, 1), ("delay", delays, 0), ("window", windows, 1))
    for kind, values, least in (*timing, ("cooldown", cooldowns, 0)):
        for name, limit in _items(values, rel):
            cur = float(_timing(ts, kind, name))
            lo, hi = limit.bounds(cur)
            out.append(
                Knob(kind, name, cur, max(math.floor(lo), least), math.ceil(hi), integer=True)
            )
    for name, limit in _items(bounds, rel):
        state, _, side = name.rpartition(".")
        if side not in ("lo", "hi") or not state:
            raise KeyError(f"bounds are named `state.lo` or `state.hi`, not `{name}`")
        st = ts.state(state)
        cur = (st.lo if side == "lo" else st.hi) / (st.scale or 1.0)
        lo, hi = limit.bounds(cur)
        out.append(Knob("bound", name, cur, lo, hi, st.unit, st.integer))
    for name, limit in _items(stabilizations, rel):
        loop_name, _, direction = name.partition(".")
        period = ts.loop(loop_name).period
        cur = float(_stabilization(spec, ts, loop_name, direction))
        lo, hi = limit.bounds(cur)
        k_lo, k_hi = max(math.ceil(lo / period), 0), max(math.floor(hi / period), 0)
        if k_lo > k_hi:
            raise ValueError(f"no whole number of periods ({period} ticks) in [{lo:g}, {hi:g}]")
        cur = min(max(cur, k_lo * period), k_hi * period)
        out.append(
            Knob(
                "stabilization", name, cur, k_lo * period, k_hi * period, integer=True, step=period
            )
        )
    for name, limit in _items(tolerances, rel):
        cur, unit = _tolerance(spec, ts, name)
        lo, hi = limit.bounds(cur)
        out.append(Knob("tolerance", name, cur, max(lo, 0.0), max(hi, 0.0), unit))
    return out


def _syntax(spec: Spec | TransitionSystem, what: str) -> ast.System:
    if not isinstance(spec, Spec):
        raise TypeError(f"{what} changes need a Spec from load_spec()")
    return spec.system


def _loop_decl(system: ast.System, name: str) -> ast.LoopDecl:
    for it in system.items:
        if isinstance(it, ast.LoopDecl) and it.name == name:
            return it
    raise KeyError(f"no loop `{name}`")


def _ticks_of(num: ast.Num, tick: float) -> float:
    """A duration as written, in ticks."""
    from coherence.frontend.units import UnitTable

    if num.unit in (None, "ticks", "tick"):
        return float(num.value)
    return float(num.value) * UnitTable.new().parse(num.unit).scale / tick


def _stabilization(spec: Spec | TransitionSystem, ts: TransitionSystem, loop: str, d: str) -> int:
    if d not in ("", "up", "down"):
        raise KeyError(f"a stabilization window is `loop`, `loop.up` or `loop.down`, not `{d}`")
    windows = [
        it
        for it in _loop_decl(_syntax(spec, "stabilization"), loop).items
        if isinstance(it, ast.Stabilize) and (not d or it.direction in (d, "both"))
    ]
    if not windows:
        raise KeyError(f"loop `{loop}` has no {d + ' ' if d else ''}stabilization window")
    return round(_ticks_of(windows[0].window, ts.tick))


def _objective_decl(system: ast.System, ts: TransitionSystem, name: str) -> ast.Objective:
    """The syntax of the objective the system calls ``name`` (loop objectives in order)."""
    obj = ts.objective(name)
    if obj.owner is None:
        decls = [it for it in system.items if isinstance(it, ast.Objective)]
        names = [o.name for o in ts.objectives if o.owner is None]
    else:
        items = _loop_decl(system, obj.owner).items
        decls = [it for it in items if isinstance(it, ast.Objective)]
        names = list(ts.loop(obj.owner).objectives)
    return decls[names.index(name)]


def _tolerance(spec: Spec | TransitionSystem, ts: TransitionSystem, name: str) -> tuple[float, str]:
    system = _syntax(spec, "tolerance")
    if name in {lp.name for lp in ts.loops}:
        for it in _loop_decl(system, name).items:
            if isinstance(it, ast.LoopClause) and it.kind == "tolerance":
                return float(it.value.value), it.value.unit or ""
        raise KeyError(f"loop `{name}` has no tolerance clause")
    written = _objective_decl(system, ts, name).tolerance
    if written is None:
        return 0.0, "%"
    return float(written.value), written.unit or ""


def _timing(ts: TransitionSystem, kind: str, name: str) -> int:
    loop_name, _, alias = name.partition(".")
    lp = ts.loop(loop_name)
    if kind == "period":
        return lp.period
    if kind == "cooldown":
        return lp.cooldown
    sensors = [s for s in lp.sensors if not alias or s.alias == alias]
    if not sensors:
        raise KeyError(f"loop `{loop_name}` has no sensor {alias or ''}".rstrip())
    return sensors[0].delay if kind == "delay" else sensors[0].window


def policy_changes(
    spec: Spec | TransitionSystem,
    *,
    params: Mapping[str, LimitLike] | Iterable[str] = (),
    gains: Mapping[str, LimitLike] | Iterable[str] = (),
    periods: Mapping[str, LimitLike] | Iterable[str] = (),
    delays: Mapping[str, LimitLike] | Iterable[str] = (),
    windows: Mapping[str, LimitLike] | Iterable[str] = (),
    cooldowns: Mapping[str, LimitLike] | Iterable[str] = (),
    bounds: Mapping[str, LimitLike] | Iterable[str] = (),
    stabilizations: Mapping[str, LimitLike] | Iterable[str] = (),
    tolerances: Mapping[str, LimitLike] | Iterable[str] = (),
    rel: float = 0.2,
) -> SearchStrategy[PolicyChange]:
    """Policy changes of a spec within limits (see the module docstring).

    Each knob is given by name, with a limit (``{"router": 0.2}``, ``{"budget":
    Limit(abs=100)}``) or as a list of names that all get ``rel``.
    """
    from hypothesis import strategies as st

    chosen = knobs(
        spec,
        params=params,
        gains=gains,
        periods=periods,
        delays=delays,
        windows=windows,
        cooldowns=cooldowns,
        bounds=bounds,
        stabilizations=stabilizations,
        tolerances=tolerances,
        rel=rel,
    )
    if not chosen:
        raise ValueError("a policy change needs at least one knob")
    parts = [_values(k, st) for k in chosen]
    changes = st.tuples(*parts).map(
        lambda vs: PolicyChange(spec, tuple(zip(chosen, vs, strict=True)))
    )
    # a draw the language rejects is filtered out, not raised (see the module docstring)
    return changes.filter(PolicyChange.applies)


def _values(k: Knob, st: Any) -> SearchStrategy[float]:
    """Values of a knob that shrink towards the spec's value, its range's ends included."""
    inside: SearchStrategy[float]
    if k.integer:
        cur, step = round(k.current), max(k.step, 1)
        lo, hi = math.ceil((k.lo - cur) / step), math.floor((k.hi - cur) / step)
        steps: SearchStrategy[int] = st.integers(lo, hi)
        inside = steps.map(lambda d: float(cur + d * step))
        edges = (float(cur), float(cur + lo * step), float(cur + hi * step))
    else:
        below, above = k.current - k.lo, k.hi - k.current

        def scale(u: float) -> float:
            return k.current + (u * above if u >= 0 else u * below)

        unit: SearchStrategy[float] = st.floats(-1.0, 1.0, allow_nan=False)
        inside = unit.map(scale)
        edges = (k.current, k.lo, k.hi)
    # the spec's value and the ends of the range (no window, a tolerance of 0, the widest
    # one) are drawn as often as the inside, and the spec's value is what draws shrink to
    ends: SearchStrategy[float] = st.sampled_from(tuple(dict.fromkeys(edges)))
    both: SearchStrategy[float] = st.one_of(ends, inside)
    return both


def changed_systems(
    spec: Spec | TransitionSystem, **limits: Any
) -> SearchStrategy[TransitionSystem]:
    """Like :func:`policy_changes`, drawing the changed transition systems themselves."""
    return policy_changes(spec, **limits).map(PolicyChange.apply)


# ---- re-lowering an edited syntax tree -----------------------------------------------------


def _ticks(n: float) -> ast.Num:
    return ast.Num(float(n), "ticks")


def _edit_loop(item: ast.LoopDecl, kind: str, alias: str, value: float) -> ast.LoopDecl:
    items = list(item.items)
    if kind == "stabilization":
        for i, it in enumerate(items):
            if isinstance(it, ast.Stabilize) and (not alias or it.direction in (alias, "both")):
                items[i] = replace(it, window=_ticks(value))
        return replace(item, items=tuple(items))
    if kind in ("period", "cooldown"):
        clause = "every" if kind == "period" else "cooldown"
        for i, it in enumerate(items):
            if isinstance(it, ast.LoopClause) and it.kind == clause:
                items[i] = replace(it, value=_ticks(value))
                break
        else:
            items.append(ast.LoopClause(clause, _ticks(value)))
    else:
        for i, it in enumerate(items):
            if isinstance(it, ast.Sense):
                name = it.alias or (it.expr.name if isinstance(it.expr, ast.Name) else None)
                if alias and name != alias:
                    continue
                if kind == "delay":
                    items[i] = replace(it, delay=_ticks(value))
                else:
                    items[i] = replace(it, window=_ticks(value))
    return replace(item, items=tuple(items))


def _with_tolerance(
    spec: Spec, items: list[ast.SysItem], target: str, value: float
) -> list[ast.SysItem]:
    """The system's items with the tolerance ``target`` (a loop's, an objective's) set."""
    ts = spec.ts
    loop: str | None = target
    objective: ast.Objective | None = None
    if target not in {lp.name for lp in ts.loops}:
        loop = ts.objective(target).owner
        objective = _objective_decl(spec.system, ts, target)

    def edit(it: Any) -> Any:
        if objective is not None and isinstance(it, ast.Objective) and it is objective:
            unit = it.tolerance.unit if it.tolerance is not None else "%"
            return replace(it, tolerance=ast.Num(float(value), unit))
        if objective is None and isinstance(it, ast.LoopClause) and it.kind == "tolerance":
            return replace(it, value=replace(it.value, value=float(value)))
        return it

    out: list[ast.SysItem] = []
    for it in items:
        if isinstance(it, ast.LoopDecl) and it.name == loop:
            out.append(replace(it, items=tuple(edit(i) for i in it.items)))
        elif loop is None:
            out.append(edit(it))
        else:
            out.append(it)
    return out


def _relower(spec: Spec, changes: Sequence[tuple[Knob, float]]) -> TransitionSystem:
    from coherence.diagnostics import render
    from coherence.frontend.check import check_system
    from coherence.ir.lower import lower

    items = list(spec.system.items)
    for k, v in changes:
        if k.kind == "tolerance":
            items = _with_tolerance(spec, items, k.target, v)
            continue
        if k.kind == "bound":
            state, _, side = k.target.rpartition(".")
            for i, it in enumerate(items):
                if isinstance(it, ast.StateDecl) and it.name == state:
                    end = it.range.lo if side == "lo" else it.range.hi
                    new = replace(end, value=float(v))
                    if side == "lo":
                        rng = replace(it.range, lo=new)
                    else:
                        rng = replace(it.range, hi=new)
                    items[i] = replace(it, range=rng)
        else:
            loop, _, alias = k.target.partition(".")
            for i, it in enumerate(items):
                if isinstance(it, ast.LoopDecl) and it.name == loop:
                    items[i] = _edit_loop(it, k.kind, alias, v)
    checked, diags = check_system(replace(spec.system, items=tuple(items)))
    errors = [d for d in diags if d.level == Severity.ERROR]
    if checked is None or errors:
        source = SourceFile(spec.path, spec.text)
        text = "\n\n".join(render(d, source) for d in errors)
        raise InvalidChange(f"the change does not give a valid spec:\n\n{text}")
    return lower(checked)


class InvalidChange(ValueError):
    """A drawn change that the front end rejects (for example an empty range)."""


# ---- checking requirements -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequirementOutcome:
    """What the analyses and the simulator say about one requirement of a system."""

    requirement: str
    status: Status
    by: tuple[str, ...]  # analyses that decided, and "simulation"
    reason: str = ""
    findings: tuple[Finding, ...] = ()
    verdicts: tuple[Verdict, ...] = ()

    @property
    def decided(self) -> bool:
        return self.status != Status.SKIPPED


class RequirementFailed(AssertionError):
    """A requirement that is falsified (or unknown) for a changed system."""

    def __init__(self, message: str, outcomes: Sequence[RequirementOutcome] = ()) -> None:
        super().__init__(message)
        self.outcomes = tuple(outcomes)


def default_options() -> CheckOptions:
    """Property tests run the simulator and the linear analysis; the formal analysis is
    slower and opt-in (pass ``CheckOptions(smt=True)``)."""
    from coherence.pipeline import CheckOptions

    return CheckOptions(smt=False)


_CACHE: list[tuple[TransitionSystem, str, SystemReport]] = []
_CACHE_SIZE = 4


def evaluate(ts: TransitionSystem, options: CheckOptions | None = None) -> SystemReport:
    """Run the available analyses on a system (through :mod:`coherence.pipeline`).

    The last few results are kept, so that several assertions on one changed system run
    the analyses once; with ``options.cache`` set, reports also go through the results cache
    (:mod:`coherence.cache`), which the pytest plugin uses for spec files.
    """
    from coherence.pipeline import analyse_cached, analyses_for

    opts = options or default_options()
    key = repr(opts)
    for cached_ts, cached_key, report in _CACHE:
        if cached_ts is ts and cached_key == key:
            return report
    report = analyse_cached(ts, analyses_for(opts), opts)
    _CACHE.insert(0, (ts, key, report))
    del _CACHE[_CACHE_SIZE:]
    return report


def requirements_named(ts: TransitionSystem, name: str | int) -> list[Requirement]:
    """Requirements by kind (``"stable"``, ``"always"``), by text, or by index."""
    if isinstance(name, int):
        return [ts.requirements[name]]
    key = name.strip().removeprefix("require ").strip()
    kind = key.replace(" ", "_")
    found = [r for r in ts.requirements if kind in KINDS and r.kind == kind]
    found = found or [r for r in ts.requirements if r.text.removeprefix("require ") == key]
    if not found:
        texts = "; ".join(r.text for r in ts.requirements) or "none"
        raise KeyError(f"no requirement `{name}` in system `{ts.name}` (it has: {texts})")
    return found


def _inputs(
    ts: TransitionSystem, ticks: int, scenarios: Sequence[str] | None
) -> tuple[Any, list[str]]:
    import numpy as np

    from coherence.simulate.engine import nominal_inputs

    if scenarios:
        from coherence.simulate.scenarios import scenario_inputs

        return scenario_inputs(ts, list(scenarios), ticks), list(scenarios)
    base = nominal_inputs(ts, ticks)[0]
    arrays, labels = [base], ["nominal"]
    for j, u in enumerate(ts.inputs):
        for label, value in (("lo", u.lo), ("hi", u.hi)):
            if value != u.nominal and math.isfinite(value):
                arr = base.copy()
                arr[:, j] = value
                arrays.append(arr)
                labels.append(f"{u.name} held at {value / (u.scale or 1.0):g} {u.unit} ({label})")
    return np.stack(arrays), labels


def simulate_requirement(
    ts: TransitionSystem, req: Requirement, scenarios: Sequence[str] | None = None
) -> tuple[int, Finding | None]:
    """Replay a bounded requirement in the simulator; (scenarios run, counterexample)."""
    import numpy as np

    from coherence.simulate.engine import simulate
    from coherence.simulate.requirements import check_requirement
    from coherence.simulate.view import trace_view

    ticks = max(req.horizon, 1)
    inputs, labels = _inputs(ts, ticks, scenarios)
    trace = simulate(ts, ticks, inputs=inputs)
    first = check_requirement(req, trace)
    if first is None:
        return 0, None
    failing = [(int(t), s) for s, t in enumerate(first) if t >= 0]
    if not failing:
        return len(labels), None
    tick, s = min(failing)
    finding = Finding(
        _CODE[req.kind],
        f"`{req.text}` fails at t={tick * ts.tick:g}s with {labels[s]}",
        req.span,
        help="the trace shows inputs under which the system violates it",
        trace=trace_view(
            ts, trace, scenario=s, title=f"simulation: {labels[s]}", violation_tick=tick
        ),
        key=f"simulation:{req.text}",
        data=(("scenario", labels[s]), ("tick", tick), ("horizon", int(np.int64(ticks)))),
    )
    return len(labels), finding


def _matches(v: Verdict, req: Requirement) -> bool:
    same_place = (v.span.line, v.span.column) == (req.span.line, req.span.column)
    return same_place or v.requirement == req.text


def requirement_outcome(
    ts: TransitionSystem,
    req: Requirement,
    report: SystemReport | None = None,
    options: CheckOptions | None = None,
    scenarios: Sequence[str] | None = None,
) -> RequirementOutcome:
    """Combine the analyses' verdicts and the simulator's replay for one requirement.

    Falsified anywhere -> falsified (with the findings and traces); else unknown if an
    analysis said unknown; else proved/holds from the analyses; else *holds in simulation*
    (status HOLDS, by "simulation") for bounded requirements; else skipped (no analysis
    could decide it in this install).
    """
    report = report or evaluate(ts, options)
    verdicts = tuple(v for v in report.verdicts if _matches(v, req) and v.status != Status.SKIPPED)
    evidence = tuple(
        f
        for f in report.findings
        if any(f.code in v.codes for v in verdicts if not v.status.passed)
    )
    n_sim, counterexample = (0, None)
    if req.kind in SIMULATED:
        n_sim, counterexample = simulate_requirement(ts, req, scenarios)
    by = tuple(dict.fromkeys(v.analysis for v in verdicts))
    statuses = [v.status for v in verdicts]
    if counterexample is not None or Status.FALSIFIED in statuses:
        extra = (counterexample,) if counterexample is not None else ()
        reasons = [v.reason for v in verdicts if v.status == Status.FALSIFIED and v.reason]
        sim = ("simulation",) if counterexample is not None else ()
        return RequirementOutcome(
            req.text, Status.FALSIFIED, by + sim, "; ".join(reasons), evidence + extra, verdicts
        )
    if Status.UNKNOWN in statuses:
        reasons = [v.reason for v in verdicts if v.status == Status.UNKNOWN and v.reason]
        return RequirementOutcome(
            req.text, Status.UNKNOWN, by, "; ".join(reasons), evidence, verdicts
        )
    if statuses:
        best = Status.PROVED if Status.PROVED in statuses else Status.HOLDS
        return RequirementOutcome(req.text, best, by, "", (), verdicts)
    if n_sim:
        reason = f"no violation in {n_sim} simulated scenarios over {req.horizon} ticks"
        return RequirementOutcome(req.text, Status.HOLDS, ("simulation",), reason)
    skipped = [v.reason for v in report.verdicts if _matches(v, req) and v.reason]
    reason = "; ".join(skipped) or "no analysis in this install decides it"
    return RequirementOutcome(req.text, Status.SKIPPED, (), reason)


@functools.lru_cache(maxsize=16)
def _source(path: str) -> SourceFile | None:
    try:
        return SourceFile(path, Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def explain(outcome: RequirementOutcome, source: SourceFile | None = None) -> str:
    """An outcome as text: the requirement, its status and why, each finding and its trace."""
    from coherence.reports._common import finding_text

    by = f" by {', '.join(outcome.by)}" if outcome.by else ""
    lines = [f"{outcome.requirement}: {outcome.status.value}{by}"]
    if outcome.reason:
        lines.append(f"  {outcome.reason}")
    for f in outcome.findings:
        lines += ["", finding_text(f, source if source is not None else _source(f.span.path))]
    return "\n".join(lines)


def assert_requirement(
    ts: TransitionSystem,
    requirement: str | int,
    *,
    options: CheckOptions | None = None,
    scenarios: Sequence[str] | None = None,
    allow_unknown: bool = False,
    strict: bool = False,
) -> list[RequirementOutcome]:
    """Assert that a requirement of the system holds (every one, when a kind names several).

    Fails when it is falsified (by an analysis or in simulation), when it is unknown (unless
    ``allow_unknown``), and, with ``strict``, when nothing in this install could decide it.
    Returns the outcomes.
    """
    report = evaluate(ts, options)
    outcomes = [
        requirement_outcome(ts, r, report, scenarios=scenarios)
        for r in requirements_named(ts, requirement)
    ]
    bad = [
        o
        for o in outcomes
        if o.status == Status.FALSIFIED
        or (o.status == Status.UNKNOWN and not allow_unknown)
        or (o.status == Status.SKIPPED and strict)
    ]
    if bad:
        raise RequirementFailed("\n\n".join(explain(o) for o in bad), bad)
    return outcomes


def assert_coherent(
    ts: TransitionSystem,
    *,
    options: CheckOptions | None = None,
    scenarios: Sequence[str] | None = None,
    allow_degraded: bool = True,
    allow_unknown: bool = False,
    strict: bool = False,
) -> SystemReport:
    """Assert that the loops stay coherent: no error-level finding, every requirement met.

    Warnings (degraded coherence) pass unless ``allow_degraded=False``. An analysis that
    fails internally (COH903, e.g. one still being written) does not decide anything unless
    ``strict``. Returns the system's report.
    """
    report = evaluate(ts, options)
    problems: list[str] = []
    errors = [
        f for f in report.findings if f.level == Severity.ERROR and (strict or f.code != "COH903")
    ]
    if not allow_degraded:
        errors += [f for f in report.findings if f.level == Severity.WARNING]
    if errors:
        from coherence.reports._common import finding_text

        problems += [finding_text(f, _source(f.span.path)) for f in errors]
    failed = []
    for r in ts.requirements:
        o = requirement_outcome(ts, r, report, scenarios=scenarios)
        if (
            o.status == Status.FALSIFIED
            or (o.status == Status.UNKNOWN and not allow_unknown)
            or (o.status == Status.SKIPPED and strict)
        ):
            failed.append(o)
    problems += [explain(o) for o in failed]
    if report.coherence == Coherence.INCONCLUSIVE and not allow_unknown and not failed:
        problems.append("control coherence is inconclusive: an analysis could not decide")
    if problems:
        raise RequirementFailed(
            f"system `{ts.name}` is not coherent:\n\n" + "\n\n".join(problems), failed
        )
    return report
