"""Small helpers shared by tests."""

from __future__ import annotations

import numpy as np

from coherence.compile import compile_text
from coherence.diagnostics import render
from coherence.ir.nodes import TransitionSystem
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
