"""JUnit XML: one test suite per spec file, a test case per requirement verdict and one for
the file's other findings, so that CI systems list requirements as tests.

- A verdict's test case passes when the requirement is proved or holds, fails when it is
  falsified or unknown (unknown never counts as a pass), and is skipped when no analysis
  checked it. Its failure text holds the findings whose codes the verdict names, each with
  its trace.
- The ``findings`` test case of a file fails when any finding not accounted for by a verdict
  is at or above the fail level; all of them are listed in its output.

No timestamps or durations are written, so the same run gives the same bytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, TextIO

from coherence.reports._common import finding_text, plural
from coherence.results import FileReport, Finding, Status, SystemReport, Verdict
from coherence.source import SourceFile
from coherence.suppress import Triaged

if TYPE_CHECKING:
    from coherence.reports import RenderOptions


class _Counts:
    def __init__(self) -> None:
        self.tests = self.failures = self.skipped = 0

    def add(self, other: _Counts) -> None:
        self.tests += other.tests
        self.failures += other.failures
        self.skipped += other.skipped

    def set_on(self, el: ET.Element) -> None:
        el.set("tests", str(self.tests))
        el.set("failures", str(self.failures))
        el.set("errors", "0")
        el.set("skipped", str(self.skipped))


def _verdict_case(
    suite: ET.Element,
    counts: _Counts,
    s: SystemReport,
    v: Verdict,
    findings: list[Finding],
    source: SourceFile | None,
) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {"classname": f"{s.path}::{s.name}", "name": f"{v.requirement} [{v.analysis}]"},
    )
    case.set("file", s.path)
    case.set("line", str(v.span.line))
    counts.tests += 1
    detail = v.reason or (f"depth {v.depth}" if v.depth is not None else "")
    if v.status == Status.SKIPPED:
        counts.skipped += 1
        ET.SubElement(case, "skipped", {"message": detail or "not checked in this run"})
        return
    if v.status.passed:
        if detail:
            ET.SubElement(case, "system-out").text = f"{v.status.value}: {detail}"
        return
    counts.failures += 1
    message = f"{v.status.value}" + (f": {detail}" if detail else "")
    failure = ET.SubElement(
        case, "failure", {"message": message, "type": ",".join(v.codes) or v.status.value}
    )
    failure.text = "\n\n".join(finding_text(f, source) for f in findings) or message


def _file_suite(fr: FileReport, options: RenderOptions) -> tuple[ET.Element, _Counts]:
    suite = ET.Element("testsuite", {"name": fr.path})
    counts = _Counts()
    source = SourceFile(fr.path, fr.source_text) if fr.source_text else None
    accounted: set[int] = set()
    for s in fr.systems:
        system_findings = s.findings
        for v in s.verdicts:
            mine = [f for f in system_findings if f.code in v.codes]
            accounted.update(id(f) for f in mine)
            _verdict_case(suite, counts, s, v, mine, source)
    rest = [Finding.from_diagnostic(d) for d in fr.diagnostics]
    rest += [f for s in fr.systems for f in s.findings if id(f) not in accounted]
    rest.sort(key=Finding.sort_key)
    case = ET.SubElement(suite, "testcase", {"classname": fr.path, "name": "findings"})
    case.set("file", fr.path)
    counts.tests += 1
    failing = [f for f in rest if f.level >= options.fail_level]
    if failing:
        counts.failures += 1
        ET.SubElement(
            case,
            "failure",
            {
                "message": f"{plural(len(failing), 'finding')} at or above {options.fail_level}",
                "type": ",".join(sorted({f.code for f in failing})),
            },
        ).text = "\n\n".join(finding_text(f, source) for f in failing)
    if rest:
        ET.SubElement(case, "system-out").text = "\n\n".join(finding_text(f, source) for f in rest)
    counts.set_on(suite)
    return suite, counts


def junit_xml(run: Triaged, options: RenderOptions) -> ET.Element:
    root = ET.Element("testsuites", {"name": "coherence"})
    total = _Counts()
    for fr in run.report.files:
        suite, counts = _file_suite(fr, options)
        root.append(suite)
        total.add(counts)
    total.set_on(root)
    return root


def dumps(run: Triaged, options: RenderOptions) -> str:
    root = junit_xml(run, options)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def write(run: Triaged, stream: TextIO, options: RenderOptions) -> None:
    stream.write(dumps(run, options))
