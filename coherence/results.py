"""Results: the one data model that every analysis produces and every report renders.

Analyses return :class:`AnalysisResult` values (findings, verdicts, tables and plain data);
reports turn them into text, JSON, SARIF and the rest without computing anything.
Findings are sorted and carry line-independent fingerprints for baselines.
"""

from __future__ import annotations

import enum
import hashlib
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


class Coherence(enum.Enum):
    """The closing verdict on a system: do the loops behave together as each does alone?"""

    COHERENT = "coherent"
    DEGRADED = "degraded"  # warnings only: margins, pairing, timescales, clipped bounds
    INCOHERENT = "incoherent"  # an error-level finding
    INCONCLUSIVE = "inconclusive"  # no errors, but something was unknown


@dataclass(frozen=True, slots=True)
class SystemReport:
    name: str
    path: str
    span: Span
    analyses: tuple[AnalysisResult, ...]
    loops: tuple[str, ...] = ()
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
        levels = [f.level for f in self.findings]
        if Severity.ERROR in levels or any(v.status == Status.FALSIFIED for v in self.verdicts):
            return Coherence.INCOHERENT
        if any(v.status == Status.UNKNOWN for v in self.verdicts):
            return Coherence.INCONCLUSIVE
        if Severity.WARNING in levels:
            return Coherence.DEGRADED
        return Coherence.COHERENT


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
