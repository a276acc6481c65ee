"""The margin of an autoscaler outside its tolerance band, against a hand linearization.

An HPA-style law (Kubernetes replica_calculator.go: desired = ceil(replicas * util / target))
on a utilisation u = D / (c r), with the default one-tick actuation and a 10% tolerance band.
At the operating point r* = D / (c target) the loop rests inside its band and holds, so the
linearization at the point has no loop in it; its margin is that of the law as it acts once
the error leaves the band (ceil taken unrounded).

By hand, with the gain factor f on the loop broken at the actuator (the law's reference to
its own replica count is the controller's memory): rec = r + f (r u / target - r), and with
the sensor read e ticks late (u[k-e] = D / (c r[k-e])) its derivative at r* is

    d rec = dr[k] + f (dr[k] - dr[k-e] - dr[k]) = dr[k] - f dr[k-e]      (u / target = 1)

(the spec starts at r* = 20, so that its operating point is the band's centre: elsewhere in
the band u / target = rho != 1 and d rec = (1 - f + f rho) dr[k] - f rho dr[k-e]), so the
closed loop is r[k+1] = r[k] - f r[k-e], characteristic polynomial z^(e+1) - z^e + f.
- e = 0: the pole 1 - f leaves the unit circle at -1 where f = 2: gain margin x2.
- f = 1, e = 1: z^2 - z + 1 has the roots e^{+/- i pi/3} on the unit circle (marginal, not
  stable): the delay margin is 0 extra ticks (Jury, for z^2 + a1 z + a0: |a0| < 1 fails).
"""

from __future__ import annotations

import numpy as np
import pytest

from coherence.linear import LinearOptions, analyze
from tests.helpers import system

LAWS = {
    "tolerance": "actuates replicas to ceil(replicas * util / target)\n    tolerance 10%",
    "band in the law": (
        "actuates replicas to if abs(util / target - 1) > 0.1 "
        "then ceil(replicas * util / target) else replicas"
    ),
}


def _spec(law: str) -> str:
    return f"""  input demand : req/s in [40, 200] nominal 100
  param per_pod = 10 req/s/replica
  param target = 0.5
  state replicas : replica integer in [1, 100] init 20
  let util = demand / (replicas * per_pod)
  loop hpa {{
    senses util
    {law}
  }}
  require stable"""


@pytest.mark.parametrize("law", sorted(LAWS))
def test_autoscaler_margin_outside_its_band(law: str) -> None:
    result = analyze(system(_spec(LAWS[law])), LinearOptions(starts=0))
    data = dict(result.data)
    m = data["margins"]["hpa"]
    assert m["branch"] == "outside the tolerance band"
    # the pole 1 - f reaches -1 at f = 2
    assert m["gain_high"] == pytest.approx(2.0, rel=1e-4)
    assert m["gain_high"] < 2.0
    # one extra tick: z^2 - z + 1, roots on the unit circle
    assert max(abs(np.roots([1.0, -1.0, 1.0]))) == pytest.approx(1.0, abs=1e-12)
    assert m["delay_ticks"] == 0
    table = next(t for t in result.tables if t.title == "Margins")
    assert "outside the tolerance band" in str(table.rows[0][1])


def test_an_unstable_law_outside_its_band_says_so() -> None:
    # the sensor two ticks late: z^3 - z^2 + f; at f = 1 its roots are outside the circle
    # (|z| = 1.15 with its sensor two periods late: the flapping HPA of specs/conflicts/hpa_lag_broken.coh); it is stable
    # below the f where the largest root modulus reaches 1
    text = _spec(LAWS["tolerance"]).replace("senses util", "senses util delay 2s")
    result = analyze(system(text), LinearOptions(starts=0))
    m = dict(result.data)["margins"]["hpa"]
    rho = max(abs(np.roots([1.0, -1.0, 0.0, 1.0])))
    assert m["unstable_radius"] == pytest.approx(rho, rel=1e-9)
    # Jury for z^3 + a2 z^2 + a1 z + a0 (Astrom & Wittenmark, Computer-Controlled Systems,
    # 3rd ed., sec. 3.2): with a2 = -1, a1 = 0, a0 = f the binding condition is
    # 1 - a0^2 > |a0 a2 - a1| = f, i.e. f^2 + f - 1 < 0: stable for f < (sqrt(5) - 1) / 2
    crit = (np.sqrt(5.0) - 1.0) / 2.0
    assert max(abs(np.roots([1.0, -1.0, 0.0, crit]))) == pytest.approx(1.0, abs=1e-9)
    assert m["stable_below"] == pytest.approx(crit, rel=1.1e-2)  # bisected to gain_rtol
    assert m["stable_below"] < crit
