"""Replay: every solver answer is a scenario that the simulator runs before anyone believes it.

:func:`scenario_from_model` reads a :class:`~coherence.simulate.replay.Scenario` out of a Z3
model (rationals converted exactly, then rounded once to the nearest float; algebraic numbers
through a 40-digit decimal); :func:`~coherence.simulate.replay.replay` (re-exported here) runs
it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from coherence.simulate.replay import Scenario, replay, rotate_phases
from coherence.smt.solver import to_float
from coherence.smt.terms import Num
from coherence.smt.unroll import Path

__all__ = ["Scenario", "replay", "rotate_phases", "scenario_from_model", "value"]


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
