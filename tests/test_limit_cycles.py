"""Limit cycles reported as limit cycles: the flapping finding's measured cycle and its
describing-function prediction, the metastability trigger as structured data, and the nominal
run's measured cycle in COH313.

Closed forms used here:
- relay with hysteresis h around y(k+1) = y(k) + u(k), read through a d-tick sensor delay and
  acting one tick later: a triangle wave of amplitude a = floor(h) + d + 2 and period 4a ticks
  (by hand, see tests/linear/test_oscillation.py; Åström & Hägglund, Automatica 20(5), 1984).
  Its harmonic balance, relay N(A) = 4M/(pi A) exp(-i asin(h/A)) (Slotine & Li, Applied
  Nonlinear Control, 1991, sec. 5.3), on the sampled loop G(z) = z^-(d+1) / (z - 1) is the
  continuous one with a dead time of d + 1.5 ticks: arg G(e^{iw}) = -(d + 1.5) w - pi/2, and
  |G| = 1 / (2 sin(w/2)) ~ 1/w.
- saturation (slope 1, limit 1) around the same integrator with gain K, u = clamp(-K y(k-d)):
  the phase of G(e^{iw}) = K z^-(d+1) / (z - 1) crosses -pi where (d + 1.5) w = pi/2, so
  harmonic balance predicts the period 2 pi / w = 4 d + 6 ticks exactly, and the amplitude A
  at the saturation's input with N(A) = 1 / |G| = 2 sin(w/2) / K (Slotine & Li eq. 5.24).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.optimize import brentq

from coherence.compile import compile_text
from coherence.formal import analyze as formal
from coherence.linear import analyze as linear
from coherence.results import Finding
from coherence.simulate.oscillation import (
    find_nonlinearity,
    limit_cycle_data,
    relay_integrator,
    saturation,
)
from coherence.simulate.replay import Scenario

SPECS = Path(__file__).resolve().parent.parent / "specs"

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
  require no flapping of u max 2 within 60s
}}
"""

SAT = """
system sat_loop {{
  tick 1s
  state y in [-1000, 1000] init 0.1
  state u in [-100, 100] init 0
  next y = y + u
  loop ctl {{
    senses y delay {d}s
    actuates u to min(max(-{k} * y, -1), 1)
  }}
  require no flapping of u max 2 within 60s
}}
"""


def _data(f: Finding) -> dict[str, Any]:
    def thaw(v: Any) -> Any:
        pairs = isinstance(v, tuple) and v and all(isinstance(x, tuple) and len(x) == 2 for x in v)
        if pairs and all(isinstance(x[0], str) for x in v):
            return {k: thaw(x) for k, x in v}
        return v

    return {k: thaw(v) for k, v in f.data}


def _flapping(text: str) -> Finding:
    ts = compile_text("loop.coh", text).systems[0]
    res = formal(ts)
    found = [f for f in res.findings if f.code == "COH503"]
    assert len(found) == 1, [f.code for f in res.findings]
    return found[0]


@pytest.mark.parametrize(("h", "d"), [(2.5, 3), (5.5, 1)])
def test_relay_flapping_reports_the_measured_cycle_and_its_describing_function(
    h: float, d: int
) -> None:
    f = _flapping(RELAY.format(h=h, d=d))
    lc = _data(f)["limit_cycle"]
    a = math.floor(h) + d + 2  # hand-computed triangle wave
    assert lc["period_s"] == pytest.approx(4 * a, abs=1e-9)
    assert lc["amplitude"] == pytest.approx(1.0)  # u swings between -1 and 1
    assert lc["growth"] == "sustained"
    assert set(lc["states"]) == {"y", "u"} and lc["loops"] == ["relay"]
    df = lc["describing_function"]
    assert df["kind"] == "relay with hysteresis" and df["loop"] == "relay"
    # the sampled loop's harmonic balance is the continuous one with dead time d + 1.5
    # (|G| = 1/(2 sin(w/2)) against 1/w: within 1% at these frequencies)
    cont = relay_integrator(1.0, 1.0, h, d + 1.5)
    assert cont is not None
    assert df["period_s"] == pytest.approx(cont.period_s, rel=1e-2)
    assert df["amplitude"] == pytest.approx(cont.amplitude, rel=1e-2)
    # an approximation: beside the measurement, within 15% of the period
    assert df["period_s"] == pytest.approx(4 * a, rel=0.15)
    assert df["measured_amplitude"] == pytest.approx(a)
    note = next(n for n in f.notes if "oscillates with period" in n)
    assert f"period {4 * a:g} s" in note and "sustained" in note
    assert "describing function (relay with hysteresis of `relay`) predicts" in note


@pytest.mark.parametrize(("k", "d"), [(1.0, 2), (0.8, 3)])
def test_saturating_loop_period_matches_the_phase_crossover(k: float, d: int) -> None:
    f = _flapping(SAT.format(k=k, d=d))
    lc = _data(f)["limit_cycle"]
    df = lc["describing_function"]
    assert df["kind"] == "saturation"
    w = math.pi / (2 * d + 3)  # (d + 1.5) w = pi / 2
    assert df["period_s"] == pytest.approx(4 * d + 6, rel=1e-6)
    gain = k / (2 * math.sin(w / 2))  # |G(e^{iw})| at the crossover
    A = brentq(lambda x: saturation(x, 1.0, 1.0) - 1 / gain, 1.0, 1e9)
    # the prediction is for the saturation's input -k y
    assert df["amplitude"] == pytest.approx(A, rel=1e-6)
    assert lc["period_s"] == pytest.approx(4 * d + 6, rel=0.15)
    assert df["measured_amplitude"] == pytest.approx(A, rel=0.15)


def test_a_growing_oscillation_is_said_to_grow() -> None:
    # an unstable linear loop (no saturation before 1e9): y(k+1) = y(k) + u(k),
    # u = -0.9 y(k-2): the phase crosses -pi at w = pi/7 with |G| = 0.9/(2 sin(pi/14)) > 1
    ts = compile_text(
        "g.coh",
        "system g { tick 1s state y in [-1e9, 1e9] init 1 state u in [-1e9, 1e9] init 0 "
        "next y = y + u loop c { senses y delay 2s actuates u to -0.9 * y } }",
    ).systems[0]
    data, lc = limit_cycle_data(ts, "y", Scenario(np.zeros((1, 0)), {}, {}), 10)
    assert data is not None and lc is not None
    assert data["growth"] == "growing"
    assert data["describing_function"] == {
        "reason": "the law of `c` is smooth: no relay or saturation to balance"
    }
    from coherence.formal.findings import limit_cycle_note

    assert "still growing" in limit_cycle_note(ts, "y", data)


def test_shipped_flapping_autoscaler_has_a_measured_cycle() -> None:
    ts = compile_text(
        "hpa_lag_broken.coh", (SPECS / "conflicts/hpa_lag_broken.coh").read_text()
    ).systems[0]
    f = next(f for f in formal(ts).findings if f.code == "COH503")
    lc = _data(f)["limit_cycle"]
    assert lc is not None
    assert lc["period_s"] > 0 and lc["period_s"] % ts.tick == 0
    assert 1 <= lc["amplitude"] <= 19.5  # half of the replica range [1, 40] at most
    assert lc["growth"] == "sustained"
    assert lc["states"] == ["replicas"] and lc["loops"] == ["hpa"]
    # a tolerance band around a ceil quantiser of a whole number: no single nonlinearity
    assert "quantiser (ceil)" in lc["describing_function"]["reason"]
    assert find_nonlinearity(ts, ts.loops[0]) == lc["describing_function"]["reason"]
    assert any("oscillates with period" in n for n in f.notes)


def test_shipped_metastability_has_a_structured_trigger() -> None:
    ts = compile_text(
        "retry_storm_broken.coh", (SPECS / "conflicts/retry_storm_broken.coh").read_text()
    ).systems[0]
    f = next(f for f in formal(ts).findings if f.code == "COH504")
    trig = _data(f)["trigger"]
    assert trig["input"] == "demand"
    u = next(x for x in ts.inputs if x.name == "demand")
    assert u.nominal / u.scale < trig["burst_size"] <= u.hi / u.scale
    assert trig["duration_s"] > 0 and trig["duration_s"] % ts.tick == 0
    assert f"{trig['duration_s']:g}s" in " ".join(f.notes)


def test_nominal_oscillation_shows_the_measured_cycle() -> None:
    ts = compile_text("relay.coh", RELAY.format(h=2.5, d=3)).systems[0]
    osc = next(f for f in linear(ts).findings if f.code == "COH313")
    assert "measured period 28 s, amplitude 7, sustained" in osc.message
    assert _data(osc)["limit_cycle"]["period_s"] == pytest.approx(28)
