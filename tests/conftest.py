"""Shared fixtures: golden files (regenerate with ``pytest --update-golden``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# every property test draws the same examples on every machine and every run (no example
# database carried between runs): CI is deterministic, and a failure reproduces as is
settings.register_profile("coherence", derandomize=True, database=None, deadline=None)
settings.load_profile("coherence")

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files")


class Golden:
    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, name: str, actual: str) -> None:
        path = GOLDEN / name
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        assert path.exists(), f"golden file {path} is missing: run pytest --update-golden"
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, f"{name} differs from its golden file (pytest --update-golden)"


@pytest.fixture(autouse=True)
def _no_results_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run ``coherence check`` without the results cache: many patch analyses in the
    process, which the cache's key does not see (tests/test_cache.py turns it back on)."""
    monkeypatch.setenv("COHERENCE_NO_CACHE", "1")


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    return Golden(bool(request.config.getoption("--update-golden")))


@pytest.fixture
def root() -> Path:
    return ROOT
