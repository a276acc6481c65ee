"""The formal analysis as data (coherence.formal): the bounded strategy is a tuple of steps,
its verdicts say how they were obtained in a typed field, the words are keyed by code, and
z3 stays in coherence.smt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coherence.compile import compile_text
from coherence.diagnostics import REGISTRY
from coherence.formal import SmtOptions, analyze, findings
from coherence.formal.bounded import BOUNDED, GO_ON, Context, GoOn, bmc, check_bounded
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import Status
from coherence.smt.bmc import Method, Result
from coherence.smt.solver import SolverStats

PACKAGE = Path(__file__).resolve().parents[1] / "coherence"

SATURATED = (
    "system s { tick 1s input u in [0, 1] nominal 0 "
    "state x in [0, 10] init 0 next x = min(x + u, 5) "
    "require always x <= 5 for 20 ticks }"
)
VIOLATED = (
    "system s { tick 1s input u in [0, 1] nominal 0 "
    "state x in [0, 10] init 0 next x = min(x + u, 8) "
    "require always x <= 5 for 20 ticks }"
)


def test_the_bounded_strategy_reads_as_a_list_of_steps() -> None:
    names = [step.__name__ for step in BOUNDED]
    assert names == [
        "patterns",
        "intervals",
        "dwell",
        "localized",
        "induction",
        "bmc",
        "invariants",
    ]


def test_a_verdict_records_its_method() -> None:
    ts = compile_text("a.coh", SATURATED).systems[0]
    res = check_bounded(ts, ts.requirements[0], SmtOptions(), SolverStats())
    assert res.status is Status.PROVED and res.method is Method.INTERVALS
    ts = compile_text("a.coh", VIOLATED).systems[0]
    res = check_bounded(ts, ts.requirements[0], SmtOptions(), SolverStats())
    assert res.status is Status.FALSIFIED and res.method is Method.PATTERNS
    solver = SmtOptions(patterns=False, intervals=False)
    res = check_bounded(ts, ts.requirements[0], solver, SolverStats())
    assert res.status is Status.FALSIFIED and res.method is Method.BMC


def test_the_finding_says_who_chose_the_inputs() -> None:
    ts = compile_text("a.coh", VIOLATED).systems[0]
    for options, words in (
        (SmtOptions(), "inputs from a simulated pattern"),
        (SmtOptions(patterns=False, intervals=False), "inputs chosen by the solver"),
    ):
        (f,) = [f for f in analyze(ts, options).findings if f.code == findings.ALWAYS_VIOLATED]
        assert f.trace is not None and words in f.trace.inputs_note


def test_a_strategy_of_steps_chosen_by_the_caller() -> None:
    ts = compile_text("a.coh", VIOLATED).systems[0]
    req = ts.requirements[0]
    res = check_bounded(ts, req, SmtOptions(), SolverStats(), strategy=(bmc,))
    assert res.status is Status.FALSIFIED and res.method is Method.BMC

    def nothing(
        ts: TransitionSystem, req: Requirement, options: SmtOptions, ctx: Context
    ) -> Result | GoOn:
        return GO_ON

    with pytest.raises(ValueError, match="bounded answer"):
        check_bounded(ts, req, SmtOptions(), SolverStats(), strategy=(nothing,))


def test_the_codes_are_the_catalog_s() -> None:
    codes = {
        name: value
        for name, value in vars(findings).items()
        if name.isupper() and isinstance(value, str) and value.startswith("COH")
    }
    assert len(codes) == 8
    for name, code in codes.items():
        assert REGISTRY[code].name.replace("-", "_").upper() == name
    assert set(findings.MESSAGES) == set(findings.HELP) == set(findings.VIOLATED.values())


def test_z3_is_imported_by_coherence_smt_alone() -> None:
    for path in [*(PACKAGE / "formal").glob("*.py"), *(PACKAGE / "search").glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "import z3" not in text and "from z3" not in text, path
    code = (
        "import sys, coherence.search.bounded, coherence.simulate.replay; "
        "print('z3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
