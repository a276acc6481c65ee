"""The JSON report: versioned, stable key order, sorted findings."""

from __future__ import annotations

import json
from typing import Any, TextIO

from coherence.results import Finding, RunReport, Table, TraceView

SCHEMA_VERSION = "1"


def _span(f: Finding) -> dict[str, Any]:
    s = f.span
    return {
        "path": s.path,
        "line": s.line,
        "column": s.column,
        "end_line": s.end_line,
        "end_column": s.end_column,
    }


def _trace(t: TraceView) -> dict[str, Any]:
    return {
        "title": t.title,
        "columns": list(t.columns),
        "violation_tick": t.violation_tick,
        "replayed": t.replayed,
        "steps": [
            {
                "tick": s.tick,
                "time": s.time,
                "values": list(s.values),
                "events": list(s.events),
                "violated": s.violated,
            }
            for s in t.steps
        ],
    }


def _table(t: Table) -> dict[str, Any]:
    return {"title": t.title, "columns": list(t.columns), "rows": [list(r) for r in t.rows]}


def finding_json(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": f.code,
        "severity": str(f.level),
        "message": f.message,
        "location": _span(f),
        "notes": list(f.notes),
        "help": f.help,
        "fingerprint": f.fingerprint,
    }
    if f.trace is not None:
        out["trace"] = _trace(f.trace)
    if f.data:
        out["data"] = dict(f.data)
    return out


def report_json(report: RunReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "coherence", "version": report.tool_version},
        "files": [
            {
                "path": fr.path,
                "diagnostics": [finding_json(Finding.from_diagnostic(d)) for d in fr.diagnostics],
                "systems": [
                    {
                        "name": s.name,
                        "coherence": s.coherence.value,
                        "findings": [finding_json(f) for f in s.findings],
                        "verdicts": [
                            {
                                "requirement": v.requirement,
                                "kind": v.kind,
                                "status": v.status.value,
                                "analysis": v.analysis,
                                "depth": v.depth,
                                "reason": v.reason,
                                "line": v.span.line,
                            }
                            for v in s.verdicts
                        ],
                        "analyses": [
                            {
                                "analysis": a.analysis,
                                "tables": [_table(t) for t in a.tables],
                                "data": dict(a.data),
                            }
                            for a in s.analyses
                        ],
                    }
                    for s in fr.systems
                ],
            }
            for fr in report.files
        ],
    }


def write_json(report: RunReport, stream: TextIO) -> None:
    stream.write(json.dumps(report_json(report), indent=2, default=str) + "\n")
