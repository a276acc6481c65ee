"""GitHub Actions workflow commands: one annotation per finding, shown on the PR's diff.

``::error file=specs/a.coh,line=12,col=3,endLine=12,endColumn=9,title=COH201::message``;
warnings are ``::warning``, notes ``::notice``. Property values and messages are escaped as
the runner expects (``%``, CR, LF; and ``:`` and ``,`` in properties). Suppressed and
baselined findings are not annotated. Levels are the policy's (:mod:`coherence.policy`: an
unknown is ``::error`` under ``--unknown fail``, ``::notice`` under ``ignore``). A failing
requirement verdict that no annotated finding stands for gets an annotation of its own at the
requirement. The last lines are a plain summary for the log and the run's result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from coherence.diagnostics import Severity
from coherence.policy import Decision, Disposition, VerdictDecision
from coherence.reports._common import counts_text, message_text, plural, result_text, silenced_text
from coherence.results import Finding
from coherence.source import Span

if TYPE_CHECKING:
    from coherence.reports import RenderOptions

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    return _command(COMMAND[f.level], f.span, f.code, message_text(f))


def _verdict_annotation(vd: VerdictDecision) -> str:
    v = vd.verdict
    detail = f": {v.reason}" if v.reason else ""
    return _command("error", v.span, v.kind, f"`{v.requirement}` is {vd.label}{detail}")


def _command(command: str, s: Span, title: str, message: str) -> str:
    props = [
        ("file", s.path),
        ("line", str(s.line)),
        ("col", str(s.column)),
        ("endLine", str(s.end_line)),
        ("endColumn", str(s.end_column)),
        ("title", title),
    ]
    head = ",".join(f"{k}={escape_property(v)}" for k, v in props)
    return f"::{command} {head}::{escape_data(message)}"


def write(decision: Decision, stream: TextIO, options: RenderOptions) -> None:
    findings = decision.report.findings
    for f in findings:
        stream.write(annotation(f) + "\n")
    shown = {id(f) for f in findings}
    for vd in decision.verdicts:
        # a failing verdict is annotated through its findings; alone only when it has none
        if vd.outcome == Disposition.FAIL and not any(id(f) in shown for f in vd.evidence):
            stream.write(_verdict_annotation(vd) + "\n")
    summary = (
        f"coherence: {plural(len(decision.report.files), 'file')}, "
        f"{counts_text(decision)}{silenced_text(decision)}"
    )
    stream.write(summary + "\n")
    stream.write(result_text(decision) + "\n")
