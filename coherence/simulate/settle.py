"""The nominal operating point of the simulation-based and formal analyses: where the nominal
run from the initial state comes to rest, and whether it does.

:func:`operating_point` runs the system at nominal input from its initial state for
:func:`settle_ticks` ticks (whole hyperperiods) and reads the state at the end. It is
*settled* when no plant or actuator state moved over the last hyperperiod by more than
``SETTLED`` of its scale (its declared range where that is finite, else its magnitude): a run
that still drifts, or that cycles within the hyperperiod, is not at rest, and the point says
why. The conflict search reads it as the value of the states a solver query leaves free, the
equilibria as the good point their triggers start from, and every report that names it says
whether it settled.

The linear analysis solves for its equilibrium (:mod:`coherence.linear.oppoint`) from the
same initial state and replays it; where the nominal run settles, both are the same point
(to the settling tolerance). Where it does not, the linear analysis says so too (COH305,
COH313), and this point is the state the nominal run has reached, marked unsettled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from coherence.ir.nodes import TransitionSystem
from coherence.simulate.engine import nominal_trace

SETTLED = 1e-3  # the largest move over the last hyperperiod, as a share of a state's scale


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """The nominal run's state after ``ticks`` ticks; ``settled`` when it was at rest over
    its last hyperperiod, with ``reason`` saying why not otherwise."""

    state: Mapping[str, float]
    ticks: int
    settled: bool
    reason: str = ""


def settle_ticks(ts: TransitionSystem, settle: int | None = None) -> int:
    """How long the nominal run goes before its state is read: ``settle`` if given, else
    twenty hyperperiods and at least 300 ticks, rounded down to whole hyperperiods (the
    phase is 0 again)."""
    if settle is not None:
        return settle
    h = ts.hyperperiod
    return max(20 * h, 300) // h * h


def operating_point(ts: TransitionSystem, ticks: int) -> OperatingPoint:
    """The nominal run's state after ``ticks`` ticks and whether it had settled.

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", "system s { tick 1s state x in [0, 10] init 8 "
    ...                   "next x = 0.5 * x + 1 }").systems[0]
    >>> p = operating_point(ts, 300)
    >>> round(p.state["x"], 6), p.settled
    (2.0, True)
    """
    tr = nominal_trace(ts, ticks)
    end = {n: float(tr.states[0, -1, i]) for i, n in enumerate(ts.state_names)}
    h = min(ts.hyperperiod, ticks)
    worst, name = 0.0, ""
    for i, s in enumerate(ts.states):
        if s.kind not in ("plant", "actuator"):
            continue
        x = tr.states[0, ticks - h : ticks + 1, i]
        span = s.hi - s.lo
        scale = span if math.isfinite(span) and span > 0 else max(float(np.max(np.abs(x))), 1.0)
        with np.errstate(all="ignore"):
            move = float(np.max(np.abs(x - x[-1]))) / scale
        if not math.isfinite(move):
            return OperatingPoint(end, ticks, False, f"`{s.name}` is not finite on the nominal run")
        if move > worst:
            worst, name = move, s.name
    if worst <= SETTLED:
        return OperatingPoint(end, ticks, True)
    why = (
        f"the nominal run has not settled after {ticks * ts.tick:g}s: `{name}` still moves by "
        f"{100 * worst:.3g}% of its range over the last hyperperiod"
    )
    return OperatingPoint(end, ticks, False, why)
