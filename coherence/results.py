"""Results: the one data model that every analysis produces and every report renders.

Analyses return :class:`AnalysisResult` values (findings, verdicts, tables and plain data);
reports turn them into text, JSON, SARIF and the rest without computing anything.
Findings are sorted and carry line-independent fingerprints for baselines.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from coherence.diagnostics import REGISTRY, Diagnostic, Severity
from coherence.source import Span

Cell = str | float | int | bool | None


class Status(enum.Enum):
    """The status of a requirement: closed, like Kind 2's property status."""

    PROVED = "proved"  # holds for all time (k-induction, or a linear certificate)
    HOLDS = "holds"  # holds up to the stated depth / horizon
    FALSIFIED = "falsified"  # a counterexample exists and was replayed
    UNKNOWN = "unknown"  # the solver could not decide; never a pass
    SKIPPED = "skipped"  # not checked in this run

    @property
    def passed(self) -> bool:
        return self in (Status.PROVED, Status.HOLDS)


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One tick of a readable trace."""

    tick: int
    time: float
    values: tuple[float, ...]  # one per TraceView column
    events: tuple[str, ...]  # "router saw latency=3.1 s; set slow_share 0.05 -> 0.1"
    violated: bool = False
    significant: bool = False  # a loop moved an actuator by more than 1% of its scale


@dataclass(frozen=True, slots=True)
class TraceView:
    """A counterexample or scenario trace, as the simulator replayed it."""

    title: str
    columns: tuple[str, ...]  # "queue [req]"
    steps: tuple[TraceStep, ...]
    violation_tick: int | None = None
    replayed: bool = True
    inputs_note: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """A diagnostic produced by an analysis, with its evidence."""

    code: str
    message: str
    span: Span
    severity: Severity | None = None
    notes: tuple[str, ...] = ()
    help: str = ""
    related: tuple[Span, ...] = ()
    trace: TraceView | None = None
    data: tuple[tuple[str, Any], ...] = ()
    key: str = ""  # what the finding is about, independent of lines (e.g. "router,cost_controller")
    label: str = ""  # the text beside the caret

    @property
    def level(self) -> Severity:
        return self.severity if self.severity is not None else REGISTRY[self.code].severity

    @property
    def fingerprint(self) -> str:
        """Stable across edits that move lines: code, file, system-level subject."""
        basis = "|".join((self.code, self.span.path, self.key or self.message))
        return hashlib.sha256(basis.encode()).hexdigest()[:20]

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.span.path, self.span.line, self.span.column, self.code, self.message)

    def as_diagnostic(self) -> Diagnostic:
        return Diagnostic(
            self.code, self.message, self.span, self.severity, self.label, self.notes, self.help
        )

    @staticmethod
    def from_diagnostic(d: Diagnostic, key: str = "") -> Finding:
        return Finding(
            d.code,
            d.message,
            d.span,
            d.severity,
            d.notes,
            d.help,
            key=key or d.message,
            label=d.label,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The status of one requirement of the spec."""

    requirement: str  # as written: "require always latency <= 10s for 300 ticks"
    kind: str
    status: Status
    span: Span
    analysis: str
    depth: int | None = None
    reason: str = ""
    codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PieceTime:
    """What one piece of an analysis cost (``coherence check --timings``): its wall time in
    the process that ran it, its solver calls, how many of them ended unknown, and the rlimit
    they spent. Like ``seconds``, no report format carries it: a report's bytes do not depend
    on the machine."""

    piece: str  # a requirement's key ("always:latency<=30"), "conflicts", "equilibria"
    seconds: float
    calls: int = 0
    unknown: int = 0
    rlimit: int = 0
    result: str = ""  # the piece's verdicts, comma-separated


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """What one analysis found about one system."""

    analysis: str  # "simulate", "linear", "smt", ...
    findings: tuple[Finding, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    tables: tuple[Table, ...] = ()
    data: tuple[tuple[str, Any], ...] = ()
    seconds: float = 0.0
    pieces: tuple[PieceTime, ...] = ()  # the formal analysis' pieces, in report order
    # solver calls a wall-clock guard stopped: an answer that depends on the machine, so the
    # report is not kept in the results cache (no report format shows it)
    guarded: int = field(default=0, compare=False)


class Coherence(enum.Enum):
    """The closing verdict on a system: do the loops behave together as each does alone?"""

    COHERENT = "coherent"
    DEGRADED = "degraded"  # warnings only: margins, pairing, timescales, clipped bounds
    INCOHERENT = "incoherent"  # an error-level finding
    INCONCLUSIVE = "inconclusive"  # no errors, but something was unknown


COHERENCE_RULE = """\
How the control-coherence verdict of a system is decided

A system's verdict is the first of these that applies, over the findings and requirement
verdicts that count (a finding silenced by an inline `# coherence: ignore[CODE] reason` or by
the baseline does not count, nor does a verdict whose deciding findings were all silenced or
deselected: it is shown as e.g. `falsified (suppressed)`):

  INCOHERENT    an error-level finding (a conflict COH401, an instability COH301/COH302, a
                violated requirement COH501-COH504, ...), or a falsified requirement
  INCONCLUSIVE  no error, but a requirement whose verdict is unknown (the solver could not
                decide it: COH901); unknown never counts as a pass
  DEGRADED      no error and nothing unknown, but a warning (a small margin, a pairing
                problem, a state clipped at its bound, a regional conflict, ...)
  COHERENT      none of these: no error, no warning, every checked requirement proved or
                holding

Every report says which findings (code and subject) or unknown verdicts decided it. The
verdict describes the system; whether the run fails is decided separately by the policy:
`--fail-level` for findings and `--unknown fail|warn|ignore` for unknown verdicts (see
docs/ci.md, Exit codes)."""


def _named(findings: Sequence[Finding], limit: int = 3) -> str:
    """``COH401 (conflict:a->b), COH501 (always:x<=1) and 2 more``."""
    parts = [f"{f.code} ({f.key or f.message})" for f in findings[:limit]]
    if len(findings) > limit:
        parts.append(f"{len(findings) - limit} more")
    return _and(parts)


def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _requirements(verdicts: Sequence[Verdict], limit: int = 3) -> str:
    parts = [
        f"`{v.requirement}` ({v.analysis}{': ' + v.reason if v.reason else ''})"
        for v in verdicts[:limit]
    ]
    if len(verdicts) > limit:
        parts.append(f"{len(verdicts) - limit} more")
    return _and(parts)


def judge_coherence(
    findings: Sequence[Finding], verdicts: Sequence[Verdict]
) -> tuple[Coherence, str]:
    """The coherence verdict on a system from the findings and verdicts that count, and one
    sentence naming what decided it (:data:`COHERENCE_RULE`).

    >>> judge_coherence((), ())
    (<Coherence.COHERENT: 'coherent'>, 'coherent: no error or warning, and no requirement falsified or unknown')
    """
    errors = [f for f in findings if f.level == Severity.ERROR]
    falsified = [v for v in verdicts if v.status == Status.FALSIFIED]
    if errors or falsified:
        named = {f.code for f in errors}
        # a falsified requirement is named when no error-level finding already stands for it
        alone = [v for v in falsified if not named.intersection(v.codes)]
        parts = []
        if errors:
            parts.append(
                f"error-level {'finding' if len(errors) == 1 else 'findings'} " + _named(errors)
            )
        if alone:
            parts.append("falsified " + _requirements(alone))
        return Coherence.INCOHERENT, "incoherent: " + "; ".join(parts)
    unknown = [v for v in verdicts if v.status == Status.UNKNOWN]
    if unknown:
        verb = "is" if len(unknown) == 1 else "are"
        return (
            Coherence.INCONCLUSIVE,
            f"inconclusive: no error, but {_requirements(unknown)} {verb} unknown",
        )
    warnings = [f for f in findings if f.level == Severity.WARNING]
    if warnings:
        return (
            Coherence.DEGRADED,
            "degraded: no error and nothing unknown, but "
            + ("the warning " if len(warnings) == 1 else "the warnings ")
            + _named(warnings),
        )
    return (
        Coherence.COHERENT,
        "coherent: no error or warning, and no requirement falsified or unknown",
    )


@dataclass(frozen=True, slots=True)
class SystemReport:
    name: str
    path: str
    span: Span
    analyses: tuple[AnalysisResult, ...]
    loops: tuple[str, ...] = ()
    # said before the work: the requirements whose check will be expensive, and what would
    # make them cheaper (:func:`coherence.pipeline.expensive_requirements`)
    notes: tuple[str, ...] = ()
    # read from the results cache (coherence.cache) rather than computed by this run: the
    # same report either way, so no report format shows it (``--timings`` does)
    cached: bool = field(default=False, compare=False)

    @property
    def findings(self) -> tuple[Finding, ...]:
        out = [f for a in self.analyses for f in a.findings]
        return tuple(sorted(out, key=Finding.sort_key))

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        return tuple(v for a in self.analyses for v in a.verdicts)

    @property
    def coherence(self) -> Coherence:
        """The verdict on the system as the analyses left it (before suppressions and the
        baseline; :mod:`coherence.policy` gives the one the reports show)."""
        return judge_coherence(self.findings, self.verdicts)[0]

    @property
    def coherence_explanation(self) -> str:
        """One sentence: what made :attr:`coherence` what it is."""
        return judge_coherence(self.findings, self.verdicts)[1]


@dataclass(frozen=True, slots=True)
class FileReport:
    path: str
    diagnostics: tuple[Diagnostic, ...]
    systems: tuple[SystemReport, ...] = ()
    source_text: str = field(default="", repr=False, compare=False)

    @property
    def findings(self) -> tuple[Finding, ...]:
        out = [Finding.from_diagnostic(d) for d in self.diagnostics]
        out += [f for s in self.systems for f in s.findings]
        return tuple(sorted(out, key=Finding.sort_key))


@dataclass(frozen=True, slots=True)
class RunReport:
    files: tuple[FileReport, ...]
    tool_version: str = ""

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for fr in self.files for f in fr.findings)

    def worst(self) -> Severity | None:
        levels = [f.level for f in self.findings]
        return max(levels) if levels else None
