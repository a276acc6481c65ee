"""One spec with hand-made verdicts, and every output of one `coherence check` of it.

tests/ci/data/policy.coh is a real spec (it compiles, its coupling graph is drawn), but its
analyses are replaced by :func:`system_report`: `require stable` proved, `require coherent`
falsified by a conflict of the router with the autoscaler (COH401, on the router's line),
`require always ...` unknown (COH901, on its line). That makes the verdicts deterministic
and cheap, so that the tests can check that the exit code, JSON, JUnit, SARIF, GitHub
annotations, Markdown, text and the pytest plugin agree under every policy, with inline
suppressions and with a baseline.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coherence.results import (
    AnalysisResult,
    FileReport,
    Finding,
    RunReport,
    Status,
    SystemReport,
    Table,
    Verdict,
)
from coherence.source import Span
from tests.ci.util import DATA, cli

SPEC = DATA / "policy.coh"
ALWAYS = "require always latency <= 60 s for 120 ticks"
SUPPRESSION = "  # coherence: ignore[COH401] the router may shed load to slow hardware\n"


def _line(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.strip().startswith(start))


def system_report(path: str, text: str) -> SystemReport:
    """The verdicts and findings the analyses are pretended to have produced."""

    def at(start: str) -> Span:
        n = _line(text, start)
        line = text.splitlines()[n - 1]
        col = len(line) - len(line.lstrip()) + 1
        return Span(path, n, col, n, len(line.rstrip()) + 1)

    router, always = at("loop router"), at(ALWAYS)
    conflict = Finding(
        "COH401",
        "`router` works against `autoscaler`: its action at t=40s deepens a violation of "
        "`autoscaler.latency` by 1.2 s 3s later",
        router,
        data=(("affects", ("autoscaler",)),),
        key="conflict:router",
    )
    unknown = Finding(
        "COH901",
        "`always latency <= 60 s for 120 ticks` could not be decided: resource limit",
        always,
        help="raise the solver's rlimit (--rlimit) or lower the horizon",
        key="unknown:always:latency<=60",
    )
    table = Table(
        "Objective alignment",
        ("acts \\ affects", "autoscaler", "router"),
        (
            ("autoscaler", "-", "aligned (proved, k=4)"),
            ("router", "conflicting (latency +1.2 s, 3s after it acts)", "-"),
        ),
    )
    verdicts = (
        Verdict("require stable", "stable", Status.PROVED, at("require stable"), "linear"),
        Verdict(
            "require coherent",
            "coherent",
            Status.FALSIFIED,
            at("require coherent"),
            "smt",
            4,
            "router -> autoscaler",
            ("COH401",),
        ),
        Verdict(ALWAYS, "always", Status.UNKNOWN, always, "smt", 7, "resource limit", ("COH901",)),
    )
    analyses = (
        AnalysisResult("linear", (), verdicts[:1]),
        AnalysisResult("smt", (conflict, unknown), verdicts[1:], (table,)),
    )
    return SystemReport("policy", path, at("system policy"), analyses, ("autoscaler", "router"))


def fake_check_paths(
    paths: Any, options: Any = None, lint_only: bool = False, progress: Any = None
) -> RunReport:
    files = []
    for i, p in enumerate(paths):
        if progress is not None:
            progress.file(str(p), i, len(paths))
        text = Path(p).read_text(encoding="utf-8")
        files.append(FileReport(str(p), (), (system_report(str(p), text),), text))
        if progress is not None:  # the text report prints each spec as it is done
            progress.done(files[-1])
    return RunReport(tuple(files), "0.0.0-test")


def spec_copy(directory: Path, suppressed: bool = False) -> Path:
    """The spec in ``directory``; ``suppressed``: with an inline suppression of COH401 on the
    line before the router's loop (so the router's line moves down by one)."""
    text = SPEC.read_text(encoding="utf-8")
    if suppressed:
        lines = text.splitlines(keepends=True)
        n = _line(text, "loop router")
        text = "".join([*lines[: n - 1], SUPPRESSION, *lines[n - 1 :]])
    target = directory / "specs" / "policy.coh"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


@dataclass
class Outputs:
    code: int
    json: dict[str, Any]
    junit: ET.Element
    sarif: dict[str, Any]
    github: str
    markdown: str
    text: str

    @property
    def result(self) -> str:
        return str(self.json["summary"]["result"])

    def verdict(self, requirement: str) -> dict[str, Any]:
        system = self.json["files"][0]["systems"][0]
        found: dict[str, Any] = next(
            v for v in system["verdicts"] if v["requirement"] == requirement
        )
        return found

    def case(self, requirement: str) -> ET.Element:
        return next(
            c for c in self.junit.iter("testcase") if str(c.get("name")).startswith(requirement)
        )

    def sarif_levels(self) -> dict[str, str]:
        results = self.sarif["runs"][0]["results"]
        return {r["ruleId"]: r["level"] for r in results}


def check_all(spec: Path, out: Path, *args: str) -> Outputs:
    """`coherence check` once, every format written from that one run."""
    names = {"junit": "r.xml", "sarif": "r.sarif", "github": "r.gh", "markdown": "r.md"}
    names["text"] = "r.txt"
    extra = [a for fmt, name in names.items() for a in ("--output", f"{fmt}={out / name}")]
    code, stdout, err = cli(
        "check", str(spec), "--format", "json", "--color", "never", *extra, *args
    )
    assert code in (0, 1), err

    def read(fmt: str) -> str:
        return (out / names[fmt]).read_text(encoding="utf-8")

    return Outputs(
        code,
        json.loads(stdout),
        ET.fromstring(read("junit")),
        json.loads(read("sarif")),
        read("github"),
        read("markdown"),
        read("text"),
    )


def assert_agree(o: Outputs) -> None:
    """Every output says what the exit code says."""
    failed = o.result == "failed"
    assert o.code == (1 if failed else 0)
    assert (int(str(o.junit.get("failures"))) > 0) == failed
    assert o.sarif["runs"][0]["properties"]["result"] == o.result
    line = f"result: {o.result.upper()}"
    assert o.github.splitlines()[-1].startswith(line)
    assert f"**{line}" in o.markdown
    assert line in o.text
    summary = o.json["summary"]
    failing = summary["failing"]["findings"] + summary["failing"]["verdicts"]
    assert (failing > 0) == failed
    # a verdict is passed only when it is proved or holds: never an unknown
    for v in o.json["files"][0]["systems"][0]["verdicts"]:
        assert v["passed"] == (v["status"] in ("proved", "holds"))
        junit = o.case(v["requirement"])
        if v["outcome"] == "fail":
            assert junit.find("failure") is not None
        elif v["outcome"] != "pass":
            assert junit.find("skipped") is not None and junit.find("failure") is None
