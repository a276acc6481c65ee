"""Fixtures of the linear-analysis tests: the specs under tests/linear/data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from coherence.compile import compile_text
from coherence.ir.nodes import TransitionSystem

DATA = Path(__file__).parent / "data"


def compile_spec(text: str, path: str = "test.coh") -> TransitionSystem:
    result = compile_text(path, text)
    assert result.ok, [d.message for d in result.diagnostics]
    return result.systems[0]


@pytest.fixture
def spec() -> Callable[[str], TransitionSystem]:
    """Compile a spec of tests/linear/data by name (without .coh)."""

    def load(name: str) -> TransitionSystem:
        path = DATA / f"{name}.coh"
        return compile_spec(path.read_text(), str(path))

    return load


@pytest.fixture
def compile_ts() -> Callable[[str], TransitionSystem]:
    """Compile spec text."""
    return compile_spec


@pytest.fixture
def spec_text() -> Callable[[str], str]:
    """The text of a spec of tests/linear/data by name."""
    return lambda name: (DATA / f"{name}.coh").read_text()
