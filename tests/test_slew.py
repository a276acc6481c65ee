"""Inputs with a slew: `slew AMOUNT per DURATION`, read the same way by every analysis.

Closed form: ``prev`` copies the input a tick late, so ``u - prev`` is the input's move in
one tick. With ``slew 0.1 per 1s`` that move is at most 0.1 on every run (proved for all
time, 1-inductive); without the slew the adversary moves the input from -1 to 0 in one
tick, and the bound is falsified at t = 1 s. A ramp of slew 0.1 from 0 reaches 0.3 in three
ticks, which floats write ``0.30000000000000004``: the move ``0.10000000000000003`` is not
a violation of ``<= 0.1`` (a counterexample from simulation must beat the margin).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coherence.compile import compile_text
from coherence.formal import SmtOptions, analyze
from coherence.formal.conflicts import CONFLICT, check_all
from coherence.frontend.format import format_module
from coherence.frontend.parser import parse_source
from coherence.ir.nodes import TransitionSystem
from coherence.results import Status
from coherence.simulate.engine import simulate
from coherence.smt.solver import SolverStats, own_context
from coherence.source import SourceFile
from tests.ci.util import cli
from tests.helpers import assert_replays, copy_and_shadow

JUMP = """system s "one tick's move" {
  tick 1s
  input u : 1 in [-1, 1] nominal 0 slew 0.1 per 1s
  state prev : 1 in [-1, 1] init 0
  state started : 1 in [0, 1] init 0
  next prev = u
  next started = 1
  let jump = started * (u - prev)
  require always jump <= 0.1 for 30 ticks
}"""


def compiled(text: str) -> TransitionSystem:
    result = compile_text("t.coh", text)
    assert result.ok, [d.message for d in result.diagnostics]
    return result.systems[0]


def test_the_slew_is_a_move_per_tick_in_canonical_units() -> None:
    text = JUMP.replace("tick 1s", "tick 5s").replace("slew 0.1 per 1s", "slew 2 per 10s")
    ts = compiled(text)
    assert ts.inputs[0].slew == pytest.approx(1.0)  # 2 per 10 s is 1 per 5 s tick
    ms = compiled(
        "system s { tick 1s input lat : ms in [0, 100] nominal 10 slew 5 ms per 1s "
        "state x in [0, 1] init 0 next x = x }"
    )
    assert ms.inputs[0].slew == pytest.approx(0.005)  # canonical seconds
    assert compiled(JUMP.replace(" slew 0.1 per 1s", "")).inputs[0].slew == np.inf


def test_the_formatter_keeps_the_slew() -> None:
    module, diags, _ = parse_source(SourceFile("t.coh", JUMP))
    assert not diags
    out = format_module(module)
    assert "input u : 1 in [-1, 1] nominal 0 slew 0.1 per 1 s" in out
    assert compiled(out).inputs[0].slew == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("slew", "code", "what"),
    [
        ("slew 0 per 1s", "COH213", "positive amount per positive duration"),
        ("slew 0.1 per 0s", "COH213", "positive amount per positive duration"),
        ("slew 0.1 s per 1s", "COH207", "slew amount"),
        ("slew 0.1 per 3 req", "COH207", "slew duration"),
    ],
)
def test_a_bad_slew_is_a_located_error(tmp_path: Path, slew: str, code: str, what: str) -> None:
    path = tmp_path / "bad.coh"
    path.write_text(JUMP.replace("slew 0.1 per 1s", slew))
    rc, out, err = cli("check", "--no-smt", "--no-linear", str(path))
    text = out + err
    assert rc != 0
    assert code in text and what in text
    assert f"{path.name}:3:" in text  # the input's line


def test_a_step_becomes_a_ramp_in_simulation() -> None:
    ts = compiled(JUMP)
    steps = np.zeros((1, 20, 1))
    steps[0, 5:, 0] = 1.0
    tr = simulate(ts, 20, inputs=steps)
    u = tr.inputs[0, :, 0]
    assert u[:5].tolist() == [0.0] * 5
    assert np.allclose(u[5:15], np.arange(1, 11) * 0.1)
    assert u[15:].tolist() == [1.0] * 5
    assert np.all(np.abs(np.diff(u)) <= 0.1 * (1 + 1e-9))


def test_the_bound_is_proved_with_the_slew_and_falsified_without() -> None:
    with_slew = analyze(compiled(JUMP))
    (v,) = with_slew.verdicts
    assert v.status == Status.PROVED, v.detail
    without = analyze(compiled(JUMP.replace(" slew 0.1 per 1s", "")))
    (w,) = without.verdicts
    assert w.status == Status.FALSIFIED
    assert any(f.code == "COH501" for f in without.findings)


def test_a_float_level_violation_of_a_ramp_is_not_a_counterexample() -> None:
    # the patterns ramp u by exactly its slew; u - prev is 0.1 up to float rounding
    ts = compiled(JUMP)
    ramp = np.ones((1, 6, 1))
    ramp[0, 0, 0] = 0.0  # from 0 towards 1: 0, 0.1, 0.2, 0.30000000000000004, ...
    tr = simulate(ts, 6, inputs=ramp)
    jumps = tr.let("jump")[0]
    assert jumps.max() > 0.1  # the float rounding the margin must absorb
    r = analyze(ts, SmtOptions(intervals=False))
    assert not any(f.code == "COH501" for f in r.findings)


def test_a_conflict_witness_moves_its_inputs_within_the_slew() -> None:
    ts = copy_and_shadow(0.5, "slew 0.25 per 1s")
    with own_context():
        found = {(p.actor, p.affected): p for p in check_all(ts, SmtOptions(), SolverStats())}
    p = found[("copy", "shadow")]
    assert p.verdict == CONFLICT and p.witness is not None
    assert_replays(ts, p.witness)
    # the run the witness replays, from the initial state, moves u by the slew at most
    moves = np.abs(np.diff(p.witness.run.inputs[0, :, 0]))
    assert moves.size and np.all(moves <= 0.25 * (1 + 1e-9))
