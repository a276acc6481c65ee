"""The simultaneous gain margin (several loops at once) against its closed form.

Two integral loops on a static plant y = G u (tests/linear/data/fragile_pair.coh):
    u(k+1) = u(k) + F K (r - G u(k)),   K = diag(ka, kb),   F = diag(f_a, f_b)
so the state matrix is A = I - P with P = F K G, whose characteristic polynomial is
    z^2 - (2 - T) z + (1 - T + D),   T = tr P = f_a ka + f_b kb,   D = det P = f_a f_b ka kb det G.
Jury's conditions for z^2 + a1 z + a0 (Jury 1964; Åström & Wittenmark, Computer-Controlled
Systems, 3rd ed., sec. 3.2: |a0| < 1, a0 > -1 + a1, a0 > -1 - a1) become
    T - D > 0,   2 - T + D > 0,   4 - 2 T + D > 0,   D > 0.
Along a sign pattern f = (1 + s_a d, 1 + s_b d) each is a quadratic in d; the destabilising
delta is the smallest positive root over the four conditions and the four sign patterns.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

from coherence.ir.nodes import TransitionSystem
from coherence.ir.transform import with_params
from coherence.linear import LinearOptions, analyze
from coherence.linear.margins import vertex_margin

Spec = Callable[[str], TransitionSystem]
G = np.array([[1.0, 1.8], [0.7, 1.0]])


def _jury(fa: float, fb: float, ka: float, kb: float, g: np.ndarray) -> list[float]:
    T = fa * ka + fb * kb
    D = fa * fb * ka * kb * float(np.linalg.det(g))
    return [T - D, 2 - T + D, 4 - 2 * T + D, D]


def _closed_form(ka: float, kb: float, g: np.ndarray) -> tuple[float, tuple[float, float]]:
    """The smallest destabilising delta over the vertices and its sign pattern."""
    best = (np.inf, (0.0, 0.0))
    for s in itertools.product((1.0, -1.0), repeat=2):
        # each condition is a quadratic in d: its coefficients from three exact samples
        samples = [_jury(1 + s[0] * d, 1 + s[1] * d, ka, kb, g) for d in (0.0, 1.0, 2.0)]
        for j in range(4):
            coeffs = np.polyfit([0.0, 1.0, 2.0], [x[j] for x in samples], 2)
            for root in np.roots(coeffs):
                if abs(root.imag) < 1e-12 and 0 < root.real < best[0]:
                    best = (float(root.real), s)
    return best


def test_fragile_pair_matches_the_closed_form(spec: Spec) -> None:
    result = analyze(spec("fragile_pair"), LinearOptions(starts=0))
    data = dict(result.data)
    closed, signs = _closed_form(0.5, -0.2, G)
    # lower a, raise b: f = (1 - d, 1 + d), T = 0.3 - 0.7 d, D = 0.026 (1 - d^2), and T - D
    # reaches 0 first: 0.026 d^2 - 0.7 d + 0.274 = 0, d = (0.7 - sqrt(0.461504)) / 0.052
    assert closed == pytest.approx((0.7 - np.sqrt(0.461504)) / 0.052, rel=1e-12)
    assert closed == pytest.approx(0.39729, abs=1e-5)
    assert signs == (-1.0, 1.0)
    sim = data["simultaneous"]
    tol = LinearOptions().simultaneous_tol
    # never past the closed form (the last delta found stable), within the bisection's tolerance
    assert closed - tol <= sim["delta"] <= closed
    assert sim["factors"]["a"] < 1 < sim["factors"]["b"]
    assert abs(sim["factors"]["a"] - 1) <= closed + tol
    # each loop alone is comfortable: at least x2 either way
    for name in ("a", "b"):
        m = data["margins"][name]
        assert m["gain_low"] is None or m["gain_low"] <= 0.5
        assert m["gain_high"] is None or m["gain_high"] >= 2
    (f,) = [x for x in result.findings if x.code == "COH314"]
    assert "raising the gain of `b` and lowering that of `a`" in f.message
    assert "39.8%" in f.message
    assert not [x for x in result.findings if x.code == "COH308"]
    table = next(t for t in result.tables if t.title == "Margins")
    assert table.rows[-1][0] == "together: a, b"


@pytest.mark.parametrize(("ka", "kb"), [(0.5, -0.2), (0.4, -0.1), (0.2, -0.1), (-0.1, 0.6)])
def test_closed_form_over_gains(spec: Spec, ka: float, kb: float) -> None:
    ts = with_params(spec("fragile_pair"), {"ka": ka, "kb": kb})
    rho = abs(np.linalg.eigvals(np.eye(2) - np.diag([ka, kb]) @ G)).max()
    if rho >= 1:
        pytest.skip("nominally unstable")
    closed, _ = _closed_form(ka, kb, G)
    sim = dict(analyze(ts, LinearOptions(starts=0)).data)["simultaneous"]
    if closed > 0.99:
        assert sim["delta"] is None
    else:
        assert closed - LinearOptions().simultaneous_tol <= sim["delta"] <= closed


DECOUPLED = """system decoupled {
  tick 1s
  param ka = 0.5
  param kb = 1.5
  state u1 in [-100, 100] init 0
  state u2 in [-100, 100] init 0
  let y1 = u1
  let y2 = u2
  loop a { senses y1 actuates u1 by ka * (1 - y1) }
  loop b { senses y2 actuates u2 by kb * (2 - y2) }
  require stable
}"""


def test_decoupled_loops_give_the_smallest_own_margin(
    compile_ts: Callable[[str], TransitionSystem],
) -> None:
    # multipliers 1 - ka f_a and 1 - kb f_b: b alone goes unstable at f_b = 2 / kb = 4/3, a at
    # f_a = 4 (past delta_max); together the worst vertex is b's: delta = 1/3
    result = analyze(compile_ts(DECOUPLED), LinearOptions(starts=0))
    data = dict(result.data)
    sim = data["simultaneous"]
    own = data["margins"]["b"]["gain_high"] - 1
    assert 1 / 3 - LinearOptions().simultaneous_tol <= sim["delta"] <= 1 / 3
    assert sim["delta"] == pytest.approx(own, abs=LinearOptions().gain_rtol)
    assert sim["factors"] == {"b": pytest.approx(1 + sim["delta"], abs=1e-3)}
    codes = {f.code for f in result.findings}
    assert "COH308" in codes and "COH314" not in codes  # b is fragile alone: COH308, not 314


def test_robust_loops_raise_no_warning(compile_ts: Callable[[str], TransitionSystem]) -> None:
    ts = with_params(compile_ts(DECOUPLED), {"kb": 0.5})
    result = analyze(ts, LinearOptions(starts=0))
    assert dict(result.data)["simultaneous"]["delta"] is None
    assert not {"COH308", "COH314"} & {f.code for f in result.findings}


def test_vertex_margin_never_overstates() -> None:
    # two decoupled multipliers 1 - 0.5 f_a and 1 - 1.2 f_b: f_b < 2 / 1.2, delta = 2/3
    def rho(f: tuple[float, ...]) -> float:
        return max(abs(1 - 0.5 * f[0]), abs(1 - 1.2 * f[1]))

    d, f = vertex_margin(rho, 2, 1.0, 0.99, 1e-4)
    assert d is not None and f is not None
    assert 2 / 3 - 1e-4 <= d <= 2 / 3
    assert f[1] > 1
