"""GitHub Actions workflow commands: one annotation per finding, shown on the PR's diff.

``::error file=specs/a.coh,line=12,col=3,endLine=12,endColumn=9,title=COH201::message``;
warnings are ``::warning``, notes ``::notice``. Property values and messages are escaped as
the runner expects (``%``, CR, LF; and ``:`` and ``,`` in properties). Suppressed findings
are not annotated. The last line is a plain summary for the log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from coherence.diagnostics import Severity
from coherence.reports._common import count_levels, message_text, plural
from coherence.results import Finding
from coherence.suppress import Triaged

if TYPE_CHECKING:
    from coherence.reports import RenderOptions

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    s = f.span
    props = [
        ("file", s.path),
        ("line", str(s.line)),
        ("col", str(s.column)),
        ("endLine", str(s.end_line)),
        ("endColumn", str(s.end_column)),
        ("title", f.code),
    ]
    head = ",".join(f"{k}={escape_property(v)}" for k, v in props)
    return f"::{COMMAND[f.level]} {head}::{escape_data(message_text(f))}"


def write(run: Triaged, stream: TextIO, options: RenderOptions) -> None:
    findings = run.report.findings
    for f in findings:
        stream.write(annotation(f) + "\n")
    counts = count_levels(findings)
    summary = (
        f"coherence: {plural(len(run.report.files), 'file')}, "
        f"{plural(counts[Severity.ERROR], 'error')}, "
        f"{plural(counts[Severity.WARNING], 'warning')}, {plural(counts[Severity.NOTE], 'note')}"
    )
    if run.suppressed:
        summary += f" ({len(run.suppressed)} suppressed)"
    stream.write(summary + "\n")
