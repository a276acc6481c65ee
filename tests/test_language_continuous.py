"""Continuous-time plant parts and the sampled-data timing of a loop, against closed forms.

- ``lag(u, tau)``: a first-order lag ``tau y' = u - y`` under a zero-order hold on ``u`` is
  exact at the samples: a unit step from rest gives ``y(k T) = 1 - exp(-k T / tau)``
  (Franklin, Powell & Workman, *Digital Control of Dynamic Systems*, 3rd ed., 4.3.3).
- ``delay(u, d)``: ``y[k] = u[k - d/T]``, by definition of a dead time.
- ``continuous``: ``Ad = e^{A T}``, ``Bd = int_0^T e^{A s} ds B``: for the double integrator
  ``Ad = [[1, T], [0, 1]]``, ``Bd = [[T^2/2], [T]]``; for the harmonic oscillator
  ``x'' = -w^2 x``, ``Ad = [[cos wT, sin(wT)/w], [-w sin wT, cos wT]]`` (same book, 4.3);
  a first-order system decays as ``x(t) = x0 e^{-t/tau}``.
- ``timing immediate``: ``x[k+1] = a x[k] + b u[k]``, ``u[k] = -K x[k]`` has the closed-loop
  pole ``a - b K`` (Franklin, Powell & Workman, 8.1; Ogata, *Discrete-Time Control
  Systems*, 2nd ed., 6.2); with the default one-tick actuation the loop is
  ``u[k+1] = -K x[k]``, characteristic polynomial ``z^2 - a z + b K``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from coherence.compile import compile_text
from coherence.frontend.format import format_module
from coherence.frontend.parser import parse_source
from coherence.ir.continuous import zoh
from coherence.ir.dump import dump
from coherence.linear import LinearOptions, analyze
from coherence.simulate.engine import simulate
from coherence.source import SourceFile
from tests.helpers import run, system

TIGHT = LinearOptions(gain_rtol=1e-5, starts=0)


def _codes(body: str) -> list[str]:
    text = f"system t {{\n  tick 1s\n{body}\n}}\n"
    return sorted({d.code for d in compile_text("t.coh", text).diagnostics})


# ---- lag -------------------------------------------------------------------------------------


def test_lag_of_a_step_is_the_sampled_exponential() -> None:
    tau = 30.0
    tr = run(
        """  input u : 1 in [0, 2] nominal 0
  let y = lag(u, 30s)
  require always y <= 2 for 60s""",
        inputs={"u": [1.0] * 80},
    )
    y = tr.let("y")[0]
    k = np.arange(80)
    # starts at rest (the signal's value with inputs at nominal: 0), then the exact response
    np.testing.assert_allclose(y, 1.0 - np.exp(-k / tau), rtol=0, atol=1e-12)


def test_lag_time_constant_may_be_an_uncertain_parameter() -> None:
    body = """  param tau = 20s in [10s, 40s]
  input u : 1 in [0, 2] nominal 0
  let y = lag(u, tau)
  require always y <= 2 for 30s"""
    ts = system(body)
    (h,) = [s for s in ts.states if s.name.startswith("__lag")]
    assert "tau" in dump(ts)  # the coefficient stays an expression of the parameter
    tr = simulate(ts, 30, inputs=np.ones((1, 30, 1)))
    y = tr.let("y")[0]
    np.testing.assert_allclose(y, 1.0 - np.exp(-np.arange(30) / 20.0), atol=1e-12)
    assert h.name == "__lag1_u"


def test_lag_in_a_next_update_starts_at_rest() -> None:
    # x[k+1] = lag(x, 10s)[k] + 1: the lag starts at x's initial value 5
    tr = run(
        """  state x : 1 in [0, 100] init 5
  next x = lag(x, 10s) + 1""",
        ticks=3,
    )
    x = tr.state("x")[0]
    a = math.exp(-0.1)
    s1 = a * 5 + (1 - a) * 5  # the lag's state after one tick
    assert x[1] == pytest.approx(6.0, abs=1e-12)
    assert x[2] == pytest.approx(s1 + 1, abs=1e-12)
    s2 = a * s1 + (1 - a) * 6
    assert x[3] == pytest.approx(s2 + 1, abs=1e-12)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("lag(u, 5 req)", "COH207"),
        ("lag(u, 0s)", "COH213"),
        ("delay(u, 2.5s)", "COH209"),
        ("delay(u, 1e12 s)", "COH213"),  # a hidden state per tick: bounded, never a hang
        ("lag(u)", "COH211"),
        ("lag(u > 1, 5s)", "COH216"),
    ],
)
def test_lag_and_delay_arguments_are_checked(call: str, code: str) -> None:
    codes = _codes(
        f"""  input u : 1 in [0, 2] nominal 0
  let y = {call}
  require always y <= 2 for 10s"""
    )
    assert code in codes


def test_a_parameter_cannot_have_memory() -> None:
    assert "COH215" in _codes("  param p = lag(1, 5s)\n  state x in [0, 1] init 0\n  next x = p")


# ---- delay -----------------------------------------------------------------------------------


def test_delay_is_a_shift_register_of_whole_ticks() -> None:
    ramp = [float(k) for k in range(12)]
    tr = run(
        """  input u : 1 in [0, 100] nominal 0
  let y = delay(u, 3s)
  let z = delay(u, 2s, 7)
  require always y + z <= 1000 for 12s""",
        inputs={"u": ramp},
    )
    y, z = tr.let("y")[0], tr.let("z")[0]
    np.testing.assert_array_equal(y, [0, 0, 0, *ramp[:-3]])  # the signal at rest, then u[k-3]
    np.testing.assert_array_equal(z, [7, 7, *ramp[:-2]])  # a declared initial value


def test_delay_on_a_coarser_tick_counts_ticks() -> None:
    ts = compile_text(
        "t.coh",
        """system t { tick 5s
  input u : 1 in [0, 100] nominal 0
  let y = delay(u, 15s)
  require always y <= 100 for 30s }""",
    ).systems[0]
    regs = [s.name for s in ts.states if s.name.startswith("__delay")]
    assert regs == ["__delay1_u.r1", "__delay1_u.r2", "__delay1_u.r3"]


# ---- continuous ------------------------------------------------------------------------------


def test_zoh_double_integrator_and_oscillator_closed_forms() -> None:
    T = 0.7
    Ad, Bd = zoh(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[0.0], [1.0]]), T)
    np.testing.assert_allclose(Ad, [[1.0, T], [0.0, 1.0]], atol=1e-15)
    np.testing.assert_allclose(Bd, [[T * T / 2], [T]], atol=1e-15)
    w = 2.0
    Ad, Bd = zoh(np.array([[0.0, 1.0], [-w * w, 0.0]]), np.array([[0.0], [1.0]]), T)
    c, s = math.cos(w * T), math.sin(w * T)
    np.testing.assert_allclose(Ad, [[c, s / w], [-w * s, c]], atol=1e-14)
    # Bd = int_0^T e^{A s} ds [0, 1]^T = [(1 - cos wT)/w^2, sin(wT)/w]
    np.testing.assert_allclose(Bd, [[(1 - c) / w**2], [s / w]], atol=1e-14)


DOUBLE_INTEGRATOR = """  unit m
  input acc : m/s^2 in [-1 m/s^2, 1 m/s^2] nominal 0 m/s^2
  state p : m in [-1000 m, 1000 m] init 1 m
  state v : m/s in [-1000 m/s, 1000 m/s] init 3 m/s
  continuous {
    der(p) = v
    der(v) = acc
  }"""


def test_continuous_double_integrator_steps_with_ad_bd() -> None:
    text = "system t {\n  tick 2s\n" + DOUBLE_INTEGRATOR + "\n}\n"
    ts = compile_text("t.coh", text).systems[0]
    T, a = 2.0, 0.5
    tr = simulate(ts, 3, inputs=np.full((1, 3, 1), a))
    p, v = tr.state("p")[0], tr.state("v")[0]
    for k in range(3):  # [p, v][k+1] = Ad [p, v][k] + Bd a
        assert p[k + 1] == pytest.approx(p[k] + T * v[k] + T * T / 2 * a, abs=1e-12)
        assert v[k + 1] == pytest.approx(v[k] + T * a, abs=1e-12)
    assert (p[1], v[1]) == pytest.approx((1 + 2 * 3 + 2 * 0.5, 4.0), abs=1e-12)


def test_continuous_first_order_decays_as_the_exponential() -> None:
    tr = run(
        """  state x : req in [0 req, 100 req] init 10 req
  continuous { der(x) = -x / 8s }""",
        ticks=40,
    )
    t = np.arange(41)
    np.testing.assert_allclose(tr.state("x")[0], 10 * np.exp(-t / 8.0), rtol=1e-13)


def test_continuous_linear_analysis_reads_the_discretised_matrix() -> None:
    # x' = -x/4s + u/4s, u held at 1 by the operating point: Ad = e^{-T/4} is the pole
    ts = system(
        """  input u : 1 in [0, 2] nominal 1
  state x : 1 in [-10, 10] init 0
  continuous { der(x) = -x / 4s + u / 4s }
  require stable"""
    )
    rho = dict(analyze(ts, TIGHT).data)["spectral_radius"]
    assert rho == pytest.approx(math.exp(-0.25), abs=1e-9)


@pytest.mark.parametrize(
    ("eq", "code"),
    [
        ("der(x) = -x * x / 10s", "COH230"),  # not linear
        ("der(x) = -x * u / 10s", "COH230"),  # a coefficient that changes
        ("der(x) = -x / tau", "COH230"),  # an uncertain coefficient
        ("der(x) = -x", "COH207"),  # x' must be 1/s
        ("der(u) = -x / 10s", "COH215"),  # not a state
    ],
)
def test_continuous_equations_are_checked(eq: str, code: str) -> None:
    codes = _codes(
        f"""  param tau = 10s in [5s, 20s]
  input u : 1 in [0, 2] nominal 1
  state x : 1 in [-10, 10] init 0
  state y : 1 in [-10, 10] init 0
  next y = u + x * 0 + tau / 1s * 0
  continuous {{ {eq} }}"""
    )
    assert code in codes


def test_a_state_with_next_and_der_is_an_error() -> None:
    codes = _codes(
        """  state x : 1 in [-10, 10] init 0
  next x = x
  continuous { der(x) = -x / 3s }"""
    )
    assert "COH210" in codes


# ---- timing immediate ------------------------------------------------------------------------


def _proportional(timing: str) -> str:
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


def test_timing_immediate_has_the_textbook_closed_loop_pole() -> None:
    a, b, K = 0.9, 0.5, 1.0
    ts = system(_proportional("timing immediate"))
    rho = dict(analyze(ts, TIGHT).data)["spectral_radius"]
    assert rho == pytest.approx(abs(a - b * K), abs=1e-9)
    x = simulate(ts, 20).state("x")[0]
    np.testing.assert_allclose(x, (a - b * K) ** np.arange(21), rtol=1e-12, atol=1e-15)


def test_default_timing_acts_one_tick_later() -> None:
    a, b, K = 0.9, 0.5, 1.0
    ts = system(_proportional(""))
    rho = dict(analyze(ts, TIGHT).data)["spectral_radius"]
    expected = max(abs(r) for r in np.roots([1.0, -a, b * K]))  # z^2 - a z + b K
    assert rho == pytest.approx(expected, abs=1e-9)
    assert abs(rho - abs(a - b * K)) > 0.3
    explicit = system(_proportional("timing delayed"))
    assert dict(analyze(explicit, TIGHT).data)["spectral_radius"] == pytest.approx(rho, abs=1e-12)


def test_immediate_reaches_lags_and_lets_of_the_plant() -> None:
    # the plant reads u through a let: the let's plant copy reads the new value
    ts = system(
        """  state x : 1 in [-100, 100] init 1
  state u : 1 in [-100, 100] init 0
  let push = 0.5 * u
  next x = 0.9 * x + push
  loop p {
    senses x
    actuates u to -x
    timing immediate
  }
  require stable"""
    )
    assert "__now_push" in {d.name for d in ts.lets}
    x = simulate(ts, 10).state("x")[0]
    np.testing.assert_allclose(x, 0.4 ** np.arange(11), rtol=1e-12, atol=1e-15)


def test_writers_of_one_state_must_agree_on_timing() -> None:
    codes = _codes(
        """  state x : 1 in [-100, 100] init 1
  state u : 1 in [-100, 100] init 0 combine last
  next x = 0.9 * x + u
  loop p { senses x actuates u to -x timing immediate }
  loop q { senses x actuates u to -x }"""
    )
    assert "COH219" in codes


# ---- fmt and ir ------------------------------------------------------------------------------

ALL = """system t {
  tick 1s
  unit m
  input acc : m/s^2 in [-1 m/s^2, 1 m/s^2] nominal 0 m/s^2
  state p : m in [-1000 m, 1000 m] init 1 m
  state v : m/s in [-1000 m/s, 1000 m/s] init 0 m/s
  state f : m/s^2 in [-1 m/s^2, 1 m/s^2] init 0 m/s^2 combine max
  let seen = delay(lag(p, 30s), 3s, 1 m)
  continuous {
    der(p) = v
    der(v) = f - v / 10s
  }
  loop hold {
    senses seen
    actuates f to -seen / 100s^2
    timing immediate
  }
  loop push {
    actuates f to acc
    timing immediate
  }
  require stable
}
"""


def test_fmt_round_trips_the_new_constructs() -> None:
    mod, diags, _ = parse_source(SourceFile("t.coh", ALL))
    assert not diags
    text = format_module(mod)
    for piece in ("combine max", "continuous {", "der(v) = f - v / 10 s", "timing immediate"):
        assert piece in text
    again, diags2, _ = parse_source(SourceFile("t.coh", text))
    assert not diags2 and again == mod
    assert format_module(again) == text


def test_ir_shows_what_the_constructs_lower_to() -> None:
    result = compile_text("t.coh", ALL)
    assert result.ok, result.diagnostics
    text = dump(result.systems[0])
    a = math.exp(-1 / 30)
    assert "state __lag1_p plant" in text
    assert f"next {a:.12g} * __lag1_p + " in text
    assert "state __delay1.r3 plant" in text  # the delay of an expression: no signal name
    assert "let __input_v = f" in text  # what the zero-order hold holds
    assert "let __now_f = " in text  # the value `timing immediate` gives the plant
    assert "next max(if hold.f.acts then hold.f.target else __last_f" in text


def test_immediate_with_a_measurement_delay() -> None:
    # u[k] = -K x[k-2] acting at once: x[k+1] = a x[k] - b K x[k-2], z^3 - a z^2 + b K
    a, b, K = 0.9, 0.5, 1.0
    ts = system(_proportional("timing immediate").replace("senses x", "senses x delay 2s"))
    rho = dict(analyze(ts, TIGHT).data)["spectral_radius"]
    assert rho == pytest.approx(max(abs(r) for r in np.roots([1.0, -a, 0.0, b * K])), abs=1e-9)
    x = simulate(ts, 6).state("x")[0]
    expected = [1.0]
    for k in range(6):  # the sensor starts full of x's initial value
        expected.append(a * expected[k] - b * K * expected[max(k - 2, 0)])
    np.testing.assert_allclose(x, expected, rtol=1e-12)
