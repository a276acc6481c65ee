"""IR dumps are golden; lowering invariants hold for every shipped spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from coherence.compile import compile_text
from coherence.ir.dump import dump
from coherence.ir.nodes import Var
from coherence.ir.transform import hold_loop, with_extra_delay, with_params
from coherence.simulate.engine import simulate
from tests.helpers import system

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_SPECS = [ROOT / "specs" / "seed" / "tipping_point.coh"]


@pytest.mark.parametrize("path", GOLDEN_SPECS, ids=[p.stem for p in GOLDEN_SPECS])
def test_ir_dump_golden(path: Path, golden) -> None:  # type: ignore[no-untyped-def]
    result = compile_text(path.name, path.read_text(encoding="utf-8"))
    golden.check(f"ir/{path.stem}.txt", "".join(dump(ts) for ts in result.systems))


def test_small_system_dump_golden(golden) -> None:  # type: ignore[no-untyped-def]
    ts = system(
        "input u : 1 in [0, 10] nominal 1\n state r : replica integer in [1, 9] init 2\n"
        "loop hpa { every 2s cooldown 4s stabilize down 6s senses u delay 1s window 2s "
        "rate up 100% down 1 replica deadband 0.5 replica actuates r to ceil(r * u) }"
    )
    golden.check("ir/small.txt", dump(ts))


def test_every_name_an_expression_reads_is_defined() -> None:
    for path in sorted((ROOT / "specs").rglob("*.coh")):
        for ts in compile_text(str(path), path.read_text(encoding="utf-8")).systems:
            defined = {s.name for s in ts.states} | {u.name for u in ts.inputs}
            defined |= {p.name for p in ts.params}
            for d in ts.lets:
                for v in _vars(d.expr):
                    assert v in defined, (path, d.name, v)
                defined.add(d.name)
            for s in ts.states:
                for v in _vars(s.update):
                    assert v in defined, (path, s.name, v)


def _vars(e):  # type: ignore[no-untyped-def]
    if isinstance(e, Var):
        yield e.name
    for f in getattr(e, "__slots__", ()):
        child = getattr(e, f)
        if isinstance(child, tuple):
            for c in child:
                yield from _vars(c)
        elif hasattr(child, "__slots__") and not isinstance(child, str | float | int):
            yield from _vars(child)


def test_hold_loop_freezes_its_actuator() -> None:
    ts = system("state a in [0, 100] init 0\n loop p { actuates a by 1 }")
    assert simulate(hold_loop(ts, "p"), 3).state("a")[0].tolist() == [0, 0, 0, 0]


def test_gain_parameter_scales_the_change() -> None:
    ts = system("state a in [0, 100] init 0\n loop p { actuates a by 2 }")
    assert simulate(with_params(ts, {"p.a.gain": 0.5}), 2).state("a")[0].tolist() == [0, 1, 2]


def test_extra_delay_shifts_the_sensed_signal() -> None:
    import numpy as np

    ts = system(
        "input u : 1 in [0, 100] nominal 0\n state a in [0, 100] init 0\n"
        "loop l { senses u delay 1s actuates a to u }"
    )
    inputs = np.array([[[1.0], [2.0], [3.0], [4.0], [5.0]]])
    base = simulate(ts, 5, inputs=inputs).state("a")[0].tolist()
    more = simulate(with_extra_delay(ts, "l", 2), 5, inputs=inputs).state("a")[0].tolist()
    assert base == [0, 1, 1, 2, 3, 4]
    assert more == [0, 1, 1, 1, 1, 2]


def test_an_objective_floor_is_kept_in_canonical_units() -> None:
    ts = system(
        "param price = 8 $/h\n state q : req in [0, 100] init 0\n next q = q\n"
        "let latency = 0.2s + q / (10 req/s)\n let cost = price * q / (1 req)\n"
        "objective minimize latency tolerance 5% floor 50ms\n"
        "objective keep spend = cost <= 900 $/h floor 36 $/h\n"
        "objective maximize q"
    )
    floors = {o.name: o.floor for o in ts.objectives}
    assert floors == {"latency": pytest.approx(0.05), "spend": pytest.approx(0.01), "q": None}
    lines = [line.strip() for line in dump(ts).splitlines() if "objective" in line]
    assert lines[0] == "objective latency minimize latency tolerance 0.05 relative floor 0.05"
    assert lines[2] == "objective q maximize q tolerance 0"
