"""Cross-check with the reference simulator: "stable" means a small perturbation of the
operating point decays in simulation, "unstable" that it grows.

Generated specs: a first-order plant and one loop (integral `by` or proportional `to`), with
a random period (1-3 ticks), sensor delay (0-2 ticks) and averaging window (1-2 ticks).
Examples within 5% of the stability boundary are discarded, so that the horizon needed to
see decay or growth stays short and the check stays robust.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from coherence.compile import compile_text
from coherence.linear import LinearOptions, analyze
from coherence.simulate import simulate

MARGIN = 0.05


def _spec(a: float, b: float, k: float, period: int, delay: int, window: int, mode: str) -> str:
    law = f"by -{k:.4f} * (y - 2)" if mode == "by" else f"to -{k:.4f} * y"
    return f"""
system generated {{
  tick 1s
  state y in [-1000000000, 1000000000] init 0.3
  state u in [-1000000000, 1000000000] init 0
  next y = {a:.4f} * y + {b:.4f} * u + 1
  loop c {{
    every {period}s
    senses y delay {delay}s window {window}s
    actuates u {law}
  }}
  require stable
}}
"""


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    a=st.floats(-0.9, 0.9),
    b=st.floats(0.2, 3.0),
    k=st.floats(0.01, 2.0),
    period=st.integers(1, 3),
    delay=st.integers(0, 2),
    window=st.integers(1, 2),
    mode=st.sampled_from(["by", "to"]),
)
def test_verdict_matches_simulation(
    a: float,
    b: float,
    k: float,
    period: int,
    delay: int,
    window: int,
    mode: str,
) -> None:
    compiled = compile_text("generated.coh", _spec(a, b, k, period, delay, window, mode))
    assert compiled.ok, [d.message for d in compiled.diagnostics]
    ts = compiled.systems[0]
    data = dict(analyze(ts, LinearOptions(starts=0, margin_limit=0)).data)
    assume(data["operating_point"]["found"])
    rho = data["spectral_radius"]
    assume(abs(rho - 1) > MARGIN)
    event("stable" if rho < 1 else "unstable")
    H = ts.hyperperiod
    xs = data["operating_point"]["states"]
    dev0 = 1e-6 * (1 + max(abs(v) for v in xs.values()))
    init = {"y": xs["y"] + dev0, "u": xs["u"] - 0.5 * dev0}
    target = 1e-6 if rho < 1 else 1e6
    periods = 1 if rho < 1e-6 else math.ceil(math.log(target) / math.log(rho))
    ticks = min(periods, 4000) * H
    tr = simulate(ts, ticks, init=init)
    end = tr.states[0, -1]
    x_star = np.array([xs["y"], xs["u"]])
    dev = float(np.max(np.abs(end[:2] - x_star)))
    if rho < 1:
        assert dev <= 1e-3 * dev0 + 1e-12, (rho, dev, dev0)
    else:
        assert dev >= 1e3 * dev0, (rho, dev, dev0)
