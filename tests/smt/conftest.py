"""Fixtures of the formal-analysis tests: compiled specs from tests/smt/data and the library."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from coherence.compile import compile_text
from coherence.diagnostics import Severity, render
from coherence.ir.nodes import TransitionSystem

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"


def compile_spec(text: str, path: str = "t.coh") -> TransitionSystem:
    result = compile_text(path, text)
    errors = [d for d in result.diagnostics if d.level == Severity.ERROR]
    assert not errors, "\n".join(render(d, result.source) for d in errors)
    return result.systems[0]


@pytest.fixture(scope="session")
def spec() -> Callable[[str], TransitionSystem]:
    """A spec of tests/smt/data (by file name) or of the repository (by relative path)."""

    def load(name: str) -> TransitionSystem:
        path = DATA / name if (DATA / name).exists() else ROOT / name
        return compile_spec(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))

    return load


@pytest.fixture(scope="session")
def system() -> Callable[[str], TransitionSystem]:
    """A system from the body of a spec (``tick 1s`` is added)."""

    def build(body: str) -> TransitionSystem:
        return compile_spec(f"system t {{\n  tick 1s\n{body}\n}}\n")

    return build
