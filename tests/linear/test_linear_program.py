"""The template program the linear analysis evaluates: the reference semantics, fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from coherence.compile import compile_text
from coherence.ir.nodes import TransitionSystem
from coherence.ir.topology import Structure
from coherence.linear.linearize import Engine
from coherence.linear.oppoint import _Map
from coherence.linear.program import Program
from coherence.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]

WINDOWED = """system w {
  tick 1s
  input u : 1 in [0, 100] nominal 40
  state a in [-1000, 1000] init 0
  state b in [0, 100] init 7
  state c in [-1000, 1000] init 0
  next b = b + 0.25 * (u - b) + 0.01 * c
  loop l { every 2s phase 1s senses u delay 2s window 9s actuates a to 0.5 * u + 0.1 * b }
  loop m { every 3s senses b window 10s actuates c by 0.1 * (b - c) }
}
"""


def _system(text: str, path: str = "w.coh") -> TransitionSystem:
    result = compile_text(path, text)
    assert result.ok, [d.message for d in result.diagnostics]
    return result.systems[0]


def _llm_serving() -> TransitionSystem:
    path = ROOT / "specs/llm_serving.coh"
    return _system(path.read_text(encoding="utf-8"), str(path))


def _run_like_the_simulator(p: Program, ticks: int, scenarios: int) -> np.ndarray:
    x = np.repeat(p.initial_states(), scenarios, axis=0)
    vals = p.base_values(scenarios)
    out = [x.copy()]
    for t in range(ticks):
        x = p.step(vals, x, t)
        out.append(x.copy())
    return np.stack(out, axis=1)


def test_window_folds_are_evaluated_stacked_and_stay_the_reference_semantics() -> None:
    for ts in (_system(WINDOWED), _llm_serving()):
        p = Program(ts, Structure(ts))
        groups = [g for wave in p.let_waves for g in wave] + p.update_groups
        assert any(g.blocks for g in groups)  # the windows' sums read their registers stacked
        ticks = 2 * ts.hyperperiod + 7
        states = _run_like_the_simulator(p, ticks, 2)
        ref = simulate(ts, ticks, scenarios=2).states
        assert states.tobytes() == ref.tobytes()


def test_the_value_environment_gives_what_the_full_environment_gives() -> None:
    ts = _llm_serving()
    p = Program(ts, Structure(ts))
    x = p.initial_states()
    vals = p.base_values()
    for t in range(ts.hyperperiod + 3):
        vals[:, : p.n] = x
        for wave in p.let_waves:
            for g in wave:
                assert g.fn is not None
                with np.errstate(all="ignore"):
                    full = np.asarray(g.fn(g.env(vals, t)), dtype=float)
                    lean = np.asarray(g.evaluate(vals, t), dtype=float)
                assert full.tobytes() == lean.tobytes()
        x = p.step(vals, x, t)


def test_the_hyperperiod_map_remembers_points_without_sharing_its_arrays() -> None:
    ts = _system(WINDOWED)
    fmap = _Map(Engine(ts))
    x = fmap.p.initial_states()
    first = fmap.apply(x)
    first[:] = np.nan  # the caller's copy; the map's memory is its own
    again = fmap.apply(x)
    fresh = _Map(Engine(ts)).apply(x)
    assert again.tobytes() == fresh.tobytes()
    moved = x.copy()
    moved[0, ts.state_names.index("b")] += 1.0
    assert fmap.apply(moved).tobytes() != again.tobytes()
