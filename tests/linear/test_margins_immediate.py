"""Gain and delay margins of a loop with ``timing immediate`` against their closed forms.

The textbook sampled-data loop (Franklin, Powell & Workman, *Digital Control of Dynamic
Systems*, 3rd ed., sec. 8.1): ``x[k+1] = a x[k] + b u[k]``, ``u[k] = -f K x[k - e]``, where f
is the gain factor and e the extra measurement delay (ticks). Substituting u:

    x[k+1] = a x[k] - f b K x[k - e],   characteristic polynomial z^(e+1) - a z^e + f b K.

- e = 0: one pole ``a - f b K``. It leaves the unit circle at -1 where f = (1 + a) / (b K),
  and for 0 < f < 1 it stays in (a - bK, a), inside the circle when |a| < 1 and |a - bK| < 1:
  stable for every factor down to 0 (Jury's condition |a0| < 1 for a first-order system).
  a = 0.9, b = 0.5, K = 1: the upward gain margin is x3.8.
- f = 1: the spectral radius is the largest root modulus of z^(e+1) - a z^e + b K; for the
  textbook numbers 0.4, 0.707, 0.928, 1.006 for e = 0..3: two extra ticks keep the loop
  stable, the third destabilises it (delay margin 2 ticks).

Before the plant rows that read the action of the tick were part of the loop's variant, the
margins saw only the actuator's own row (a dead end under ``immediate``): "1 extra tick
destabilises" and "no linear effect".
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from coherence.linear import LinearOptions, analyze
from tests.helpers import system

FAST = LinearOptions(starts=0)
BISECT = LinearOptions(starts=0, frequency_margins=False, gain_rtol=1e-4)


def _spec(a: float, b: float, K: float, extra: str = "") -> str:
    return f"""  param a = {a}
  param b = {b}
  param K = {K}
  state x : 1 in [-100, 100] init 1
  state u : 1 in [-100, 100] init 0
  next x = a * x + b * u
  loop p {{
    senses x{extra}
    actuates u to -K * x
    timing immediate
  }}
  require stable"""


def _margins(text: str, opts: LinearOptions) -> dict[str, object]:
    data = dict(analyze(system(text), opts).data)
    m = data["margins"]
    assert isinstance(m, dict)
    out = m["p"]
    assert isinstance(out, dict)
    return out


def _radius(a: float, bK: float, e: int) -> float:
    """Largest root modulus of z^(e+1) - a z^e + bK."""
    return float(max(abs(np.roots([1.0, -a] + [0.0] * (e - 1) + [bK] if e else [1.0, bK - a]))))


def _delay_margin(a: float, bK: float) -> int:
    # |a| + |bK| > 1 in every case asked: otherwise no delay destabilises it (small gain)
    assert abs(a) + abs(bK) > 1.0
    e = 0
    while _radius(a, bK, e + 1) < 1.0:
        e += 1
    return e


@pytest.mark.parametrize("opts", [FAST, BISECT], ids=["frequency", "bisection"])
def test_textbook_immediate_loop_margins(opts: LinearOptions) -> None:
    a, b, K = 0.9, 0.5, 1.0
    # the closed-form radii with 0..3 extra ticks: 0.4, 0.707, 0.928, 1.006
    assert [round(_radius(a, b * K, e), 3) for e in range(4)] == [0.4, 0.707, 0.928, 1.006]
    m = _margins(_spec(a, b, K), opts)
    assert m["gain_high"] == pytest.approx((1 + a) / (b * K), rel=2e-4)  # x3.8
    assert m["gain_high"] < (1 + a) / (b * K)  # the last factor found stable: the safe side
    assert m["delay_ticks"] == 2
    if opts is FAST:
        assert m["gain_low_unbounded"] == "stable for every factor down to 0"


@pytest.mark.parametrize(("a", "b", "K"), [(0.5, 1.0, 0.8), (0.2, 1.0, 0.9), (0.95, 0.1, 2.0)])
def test_immediate_gain_and_delay_margins_follow_the_pole(a: float, b: float, K: float) -> None:
    m = _margins(_spec(a, b, K), FAST)
    assert m["gain_high"] == pytest.approx((1 + a) / (b * K), rel=1e-4)
    assert m["delay_ticks"] == _delay_margin(a, b * K)


def test_immediate_small_gain_loop_has_no_delay_margin() -> None:
    # |a| + |bK| = 0.8 < 1: on |z| >= 1, |z^(e+1) - a z^e| >= (1 - |a|) |z|^e >= 0.5 > bK,
    # so no root leaves the circle for any delay e (Rouché's theorem)
    m = _margins(_spec(0.5, 1.0, 0.3), FAST)
    assert m["gain_high"] == pytest.approx(1.5 / 0.3, rel=1e-4)
    assert "small-gain" in str(m["delay_unbounded"])


def test_immediate_with_measurement_delay() -> None:
    # u[k] = -f K x[k-2]: z^3 - a z^2 + f b K; the gain margin is the f at which its largest
    # root modulus reaches 1 (found here on np.roots, independently of the tool)
    a, b, K = 0.9, 0.5, 1.0
    crit = brentq(lambda f: _radius(a, f * b * K, 2) - 1.0, 1.0, 10.0, xtol=1e-12)
    for opts in (FAST, BISECT):
        m = _margins(_spec(a, b, K, " delay 2s"), opts)
        assert m["gain_high"] == pytest.approx(crit, rel=2e-4)
        # two ticks are already in the loop: 2 + e extra ticks
        assert m["delay_ticks"] == _delay_margin(a, b * K) - 2
