"""Fixtures of the CI-integration tests: run from the repository root, without colour."""

from __future__ import annotations

import pytest

from tests.ci.util import ROOT


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root (spec paths in reports are relative to it), 100 columns
    wide, colour off, and with no project configuration found above it."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def fake_analyses(monkeypatch: pytest.MonkeyPatch) -> None:
    """`coherence check` gets the hand-made verdicts of tests/ci/policy_run.py instead of
    running the analyses."""
    import coherence.pipeline
    from tests.ci.policy_run import fake_check_paths

    monkeypatch.setattr(coherence.pipeline, "check_paths", fake_check_paths)


def pytest_configure(config: pytest.Config) -> None:
    # the plugin tests use pytester; registered here rather than with `pytest_plugins`,
    # which only the root conftest may declare
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
