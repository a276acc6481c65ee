"""Replayable runs: what the simulator needs to reproduce one trace exactly.

A :class:`Scenario` is the initial value of every state (registers, history and cooldown
counters included), the input of every tick, the value of every parameter and the tick of the
hyperperiod it starts at. Whoever proposes a run (a solver model, read out by
:func:`coherence.smt.replay.scenario_from_model`; a simulated input pattern) hands over a
scenario, and :func:`replay` runs it in the reference semantics before anyone believes it.
NumPy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import Expr, Phase, TransitionSystem, map_children
from coherence.simulate.engine import Trace, simulate


@dataclass(frozen=True, slots=True)
class Scenario:
    """Inputs ``[T, n_inputs]``, parameter values and the initial value of every state.

    ``phase`` is the tick of the hyperperiod the scenario starts at (0 for runs from the
    initial state); replay rotates the loops' phases so tick 0 of the replay is that tick.
    """

    inputs: NDArray[np.float64]
    params: Mapping[str, float]
    init: Mapping[str, float]
    phase: int = 0

    @property
    def ticks(self) -> int:
        return int(self.inputs.shape[0])


def replay(ts: TransitionSystem, sc: Scenario, ticks: int | None = None) -> Trace:
    """Run the scenario in the simulator (the reference semantics)."""
    n = sc.ticks if ticks is None else ticks
    inputs = sc.inputs
    if inputs.shape[0] < n:
        pad = np.repeat(inputs[-1:], n - inputs.shape[0], axis=0) if len(inputs) else None
        inputs = np.concatenate([inputs, pad]) if pad is not None else inputs
    system = rotate_phases(ts, sc.phase) if sc.phase else ts
    return simulate(
        system, n, inputs=inputs[None, :n, :], params=dict(sc.params), init=dict(sc.init)
    )


def rotate_phases(ts: TransitionSystem, shift: int) -> TransitionSystem:
    """The system whose tick 0 is tick ``shift`` of ``ts`` (every ``Phase`` offset moved).

    ``Phase(p, o)`` is true at tick ``t`` iff ``t % p == o``; in the rotated system tick ``t``
    stands for tick ``t + shift``, so its phase is ``Phase(p, (o - shift) % p)``. Nothing else
    in the system depends on the tick.
    """

    def rot(e: Expr) -> Expr:
        match e:
            case Phase(p, o):
                return Phase(p, (o - shift) % p, e.span)
        return map_children(e, rot)

    lets = tuple(replace(d, expr=rot(d.expr)) for d in ts.lets)
    states = tuple(replace(s, update=rot(s.update), init=rot(s.init)) for s in ts.states)
    return replace(ts, lets=lets, states=states)
