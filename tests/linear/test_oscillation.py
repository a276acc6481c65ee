"""Limit cycles measured on replayed runs, against hand-computed periods.

A relay with hysteresis h around a discrete integrator y(k+1) = y(k) + u(k), the relay
reading y with a sensor delay of d ticks and acting one tick later (the tool's actuation):
    u(k+1) = -1 if y(k-d) > h, +1 if y(k-d) < -h, u(k) otherwise.
By hand: rising at one unit per tick, the relay first sees y(k-d) > h at y(k-d) = floor(h)+1,
so y(k) = floor(h)+1+d, the action lands one tick later, and y peaks at floor(h)+d+2; the run
is symmetric and ramps at one unit per tick, so the cycle is a triangle wave of amplitude
a = floor(h)+d+2 and period 4a ticks. Its continuous-time limit is the classical relay
oscillation of an integrator with dead time tau: T = 4 (tau + h / (k M)) (Åström & Hägglund,
Automatica 20(5), 1984), here with tau = d + 2 and h rounded up to the next unit step.
The describing-function (harmonic-balance) prediction for the same loop, relay with
hysteresis N(A) = 4M/(pi A) exp(-i asin(h/A)) (Slotine & Li, Applied Nonlinear Control,
1991, sec. 5.3), is an approximation: it is shown beside the measurement, within 15% here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from coherence.compile import compile_text
from coherence.simulate import simulate
from coherence.simulate.oscillation import measure, relay, relay_integrator, saturation

RELAY = """
system relay_loop {{
  tick 1s
  state y in [-1000, 1000] init 0
  state u in [-1, 1] init 1
  next y = y + u
  loop relay {{
    senses y delay {d}s
    actuates u to if y > {h} then -1 else if y < -{h} then 1 else u
  }}
}}
"""


@pytest.mark.parametrize(("h", "d"), [(2.5, 0), (2.5, 3), (5.5, 1), (0.5, 6)])
def test_relay_limit_cycle_matches_the_hand_computed_period(h: float, d: int) -> None:
    ts = compile_text("relay.coh", RELAY.format(h=h, d=d)).systems[0]
    y = np.asarray(simulate(ts, 600).state("y"))[0]
    lc = measure(y, ts.tick)
    assert lc is not None
    a = math.floor(h) + d + 2
    assert lc.growth == "sustained"
    assert lc.period_s == pytest.approx(4 * a, abs=1e-9)
    assert lc.amplitude == pytest.approx(a, abs=1e-9)
    df = relay_integrator(1.0, 1.0, h, d + 2.0)
    assert df is not None
    assert df.period_s == pytest.approx(lc.period_s, rel=0.15)


def test_growth_and_decay_are_told_apart() -> None:
    t = np.arange(600)
    grow = 1.01**t * np.sin(2 * np.pi * t / 25)
    fade = 0.99**t * np.sin(2 * np.pi * t / 25)
    g, f = measure(grow, 1.0), measure(fade, 1.0)
    assert g is not None and g.growth == "growing"
    assert f is not None and f.growth == "decaying"
    assert g.period_s == pytest.approx(25, rel=3e-2)
    assert measure(np.ones(100), 1.0) is None


def test_describing_functions_against_their_closed_forms() -> None:
    # ideal relay: 4M/(pi A) (Slotine & Li eq. 5.19)
    assert relay(2.0, 1.0) == pytest.approx(4 / (2 * math.pi))
    # hysteresis: the phase lag is asin(h/A)
    n = relay(2.0, 1.0, 1.0)
    assert math.atan2(n.imag, n.real) == pytest.approx(-math.asin(0.5))
    # saturation: k below the limit, -> 4 k delta / (pi A) far above it (eq. 5.24)
    assert saturation(0.5, 2.0, 1.0) == 2.0
    assert saturation(1e6, 2.0, 1.0) == pytest.approx(4 * 2.0 * 1.0 / (math.pi * 1e6), rel=1e-6)
