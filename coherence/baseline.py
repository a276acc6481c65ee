"""The baseline: known findings, keyed by fingerprint, that a run does not fail on.

A team adopting coherence on an existing deployment writes the findings of today once
(``coherence check --write-baseline coherence-baseline.json``), commits the file, and runs
``coherence check --baseline coherence-baseline.json`` in CI: only new findings fail.

Findings are matched by :attr:`~coherence.results.Finding.fingerprint`: the code, the spec
path and what the finding is about (its ``key``), never its line, so that edits which move
lines keep the baseline valid. The file is JSON, sorted, one entry per finding (a finding
that occurs twice is listed twice), with the code, path and message beside each fingerprint
for the reviewer; only the fingerprint is used for matching.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from coherence.diagnostics import CoherenceError
from coherence.results import Finding

BASELINE_VERSION = 1
# findings a baseline never holds: an unreadable file is a usage error, and suppression
# problems must be fixed where they are written
NEVER_BASELINED = ("COH100", "COH220", "COH221")


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    fingerprint: str
    code: str
    path: str
    message: str


@dataclass(frozen=True, slots=True)
class Baseline:
    path: str
    entries: tuple[BaselineEntry, ...]

    def counter(self) -> Counter[str]:
        return Counter(e.fingerprint for e in self.entries)


def from_findings(findings: Iterable[Finding], path: str) -> Baseline:
    """The baseline that accepts exactly these findings."""
    entries = [
        BaselineEntry(f.fingerprint, f.code, f.span.path, f.message)
        for f in findings
        if f.code not in NEVER_BASELINED
    ]
    entries.sort(key=lambda e: (e.path, e.code, e.message, e.fingerprint))
    return Baseline(path, tuple(entries))


def dumps(baseline: Baseline) -> str:
    doc = {
        "version": BASELINE_VERSION,
        "tool": "coherence",
        "comment": "Known findings that `coherence check --baseline` does not fail on. "
        "Regenerate with `coherence check --write-baseline FILE`.",
        "findings": [
            {"fingerprint": e.fingerprint, "code": e.code, "path": e.path, "message": e.message}
            for e in baseline.entries
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write_baseline(baseline: Baseline) -> None:
    path = Path(baseline.path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(baseline), encoding="utf-8")
    except OSError as e:
        raise CoherenceError(f"cannot write the baseline `{path}`: {e.strerror}") from None


def load_baseline(path: str) -> Baseline:
    """Read a baseline file; a missing or malformed file is a usage error (exit 2)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CoherenceError(
            f"no baseline file `{path}`",
            f"write one with `coherence check --write-baseline {path}`",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise CoherenceError(f"cannot read the baseline `{path}`: {e}") from None
    except json.JSONDecodeError as e:
        raise CoherenceError(
            f"{path}:{e.lineno}:{e.colno}: the baseline is not valid JSON: {e.msg}"
        ) from None
    if not isinstance(doc, dict) or doc.get("version") != BASELINE_VERSION:
        raise CoherenceError(
            f"{path}: not a coherence baseline (version {BASELINE_VERSION} expected)",
            f"regenerate it with `coherence check --write-baseline {path}`",
        )
    raw = doc.get("findings")
    if not isinstance(raw, list):
        raise CoherenceError(f"{path}: `findings` must be a list")
    entries = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("fingerprint"), str):
            raise CoherenceError(f"{path}: findings[{i}] has no `fingerprint`")
        entries.append(
            BaselineEntry(
                item["fingerprint"],
                str(item.get("code", "")),
                str(item.get("path", "")),
                str(item.get("message", "")),
            )
        )
    return Baseline(path, tuple(entries))
