"""Golden files of the default terminal report of two shipped specs, at 80 and 120 columns.

The report is the one `coherence check SPEC` prints (every analysis, no colour), so a change
to its layout, its words or a verdict shows up here as a diff to review. Update them with

    .venv/bin/pytest tests/test_reports_golden.py --update-golden

then read `git diff tests/golden/terminal/` before committing. Each spec is checked once:
the second width is rendered from the results cache the first run filled (the same report
either way), so the four files cost two checks.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from coherence.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = {
    "tipping_point": "specs/seed/tipping_point.coh",
    "hpa_lag_broken": "specs/conflicts/hpa_lag_broken.coh",
}


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("COHERENCE_NO_CACHE", raising=False)
    monkeypatch.setenv("COHERENCE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")


def report(spec: str, width: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("COLUMNS", str(width))
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", spec, "--color", "never", "-j", "1"], out, err)
    assert code in (0, 1), err.getvalue()
    return code, out.getvalue()


@pytest.mark.usefixtures("cached")
@pytest.mark.parametrize("name", list(SPECS))
def test_the_default_report_at_80_and_120_columns(
    golden: Any, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = {}
    for width in (80, 120):
        _, text = report(SPECS[name], width, monkeypatch)
        golden.check(f"terminal/{name}.{width}.txt", text)
        texts[width] = text
        assert "\u2026" not in text  # nothing cut short
        # nothing wider than the terminal but a source line or a trace line (which wrap)
        wide = [line for line in text.splitlines() if len(line) > width]
        assert all(not line.startswith(("\u2502", "\u2503", "\u250f", "\u2514")) for line in wide)
    first = texts[80].splitlines()[1]
    assert first.startswith("control coherence: ")  # the verdict first
