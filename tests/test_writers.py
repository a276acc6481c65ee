"""Several loops writing one state: ``combine sum`` (the default), ``last``, ``max``, ``min``.

Each rule is checked on hand-computed two-writer cases in the three backends that read the
lowered system: the simulator, the linear analysis (closed-form spectral radii of 2x2
Jacobians: a complex pair has modulus sqrt(det J)), and a bounded Z3 check.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from coherence.ir.nodes import TransitionSystem
from coherence.linear import LinearOptions, analyze
from coherence.results import Status
from coherence.simulate.requirements import check_requirement
from coherence.smt.bmc import bmc
from coherence.smt.options import SmtOptions
from coherence.smt.replay import replay
from coherence.smt.solver import SolverStats
from tests.helpers import run, system

RULES = ("sum", "last", "max", "min")


# ---- simulation ------------------------------------------------------------------------------

# x starts at 0; loop a sets 4, loop b (declared after a) sets 7, both every tick.
#   sum:  x + (4 - x) + (7 - x) = 11 - x:  0, 11, 0, 11, ...  (clamped to [0, 20]: not reached)
#   last: b wins: 7, 7, ...     max: 7, 7, ...     min: 4, 4, ...
# Under last, max and min a loop whose target equals x still sets it (it holds x there).
SIM = {
    "sum": [0, 11, 0, 11, 0, 11, 0],
    "last": [0, 7, 7, 7, 7, 7, 7],
    "max": [0, 7, 7, 7, 7, 7, 7],
    "min": [0, 4, 4, 4, 4, 4, 4],
}


@pytest.mark.parametrize("rule", RULES)
def test_two_writers_in_simulation(rule: str) -> None:
    tr = run(
        f"""  state x : 1 in [0, 20] init 0 combine {rule}
  loop a {{ actuates x to 4 }}
  loop b {{ actuates x to 7 }}""",
        ticks=6,
    )
    assert tr.state("x")[0].tolist() == SIM[rule]


def test_last_follows_declaration_order() -> None:
    tr = run(
        """  state x : 1 in [0, 20] init 0 combine last
  loop b { actuates x to 7 }
  loop a { actuates x to 4 }""",
        ticks=3,
    )
    assert tr.state("x")[0].tolist() == [0, 4, 4, 4]


def test_a_writer_that_does_not_fire_does_not_propose() -> None:
    # b acts on even ticks only: under min, x is 7 on the ticks after b is silent
    tr = run(
        """  state x : 1 in [0, 20] init 0 combine min
  loop a { actuates x to 7 }
  loop b { every 2s actuates x to 4 }""",
        ticks=4,
    )
    assert tr.state("x")[0].tolist() == [0, 4, 7, 4, 7]


# ---- linear analysis -------------------------------------------------------------------------
#
# x[k+1] = 0.5 x[k] + u[k]; loop a sets u to 1 - 0.2 x, loop b sets u to -0.6 x.
#   sum:  u[k+1] = (1 - 0.2x) + (-0.6x) - u   J = [[0.5, 1], [-0.8, -1]]   det 0.3
#   max:  a wins at the operating point (u = 1/1.4 > -0.6 x = -6/7)  J = [[0.5, 1], [-0.2, 0]]
#   min:  b wins (u = x = 0 < 1)                J = [[0.5, 1], [-0.6, 0]]   det 0.6
#   last: b (declared last) always wins         same as min
# Each J has a complex pair (trace^2 < 4 det), so the spectral radius is sqrt(det J).
RHO = {"sum": math.sqrt(0.3), "max": math.sqrt(0.2), "min": math.sqrt(0.6), "last": math.sqrt(0.6)}


@pytest.mark.parametrize("rule", RULES)
def test_two_writers_in_the_linear_analysis(rule: str) -> None:
    ts = system(
        f"""  state x : 1 in [-100, 100] init 0
  state u : 1 in [-100, 100] init 0 combine {rule}
  next x = 0.5 * x + u
  loop a {{ senses x actuates u to 1 - 0.2 * x }}
  loop b {{ senses x actuates u to -0.6 * x }}
  require stable"""
    )
    data = dict(analyze(ts, LinearOptions(gain_rtol=1e-5, starts=0)).data)
    assert data["spectral_radius"] == pytest.approx(RHO[rule], abs=1e-9)


# ---- bounded Z3 check ------------------------------------------------------------------------
#
# x starts at 6; loop a sets it to the input d in [0, 5], loop b sets it to 6.
#   sum:  x' = d + 6 - x: d = 0 gives 0 at tick 1 (x >= 1 fails), then 6 + d - 0 up to 11
#   max:  max(d, 6) = 6 always;  min: min(d, 6) = d, may be 0;  last: b's 6 always.
EXPECT = {  # rule: (always x <= 6 holds, always x >= 1 holds)
    "sum": (False, False),
    "max": (True, True),
    "min": (True, False),
    "last": (True, True),
}


def _writers(rule: str) -> TransitionSystem:
    return system(
        f"""  input d : 1 in [0, 5] nominal 3
  state x : 1 in [0, 20] init 6 combine {rule}
  loop a {{ senses d actuates x to d }}
  loop b {{ actuates x to 6 }}
  require always x <= 6 for 6s
  require always x >= 1 for 6s"""
    )


@pytest.mark.parametrize("rule", RULES)
def test_two_writers_in_a_bounded_z3_check(rule: str) -> None:
    ts = _writers(rule)
    options = SmtOptions(patterns=False, intervals=False)
    for req, holds in zip(ts.requirements, EXPECT[rule], strict=True):
        res = bmc(ts, req, options, SolverStats())
        if holds:
            assert res.status is Status.HOLDS, (rule, req.text, res.reason)
        else:
            assert res.status is Status.FALSIFIED, (rule, req.text, res.reason)
            assert res.cex is not None  # and the counterexample replays in the simulator
            trace = replay(ts, res.cex.scenario)
            fail = check_requirement(replace(req, horizon=min(req.horizon, trace.ticks)), trace)
            assert fail is not None and int(fail[0]) == res.cex.tick


def test_max_with_a_lagged_sensor_starts_and_settles() -> None:
    # the writers' registers start from the initial state; a's target 5 wins under max
    tr = run(
        """  state x : 1 in [0, 20] init 0 combine max
  loop a { senses x delay 2s actuates x to 5 }
  loop b { actuates x to 2 }""",
        ticks=4,
    )
    assert tr.state("x")[0].tolist() == [0, 5, 5, 5, 5]
