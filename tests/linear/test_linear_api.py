"""The entry point: result shape, verdicts, tables and data, import discipline, docstrings."""

from __future__ import annotations

import doctest
import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coherence.ir.nodes import TransitionSystem
from coherence.linear import LinearOptions, analyze
from coherence.results import Finding, Status

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "coherence" / "linear"


def test_tipping_point_analyses(compile_ts: Callable[[str], TransitionSystem]) -> None:
    ts = compile_ts(
        (ROOT / "specs/seed/tipping_point.coh").read_text(), "specs/seed/tipping_point.coh"
    )
    r = analyze(ts)
    assert r.analysis == "linear" and r.seconds > 0
    (v,) = r.verdicts
    assert v.kind == "stable" and v.analysis == "linear" and v.status == Status.HOLDS
    assert v.span == ts.requirements[0].span
    titles = [t.title for t in r.tables]
    for want in ("Stability", "Modes", "Margins", "Topology", "Cycles of influence"):
        assert want in titles
    data = dict(r.data)
    json.dumps(data)  # plain JSON-able values
    for key in (
        "spectral_radius",
        "modes",
        "margins",
        "topology",
        "operating_point",
        "alone",
        "corners",
        "timescales",
        "verdict",
    ):
        assert key in data
    assert list(r.findings) == sorted(r.findings, key=Finding.sort_key)
    for f in r.findings:
        assert f.span.path == "specs/seed/tipping_point.coh" and f.key


def test_every_table_row_matches_its_columns(spec: Callable[[str], TransitionSystem]) -> None:
    for name in ("fight", "shaped", "hpa", "flipflop", "multirate"):
        for t in analyze(spec(name)).tables:
            assert all(len(row) == len(t.columns) for row in t.rows), (name, t.title)


def test_verdicts_for_each_requirement(compile_ts: Callable[[str], TransitionSystem]) -> None:
    ts = compile_ts("""system s { tick 1s
      state x in [-10, 10] init 1
      next x = 0.5 * x
      require stable
      require always x <= 5 for 10 ticks
      require stable }""")
    r = analyze(ts)
    assert [v.status for v in r.verdicts] == [Status.HOLDS, Status.HOLDS]
    assert all("local" in v.reason for v in r.verdicts)


def test_options_scope_margins(spec: Callable[[str], TransitionSystem]) -> None:
    r = analyze(spec("fight"), LinearOptions(pair_limit=0))
    # over the pair limit, pairs are only computed to explain an instability: still here
    assert dict(r.data)["pairs"]
    r = analyze(spec("multirate"), LinearOptions(margin_limit=1))
    margins = dict(r.data)["margins"]
    assert len(margins) == 1
    note = next(t for t in r.tables if t.title == "Margins").note
    assert "1 of 2 loops" in note


def test_import_discipline() -> None:
    code = (
        "import sys\n"
        "import coherence.linear\n"
        "assert 'sympy' not in sys.modules, 'sympy imported eagerly'\n"
        "from coherence.compile import compile_text\n"
        "ts = compile_text('a.coh', 'system s { tick 1s state y in [-9, 9] init 0 "
        "state u in [-9, 9] init 0 next y = 0.5 * y + u "
        "loop c { senses y actuates u by 0.1 * (1 - y) } require stable }').systems[0]\n"
        "coherence.linear.analyze(ts)\n"
        "assert 'control' not in sys.modules, 'python-control imported'\n"
        "assert not any(m.startswith('matplotlib') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_sympy_only_structurally() -> None:
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        for banned in ("sympify", "parse_expr", "eval(", "exec("):
            assert banned not in text, f"{path.name} uses {banned}"


@pytest.mark.parametrize(
    "module", sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
)
def test_doctests(module: str) -> None:
    mod = importlib.import_module(f"coherence.linear.{module}")
    result = doctest.testmod(mod)
    assert result.failed == 0


def test_findings_are_hashable(spec: Callable[[str], TransitionSystem]) -> None:
    for name in ("fight", "shaped", "twin_integrators", "hpa"):
        r = analyze(spec(name))
        assert len(set(r.findings)) == len(r.findings)
        json.dumps(dict(r.data))
