"""SARIF 2.1.0: findings for code scanning (GitHub, Azure DevOps, the VS Code SARIF viewer).

- One run; the driver lists every rule of :data:`~coherence.diagnostics.REGISTRY` in code
  order, so rule ids (the codes) and rule indices are stable from run to run. Each rule's
  ``help`` is its catalog entry: explanation, example and fix.
- A result per finding, located at its span (relative URIs under ``%SRCROOT%``, columns in
  Unicode code points), with the line-independent fingerprint as
  ``partialFingerprints["coherence/v1"]``, related spans as ``relatedLocations``, and a
  counterexample or scenario trace as a ``codeFlow`` (one step per shown tick).
- Suppressed findings are results too, with ``suppressions``: ``inSource`` for an inline
  ``# coherence: ignore[...]`` (the comment as location, the reason as justification) and
  ``external`` for the baseline.
- Levels are the policy's (:mod:`coherence.policy`): an unknown (COH901) is an ``error``
  under ``--unknown fail``, a ``warning`` under ``warn``, a ``note`` under ``ignore``.
- The run's ``properties`` carry the policy's ``result`` and, per system, its coherence with
  the explanation and each verdict with the status as shown (``falsified (suppressed)``) and
  its outcome.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

from coherence.diagnostics import REGISTRY, Rule, Severity
from coherence.policy import Decision
from coherence.reports._common import category, message_text, trace_groups, uri
from coherence.results import Finding, RunReport
from coherence.source import Span
from coherence.suppress import Suppressed, Triaged

if TYPE_CHECKING:
    from coherence.reports import RenderOptions

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT = "coherence/v1"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}
SRCROOT = "%SRCROOT%"


def rule_help(rule: Rule) -> tuple[str, str]:
    """The catalog entry of a rule as (plain text, Markdown)."""
    text = [rule.summary, "", rule.explanation]
    md = [f"**{rule.code} {rule.name}**: {rule.summary}", "", rule.explanation]
    if rule.example:
        text += ["", "Example:", *("    " + line for line in rule.example.splitlines())]
        md += ["", "Example:", "", "```", rule.example, "```"]
    if rule.fix:
        text += ["", f"Fix: {rule.fix}"]
        md += ["", f"Fix: {rule.fix}"]
    return "\n".join(text), "\n".join(md)


def rule_json(rule: Rule) -> dict[str, Any]:
    text, md = rule_help(rule)
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.explanation},
        "help": {"text": text, "markdown": md},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {"tags": ["coherence", category(rule.code)]},
    }


def physical(span: Span) -> dict[str, Any]:
    return {
        "artifactLocation": {"uri": uri(span.path), "uriBaseId": SRCROOT},
        "region": {
            "startLine": max(span.line, 1),
            "startColumn": max(span.column, 1),
            "endLine": max(span.end_line, span.line, 1),
            "endColumn": max(span.end_column, 1),
        },
    }


def _code_flow(f: Finding) -> dict[str, Any]:
    assert f.trace is not None
    view = f.trace
    locations = []
    for order, (text, violated) in enumerate(trace_groups(view)):
        step: dict[str, Any] = {
            "location": {"physicalLocation": physical(f.span), "message": {"text": text}},
            "executionOrder": order,
            "importance": "essential" if violated else "important",
        }
        if violated:
            step["kinds"] = ["danger"]
        locations.append(step)
    if not locations:
        locations.append({"location": {"physicalLocation": physical(f.span)}})
    note = "replayed in the simulator" if view.replayed else "NOT reproduced in simulation"
    return {
        "message": {"text": f"{view.title} ({note})"},
        "threadFlows": [{"locations": locations}],
    }


def result_json(f: Finding, index: dict[str, int], sup: Suppressed | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"ruleId": f.code}
    if f.code in index:
        out["ruleIndex"] = index[f.code]
    out["level"] = LEVEL[f.level]
    out["message"] = {"text": message_text(f)}
    out["locations"] = [{"physicalLocation": physical(f.span)}]
    out["partialFingerprints"] = {FINGERPRINT: f.fingerprint}
    if f.related:
        out["relatedLocations"] = [
            {"id": i, "physicalLocation": physical(s)} for i, s in enumerate(f.related)
        ]
    if f.trace is not None:
        out["codeFlows"] = [_code_flow(f)]
    if sup is not None:
        suppression: dict[str, Any] = {
            "kind": sup.kind,
            "status": "accepted",
            "justification": sup.justification,
        }
        if sup.location is not None:
            suppression["location"] = {"physicalLocation": physical(sup.location)}
        out["suppressions"] = [suppression]
    props: dict[str, Any] = {"key": f.key} if f.key else {}
    if f.data:
        from coherence.reports._common import jsonable

        props["data"] = jsonable(dict(f.data))
    if props:
        out["properties"] = props
    return out


def sarif_log(run: RunReport | Triaged | Decision) -> dict[str, Any]:
    """The SARIF log as plain Python values."""
    from coherence.reports import decision_of

    d = decision_of(run)
    t = d.run
    codes = sorted(REGISTRY)
    index = {c: i for i, c in enumerate(codes)}
    items: list[tuple[Finding, Suppressed | None]] = [(f, None) for f in t.report.findings]
    items += [(s.finding, s) for s in t.suppressed]
    items.sort(key=lambda fs: (fs[0].sort_key(), fs[1] is not None))
    systems = [
        {
            "name": s.name,
            "path": s.path,
            "coherence": d.system(s).coherence.value,
            "explanation": d.system(s).explanation,
            "verdicts": [
                {
                    "requirement": v.requirement,
                    "status": v.status.value,
                    "shown": d.verdict(s, v).label,
                    "outcome": d.verdict(s, v).outcome.value,
                    "analysis": v.analysis,
                    "line": v.span.line,
                }
                for v in s.verdicts
            ],
        }
        for fr in t.report.files
        for s in fr.systems
    ]
    version = t.report.tool_version
    driver: dict[str, Any] = {"name": "coherence", "rules": [rule_json(REGISTRY[c]) for c in codes]}
    if version:
        driver = {"name": "coherence", "version": version, "semanticVersion": version, **driver}
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "invocations": [
                    {
                        "executionSuccessful": not any(
                            f.code in ("COH100", "COH903") for f in t.report.findings
                        )
                    }
                ],
                "originalUriBaseIds": {
                    SRCROOT: {"description": {"text": "the directory coherence ran in"}}
                },
                "columnKind": "unicodeCodePoints",
                "results": [result_json(f, index, s) for f, s in items],
                "properties": {
                    "result": d.result,
                    "policy": {
                        "fail_level": str(d.policy.fail_level),
                        "unknown": d.policy.unknown.value,
                    },
                    "systems": systems,
                    "deselected": t.deselected,
                },
            }
        ],
    }


def dumps(run: RunReport | Triaged | Decision) -> str:
    return json.dumps(sarif_log(run), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write(decision: Decision, stream: TextIO, options: RenderOptions) -> None:
    stream.write(dumps(decision))
