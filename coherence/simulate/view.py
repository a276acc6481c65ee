"""Readable traces: per tick, which loops acted, what they sensed, what they set.

Built from a simulator :class:`~coherence.simulate.engine.Trace`, so every trace a report shows
is one the reference semantics produced.
"""

from __future__ import annotations

from coherence.ir.dump import fmt_num
from coherence.ir.nodes import Let, StateVar, TransitionSystem
from coherence.results import TraceStep, TraceView
from coherence.simulate.engine import Trace, evaluate


def show(value: float, scale: float) -> str:
    v = value / scale if scale else value
    if abs(v) >= 1e5 or (0 < abs(v) < 1e-3):
        return f"{v:.3g}"
    return f"{v:.4g}"


def user_columns(ts: TransitionSystem) -> list[tuple[str, str, float, str]]:
    """(label, kind, scale, name) of the inputs, declared states and keep-objective values."""
    cols: list[tuple[str, str, float, str]] = []
    for u in ts.inputs:
        cols.append((f"{u.name} [{u.unit}]", "input", u.scale, u.name))
    for s in ts.states:
        if s.kind in ("plant", "actuator"):
            cols.append((f"{s.name} [{s.unit}]", "state", s.scale, s.name))
    return cols


def _unit(unit: str) -> str:
    return "" if unit in ("1", "bool") else f" {unit}"


def trace_view(
    ts: TransitionSystem,
    trace: Trace,
    scenario: int = 0,
    title: str = "",
    violation_tick: int | None = None,
    last_tick: int | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    inputs_note: str = "",
) -> TraceView:
    """A readable view of one scenario of a trace.

    ``extra`` adds (label, let-or-objective name) columns, for example the violated objective.
    Steps run from tick 0 to ``last_tick`` (default: the violation tick + 1, or the end).
    """
    cols = user_columns(ts)
    for label, name in extra:
        scale = 1.0
        for d in ts.lets:
            if d.name == name:
                scale = d.scale
        cols.append((label, "series", scale, name))
    seen_exprs = []
    for o in ts.objectives:
        if o.kind == "keep" and o.bound is not None and o.expr not in seen_exprs:
            seen_exprs.append(o.expr)
            cols.append((f"{o.name} [{o.unit}]", "objective", o.scale, o.name))
    series = {}
    for _, kind, _, name in cols:
        if kind == "objective":
            series[name] = evaluate(ts.objective(name).expr, trace)[scenario]
        else:
            series[name] = trace.series(name)[scenario]
    end = trace.ticks - 1
    if last_tick is not None:
        end = min(end, last_tick)
    elif violation_tick is not None:
        end = min(end, violation_tick + 1)
    # per loop, the series and declarations each step reads (looked up once)
    lets: dict[str, Let] = {}
    for d in ts.lets:
        lets.setdefault(d.name, d)
    states: dict[str, StateVar] = {}
    for st in ts.states:
        states.setdefault(st.name, st)
    loops = [
        (
            lp.name,
            trace.let(lp.fires)[scenario],
            [
                (sn.alias, trace.let(sn.name)[scenario], lets[sn.name].scale, lets[sn.name].unit)
                for sn in lp.sensors
            ],
            [
                (
                    a.state,
                    trace.let(a.changes)[scenario],
                    states[a.state],
                    trace.state(a.state)[scenario],
                    trace.let(a.target)[scenario],
                )
                for a in lp.actions
            ],
        )
        for lp in ts.loops
    ]
    steps = []
    for t in range(end + 1):
        events: list[str] = []
        significant = False
        for name, fires, sensors, actions in loops:
            if not fires[t]:
                continue
            sensed = ", ".join(
                f"{alias}={show(sig[t], scale)}" + _unit(unit)
                for alias, sig, scale, unit in sensors
            )
            sets = []
            for state, changes, st, olds, news in actions:
                if changes[t]:
                    old = olds[t]
                    new = news[t]
                    sets.append(
                        f"{state} {show(old, st.scale)} -> {show(new, st.scale)}" + _unit(st.unit)
                    )
                    span = max(abs(old), abs(new), 1e-12)
                    if st.hi > st.lo and st.hi - st.lo < float("inf"):
                        span = st.hi - st.lo
                    significant |= abs(new - old) > 0.01 * span
            if sets or sensed:
                text = name
                if sensed:
                    text += f" saw {sensed}"
                text += ("; set " + ", ".join(sets)) if sets else "; held"
                events.append(text)
        values = tuple(float(series[c[3]][t]) / (c[2] or 1.0) for c in cols)
        steps.append(
            TraceStep(t, t * ts.tick, values, tuple(events), t == violation_tick, significant)
        )
    return TraceView(
        title or f"{ts.name}: {fmt_num(trace.ticks)} ticks",
        tuple(c[0] for c in cols),
        tuple(steps),
        violation_tick,
        True,
        inputs_note,
    )
