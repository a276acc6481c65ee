"""What a sweep varies: knobs, their values as the spec writes them, the grid and its lattice.

A *knob* is one number of a spec that a sweep or a fix may change:

- a ``param`` (``target``), in the parameter's declared unit;
- a loop's shaping value, named ``LOOP.KIND``: ``period`` (``every``), ``delay`` and
  ``window`` (of what it senses), ``stabilize`` (``stabilize_down``, ``stabilize_up``),
  ``cooldown`` and ``tolerance``; a loop without a ``stabilize`` or ``cooldown`` clause has
  the knob at 0, and a non-zero value adds the clause;
- a state's bound, ``STATE.max`` / ``STATE.min`` (the power cap's maximum replicas is
  ``replicas.max``).

A bare shaping name (``window``) means the one loop that has it. The spec with other values
is the spec's *text* with those numbers rewritten (:func:`with_values`): it compiles through
the ordinary front end, so a swept spec means exactly what the same edit by hand would, and
a fix can be shown as the line it changes. Parameters are also substituted straight into the
compiled system (:func:`with_params`), which is what most points need.

Durations snap to whole ticks (stabilization windows to whole periods of their loop), integer
states' bounds to integers: a sweep never evaluates a value the language would reject.

The grid lives on an integer *lattice* per axis (``LATTICE`` subdivisions between base grid
points), so points found by refinement are exact and shared between neighbouring cells.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, replace

from coherence.compile import CompileResult, compile_text
from coherence.diagnostics import CoherenceError
from coherence.frontend import ast
from coherence.frontend.units import UnitError, UnitTable
from coherence.ir.nodes import TransitionSystem

SHAPING = ("period", "delay", "window", "stabilize_down", "stabilize_up", "cooldown", "tolerance")
ALIASES = {"every": "period", "stabilize": "stabilize_down", "stabilization": "stabilize_down"}
DURATIONS = ("period", "delay", "window", "stabilize_down", "stabilize_up", "cooldown")
LEVELS = 10  # refinement levels a cell can be halved to
LATTICE = 2**LEVELS


@dataclass(frozen=True, slots=True)
class Knob:
    """One number of a spec that can be varied.

    ``current`` is in canonical units (seconds for durations). ``start``/``end`` locate the
    number's text in the spec (``None`` for an absent clause, which ``insert`` adds at
    ``insert_at``). ``per_written`` converts canonical values to the unit the spec wrote
    (``written = canonical / per_written``). ``step`` is the snapping step (0: none).
    """

    name: str
    kind: str  # param | one of SHAPING | max | min
    owner: str | None
    current: float
    unit: str
    scale: float
    start: int | None
    end: int | None
    written_unit: str | None
    per_written: float
    step: float
    insert_at: int | None = None
    insert: str = ""
    minimum: float = -math.inf

    @property
    def structural(self) -> bool:
        """Whether a new value needs the spec compiled again (everything but a param)."""
        return self.kind != "param"

    @property
    def duration(self) -> bool:
        return self.kind in DURATIONS

    @property
    def label(self) -> str:
        """The knob in words: ``window of hpa``, ``stabilize down of hpa``, ``target``."""
        if self.kind == "param":
            return self.name
        words = self.kind.replace("_", " ")
        return f"{words} of {self.owner}"

    def show(self, value: float) -> str:
        """A value in the unit a reader expects (seconds for durations), four digits."""
        if self.duration:
            return f"{_num(value, 4)} s"
        if self.kind == "tolerance":
            return f"{_num(value * 100, 4)}%"
        shown = value / self.scale if self.scale else value
        if self.unit in ("", "1"):
            return _num(shown, 4)
        return f"{_num(shown, 4)}{'' if self.unit == '%' else ' '}{self.unit}"

    def snap(self, value: float) -> float:
        if self.step > 0:
            value = round(value / self.step) * self.step
        return max(value, self.minimum)

    def text(self, value: float) -> str:
        """The spec text of ``value`` in the unit the spec wrote it in."""
        if self.duration and self.written_unit is None:
            return f"{_num(value)}s"
        written = value / self.per_written if self.per_written else value
        if self.written_unit is None:
            return _num(written, 12)
        sep = "" if self.written_unit == "%" else " "
        return f"{_num(written, 12)}{sep}{self.written_unit}"


def _num(x: float, digits: int = 6) -> str:
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.{digits}g}"


# ---- finding the knobs of a spec -------------------------------------------------------------


def spec_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compile_spec(path: str, text: str, system: str | None = None) -> tuple[CompileResult, int]:
    """Compile ``text``; the index of the system to sweep. Errors are usage errors."""
    from coherence.diagnostics import Severity, render

    result = compile_text(path, text)
    if not result.ok:
        msgs = "\n\n".join(
            render(d, result.source) for d in result.diagnostics if d.level == Severity.ERROR
        )
        raise CoherenceError(f"`{path}` has errors:\n\n{msgs}", "run `coherence lint` on it")
    names = [ts.name for ts in result.systems]
    if system is None:
        if len(names) > 1:
            raise CoherenceError(
                f"`{path}` declares {len(names)} systems", f"pick one: --system {names[0]}"
            )
        return result, 0
    if system not in names:
        raise CoherenceError(f"`{path}` has no system `{system}`", f"its systems: {names}")
    return result, names.index(system)


class _Offsets:
    def __init__(self, text: str) -> None:
        self.starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.starts.append(i + 1)

    def at(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column - 1


def _seconds(num: ast.Num, tick: float) -> float:
    if num.unit is None or num.unit in ("tick", "ticks"):
        return num.value * tick
    return num.value * UnitTable.new().parse(num.unit).scale


def knobs_of(
    text: str, path: str, system: str | None = None
) -> tuple[TransitionSystem, dict[str, Knob]]:
    """The system and every knob it has, by canonical name.

    >>> spec = '''system s { tick 1s  param k = 0.5  state x in [0, 9] init 1
    ...   loop c { every 2s  senses x window 4s  actuates x by k * (5 - x) } }'''
    >>> ts, knobs = knobs_of(spec, "s.coh")
    >>> sorted(knobs)
    ['c.cooldown', 'c.period', 'c.stabilize_down', 'c.window', 'k', 'x.max', 'x.min']
    >>> knobs["c.window"].current, knobs["k"].current
    (4.0, 0.5)
    """
    result, index = compile_spec(path, text, system)
    ts = result.systems[index]
    assert result.module is not None
    decl = next(s for s in result.module.systems if s.name == ts.name)
    off = _Offsets(text)
    out: dict[str, Knob] = {}

    def where(span: object) -> tuple[int, int]:
        from coherence.source import Span

        assert isinstance(span, Span)
        return off.at(span.line, span.column), off.at(span.end_line, span.end_column)

    tick = ts.tick
    integer_states = {s.name for s in ts.states if s.integer}
    for item in decl.items:
        if isinstance(item, ast.ParamDecl):
            p = ts.param(item.name)
            if item.bind is not None:
                continue  # bound to a calibration profile: measured, not chosen
            a, b = where(item.value.span)
            wu = item.value.unit if isinstance(item.value, ast.Num) else None
            pw = (
                p.value / item.value.value
                if isinstance(item.value, ast.Num) and item.value.value
                else (p.scale or 1.0)
            )
            out[p.name] = Knob(p.name, "param", None, p.value, p.unit, p.scale, a, b, wu, pw, 0.0)
        elif isinstance(item, ast.StateDecl):
            s = ts.state(item.name)
            for kind, num, cur in (("max", item.range.hi, s.hi), ("min", item.range.lo, s.lo)):
                a, b = where(num.span)
                pw = cur / num.value if num.value else (s.scale or 1.0)
                step = 1.0 if item.name in integer_states else 0.0
                out[f"{s.name}.{kind}"] = Knob(
                    f"{s.name}.{kind}", kind, s.name, cur, s.unit, s.scale, a, b, num.unit, pw, step
                )
        elif isinstance(item, ast.LoopDecl):
            out.update(_loop_knobs(item, text, tick, where, ts))
    return ts, out


def _loop_knobs(
    lp: ast.LoopDecl, text: str, tick: float, where: object, ts: TransitionSystem
) -> dict[str, Knob]:
    assert callable(where)
    out: dict[str, Knob] = {}
    period = ts.loop(lp.name).period

    def add(kind: str, num: ast.Num, step: float, minimum: float) -> None:
        a, b = where(num.span)
        if kind == "tolerance":
            cur = num.value * (0.01 if num.unit == "%" else 1.0)
            unit, per = "1", (cur / num.value if num.value else 1.0)
            step = 0.0
        else:
            cur = _seconds(num, tick)
            unit, per = "s", (cur / num.value if num.value else 1.0)
        name = f"{lp.name}.{kind}"
        out[name] = Knob(
            name, kind, lp.name, cur, unit, 1.0, a, b, num.unit, per, step, minimum=minimum
        )

    senses = [i for i in lp.items if isinstance(i, ast.Sense)]
    for item in lp.items:
        match item:
            case ast.LoopClause("every", value):
                add("period", value, tick, tick)
            case ast.LoopClause("cooldown", value):
                add("cooldown", value, tick, 0.0)
            case ast.LoopClause("tolerance", value):
                add("tolerance", value, 0.0, 0.0)
            case ast.Stabilize(direction, window):
                if direction in ("down", "both"):
                    add("stabilize_down", window, period * tick, 0.0)
                if direction in ("up", "both"):
                    add("stabilize_up", window, period * tick, 0.0)
    if len(senses) == 1:
        s = senses[0]
        if s.delay is not None:
            add("delay", s.delay, tick, 0.0)
        if s.window is not None:
            add("window", s.window, tick, tick)
    # absent clauses: the knob is at 0 and a value adds the clause before the loop's `}`
    close = where(lp.span)[1] - 1
    assert text[close] == "}", "a loop's span ends at its closing brace"
    line_start = text.rfind("\n", 0, close) + 1
    blank = text[line_start:close].strip() == ""
    indent = " " * (len(text[line_start:close]) + 2) if blank else ""
    at = line_start if blank else close
    for kind, clause in (
        ("stabilize_down", "stabilize down"),
        ("cooldown", "cooldown"),
    ):
        name = f"{lp.name}.{kind}"
        if name in out or (kind == "stabilize_down" and f"{lp.name}.stabilize_up" in out):
            continue
        ins = f"{indent}{clause} {{}}\n" if blank else f" {clause} {{}} "
        step = period * tick if kind == "stabilize_down" else tick
        out[name] = Knob(
            name,
            kind,
            lp.name,
            0.0,
            "s",
            1.0,
            None,
            None,
            None,
            1.0,
            step,
            insert_at=at,
            insert=ins,
            minimum=0.0,
        )
    return out


def resolve(name: str, knobs: dict[str, Knob]) -> Knob:
    """The knob ``name`` means: a canonical name, an alias (``LOOP.every``) or a bare shaping
    name that one loop has (``window``)."""
    if name in knobs:
        return knobs[name]
    head, dot, kind = name.rpartition(".")
    kind = ALIASES.get(kind, kind)
    if dot and f"{head}.{kind}" in knobs:
        return knobs[f"{head}.{kind}"]
    if not dot and kind in SHAPING:
        present = [k for k in knobs.values() if k.kind == kind and k.start is not None]
        if len(present) == 1:
            return present[0]
        candidates = [k for k in knobs.values() if k.kind == kind]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise CoherenceError(
                f"`{name}` is ambiguous: several loops have one",
                "name the loop: " + ", ".join(f"`{k.name}`" for k in candidates),
            )
    import difflib

    close = difflib.get_close_matches(name, sorted(knobs), n=3)
    params = [k.name for k in knobs.values() if k.kind == "param"]
    raise CoherenceError(
        f"the spec has no param or shaping value `{name}`",
        ("did you mean " + " or ".join(f"`{c}`" for c in close) + "? ")
        if close
        else f"its params: {', '.join(params) or 'none'}; shaping values are LOOP.period, "
        "LOOP.window, LOOP.delay, LOOP.stabilize, LOOP.cooldown, LOOP.tolerance; bounds are "
        "STATE.max, STATE.min",
    )


# ---- `--vary NAME=LO..HI` --------------------------------------------------------------------

_QTY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")


@dataclass(frozen=True, slots=True)
class Axis:
    """One varied knob: its range (canonical units) and spacing."""

    knob: Knob
    lo: float
    hi: float
    log: bool

    def value(self, u: float) -> float:
        """The (snapped) value at ``u`` in [0, 1] along the axis."""
        if self.log:
            v = math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo)))
        else:
            v = self.lo + u * (self.hi - self.lo)
        return self.knob.snap(min(max(v, self.lo), self.hi) if self.knob.step == 0 else v)


def quantity(text: str, knob: Knob, tick: float) -> float:
    """A value of ``--vary`` in canonical units: ``30s``, ``10min``, ``0.7``, ``200 kW``, ``10%``."""
    m = _QTY.match(text)
    if not m:
        raise CoherenceError(f"`{text}` is not a number with an optional unit", "e.g. 30s, 0.7")
    value, unit = float(m.group(1)), m.group(2)
    if not unit:
        if knob.duration:
            return value  # seconds
        return value * (knob.scale or 1.0)
    try:
        u = UnitTable.new().parse(unit)
    except UnitError as e:
        raise CoherenceError(f"`{text}`: {e.message}", e.hint or "use the spec's units") from None
    if u.ticks:
        return value * tick
    if knob.duration and str(u.dim) != "s":
        raise CoherenceError(f"`{text}` is not a duration", f"`{knob.name}` takes e.g. 30s, 2min")
    return value * u.scale


def parse_vary(text: str, knobs: dict[str, Knob], tick: float, spacing: str = "auto") -> Axis:
    """``NAME=LO..HI`` as an axis; ``spacing`` is ``log``, ``linear`` or ``auto`` (log when
    the range spans a factor of 10 or more and is positive)."""
    name, eq, rng = text.partition("=")
    lo_t, dots, hi_t = rng.partition("..")
    if not eq or not dots or not name.strip():
        raise CoherenceError(f"`--vary {text}`: write NAME=LO..HI", "e.g. --vary window=30s..10min")
    knob = resolve(name.strip(), knobs)
    lo, hi = quantity(lo_t, knob, tick), quantity(hi_t, knob, tick)
    if not lo < hi:
        raise CoherenceError(f"`--vary {text}`: LO must be below HI", "e.g. window=30s..10min")
    if spacing == "auto":
        log = lo > 0 and hi / lo >= 10
    else:
        log = spacing == "log"
        if log and lo <= 0:
            raise CoherenceError(
                f"`--vary {text}`: log spacing needs a positive range", "use --spacing linear"
            )
    return Axis(knob, lo, hi, log)


# ---- the spec with other values ------------------------------------------------------------


def with_values(text: str, knobs: dict[str, Knob], values: dict[str, float]) -> str:
    """``text`` with each named knob's number rewritten (clauses added where absent)."""
    edits: list[tuple[int, int, str]] = []
    for name, v in values.items():
        k = knobs[name]
        if k.start is not None and k.end is not None:
            edits.append((k.start, k.end, k.text(v)))
        elif v != 0 and k.insert_at is not None:
            edits.append((k.insert_at, k.insert_at, k.insert.format(k.text(v))))
    out = text
    for a, b, new in sorted(edits, reverse=True):
        out = out[:a] + new + out[b:]
    return out


def with_params(ts: TransitionSystem, values: dict[str, float]) -> TransitionSystem:
    """``ts`` with parameter values replaced (their uncertainty ranges collapse onto them)."""
    if not values:
        return ts
    params = tuple(
        replace(p, value=values[p.name], lo=values[p.name], hi=values[p.name])
        if p.name in values
        else p
        for p in ts.params
    )
    return replace(ts, params=params)


def with_param_box(ts: TransitionSystem, box: dict[str, tuple[float, float]]) -> TransitionSystem:
    """``ts`` with each named parameter uncertain within its box (value at the centre): what
    the formal analysis certifies for every value at once."""
    params = tuple(
        replace(
            p, value=(box[p.name][0] + box[p.name][1]) / 2, lo=box[p.name][0], hi=box[p.name][1]
        )
        if p.name in box
        else p
        for p in ts.params
    )
    return replace(ts, params=params)
