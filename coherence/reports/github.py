"""GitHub Actions workflow commands: one annotation per finding, shown on the PR's diff.

``::error file=specs/a.coh,line=12,col=3,endLine=12,endColumn=9,title=COH201::message``;
warnings are ``::warning``, notes ``::notice``. Property values and messages are escaped as
the runner expects (``%``, CR, LF; and ``:`` and ``,`` in properties). Suppressed and
baselined findings are not annotated. Levels are the policy's (:mod:`coherence.policy`: an
unknown is ``::error`` under ``--unknown fail``, ``::notice`` under ``ignore``). A failing
requirement verdict that no annotated finding stands for gets an annotation of its own at the
requirement.

GitHub shows at most :data:`PER_STEP` annotations of each kind (error, warning, notice) per
step and drops the rest. So the most important come first and only as many as are shown are
written: at each level, those that fail the run before the others, then conflicts and
instabilities (a finding with a counterexample trace) before the rest, then in report order.
What is left out is counted in one notice (the last of the notices), which points at the job
summary and the SARIF results. The last lines are a plain summary for the log and the run's
result.
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


# GitHub's display limit: annotations of one kind (error, warning, notice) per step
PER_STEP = 10


def _importance(decision: Decision, f: Finding) -> tuple[int, int, int]:
    """Sort key within a level, the most important first: failing the run, then with
    evidence (a replayed trace), then the stable code families of effects (stability,
    coupling, bounded properties) before the rest."""
    failing = decision.finding(f).outcome == Disposition.FAIL
    family = {"COH3": 0, "COH4": 0, "COH5": 0, "COH9": 1}.get(f.code[:4], 2)
    return (0 if failing else 1, 0 if f.trace is not None else 1, family)


def capped_annotations(decision: Decision) -> tuple[list[str], dict[str, int]]:
    """The annotations to write, at most :data:`PER_STEP` of each kind, most important
    first; and how many of each kind were left out."""
    findings = decision.report.findings
    shown = {id(f) for f in findings}
    by_kind: dict[str, list[tuple[tuple[int, int, int], int, str]]] = {
        "error": [],
        "warning": [],
        "notice": [],
    }
    for order, f in enumerate(findings):
        by_kind[COMMAND[f.level]].append((_importance(decision, f), order, annotation(f)))
    for order, vd in enumerate(decision.verdicts):
        # a failing verdict is annotated through its findings; alone only when it has none
        if vd.outcome == Disposition.FAIL and not any(id(f) in shown for f in vd.evidence):
            by_kind["error"].append(((0, 0, 0), len(findings) + order, _verdict_annotation(vd)))
    left_out = {kind: max(0, len(items) - PER_STEP) for kind, items in by_kind.items()}
    if any(left_out.values()):  # the notice that counts them takes the last place
        left_out["notice"] = max(0, len(by_kind["notice"]) - (PER_STEP - 1))
    out = []
    for kind, items in by_kind.items():
        out += [line for _, _, line in sorted(items)[: len(items) - left_out[kind]]]
    return out, left_out


def _left_out_notice(left_out: dict[str, int]) -> str:
    words = {"error": "error", "warning": "warning", "notice": "note"}
    parts = [plural(n, words[kind]) for kind, n in left_out.items() if n]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    text = (
        f"{listed} not annotated here: GitHub shows {PER_STEP} annotations of "
        "each kind per step (the most important are above). Every finding is in the job "
        "summary, in the SARIF results (code scanning) and in `coherence check` run locally."
    )
    return f"::notice title=coherence::{escape_data(text)}"


def write(decision: Decision, stream: TextIO, options: RenderOptions) -> None:
    lines, left_out = capped_annotations(decision)
    for line in lines:
        stream.write(line + "\n")
    if any(left_out.values()):
        stream.write(_left_out_notice(left_out) + "\n")
    summary = (
        f"coherence: {plural(len(decision.report.files), 'file')}, "
        f"{counts_text(decision)}{silenced_text(decision)}"
    )
    stream.write(summary + "\n")
    stream.write(result_text(decision) + "\n")
