"""JUnit XML: one test suite per spec file, a test case per requirement verdict and one for
the file's other findings, so that CI systems list requirements as tests.

Every case follows the policy's decision (:mod:`coherence.policy`), so that the XML has a
failure exactly when the run fails:

- A verdict's test case passes when the requirement is proved or holds and fails when the
  policy fails it (falsified; unknown under ``--unknown fail``, or under ``warn`` at
  ``--fail-level warning``). It is skipped, with the reason, when it did not fail but is not
  a pass either: unknown (``--unknown warn`` or ``ignore``), accepted (``falsified
  (suppressed)``, ``(baselined)``, ``(deselected)``), or not checked. Its failure text holds
  the findings whose codes the verdict names, each with its trace.
- The ``findings`` test case of a file fails when a finding that the policy fails is not
  already counted by a failing verdict's case; all the file's other findings are listed in
  its output.

No timestamps or durations are written, so the same run gives the same bytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, TextIO

from coherence.policy import Decision, Disposition
from coherence.reports._common import finding_text, plural
from coherence.results import FileReport, Finding, SystemReport, Verdict
from coherence.source import SourceFile

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
    decision: Decision,
    source: SourceFile | None,
) -> bool:
    """Add the case of one verdict; whether it failed."""
    vd = decision.verdict(s, v)
    case = ET.SubElement(
        suite,
        "testcase",
        {"classname": f"{s.path}::{s.name}", "name": f"{v.requirement} [{v.analysis}]"},
    )
    case.set("file", s.path)
    case.set("line", str(v.span.line))
    counts.tests += 1
    detail = v.reason or (f"depth {v.depth}" if v.depth is not None else "")
    if vd.outcome == Disposition.SKIPPED:
        counts.skipped += 1
        ET.SubElement(case, "skipped", {"message": detail or "not checked in this run"})
        return False
    if vd.outcome == Disposition.PASS:
        if detail:
            ET.SubElement(case, "system-out").text = f"{v.status.value}: {detail}"
        return False
    message = vd.label + (f": {detail}" if detail else "")
    text = "\n\n".join(finding_text(f, source) for f in vd.evidence) or message
    if vd.outcome != Disposition.FAIL:  # unknown or accepted: not a pass, not a failure
        counts.skipped += 1
        ET.SubElement(case, "skipped", {"message": message})
        ET.SubElement(case, "system-out").text = text
        return False
    counts.failures += 1
    failure = ET.SubElement(
        case, "failure", {"message": message, "type": ",".join(v.codes) or v.status.value}
    )
    failure.text = text
    return True


def _file_suite(fr: FileReport, decision: Decision) -> tuple[ET.Element, _Counts]:
    suite = ET.Element("testsuite", {"name": fr.path})
    counts = _Counts()
    source = SourceFile(fr.path, fr.source_text) if fr.source_text else None
    accounted: set[int] = set()
    for s in fr.systems:
        for v in s.verdicts:
            if _verdict_case(suite, counts, s, v, decision, source):
                accounted.update(id(f) for f in decision.verdict(s, v).evidence)
    rest = [Finding.from_diagnostic(d) for d in fr.diagnostics]
    rest += [f for s in fr.systems for f in s.findings if id(f) not in accounted]
    rest.sort(key=Finding.sort_key)
    case = ET.SubElement(suite, "testcase", {"classname": fr.path, "name": "findings"})
    case.set("file", fr.path)
    counts.tests += 1
    failing = [f for f in rest if decision.finding(f).outcome == Disposition.FAIL]
    if failing:
        counts.failures += 1
        ET.SubElement(
            case,
            "failure",
            {
                "message": f"{plural(len(failing), 'finding')} failing "
                f"({decision.policy.describe()})",
                "type": ",".join(sorted({f.code for f in failing})),
            },
        ).text = "\n\n".join(finding_text(f, source) for f in failing)
    if rest:
        ET.SubElement(case, "system-out").text = "\n\n".join(finding_text(f, source) for f in rest)
    counts.set_on(suite)
    return suite, counts


def junit_xml(decision: Decision) -> ET.Element:
    root = ET.Element("testsuites", {"name": "coherence"})
    total = _Counts()
    for fr in decision.report.files:
        suite, counts = _file_suite(fr, decision)
        root.append(suite)
        total.add(counts)
    total.set_on(root)
    return root


def dumps(decision: Decision) -> str:
    root = junit_xml(decision)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def write(decision: Decision, stream: TextIO, options: RenderOptions) -> None:
    stream.write(dumps(decision))
