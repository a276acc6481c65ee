"""Replay: every solver answer is a scenario that the simulator runs before anyone believes it.

A :class:`Scenario` is what a trace needs to be reproduced by
:func:`coherence.simulate.simulate`: the initial value of every state (registers, history and
cooldown counters included), the input of every tick and the value of every parameter.
:func:`scenario_from_model` reads one out of a Z3 model (rationals converted exactly, then
rounded once to the nearest float; algebraic numbers through a 40-digit decimal);
:func:`replay` runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import Expr, Phase, TransitionSystem, map_children
from coherence.simulate.engine import Trace, simulate
from coherence.smt.encode import Num, Path
from coherence.smt.solver import to_float


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


def value(model: Any, term: Any) -> float:
    return to_float(model.eval(term, model_completion=True))


def scenario_from_model(model: Any, path: Path, ticks: int, phase: int = 0) -> Scenario:
    """The scenario of ``path``'s first ``ticks`` ticks in ``model``."""
    ts = path.ts
    inputs = np.empty((ticks, len(ts.inputs)))
    for t in range(ticks):
        at = path.inputs.at(t)
        for j, u in enumerate(ts.inputs):
            inputs[t, j] = _num_value(model, at[u.name])
    params = {p.name: _num_value(model, path.params[p.name]) for p in ts.params}
    f0 = path.frames[0]
    init = {}
    for s in ts.states:
        v = f0.values[s.name]
        assert isinstance(v, Num)
        init[s.name] = _num_value(model, v)
    return Scenario(inputs, params, init, phase)


def _num_value(model: Any, v: Num) -> float:
    if v.const is not None:
        return float(v.const)
    return value(model, v.term)


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
    from dataclasses import replace

    def rot(e: Expr) -> Expr:
        match e:
            case Phase(p, o):
                return Phase(p, (o - shift) % p, e.span)
        return map_children(e, rot)

    lets = tuple(replace(d, expr=rot(d.expr)) for d in ts.lets)
    states = tuple(replace(s, update=rot(s.update), init=rot(s.init)) for s in ts.states)
    return replace(ts, lets=lets, states=states)
