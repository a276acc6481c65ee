"""GitLab Code Quality: findings shown in a merge request's Code Quality widget and diff.

A JSON array of issues in the Code Climate format GitLab reads (schema:
``coherence/schemas/gitlab-code-quality.schema.json``): ``description`` (the message),
``check_name`` (the code), ``fingerprint`` (the line-independent fingerprint, so an issue
keeps its identity when lines move; made unique within the report), ``severity`` and
``location`` (``path`` relative to the repository, ``lines.begin``/``end``). The notes, help
and a trace's decisive ticks go in ``content.body``.

Levels are the policy's (:mod:`coherence.policy`): an error that fails the run is
``critical``, another error ``major``, a warning ``minor``, a note ``info``. Suppressed and
baselined findings are left out (GitLab has no notion of a suppressed issue). A failing
requirement verdict that no finding stands for is an issue of its own at the requirement,
as in the GitHub annotations. Wire it in ``.gitlab-ci.yml`` as
``artifacts: reports: codequality: coherence-codequality.json`` (docs/ci.md).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, TextIO

from coherence.diagnostics import Severity
from coherence.policy import Decision, Disposition
from coherence.reports._common import category, message_text, trace_text
from coherence.results import Finding
from coherence.source import Span

if TYPE_CHECKING:
    from coherence.reports import RenderOptions

SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.NOTE: "info"}


def _location(span: Span) -> dict[str, Any]:
    path = PurePath(span.path).as_posix()
    begin = max(span.line, 1)
    return {"path": path, "lines": {"begin": begin, "end": max(span.end_line, begin)}}


def _unique(fingerprint: str, seen: Counter[str]) -> str:
    """A 32-hex fingerprint, distinct for the n-th issue with the same fingerprint."""
    seen[fingerprint] += 1
    return hashlib.sha256(f"{fingerprint}|{seen[fingerprint]}".encode()).hexdigest()[:32]


def issue(f: Finding, failing: bool, seen: Counter[str]) -> dict[str, Any]:
    body = message_text(f)
    if f.trace is not None:
        body += "\n\n" + trace_text(f.trace)
    return {
        "type": "issue",
        "description": f"{f.code}: {f.message}",
        "check_name": f.code,
        "fingerprint": _unique(f.fingerprint, seen),
        "severity": "critical" if failing and f.level == Severity.ERROR else SEVERITY[f.level],
        "categories": [category(f.code)],
        "content": {"body": body},
        "location": _location(f.span),
    }


def issues(decision: Decision) -> list[dict[str, Any]]:
    """The Code Quality issues of a run, in report order."""
    seen: Counter[str] = Counter()
    findings = decision.report.findings
    out = [issue(f, decision.finding(f).outcome == Disposition.FAIL, seen) for f in findings]
    shown = {id(f) for f in findings}
    for vd in decision.verdicts:
        if vd.outcome != Disposition.FAIL or any(id(f) in shown for f in vd.evidence):
            continue
        v = vd.verdict
        basis = hashlib.sha256(f"verdict|{v.span.path}|{v.requirement}".encode()).hexdigest()
        detail = f": {v.reason}" if v.reason else ""
        out.append(
            {
                "type": "issue",
                "description": f"`{v.requirement}` is {vd.label}{detail}",
                "check_name": f"requirement/{v.kind}",
                "fingerprint": _unique(basis, seen),
                "severity": "critical",
                "categories": ["requirements"],
                "location": _location(v.span),
            }
        )
    return out


def dumps(decision: Decision) -> str:
    return json.dumps(issues(decision), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write(decision: Decision, stream: TextIO, options: RenderOptions) -> None:
    stream.write(dumps(decision))
