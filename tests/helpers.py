"""Small helpers shared by tests."""

from __future__ import annotations

import numpy as np
import pytest

from coherence.compile import compile_text
from coherence.diagnostics import render
from coherence.ir import meaning
from coherence.ir.nodes import TransitionSystem
from coherence.ir.transform import hold_loop
from coherence.search.conflicts import ConflictRun
from coherence.search.conflicts import values as objective_values
from coherence.simulate.engine import Trace, simulate


def system(body: str, name: str = "t") -> TransitionSystem:
    text = f"system {name} {{\n  tick 1s\n{body}\n}}\n"
    result = compile_text(f"{name}.coh", text)
    errors = [d for d in result.diagnostics if d.level.name == "ERROR"]
    assert not errors, "\n".join(render(d, result.source) for d in errors)
    return result.systems[0]


def run(body: str, inputs: dict[str, list[float]] | None = None, ticks: int | None = None) -> Trace:
    ts = system(body)
    inputs = inputs or {}
    n = ticks or max((len(v) for v in inputs.values()), default=10)
    arr = np.array([[u.nominal for u in ts.inputs]] * n, dtype=float).reshape(n, len(ts.inputs))
    for name, values in inputs.items():
        j = ts.input_names.index(name)
        arr[: len(values), j] = values
    return simulate(ts, n, inputs=arr[None, :, :])


def copy_and_shadow(lag: float = 3.0, slew: str = "") -> TransitionSystem:
    """``x`` moves by the input ``u`` (in [-1, 1], with ``slew`` if given) a tick; ``copy``
    sets ``y`` to ``x`` and ``shadow`` sets ``w`` to ``y``, each every tick; ``shadow``
    wants ``y - w <= lag``. One tick after ``copy`` acts, ``y - w`` is the ``u`` of the tick
    before, at most 1 on every run."""
    return system(
        f"""  input u : 1 in [-1, 1] nominal 0 {slew}
  state x : 1 in [0, 10] init 5
  state y : 1 in [0, 10] init 5
  state w : 1 in [0, 10] init 5
  next x = x + u
  loop copy {{ every 1s actuates y to x }}
  loop shadow {{
    every 1s
    actuates w to y
    objective keep lag = y - w <= {lag:g}
  }}
  require coherent""",
        "s",
    )


def assert_replays(ts: TransitionSystem, w: ConflictRun) -> None:
    """A conflict witness replays on its own: its run re-simulated from the spec's initial
    state under its inputs (within their declared ranges), and the counterfactual in which
    its acting loop holds from the run's state at ``start_tick`` for ``k`` ticks, give the
    objective values it states, and the effect it states, above its threshold."""
    s = w.start_tick
    k = w.run.ticks - s - 1
    assert k >= w.tick >= 1 and w.counterfactual.ticks == k + 1
    inputs = np.asarray(w.run.inputs)
    for j, u in enumerate(ts.inputs):
        assert np.all((u.lo - 1e-9 <= inputs[..., j]) & (inputs[..., j] <= u.hi + 1e-9)), u.name
    run = simulate(ts, s + k + 1, inputs=inputs)
    init = {n: run.states[:, s, i] for i, n in enumerate(ts.state_names)}
    # the witness's run is the spec's own from its initial state, not from a chosen state
    assert np.allclose(run.states, w.run.states, rtol=1e-12, atol=1e-12, equal_nan=True)
    held = simulate(
        hold_loop(ts, w.actor), k + 1, inputs=inputs[:, s : s + k + 1], init=init, start_tick=s
    )
    assert run.let(ts.loop(w.actor).fires)[0, s] > 0.5  # the loop acts at the start tick
    o = ts.objective(w.objective)
    acting = float(objective_values(o.expr, run)[0, s + w.tick])
    holding = float(objective_values(o.expr, held, s)[0, w.tick])
    assert acting == pytest.approx(w.acting, rel=1e-9, abs=1e-12)
    assert holding == pytest.approx(w.holding, rel=1e-9, abs=1e-12)
    if o.kind == "keep":
        assert o.bound is not None
        ba = float(objective_values(o.bound, run)[0, s + w.tick])
        bh = float(objective_values(o.bound, held, s)[0, w.tick])
        effect = float(
            meaning.violation(o, np.array([acting]), np.array([ba]))[0]
            - meaning.violation(o, np.array([holding]), np.array([bh]))[0]
        )
    else:
        effect = acting - holding if o.kind == "minimize" else holding - acting
    assert effect == pytest.approx(w.effect, rel=1e-9, abs=1e-12)
    assert w.effect > w.threshold > 0
    if w.origin == "nominal":
        nominal = np.array([u.nominal for u in ts.inputs])
        assert np.allclose(inputs[0, :s], nominal, rtol=1e-12, atol=0.0)
