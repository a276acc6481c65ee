"""Helpers for the CI-integration tests: run the CLI in-process, normalise outputs."""

from __future__ import annotations

import io
from pathlib import Path

from coherence import __version__
from coherence.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
TIPPING = "specs/seed/tipping_point.coh"
OVERLOAD = "tests/ci/data/overload.coh"
SUPPRESSED = "tests/ci/data/suppressed.coh"
SARIF_SCHEMA = ROOT / "tests" / "data" / "sarif-2.1.0.json"


def cli(*argv: str) -> tuple[int, str, str]:
    """Run ``coherence ARGV`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def normalise(text: str) -> str:
    """Golden-file form: the tool version replaced, paths relative to the repository."""
    text = text.replace(str(ROOT) + "/", "")
    for quoted in (f'"{__version__}"', f"coherence {__version__}"):
        text = text.replace(quoted, quoted.replace(__version__, "<version>"))
    return text
