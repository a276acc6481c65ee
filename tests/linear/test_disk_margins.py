"""Disk margins (Seiler, Packard & Gahinet, "An Introduction to Disk Margins", IEEE Control
Systems Magazine 40(5), 2020) against closed forms and an independent mu computation.

Balanced disk (skew sigma = 0): a loop's gain may be any multiplier (1 + d/2) / (1 - d/2) with
|d| < alpha, alpha = 1 / ||S - 1/2||_inf = 2 / ||S - T||_inf (paper, eq. 13 with sigma = 0 and
S + T = 1); that disk holds the real gains (2 - alpha) / (2 + alpha) .. (2 + alpha) / (2 - alpha)
and the phases +/- 2 arctan(alpha / 2). In discrete time the norm is over z = e^{i theta}.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from coherence.ir.nodes import TransitionSystem
from coherence.linear import LinearOptions, analyze
from tests.helpers import system

Spec = Callable[[str], TransitionSystem]
OPTS = LinearOptions(starts=0)
THETA = np.linspace(0.0, math.pi, 20001)


def _loop_spec(timing: str) -> str:
    return f"""  param a = 0.9
  param b = 0.5
  param K = 1
  state x : 1 in [-100, 100] init 1
  state u : 1 in [-100, 100] init 0
  next x = a * x + b * u
  loop p {{
    senses x
    actuates u to -K * x
    {timing}
  }}
  require stable"""


def test_siso_disk_margin_closed_form() -> None:
    # timing immediate: the loop broken at the actuator is L(z) = bK / (z - a), so
    # S - T = (1 - L) / (1 + L) = (z - c1) / (z - c2), c1 = a + bK = 1.4, c2 = a - bK = 0.4.
    # On the circle |S - T|^2 = (1 + c1^2 - 2 c1 cos t) / (1 + c2^2 - 2 c2 cos t), monotone in
    # cos t, largest at t = pi: (1 + c1) / (1 + c2) = 2.4 / 1.4, so alpha = 2 * 1.4 / 2.4 = 7/6,
    # gains 5/19 .. 3.8 (the upper one is the gain margin (1 + a) / (bK): the peak is real),
    # phase 2 arctan(7/12) = 60.51 degrees.
    m = dict(analyze(system(_loop_spec("timing immediate")), OPTS).data)["margins"]["p"]
    disk = m["disk"]
    assert disk["alpha"] == pytest.approx(7 / 6, rel=1e-9)
    assert disk["gain_low"] == pytest.approx(5 / 19, rel=1e-9)
    assert disk["gain_high"] == pytest.approx(3.8, rel=1e-9)
    assert disk["phase_deg"] == pytest.approx(math.degrees(2 * math.atan(7 / 12)), rel=1e-9)
    assert disk["theta"] == pytest.approx(math.pi)


def test_siso_disk_margin_one_tick_actuation() -> None:
    # default timing: u[k+1] = -f K x[k], so L(z) = bK / (z (z - a)); alpha = 2 / max |S - T|
    # with S - T = (1 - L) / (1 + L), evaluated here on a dense grid of the unit circle
    a, bK = 0.9, 0.5
    z = np.exp(1j * THETA)
    L = bK / (z * (z - a))
    alpha = 2.0 / float(np.max(np.abs((1 - L) / (1 + L))))
    m = dict(analyze(system(_loop_spec("")), OPTS).data)["margins"]["p"]
    assert m["disk"]["alpha"] == pytest.approx(alpha, rel=1e-6)
    # the disk's real gains lie inside the gain margin (a disk covers gain and phase at once)
    assert m["disk"]["gain_high"] <= m["gain_high"] * (1 + 1e-9)


def _mu_2x2(M: np.ndarray) -> float:
    """mu of a complex diagonal 2x2 structure: max over unitary diagonal U of rho(U M)
    (Doyle, "Analysis of feedback systems with structured uncertainties", IEE Proc. D 129(6),
    1982: the lower bound is exact for complex structures); one phase suffices for 2x2, and
    the eigenvalues of U M are (tr +/- sqrt(tr^2 - 4 det)) / 2."""
    w = np.exp(1j * np.linspace(0.0, 2 * math.pi, 721))
    tr = M[0, 0] + w * M[1, 1]
    det = w * (M[0, 0] * M[1, 1] - M[0, 1] * M[1, 0])
    root = np.sqrt(tr * tr - 4 * det)
    return float(np.max(np.maximum(abs(tr + root), abs(tr - root)) / 2))


def test_simultaneous_disk_margin_of_the_fragile_pair(spec: Spec) -> None:
    # tests/linear/data/fragile_pair.coh: u[k+1] = u[k] + F K (r - G u[k]). Broken at the
    # gains, the loops are A0 = I, P = I, E = -K G, and the closed loop A = I - K G; the input
    # sensitivity is S(z) = I + E (zI - A)^{-1} P = I - K G (zI - I + K G)^{-1}.
    G = np.array([[1.0, 1.8], [0.7, 1.0]])
    KG = np.diag([0.5, -0.2]) @ G
    A = np.eye(2) - KG
    grid = np.linspace(0.0, math.pi, 2001)
    S = [np.eye(2) - KG @ np.linalg.inv(np.exp(1j * t) * np.eye(2) - A) for t in grid]
    alpha = 1.0 / max(_mu_2x2(s - 0.5 * np.eye(2)) for s in S)
    alone = [1.0 / max(abs(s[i, i] - 0.5) for s in S) for i in range(2)]
    data = dict(analyze(spec("fragile_pair"), OPTS).data)
    sim = data["simultaneous"]
    # the grids here are coarser than the tool's refined peak: the tool's alpha is the
    # smaller (a larger peak found), within the grid's resolution
    assert sim["disk"]["alpha"] == pytest.approx(alpha, rel=2e-4)
    for i, lp in enumerate(("a", "b")):
        assert data["margins"][lp]["disk"]["alpha"] == pytest.approx(alone[i], rel=2e-4)
    # every loop robust alone (disk), the two together less so
    assert sim["disk"]["alpha"] < 0.6 * min(alone)
    # the destabilising vertex of the real gain search lies outside the simultaneous disk
    f = sim["factors"]
    lo, hi = sim["disk"]["gain_low"], sim["disk"]["gain_high"]
    assert not all(lo <= v <= hi for v in f.values())
