"""The JSON report: versioned, stable key order, sorted findings, valid JSON only.

The document follows ``coherence/schemas/report-1.schema.json`` (:data:`SCHEMA_VERSION`
``"1"``; additions keep the version, removals and renames raise it). Everything the policy
decided (:mod:`coherence.policy`) is written as it decided it: each finding's ``outcome``
(fail, warn, ignored, suppressed, baselined) and the severity it is shown at, each verdict's
``outcome`` and ``shown`` status (``falsified (suppressed)``), each system's ``coherence``
with its ``explanation``, and in ``summary`` the ``result``, the ``policy`` and the counts
that decided it. Non-finite numbers are
written as the strings ``"nan"``, ``"inf"`` and ``"-inf"``, complex numbers as
``{"re": .., "im": ..}``. Suppressed findings are listed under ``suppressed`` with the
suppression's kind (``inSource``, ``external``) and justification, as SARIF does; findings
deselected by configuration are only counted. Timings are left out, so that the same specs
give the same bytes.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any, TextIO

from coherence.policy import Decision
from coherence.reports._common import cell, jsonable, number, rule_name
from coherence.results import (
    AnalysisResult,
    FileReport,
    Finding,
    RunReport,
    SystemReport,
    Table,
    TraceView,
    Verdict,
)
from coherence.source import Span
from coherence.suppress import Suppressed, Triaged

if TYPE_CHECKING:
    from coherence.reports import RenderOptions

SCHEMA_VERSION = "1"
SCHEMA_ID = "https://coherence.dev/schemas/report-1.schema.json"


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of this report, shipped in the package."""
    text = resources.files("coherence.schemas").joinpath("report-1.schema.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def span_json(s: Span) -> dict[str, Any]:
    return {
        "path": s.path,
        "line": s.line,
        "column": s.column,
        "end_line": s.end_line,
        "end_column": s.end_column,
    }


def trace_json(t: TraceView) -> dict[str, Any]:
    return {
        "title": t.title,
        "columns": list(t.columns),
        "violation_tick": None if t.violation_tick is None else int(t.violation_tick),
        "replayed": bool(t.replayed),
        "inputs_note": t.inputs_note,
        "steps": [
            {
                "tick": int(s.tick),
                "time": number(float(s.time)),
                "values": [number(float(v)) for v in s.values],
                "events": [str(e) for e in s.events],
                "violated": bool(s.violated),
                "significant": bool(s.significant),
            }
            for s in t.steps
        ],
    }


def table_json(t: Table) -> dict[str, Any]:
    return {
        "title": t.title,
        "columns": list(t.columns),
        "rows": [[cell(c) for c in r] for r in t.rows],
        "note": t.note,
    }


def finding_json(f: Finding, outcome: str | None = None) -> dict[str, Any]:
    """A finding; ``outcome`` is what the policy decided for it (reports carry it, a diff
    does not)."""
    out: dict[str, Any] = {
        "code": f.code,
        "name": rule_name(f.code),
        "severity": str(f.level),
        "message": f.message,
        "location": span_json(f.span),
        "related": [span_json(s) for s in f.related],
        "notes": list(f.notes),
        "help": f.help,
        "fingerprint": f.fingerprint,
        "key": f.key,
    }
    if outcome is not None:
        out["outcome"] = outcome
    if f.trace is not None:
        out["trace"] = trace_json(f.trace)
    if f.data:
        out["data"] = jsonable(dict(f.data))
    return out


def _finding(f: Finding, d: Decision) -> dict[str, Any]:
    return finding_json(f, d.finding(f).outcome.value)


def verdict_json(v: Verdict, d: Decision, s: SystemReport) -> dict[str, Any]:
    vd = d.verdict(s, v)
    return {
        "requirement": v.requirement,
        "kind": v.kind,
        "status": v.status.value,
        "shown": vd.label,
        "outcome": vd.outcome.value,
        "passed": vd.passed,
        "analysis": v.analysis,
        "depth": v.depth,
        "reason": v.reason,
        "codes": list(v.codes),
        "line": v.span.line,
        "location": span_json(v.span),
    }


def analysis_json(a: AnalysisResult, d: Decision, s: SystemReport) -> dict[str, Any]:
    return {
        "analysis": a.analysis,
        "tables": [table_json(d.table(s, t)) for t in a.tables],
        "data": jsonable(dict(a.data)),
    }


def system_json(s: SystemReport, d: Decision) -> dict[str, Any]:
    sd = d.system(s)
    return {
        "name": s.name,
        "location": span_json(s.span),
        "loops": list(s.loops),
        "coherence": sd.coherence.value,
        "explanation": sd.explanation,
        "findings": [_finding(f, d) for f in s.findings],
        "verdicts": [verdict_json(v, d, s) for v in s.verdicts],
        "analyses": [analysis_json(a, d, s) for a in s.analyses],
    }


def file_json(fr: FileReport, d: Decision) -> dict[str, Any]:
    return {
        "path": fr.path,
        "diagnostics": [_finding(Finding.from_diagnostic(x), d) for x in fr.diagnostics],
        "systems": [system_json(s, d) for s in fr.systems],
    }


def suppressed_json(s: Suppressed, d: Decision) -> dict[str, Any]:
    return {
        "kind": s.kind,
        "justification": s.justification,
        "location": span_json(s.location) if s.location is not None else None,
        "finding": finding_json(s.finding, d.silenced(s).outcome.value),
    }


def summary_json(d: Decision) -> dict[str, Any]:
    run: Triaged = d.run
    report = run.report
    c = d.counts
    return {
        "result": d.result,
        "policy": {"fail_level": str(d.policy.fail_level), "unknown": d.policy.unknown.value},
        "files": len(report.files),
        "systems": sum(len(fr.systems) for fr in report.files),
        "errors": c.errors,
        "warnings": c.warnings,
        "notes": c.notes,
        "failing": {"findings": c.failing_findings, "verdicts": c.failing_verdicts},
        "verdicts": {"falsified": c.falsified, "unknown": c.unknown, "accepted": c.accepted},
        "suppressed": len(run.suppressed),
        "baselined": c.baselined,
        "deselected": run.deselected,
        "baseline": (
            None
            if run.baseline is None
            else {
                "path": run.baseline.path,
                "matched": run.baseline.matched,
                "stale": run.baseline.stale,
            }
        ),
    }


def report_json(run: RunReport | Triaged | Decision) -> dict[str, Any]:
    """The whole document as plain Python values (the schema's shape)."""
    from coherence.reports import decision_of

    d = decision_of(run)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "coherence", "version": d.report.tool_version},
        "summary": summary_json(d),
        "files": [file_json(fr, d) for fr in d.report.files],
        "suppressed": [suppressed_json(s, d) for s in d.run.suppressed],
    }


def dumps(run: RunReport | Triaged | Decision) -> str:
    return json.dumps(report_json(run), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(report: RunReport | Triaged | Decision, stream: TextIO) -> None:
    stream.write(dumps(report))


def write(decision: Decision, stream: TextIO, options: RenderOptions) -> None:
    write_json(decision, stream)
