"""The JSON report: versioned, stable key order, sorted findings, valid JSON only.

The document follows ``coherence/schemas/report-1.schema.json`` (:data:`SCHEMA_VERSION`
``"1"``; additions keep the version, removals and renames raise it). Non-finite numbers are
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

from coherence.diagnostics import Severity
from coherence.reports._common import cell, count_levels, jsonable, number, rule_name
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
from coherence.suppress import Suppressed, Triaged, as_triaged

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


def finding_json(f: Finding) -> dict[str, Any]:
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
    if f.trace is not None:
        out["trace"] = trace_json(f.trace)
    if f.data:
        out["data"] = jsonable(dict(f.data))
    return out


def verdict_json(v: Verdict) -> dict[str, Any]:
    return {
        "requirement": v.requirement,
        "kind": v.kind,
        "status": v.status.value,
        "passed": v.status.passed,
        "analysis": v.analysis,
        "depth": v.depth,
        "reason": v.reason,
        "codes": list(v.codes),
        "line": v.span.line,
        "location": span_json(v.span),
    }


def analysis_json(a: AnalysisResult) -> dict[str, Any]:
    return {
        "analysis": a.analysis,
        "tables": [table_json(t) for t in a.tables],
        "data": jsonable(dict(a.data)),
    }


def system_json(s: SystemReport) -> dict[str, Any]:
    return {
        "name": s.name,
        "location": span_json(s.span),
        "loops": list(s.loops),
        "coherence": s.coherence.value,
        "findings": [finding_json(f) for f in s.findings],
        "verdicts": [verdict_json(v) for v in s.verdicts],
        "analyses": [analysis_json(a) for a in s.analyses],
    }


def file_json(fr: FileReport) -> dict[str, Any]:
    return {
        "path": fr.path,
        "diagnostics": [finding_json(Finding.from_diagnostic(d)) for d in fr.diagnostics],
        "systems": [system_json(s) for s in fr.systems],
    }


def suppressed_json(s: Suppressed) -> dict[str, Any]:
    return {
        "kind": s.kind,
        "justification": s.justification,
        "location": span_json(s.location) if s.location is not None else None,
        "finding": finding_json(s.finding),
    }


def summary_json(run: Triaged) -> dict[str, Any]:
    report = run.report
    counts = count_levels(report.findings)
    return {
        "files": len(report.files),
        "systems": sum(len(fr.systems) for fr in report.files),
        "errors": counts[Severity.ERROR],
        "warnings": counts[Severity.WARNING],
        "notes": counts[Severity.NOTE],
        "suppressed": len(run.suppressed),
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


def report_json(run: RunReport | Triaged) -> dict[str, Any]:
    """The whole document as plain Python values (the schema's shape)."""
    t = as_triaged(run)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "coherence", "version": t.report.tool_version},
        "summary": summary_json(t),
        "files": [file_json(fr) for fr in t.report.files],
        "suppressed": [suppressed_json(s) for s in t.suppressed],
    }


def dumps(run: RunReport | Triaged) -> str:
    return json.dumps(report_json(run), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(report: RunReport | Triaged, stream: TextIO) -> None:
    stream.write(dumps(report))


def write(run: Triaged, stream: TextIO, options: RenderOptions) -> None:
    write_json(run, stream)
