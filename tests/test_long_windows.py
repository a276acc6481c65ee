"""An averaging window of hundreds of ticks is a sum of hundreds of registers: every backend
walks it, so it must not be a chain as deep as the window (a 900 s window at a 1 s tick
failed with RecursionError in the linear analysis and the simulator)."""

from __future__ import annotations

import numpy as np

from coherence.linear import analyze
from tests.helpers import run, system

BODY = """
  input demand : req/s in [80, 140] nominal 100
  state x : req/s in [0, 1000] init 0
  loop follow {
    every 1s
    senses demand as avg window 900s
    actuates x to avg
  }
  require stable
"""


def test_a_900_tick_window_averages_exactly_in_the_simulator() -> None:
    ticks = 1000
    step = [100.0] * 50 + [140.0] * (ticks - 50)
    trace = run(BODY, inputs={"demand": step}, ticks=ticks)
    x = trace.states[0, :, trace.ts.state_names.index("x")]
    # The loop acts one tick after it reads; the window then holds (50 + 900 - k) ticks at
    # 100 and the rest at 140 (registers start full of the initial value, 100): by hand.
    for k in (200, 600, 949, 990):
        seen = k - 1  # the reading that set x[k]
        newer = min(900, max(0, seen - 49))
        assert np.isclose(x[k], (newer * 140.0 + (900 - newer) * 100.0) / 900.0)


def test_a_900_tick_window_is_analysed_by_the_linear_analysis() -> None:
    result = analyze(system(BODY))
    assert not [f for f in result.findings if f.code == "COH903"]
