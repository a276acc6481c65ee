"""Closed-form ground truth: the tool's verdicts and margins against published results.

Each test checks the verdict at 1% either side of a stability boundary known in closed form,
and the gain or delay margin against the same formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from coherence.ir.nodes import TransitionSystem
from coherence.ir.transform import with_params
from coherence.linear import LinearOptions, analyze
from coherence.results import Status

Spec = Callable[[str], TransitionSystem]
TIGHT = LinearOptions(gain_rtol=1e-5, starts=0)


def _data(ts: TransitionSystem, options: LinearOptions = TIGHT) -> dict[str, Any]:
    return dict(analyze(ts, options).data)


def _status(ts: TransitionSystem) -> Status:
    (v,) = analyze(ts, TIGHT).verdicts
    return v.status


# ---- 1. integral control of a first-order plant ---------------------------------------------
#
# The IR's semantics (coherence/ir/nodes.py): at tick k the loop reads y(k) and sets
# u(k+1) = u(k) + KI (r - y(k)); the plant reads the current actuator value:
#     y(k+1) = a y(k) + b u(k)
#     u(k+1) = u(k) - KI y(k) + KI r
# so the state matrix is [[a, b], [-KI, 1]] with characteristic polynomial
#     P(z) = z^2 - (1 + a) z + (a + b KI).
# (The textbook loop u(k) = u(k-1) + KI e(k), applied in the same tick, gives
# (z - a)(z - 1) + b KI z and the familiar 0 < b KI < 2 (1 + a); here the actuator's new value
# acts one tick later, which adds z^-1 to the loop.) Jury's test for z^2 + a1 z + a0 (Jury,
# Theory and Application of the z-Transform Method, 1964; Åström & Wittenmark,
# Computer-Controlled Systems, 3rd ed., sec. 3.2, the stability triangle):
#     a0 < 1,  a0 > -1 + a1,  a0 > -1 - a1
# with a1 = -(1 + a), a0 = a + b KI gives, for |a| < 1:   0 < b KI < 1 - a.


@pytest.mark.parametrize(("a", "b"), [(0.5, 2.0), (0.0, 1.0), (-0.6, 0.5), (0.9, 3.0)])
def test_integral_control_boundary(spec: Spec, a: float, b: float) -> None:
    ts = spec("integral")
    critical = (1 - a) / b
    for factor, expected in (
        (0.99, Status.HOLDS),
        (1.0, Status.UNKNOWN),  # on the boundary: marginal (COH303)
        (1.01, Status.FALSIFIED),
    ):
        variant = with_params(ts, {"a": a, "b": b, "KI": critical * factor})
        assert _status(variant) == expected, (a, b, factor)


@pytest.mark.parametrize(("a", "b", "ki"), [(0.5, 2.0, 0.1), (0.0, 1.0, 0.3), (-0.6, 0.5, 1.0)])
def test_integral_control_gain_margin(spec: Spec, a: float, b: float, ki: float) -> None:
    ts = with_params(spec("integral"), {"a": a, "b": b, "KI": ki})
    margin = _data(ts)["margins"]["integral"]
    assert margin["gain_high"] == pytest.approx((1 - a) / (b * ki), rel=1e-4)
    assert margin["gain_low"] is None  # stable down to the smallest factor tried


# ---- 2. the pure-delay integrator -----------------------------------------------------------
#
# x(k+1) = x(k) - K x(k - d): the loop senses x with a delay of d ticks and integrates.
# Characteristic polynomial z^(d+1) - z^d + K. Asymptotically stable iff
#     0 < K < 2 sin(pi / (2 (2 d + 1)))
# (Levin & May, "A note on difference-delay equations", Theoretical Population Biology 9,
# 1976, in the form 2 cos(d pi / (2 d + 1)); Kuruklis, "The asymptotic stability of
# x_{n+1} - a x_n + b x_{n-k} = 0", J. Math. Anal. Appl. 188, 1994).


def _critical(d: int) -> float:
    return 2 * math.sin(math.pi / (2 * (2 * d + 1)))


def _delayed(
    text: Callable[[str], str], make: Callable[[str], TransitionSystem], d: int, k: float
) -> TransitionSystem:
    src = text("delayed_integrator").replace("delay 1s", f"delay {d}s")
    return with_params(make(src), {"K": k})


@pytest.mark.parametrize("d", [0, 1, 2, 3, 4])
def test_delayed_integrator_boundary(
    spec_text: Callable[[str], str], compile_ts: Callable[[str], TransitionSystem], d: int
) -> None:
    kc = _critical(d)
    for factor, expected in (
        (0.99, Status.HOLDS),
        (1.0, Status.UNKNOWN),  # roots on the unit circle: marginal
        (1.01, Status.FALSIFIED),
    ):
        ts = _delayed(spec_text, compile_ts, d, kc * factor)
        assert _status(ts) == expected, (d, factor)


@pytest.mark.parametrize("d", [0, 1, 3])
def test_delayed_integrator_gain_margin(
    spec_text: Callable[[str], str], compile_ts: Callable[[str], TransitionSystem], d: int
) -> None:
    k = 0.4 * _critical(d)
    margin = _data(_delayed(spec_text, compile_ts, d, k))["margins"]["integrator"]
    assert margin["gain_high"] == pytest.approx(_critical(d) / k, rel=1e-4)


@pytest.mark.parametrize(("d", "k"), [(0, 0.9), (0, 0.3), (1, 0.3), (2, 0.2), (0, 0.05)])
def test_delayed_integrator_delay_margin(
    spec_text: Callable[[str], str],
    compile_ts: Callable[[str], TransitionSystem],
    d: int,
    k: float,
) -> None:
    # the largest total delay D with K < 2 sin(pi / (2 (2 D + 1))), minus the delay there is
    expected = max(D for D in range(0, 200) if k < _critical(D)) - d
    margin = _data(_delayed(spec_text, compile_ts, d, k))["margins"]["integrator"]
    assert margin["delay_ticks"] == expected
    assert margin["delay_s"] == pytest.approx(expected * 1.0)


def test_small_margins_are_reported(
    spec_text: Callable[[str], str], compile_ts: Callable[[str], TransitionSystem]
) -> None:
    # K = 1.2 with no delay: unstable at x2/1.2 = x1.67 of the gain, and at 1 extra tick
    # (Kc(1) = 1); K = 0.3: x6.7 and 4 extra ticks (Kc(4) = 0.347 > 0.3 > Kc(5)) are not small
    result = analyze(_delayed(spec_text, compile_ts, 0, 1.2), TIGHT)
    codes = [f.code for f in result.findings]
    assert codes.count("COH308") == 1 and codes.count("COH309") == 1
    (f308,) = [f for f in result.findings if f.code == "COH308"]
    assert "`integrator`" in f308.message and "x1.67" in f308.message
    (f309,) = [f for f in result.findings if f.code == "COH309"]
    assert "1 extra tick (1 s)" in f309.message
    quiet = analyze(_delayed(spec_text, compile_ts, 0, 0.3), TIGHT)
    assert not {"COH308", "COH309"} & {f.code for f in quiet.findings}


# ---- 3. the Jury triangle for a second-order loop -------------------------------------------
#
# y(k+1) = a y(k) + b u(k), u(k+1) = -K y(k) + c u(k) (a `to` law): state matrix
# [[a, b], [-K, c]], characteristic polynomial z^2 + a1 z + a0 with a1 = -(a + c),
# a0 = a c + b K. Both roots lie inside the unit circle iff |a0| < 1 and |a1| < 1 + a0
# (Jury 1964; Åström & Wittenmark, sec. 3.2).


def _jury_slack(a: float, b: float, c: float, k: float) -> float:
    a1, a0 = -(a + c), a * c + b * k
    return min(1 - abs(a0), 1 + a0 - abs(a1))


GRID = [
    (a, b, c, k)
    for a in (-0.8, 0.0, 0.5, 0.95)
    for b in (0.5, 2.0)
    for c in (-0.5, 0.0, 0.7)
    for k in (-1.2, -0.3, 0.2, 0.45, 0.9)
]


@pytest.mark.parametrize(("a", "b", "c", "k"), GRID)
def test_second_order_jury(spec: Spec, a: float, b: float, c: float, k: float) -> None:
    slack = _jury_slack(a, b, c, k)
    if abs(slack) < 0.01:
        pytest.skip("within 1% of the boundary")
    ts = with_params(spec("proportional"), {"a": a, "b": b, "c": c, "K": k})
    rho = _data(ts)["spectral_radius"]
    assert (rho < 1) == (slack > 0), (a, b, c, k, rho, slack)


def test_to_law_gain_margin_scales_the_law(spec: Spec) -> None:
    # u(k+1) = -f K y(k): P(z) = z^2 - a z + f b K; with a = 0.5, b = 1, K = 0.4 the
    # triangle gives f b K < 1 (f < 2.5) and |a| < 1 + f b K (any f > 0)
    margin = _data(spec("proportional"))["margins"]["p"]
    assert margin["gain_high"] == pytest.approx(2.5, rel=1e-4)
    assert margin["gain_low"] is None


# ---- 1b. the textbook loop, with the control applied in the same tick ------------------------
#
# u(k) = u(k-1) + KI (r - y(k)),  y(k+1) = a y(k) + b u(k): a spec states the same-tick
# feedthrough by writing the controller into the plant update (the next plant value reads the
# new control value). With x = (y, u_prev): y' = (a - b KI) y + b u + b KI r, u' = u - KI y + KI r,
# P(z) = z^2 - (1 + a - b KI) z + a, and Jury's conditions give, for |a| < 1, the familiar
#     0 < b KI < 2 (1 + a)
# (Åström & Wittenmark, Computer-Controlled Systems, 3rd ed., sec. 3.2 and example 3.5 style).

TEXTBOOK = """system textbook {
  tick 1s
  param a = 0.5
  param b = 2
  param KI = 0.1
  param r = 1
  state y in [-1000000, 1000000] init 0
  state u in [-1000000, 1000000] init 0
  next u = u + KI * (r - y)
  next y = a * y + b * (u + KI * (r - y))
  require stable
}
"""


@pytest.mark.parametrize(("a", "b"), [(0.5, 2.0), (0.0, 1.0), (-0.6, 0.5), (0.9, 3.0)])
def test_textbook_integral_control_boundary(a: float, b: float) -> None:
    from coherence.compile import compile_text

    ts = compile_text("textbook.coh", TEXTBOOK).systems[0]
    critical = 2 * (1 + a) / b
    for factor, expected in ((0.99, Status.HOLDS), (1.01, Status.FALSIFIED)):
        variant = with_params(ts, {"a": a, "b": b, "KI": critical * factor})
        assert _status(variant) == expected, (a, b, factor)


# ---- a gain margin does not depend on how the law is written ---------------------------------

MARGIN_SPEC = """system s {
  tick 1s
  input r in [0, 10] nominal 5
  state y in [0, 100] init 0
  state u in [0, 100] init 0
  next y = 0.5 * y + 0.5 * u
  loop pi { every 1s senses y actuates u LAW }
  require stable
}"""


@pytest.mark.parametrize(
    ("laws", "k_crit"),
    [
        # u' = u - K y, y' = 0.5 y + 0.5 u: z^2 - 1.5 z + (0.5 + 0.5 K); Jury: 0.5 + 0.5 K < 1
        (("by 0.3 * (r - y)", "to u + 0.3 * (r - y)"), 1.0),
        # the leaky integrator u' = 0.9 u - K y: z^2 - 1.4 z + (0.45 + 0.5 K); K < 1.1
        (("to 0.9 * u + 0.3 * (r - y)", "by -0.1 * u + 0.3 * (r - y)"), 1.1),
    ],
)
def test_the_gain_margin_is_the_loops_whatever_the_law_form(
    laws: tuple[str, str], k_crit: float
) -> None:
    """The margin is the factor on the loop broken at the actuator: a law's reference to its
    own actuator is the controller's memory, not scaled (Jury's test, e.g. Franklin, Powell &
    Workman, *Digital Control of Dynamic Systems*, 3rd ed., sec. 4.3.5)."""
    from coherence.compile import compile_text

    closed = k_crit / 0.3
    got = []
    for law in laws:
        ts = compile_text("m.coh", MARGIN_SPEC.replace("LAW", law)).systems[0]
        m = dict(analyze(ts).data)["margins"]["pi"]
        got.append(m["gain_high"])
    assert got[0] == pytest.approx(got[1], rel=1e-9)
    # within the bisection's tolerance, and never past the closed form: marginal is not stable
    assert closed * (1 - 2 * LinearOptions().gain_rtol) <= got[0] <= closed


def test_a_radius_near_1_shows_which_side_of_1_it_is() -> None:
    from coherence.linear.findings import radius_text

    assert radius_text(1.00014) == "1.00014"  # not "1 > 1"
    assert radius_text(0.9999996) == "0.9999996"
    assert (radius_text(0.80621), radius_text(1.0), radius_text(3.24)) == ("0.8062", "1", "3.24")
