"""SARIF 2.1.0: findings for code scanning (GitHub, Azure DevOps, the VS Code SARIF viewer).

- One run; the driver lists every rule of :data:`~coherence.diagnostics.REGISTRY` in code
  order, so rule ids (the codes) and rule indices are stable from run to run. Each rule's
  ``help`` is its catalog entry: explanation, example and fix; its ``helpUri`` the entry in
  the published catalog (docs/rules.md, :func:`rules_url`).
- A result per finding, located at its span (relative URIs under ``%SRCROOT%``, columns in
  Unicode code points), with the line-independent fingerprint as
  ``partialFingerprints["coherence/v1"]``, related spans (the other loop of a conflict, the
  objective it hurts, the loops of a cycle) as ``relatedLocations`` with their source line
  as message, and a
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

import functools
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


# where the rule catalog (docs/rules.md) is published, when the installed package does not
# say (its metadata's Project-URL "Documentation" or "Repository"/"Source")
RULES_URL = "https://github.com/coherence-project/coherence/blob/main/docs/rules.md"


@functools.cache
def rules_url() -> str:
    """The rule catalog's URL: from the package's ``[project.urls]`` (``Documentation``, a
    base that holds ``rules.md``; or ``Repository``, whose ``docs/rules.md`` at the
    version's tag), else :data:`RULES_URL`."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        urls: list[str] = metadata("coherence").get_all("Project-URL") or []
    except (ImportError, PackageNotFoundError):
        urls = []
    named: dict[str, str] = {}
    for entry in urls:
        label, _, url = entry.partition(",")
        named[label.strip().lower()] = url.strip().rstrip("/")
    if "documentation" in named:
        return named["documentation"] + "/rules.md"
    for label in ("repository", "source"):
        if label in named and "github.com" in named[label]:
            return named[label] + "/blob/main/docs/rules.md"
    return RULES_URL


def help_uri(rule: Rule) -> str:
    """The rule's entry in the catalog: ``.../rules.md#coh401-conflicting-objectives`` (the
    anchor GitHub gives the heading ``### COH401 conflicting-objectives``)."""
    return f"{rules_url()}#{rule.code.lower()}-{rule.name}"


def rule_json(rule: Rule) -> dict[str, Any]:
    text, md = rule_help(rule)
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.explanation},
        "help": {"text": text, "markdown": md},
        "helpUri": help_uri(rule),
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


def _related(i: int, span: Span, text: str) -> dict[str, Any]:
    """A related location (the other loop of a conflict, the objective it hurts), with the
    first line of its source as its message, so a viewer says what it is."""
    out: dict[str, Any] = {"id": i, "physicalLocation": physical(span)}
    lines = text.splitlines()
    if 1 <= span.line <= len(lines):
        line = lines[span.line - 1].strip().rstrip("{").strip()
        if line:
            out["message"] = {"text": line}
    return out


def result_json(
    f: Finding,
    index: dict[str, int],
    sup: Suppressed | None = None,
    sources: dict[str, str] | None = None,
) -> dict[str, Any]:
    sources = sources or {}
    out: dict[str, Any] = {"ruleId": f.code}
    if f.code in index:
        out["ruleIndex"] = index[f.code]
    out["level"] = LEVEL[f.level]
    out["message"] = {"text": message_text(f)}
    out["locations"] = [{"physicalLocation": physical(f.span)}]
    out["partialFingerprints"] = {FINGERPRINT: f.fingerprint}
    if f.related:
        out["relatedLocations"] = [
            _related(i, s, sources.get(s.path, "")) for i, s in enumerate(f.related)
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
    sources = {fr.path: fr.source_text for fr in t.report.files}
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
                "results": [result_json(f, index, s, sources) for f, s in items],
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
