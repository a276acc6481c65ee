"""Margins read from the loop's frequency response, and margins that no change can reach.

Each case has a closed form:
- the pure-delay integrator x(k+1) = x(k) - K x(k - d) is stable iff
  0 < K < 2 sin(pi / (2 (2 d + 1))) (Levin & May, Theoretical Population Biology 9, 1976):
  with d = 120 its gain margin is that bound over K and its delay margin the largest extra
  delay D - d with K still below the bound at D;
- a first-order plant x(k+1) = 0.5 x(k) + u(k) under u(k+1) = -0.3 f x(k) has the
  characteristic polynomial z^2 - 0.5 z + 0.3 f; Jury's conditions (Åström & Wittenmark,
  Computer-Controlled Systems, 3rd ed., sec. 3.2) give stability iff -5/3 < f < 10/3, so the
  gain margin is x3.33 and no positive factor below 1 destabilises it; broken at its sensor,
  L(z) = 0.3 / (z (z - 0.5)) has |L| <= 0.3 / 0.5 = 0.6 < 1 on the unit circle: no delay
  destabilises it (small-gain theorem, Zhou, Doyle & Glover, Robust and Optimal Control,
  1996, thm. 9.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from coherence.ir.nodes import TransitionSystem
from coherence.ir.transform import with_params
from coherence.linear import LinearOptions, analyze

FIRST_ORDER = """
system first_order {
  tick 1s
  param f = 1
  state x in [-100, 100] init 1
  state u in [-100, 100] init 0
  next x = 0.5 * x + u
  loop p {
    senses x
    actuates u to -0.3 * f * x
  }
  require stable
}
"""


def _critical(d: int) -> float:
    return 2 * math.sin(math.pi / (2 * (2 * d + 1)))


def _margin(ts: TransitionSystem, loop: str, **kw: float) -> dict[str, object]:
    data = dict(analyze(ts, LinearOptions(starts=0, **kw)).data)  # type: ignore[arg-type]
    out: dict[str, object] = data["margins"][loop]
    return out


def test_a_long_delay_margin_matches_the_closed_form(
    spec_text: Callable[[str], str], compile_ts: Callable[[str], TransitionSystem]
) -> None:
    d, k = 120, 0.008
    ts = with_params(
        compile_ts(spec_text("delayed_integrator").replace("delay 1s", "delay 120s")), {"K": k}
    )
    # a 1e-12 marginal band: the margin is where the root reaches the circle itself
    m = _margin(ts, "integrator", marginal_tol=1e-12)
    assert m["method"] == "frequency"
    assert m["gain_high"] == pytest.approx(_critical(d) / k, rel=1e-4)
    expected = max(D for D in range(d, 1000) if k < _critical(D)) - d
    assert expected > 64  # beyond the bisection's reach (max_extra_delay)
    assert m["delay_ticks"] == expected
    assert m["delay_open"] is False


def test_a_first_order_loop_says_why_its_margins_are_unbounded(
    compile_ts: Callable[[str], TransitionSystem],
) -> None:
    result = analyze(compile_ts(FIRST_ORDER), LinearOptions(starts=0))
    m = dict(result.data)["margins"]["p"]
    assert m["gain_high"] == pytest.approx(10 / 3, rel=1e-4)
    assert m["gain_high"] < 10 / 3  # the last factor found stable: on the safe side
    assert m["gain_low"] is None and "down to 0" in str(m["gain_low_unbounded"])
    assert m["delay_ticks"] == 0
    assert "small-gain" in str(m["delay_unbounded"])
    assert "0.6" in str(m["delay_unbounded"])  # max |L| = 0.3 / 0.5
    table = next(t for t in result.tables if t.title == "Margins")
    row = next(r for r in table.rows if r[0] == "p")
    assert str(row[2]).startswith("unbounded: ")
    assert str(row[1]).startswith("x0 .. x3.33")
    # the variants agree: x3.3 is stable, x3.4 is not (Jury)
    assert (
        analyze(with_params(compile_ts(FIRST_ORDER), {"f": 3.3})).verdicts[0].status.name == "HOLDS"
    )
    assert (
        analyze(with_params(compile_ts(FIRST_ORDER), {"f": 3.4})).verdicts[0].status.name
        == "FALSIFIED"
    )
