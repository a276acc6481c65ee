"""The CI formats fit their platforms: GitLab Code Quality JSON against its schema, SARIF
rules that link their docs and results with related locations, GitHub annotations within
the per-step cap (most important first, then a summary), and a Markdown job summary under
GitHub's 1 MiB limit."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from coherence.diagnostics import REGISTRY, Severity
from coherence.policy import Policy
from coherence.reports import RenderOptions, render
from coherence.reports.github import PER_STEP
from coherence.reports.markdown import LIMIT
from coherence.results import Finding, RunReport, Table, TraceStep, TraceView
from coherence.source import Span
from tests.ci import model
from tests.ci.util import OVERLOAD, SARIF_SCHEMA, SUPPRESSED, TIPPING, cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")


def rendered(fmt: str, run: Any, options: RenderOptions | None = None) -> str:
    out = io.StringIO()
    render(fmt, run, out, options or RenderOptions(color=False), Policy(Severity.WARNING))
    return out.getvalue()


def gitlab_validator() -> jsonschema.Draft202012Validator:
    text = (
        resources.files("coherence.schemas")
        .joinpath("gitlab-code-quality.schema.json")
        .read_text("utf-8")
    )
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# ---- GitLab Code Quality -------------------------------------------------------------------


@pytest.mark.parametrize("spec", [TIPPING, OVERLOAD, SUPPRESSED, "tests/ci/data/policy.coh"])
def test_gitlab_code_quality_is_valid_against_its_schema(spec: str) -> None:
    linear = () if spec.endswith("policy.coh") else ("--no-linear",)
    _, out, _ = cli("check", spec, "--no-smt", *linear, "--format", "gitlab")
    issues = json.loads(out)
    gitlab_validator().validate(issues)
    fingerprints = [i["fingerprint"] for i in issues]
    assert len(set(fingerprints)) == len(fingerprints)  # GitLab needs them unique


def test_gitlab_issues_carry_code_severity_location_and_trace() -> None:
    issues = json.loads(rendered("gitlab", model.triaged()))
    gitlab_validator().validate(issues)
    by_code = {i["check_name"]: i for i in issues}
    assert "COH401" not in by_code  # suppressed inline: not an issue
    violated = by_code["COH501"]
    assert violated["severity"] == "critical"  # an error that fails the run
    assert violated["location"] == {
        "path": "tests/ci/data/overload.coh",
        "lines": {"begin": 28, "end": 28},
    }
    assert "replayed in the simulator" in violated["content"]["body"]
    assert by_code["COH303"]["severity"] == "minor"  # a warning
    # a fingerprint does not move with lines
    moved = replace(model.triaged(), report=_moved(model.triaged().report, 5))
    again = {i["check_name"]: i["fingerprint"] for i in json.loads(rendered("gitlab", moved))}
    assert again["COH501"] == violated["fingerprint"]


def _moved(run: RunReport, lines: int) -> RunReport:
    files = []
    for fr in run.files:
        systems = []
        for s in fr.systems:
            analyses = tuple(
                replace(
                    a,
                    findings=tuple(
                        replace(f, span=replace(f.span, line=f.span.line + lines))
                        for f in a.findings
                    ),
                )
                for a in s.analyses
            )
            systems.append(replace(s, analyses=analyses))
        files.append(replace(fr, systems=tuple(systems)))
    return replace(run, files=tuple(files))


# ---- SARIF ---------------------------------------------------------------------------------


def test_sarif_rules_link_their_entry_in_the_rule_catalog() -> None:
    log = json.loads(rendered("sarif", model.triaged()))
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text("utf-8"))).validate(log)
    from coherence.reports.rules import rules_markdown

    catalog = rules_markdown()  # what docs/rules.md is generated from
    # the anchors GitHub gives the catalog's headings `### COH401 conflicting-objectives`
    anchors = {
        f"{m.group(1).lower()}-{m.group(2)}"
        for m in re.finditer(r"^### (COH\d+) ([a-z-]+)$", catalog, re.M)
    }
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert len(rules) == len(REGISTRY)
    for rule in rules:
        uri, _, anchor = rule["helpUri"].partition("#")
        assert uri.startswith("https://") and uri.endswith("rules.md")
        assert anchor in anchors, rule["id"]


def test_sarif_related_locations_say_what_they_are() -> None:
    """The loop and the objective behind a violation, named by their source line."""
    run = model.triaged()
    log = json.loads(rendered("sarif", run))
    (violated,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "COH501"]
    related = violated["relatedLocations"]
    assert [r["physicalLocation"]["region"]["startLine"] for r in related] == [20, 23]
    source = run.report.files[0].source_text.splitlines()
    assert related[0]["message"]["text"] == source[19].strip().rstrip("{").strip()
    assert related[0]["message"]["text"]


# ---- GitHub annotations: the per-step cap --------------------------------------------------


def _many(errors: int, warnings: int, notes: int) -> RunReport:
    """The synthetic run with many more findings; one error carries a trace."""
    run = model.report()
    (fr,) = run.files
    (system,) = fr.systems
    trace = TraceView("run", ("queue [req]",), (TraceStep(0, 0.0, (1.0,), (), True),), 0)
    extra = []
    for i in range(errors):
        extra.append(
            Finding(
                "COH506",
                f"error {i}",
                Span(fr.path, 30 + i, 1, 30 + i, 5),
                Severity.ERROR,
                key=f"e{i}",
                trace=trace if i == errors - 1 else None,
            )
        )
    for i in range(warnings):
        extra.append(
            Finding(
                "COH506", f"warning {i}", Span(fr.path, 2, 1, 2, 5), Severity.WARNING, key=f"w{i}"
            )
        )
    for i in range(notes):
        extra.append(
            Finding("COH902", f"note {i}", Span(fr.path, 3, 1, 3, 5), Severity.NOTE, key=f"n{i}")
        )
    first = system.analyses[0]
    analyses = (replace(first, findings=(*first.findings, *extra)), *system.analyses[1:])
    return replace(run, files=(replace(fr, systems=(replace(system, analyses=analyses),)),))


def test_github_annotations_keep_to_the_per_step_cap_most_important_first() -> None:
    out = rendered("github", _many(errors=25, warnings=12, notes=15))
    lines = out.splitlines()
    kinds = [line.split(" ", 1)[0] for line in lines if line.startswith("::")]
    assert kinds.count("::error") == PER_STEP
    assert kinds.count("::warning") == PER_STEP
    assert kinds.count("::notice") == PER_STEP  # nine notes and the summary notice
    # errors first; the one with a replayed trace and the failing verdicts among them
    assert lines[0].startswith("::error")
    errors = [line for line in lines if line.startswith("::error")]
    assert any("error 24" in line for line in errors)  # it has a trace
    summary = [line for line in lines if line.startswith("::notice title=coherence::")]
    assert len(summary) == 1
    total_errors = sum(1 for f in _many(25, 12, 15).findings if f.level == Severity.ERROR)
    assert f"{total_errors + _failing_verdicts() - PER_STEP} errors" in summary[0]
    # the synthetic run's own two warnings and 12 more; 15 notes, nine written
    assert ", 4 warnings and 6 notes not annotated" in summary[0]
    assert lines[-1].startswith("result: FAILED")


def _failing_verdicts() -> int:
    """Failing verdicts annotated on their own (no annotated finding stands for them)."""
    out = rendered("github", model.triaged())
    return sum(1 for line in out.splitlines() if "title=always" in line or "title=stable" in line)


def test_github_annotations_under_the_cap_are_all_written_without_a_summary() -> None:
    run = _many(errors=2, warnings=3, notes=1)
    out = rendered("github", run)
    assert "title=coherence::" not in out
    lines = out.splitlines()
    for level, kind in ((Severity.WARNING, "warning"), (Severity.NOTE, "notice")):
        expected = sum(1 for f in run.findings if f.level == level)
        assert sum(1 for line in lines if line.startswith(f"::{kind} ")) == expected


# ---- Markdown: under GitHub's 1 MiB step-summary limit -------------------------------------


def _big(systems: int) -> RunReport:
    """The synthetic system many times over, each with a large analysis table."""
    run = model.report()
    (fr,) = run.files
    (system,) = fr.systems
    rows = tuple((f"row {i}", float(i), "x" * 80) for i in range(400))
    table = Table("Big", ("name", "value", "text"), rows)
    first = system.analyses[0]
    big = replace(
        system, analyses=(replace(first, tables=(*first.tables, table)), *system.analyses[1:])
    )
    many = tuple(replace(big, name=f"s{i}") for i in range(systems))
    return replace(run, files=(replace(fr, systems=many),))


def test_markdown_stays_under_the_limit_and_says_what_it_left_out() -> None:
    full = rendered("markdown", _big(3))
    assert "This summary is shortened" not in full
    big = rendered("markdown", _big(40))
    size = len(big.encode("utf-8"))
    assert size <= LIMIT < 1024 * 1024
    assert "**This summary is shortened to fit the 1 MiB limit of a job summary**" in big
    assert "`coherence-report` artifact" in big
    # every system keeps at least its verdict line in the overview
    for i in range(40):
        assert f"| `s{i}` |" in big
    limit = len(full.encode("utf-8"))  # with room for the note, one table must go
    small = rendered("markdown", _big(3), RenderOptions(color=False, limit=limit))
    assert len(small.encode("utf-8")) <= limit
    assert "This summary is shortened" in small
    # later systems of the same verdict are shortened first: the first keeps the most
    sections = small.split("\n## `s")[1:]
    assert [section[0] for section in sections] == ["0", "1", "2"]
    assert len(sections[0]) >= len(sections[1]) >= len(sections[2])
    assert len(sections[0]) > len(sections[2])


# ---- units in every trace value --------------------------------------------------------------


def test_every_trace_value_carries_its_unit_in_text_and_markdown() -> None:
    """Each value in a trace is printed with its column's unit (none for a dimensionless
    column `[1]`), in the terminal report and in the Markdown summary alike."""
    steps = tuple(
        TraceStep(t, 5.0 * t, (10.0 * t, 0.5 + t, 0.1 * t), (), violated=t == 2) for t in range(3)
    )
    view = TraceView("run", ("queue [req]", "latency [s]", "share [1]"), steps, violation_tick=2)
    finding = Finding(
        "COH506", "violated", Span("tests/ci/data/overload.coh", 24, 5, 24, 9), trace=view, key="k"
    )
    run = model.report()
    (fr,) = run.files
    (system,) = fr.systems
    first = system.analyses[0]
    system = replace(system, analyses=(replace(first, findings=(finding,)), *system.analyses[1:]))
    run = replace(run, files=(replace(fr, systems=(system,)),))
    for fmt in ("text", "markdown"):
        out = rendered(fmt, run, RenderOptions(color=False, width=120, verbose=True))
        assert "t=5s  queue=10 req  latency=1.5 s  share=0.1\n" in out, fmt
        assert "t=10s  queue=20 req  latency=2.5 s  share=0.2  <-- violated" in out, fmt
        assert "share=0.1 1" not in out
