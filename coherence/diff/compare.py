"""The comparison of two checked versions of a spec: verdicts, findings, earlier
violations and the numbers a reviewer reads (``coherence diff``)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from coherence.diagnostics import Severity
from coherence.results import FileReport, Finding, Status, SystemReport, Table

EXIT_OK, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2
SCHEMA_VERSION = "1"
_RANK = {Status.PROVED: 3, Status.HOLDS: 2, Status.UNKNOWN: 1, Status.FALSIFIED: 0}
_TOLERANCE = 1e-9  # relative: smaller moves are float noise, not drift


@dataclass(frozen=True, slots=True)
class VerdictChange:
    system: str
    requirement: str
    analysis: str
    old: str | None  # status, None when the requirement is new
    new: str | None  # status, None when the requirement went away
    regression: bool


@dataclass(frozen=True, slots=True)
class NumberChange:
    system: str
    analysis: str
    key: str  # "spectral_radius", "margins.router", "Table title[row].column"
    old: Any
    new: Any

    @property
    def delta(self) -> float | None:
        if _numeric(self.old) and _numeric(self.new):
            return float(self.new) - float(self.old)
        return None

    @property
    def relative(self) -> float | None:
        d = self.delta
        if d is None or not self.old:
            return None
        return d / abs(float(self.old))


@dataclass(frozen=True, slots=True)
class FindingChange:
    change: str  # "appeared" | "went away"
    finding: Finding
    regression: bool


@dataclass(frozen=True, slots=True)
class EarlierViolation:
    """A finding of both versions whose replayed trace now violates earlier."""

    system: str
    finding: Finding  # the new version's
    old_time: float  # seconds into the run
    new_time: float


@dataclass(frozen=True, slots=True)
class Relaxation:
    """An objective or requirement that asks less of the system than before."""

    system: str
    subject: str  # "objective `latency`", "`require always latency <= 30 s for 600 ticks`"
    change: str  # "tolerance raised from 5% to 20%", "removed"


@dataclass(frozen=True, slots=True)
class SpecDiff:
    old: str  # labels: "specs/a.coh@HEAD~1", "specs/a.coh"
    new: str
    systems_added: tuple[str, ...]
    systems_removed: tuple[str, ...]
    coherence: tuple[tuple[str, str, str], ...]  # (system, old, new) where it changed
    verdicts: tuple[VerdictChange, ...]
    numbers: tuple[NumberChange, ...]
    findings: tuple[FindingChange, ...]
    earlier: tuple[EarlierViolation, ...] = ()
    relaxed: tuple[Relaxation, ...] = ()
    status: str = "changed"  # or "added", "deleted": the spec is new, or gone

    @property
    def regressions(self) -> int:
        return (
            sum(v.regression for v in self.verdicts)
            + sum(f.regression for f in self.findings)
            + len(self.earlier)
        )

    @property
    def changed(self) -> bool:
        return bool(
            self.status != "changed"
            or self.systems_added
            or self.systems_removed
            or self.coherence
            or self.verdicts
            or self.numbers
            or self.findings
            or self.earlier
            or self.relaxed
        )


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _as_number(v: Any) -> Any:
    """Numbers shown as text in tables ("1.25") compare as numbers."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _same(a: Any, b: Any) -> bool:
    if _numeric(a) and _numeric(b):
        fa, fb = float(a), float(b)
        if math.isnan(fa) and math.isnan(fb):
            return True
        return fa == fb or abs(fa - fb) <= _TOLERANCE * max(abs(fa), abs(fb))
    return bool(a == b)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of JSON-like data: ``{"a": {"b": [1, 2]}}`` -> ``{"a.b[0]": 1, "a.b[1]": 2}``."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def _rows(t: Table) -> dict[str, tuple[Any, ...]]:
    from coherence.reports._common import cell

    firsts = [str(r[0]) if r else "" for r in t.rows]
    unique = len(set(firsts)) == len(firsts)
    out: dict[str, tuple[Any, ...]] = {}
    for r in t.rows:
        if unique:
            key = str(r[0]) if r else ""
        else:
            key = ", ".join(str(c) for c in r if not _numeric(c))
        out[key] = tuple(cell(c) for c in r)
    return out


def _table_changes(system: str, analysis: str, old: Table, new: Table) -> list[NumberChange]:
    changes = []
    a, b = _rows(old), _rows(new)
    for key in sorted(a.keys() | b.keys()):
        label = f"{new.title}[{key}]"
        if key not in a:
            changes.append(NumberChange(system, analysis, label, None, "row added"))
        elif key not in b:
            changes.append(NumberChange(system, analysis, label, "row removed", None))
        else:
            for i, col in enumerate(new.columns):
                if i == 0 or col not in old.columns:
                    continue
                x = _as_number(a[key][old.columns.index(col)])
                y = _as_number(b[key][i])
                if not _same(x, y):
                    changes.append(NumberChange(system, analysis, f"{label}.{col}", x, y))
    return changes


# what of the analyses' data and tables a reviewer reads (the rest is internals: in the JSON
# report of `coherence check`); data keys are top-level numbers
REVIEW_DATA = {("linear", "spectral_radius")}
REVIEW_TABLES = {
    ("linear", "Stability"),
    ("linear", "Margins"),
    ("smt", "Objective alignment"),
}


def _number_changes(old: SystemReport, new: SystemReport) -> list[NumberChange]:
    from coherence.reports._common import jsonable

    changes: list[NumberChange] = []
    old_by = {a.analysis: a for a in old.analyses}
    for b in new.analyses:
        a = old_by.get(b.analysis)
        if a is None:
            continue
        x, y = jsonable(dict(a.data)), jsonable(dict(b.data))
        for key in sorted(x.keys() | y.keys()):
            if (b.analysis, key) not in REVIEW_DATA:
                continue
            if key not in x or key not in y or not _same(x[key], y[key]):
                changes.append(NumberChange(new.name, b.analysis, key, x.get(key), y.get(key)))
        tables_a = {t.title: t for t in a.tables}
        for t in b.tables:
            if t.title in tables_a and (b.analysis, t.title) in REVIEW_TABLES:
                changes += _table_changes(new.name, b.analysis, tables_a[t.title], t)
    return changes


def _violation_time(f: Finding) -> float | None:
    view = f.trace
    if view is None or view.violation_tick is None or not view.replayed:
        return None
    for step in view.steps:
        if step.tick == view.violation_tick:
            return step.time
    return None


def _earlier(old: FileReport, new: FileReport) -> list[EarlierViolation]:
    """Findings in both versions (by fingerprint) whose replayed violation moved earlier."""
    before: dict[str, float] = {}
    for f in old.findings:
        t = _violation_time(f)
        if t is not None:
            before.setdefault(_fingerprint_at(f, new.path), t)
    systems = {id(f): s.name for s in new.systems for f in s.findings}
    out = []
    for f in new.findings:
        t, was = _violation_time(f), before.get(f.fingerprint)
        if t is not None and was is not None and t < was:
            out.append(EarlierViolation(systems.get(id(f), ""), f, was, t))
    return out


def _worse(old: Status, new: Status) -> bool:
    if old not in _RANK or new not in _RANK:
        return False
    return (old.passed and not new.passed) or (old == Status.UNKNOWN and new == Status.FALSIFIED)


def _verdict_changes(old: SystemReport, new: SystemReport) -> list[VerdictChange]:
    a = {(v.requirement, v.analysis): v.status for v in old.verdicts}
    b = {(v.requirement, v.analysis): v.status for v in new.verdicts}
    out = []
    for key in [k for k in a if k not in b] + list(b):
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        regression = x is not None and y is not None and _worse(x, y)
        out.append(
            VerdictChange(
                new.name, key[0], key[1], x.value if x else None, y.value if y else None, regression
            )
        )
    return out


def _fingerprint_at(f: Finding, path: str) -> str:
    return replace(f, span=replace(f.span, path=path)).fingerprint


def _finding_changes(old: FileReport, new: FileReport) -> list[FindingChange]:
    a = Counter(_fingerprint_at(f, new.path) for f in old.findings)
    b = Counter(f.fingerprint for f in new.findings)
    out = []
    seen: Counter[str] = Counter()
    for f in new.findings:
        fp = f.fingerprint
        seen[fp] += 1
        if seen[fp] > a[fp]:
            out.append(FindingChange("appeared", f, f.level == Severity.ERROR))
    gone: Counter[str] = Counter()
    for f in old.findings:
        fp = _fingerprint_at(f, new.path)
        gone[fp] += 1
        if gone[fp] > b[fp]:
            out.append(FindingChange("went away", f, False))
    return out


def diff_files(
    old: FileReport,
    new: FileReport,
    old_label: str,
    new_label: str,
    relaxed: Sequence[Relaxation] = (),
    status: str = "changed",
) -> SpecDiff:
    """Compare the checked old and new versions of one spec file (``relaxed``: what
    :func:`relaxations` found between their systems)."""
    old_sys = {s.name: s for s in old.systems}
    new_sys = {s.name: s for s in new.systems}
    verdicts: list[VerdictChange] = []
    numbers: list[NumberChange] = []
    coherence: list[tuple[str, str, str]] = []
    for name, s in new_sys.items():
        o = old_sys.get(name)
        if o is None:
            continue
        if o.coherence != s.coherence:
            coherence.append((name, o.coherence.value, s.coherence.value))
        verdicts += _verdict_changes(o, s)
        numbers += _number_changes(o, s)
    return SpecDiff(
        old_label,
        new_label,
        tuple(n for n in new_sys if n not in old_sys),
        tuple(n for n in old_sys if n not in new_sys),
        tuple(coherence),
        tuple(verdicts),
        tuple(numbers),
        tuple(_finding_changes(old, new)),
        tuple(_earlier(old, new)),
        tuple(relaxed),
        status,
    )
