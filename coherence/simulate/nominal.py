"""The nominal-scenario analysis that `coherence check` runs on every system.

Simulates the nominal inputs from the initial state and reports what the reference semantics
shows directly: non-finite values (COH507), plant states whose updates leave their declared
range (COH505), and keep-objectives violated beyond their tolerance (COH506).
"""

from __future__ import annotations

import time

import numpy as np

from coherence.ir.limits import (
    LIMIT_CODE,
    MAX_RUN_TICKS,
    MAX_TRACE_VALUES,
    beyond_limits,
    max_ticks,
)
from coherence.ir.nodes import TransitionSystem
from coherence.results import AnalysisResult, Finding, Table
from coherence.simulate.engine import Trace, nominal_trace
from coherence.simulate.requirements import objective_violations
from coherence.simulate.view import show, trace_view


def wanted_ticks(ts: TransitionSystem) -> int:
    """How long the nominal run should be: 300 ticks, ten hyperperiods, every horizon."""
    horizons = [r.horizon for r in ts.requirements if r.horizon]
    return max([300, 10 * ts.hyperperiod, *horizons])


def default_ticks(ts: TransitionSystem) -> int:
    """The nominal run's length: :func:`wanted_ticks` within the simulator's limits
    (:data:`~coherence.ir.limits.MAX_RUN_TICKS` and a run's values)."""
    return min(wanted_ticks(ts), MAX_RUN_TICKS, max_ticks(1, len(ts.states) + len(ts.lets)))


def summary_table(ts: TransitionSystem, trace: Trace, scenario: int = 0, title: str = "") -> Table:
    """Per declared state and keep objective: min, max, final, and the first violation."""
    rows: list[tuple[str | float | int | bool | None, ...]] = []
    for i, s in enumerate(ts.states):
        if s.kind not in ("plant", "actuator"):
            continue
        x = trace.states[scenario, :, i]
        clip = trace.clipped[scenario, :, i]
        first = int(np.argmax(clip)) if clip.any() else None
        when = "" if first is None else f"clamped at t={first * ts.tick:g}s"
        if not np.isfinite(x).all():
            when = f"non-finite at t={int(np.argmax(~np.isfinite(x))) * ts.tick:g}s"
        rows.append(
            (
                s.name,
                s.unit,
                show(float(np.nanmin(x)), s.scale),
                show(float(np.nanmax(x)), s.scale),
                show(float(x[-1]), s.scale),
                when,
            )
        )
    viol = objective_violations(ts, trace)
    from coherence.simulate.engine import evaluate

    for o in ts.objectives:
        v = evaluate(o.expr, trace)[scenario]
        when = ""
        if o.name in viol and viol[o.name][scenario] >= 0:
            when = f"violated at t={int(viol[o.name][scenario]) * ts.tick:g}s"
        label = f"{o.name} ({o.kind})"
        rows.append(
            (
                label,
                o.unit,
                show(float(np.nanmin(v)), o.scale),
                show(float(np.nanmax(v)), o.scale),
                show(float(v[-1]), o.scale),
                when,
            )
        )
    return Table(
        title or f"Simulation: {trace.ticks} ticks ({trace.ticks * ts.tick:g}s)",
        ("name", "unit", "min", "max", "final", "violation"),
        tuple(rows),
    )


def nominal_analysis(ts: TransitionSystem, ticks: int | None = None) -> AnalysisResult:
    start = time.perf_counter()
    why = beyond_limits(ts)
    if why:  # the default run is ten hyperperiods long
        f = Finding(LIMIT_CODE, f"the simulate analysis did not run: {why}", ts.span,
                    key="limit:simulate")  # fmt: skip
        return AnalysisResult("simulate", (f,))
    asked = ticks or wanted_ticks(ts)
    n = min(asked, MAX_RUN_TICKS, max_ticks(1, len(ts.states) + len(ts.lets)))
    trace = nominal_trace(ts, n)
    findings: list[Finding] = []
    if n < asked:
        findings.append(
            Finding(
                LIMIT_CODE,
                f"the nominal scenario was simulated for {n:,} ticks, not {asked:,}: the "
                f"limits are {MAX_RUN_TICKS:,} ticks and {MAX_TRACE_VALUES:,} values per "
                f"simulated run (this system holds {len(ts.states) + len(ts.lets):,} per tick)",
                ts.span,
                help="what happens after the last tick simulated is not shown; shorten the "
                "horizons or the windows, or pass a smaller --ticks",
                key="limit:nominal",
            )
        )
    finite = np.isfinite(trace.states[0]).all(axis=0)
    for i, s in enumerate(ts.states):
        if not finite[i]:
            t = int(np.argmax(~np.isfinite(trace.states[0, :, i])))
            findings.append(
                Finding(
                    "COH507",
                    f"`{s.name}` becomes non-finite at t={t * ts.tick:g}s in the nominal scenario",
                    s.span,
                    help="look for a division by zero or a log of a non-positive value",
                    trace=trace_view(
                        ts, trace, title="nominal scenario", violation_tick=max(t - 1, 0)
                    ),
                    key=f"nonfinite:{s.name}",
                )
            )
    for i, s in enumerate(ts.states):
        if s.kind != "plant" or not finite[i]:
            continue
        clip = trace.clipped[0, :, i]
        if clip.any():
            t = int(np.argmax(clip))
            x = trace.states[0, t + 1, i]
            side = "upper" if abs(x - s.hi) <= abs(x - s.lo) else "lower"
            findings.append(
                Finding(
                    "COH505",
                    f"`{s.name}` is clamped at its {side} bound ({show(x, s.scale)} {s.unit}) at "
                    f"t={t * ts.tick:g}s in the nominal scenario",
                    s.span,
                    help="the model relies on the declared range here; model the limit explicitly "
                    "(e.g. `max(0, ...)`) or widen the range",
                    key=f"clipped:{s.name}:{side}",
                )
            )
    for name, first in sorted(objective_violations(ts, trace).items()):
        if first[0] >= 0:
            o = ts.objective(name)
            t = int(first[0])
            findings.append(
                Finding(
                    "COH506",
                    f"objective `{name}` is violated at t={t * ts.tick:g}s in the nominal scenario",
                    o.span,
                    trace=trace_view(ts, trace, title="nominal scenario", violation_tick=t),
                    key=f"objective:{name}",
                )
            )
    table = summary_table(ts, trace, title=f"Nominal scenario: {n} ticks ({n * ts.tick:g}s)")
    return AnalysisResult(
        "simulate", tuple(findings), (), (table,), (("ticks", n),), time.perf_counter() - start
    )
