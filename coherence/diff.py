"""Runtime drift between two versions of a spec: ``coherence diff OLD NEW``.

Both versions are checked with the same options (and the project's selection and inline
suppressions); then, system by system (paired by name), what a reviewer needs:

- **verdicts** that changed status; a *regression* when a requirement that passed
  (proved, holds) becomes unknown or falsified, or an unknown one becomes falsified;
- **findings** that appeared or went away, matched by fingerprint (line-independent; the old
  file's findings are fingerprinted as if at the new path); a new error is a regression;
- **violations that moved earlier**: a finding in both versions whose replayed trace now
  violates at an earlier tick (a regression);
- **relaxed objectives**: a requirement removed or weakened (a shorter horizon, a looser
  bound, more reversals allowed, a longer response time), an objective removed, its
  tolerance or materiality floor raised or its bound loosened. Such a change can turn a
  failing check green without making the system any better, so it is flagged: it is never
  "no regression";
- **numbers** a reviewer reads: the coupled spectral radius, the Stability table (each
  loop alone, the pairs), the Margins table (gain and delay margins per loop), and the
  objective-alignment matrix. The analyses' internals (eigenvalue lists, solver statistics,
  the nominal run's extremes) are in ``coherence check --format json``, not in the diff.

``coherence diff SPEC --rev GITREV`` compares ``git show GITREV:SPEC`` with the working copy;
``coherence diff DIR --rev GITREV`` every spec under DIR (new and deleted specs included), and
``coherence diff OLD_DIR NEW_DIR`` the specs of two folders, paired by relative path.
``--format markdown`` writes a comment for a pull request. Exit code 1 on a regression or a
relaxed objective (unless ``--exit-zero``), 0 otherwise, 2 on errors.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from coherence.diagnostics import CoherenceError, Diagnostic, Severity
from coherence.ir.nodes import Expr, Requirement, TransitionSystem
from coherence.results import FileReport, Finding, RunReport, Status, SystemReport, Table

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


# ---- relaxed objectives --------------------------------------------------------------------


def _value(ts: TransitionSystem, e: Expr | None) -> float | None:
    """A bound's value when it is a number or a parameter (else None)."""
    from coherence.ir.nodes import Const, Unary, Var

    if isinstance(e, Const):
        return e.value
    if isinstance(e, Unary) and e.op == "neg":
        inner = _value(ts, e.arg)
        return None if inner is None else -inner
    if isinstance(e, Var):
        for p in ts.params:
            if p.name == e.name:
                return p.value
    return None


def _amount(v: float, relative: bool) -> str:
    return f"{v:.4g}%" if relative else f"{v:.4g}"


def _objective_relaxations(old: TransitionSystem, new: TransitionSystem) -> list[Relaxation]:
    out = []
    after = {o.name: o for o in new.objectives}
    for o in old.objectives:
        subject = f"objective `{o.name}`"
        n = after.get(o.name)
        if n is None:
            out.append(Relaxation(new.name, subject, "removed"))
            continue
        if o.relative == n.relative and n.tolerance > o.tolerance:
            scale = 100.0 if o.relative else 1.0
            out.append(
                Relaxation(
                    new.name,
                    subject,
                    f"tolerance raised from {_amount(o.tolerance * scale, o.relative)} to "
                    f"{_amount(n.tolerance * scale, n.relative)}",
                )
            )
        if o.floor is not None and (n.floor is None or n.floor > o.floor):
            was = f"{o.floor:g}"
            now = "the default" if n.floor is None else f"{n.floor:g}"
            out.append(
                Relaxation(new.name, subject, f"materiality floor raised from {was} to {now}")
            )
        if o.kind == "keep" and n.kind == "keep" and o.cmp == n.cmp:
            a, b = _value(old, o.bound), _value(new, n.bound)
            if (
                a is not None
                and b is not None
                and ((o.cmp in ("<", "<=") and b > a) or (o.cmp in (">", ">=") and b < a))
            ):
                unit = "" if n.unit in ("", "1") else f" {n.unit}"
                out.append(
                    Relaxation(
                        new.name,
                        subject,
                        f"bound loosened from {o.cmp} {a / o.scale:.4g}{unit} to "
                        f"{n.cmp} {b / n.scale:.4g}{unit}",
                    )
                )
        elif o.kind != n.kind:
            out.append(Relaxation(new.name, subject, f"changed from {o.kind} to {n.kind}"))
    return out


def _requirement_relaxations(old: TransitionSystem, new: TransitionSystem) -> list[Relaxation]:
    """Requirements paired by kind and their order among that kind (a requirement whose
    bound changed is the same requirement, asking something else)."""
    out = []

    def by_kind(ts: TransitionSystem) -> dict[tuple[str, int], Requirement]:
        seen: Counter[str] = Counter()
        keyed = {}
        for r in ts.requirements:
            keyed[(r.kind, seen[r.kind])] = r
            seen[r.kind] += 1
        return keyed

    before, after = by_kind(old), by_kind(new)
    for key, r in before.items():
        subject = f"`{r.text or r.kind}`"
        n = after.get(key)
        if n is None:
            out.append(Relaxation(new.name, subject, "removed"))
            continue
        changes = []
        if 0 < n.horizon < r.horizon:
            changes.append(f"horizon shortened from {r.horizon} to {n.horizon} ticks")
        if r.kind == "flapping":
            if n.max_reversals > r.max_reversals:
                changes.append(
                    f"reversals allowed raised from {r.max_reversals} to {n.max_reversals}"
                )
            if n.within < r.within:
                changes.append(f"window shortened from {r.within} to {n.within} ticks")
        if r.kind == "response" and n.within > r.within:
            changes.append(f"response time raised from {r.within} to {n.within} ticks")
        if r.kind == "always" and r.cond is not None and n.cond is not None:
            looser = _looser_condition(old, r.cond, new, n.cond)
            if looser:
                changes.append(looser)
        if changes:
            out.append(Relaxation(new.name, subject, "; ".join(changes) + f" (now `{n.text}`)"))
    return out


def _looser_condition(
    old_ts: TransitionSystem, old: Expr, new_ts: TransitionSystem, new: Expr
) -> str:
    """``bound loosened from <= 30 to <= 60`` for ``x <= c`` conditions over the same
    left-hand side whose constant moved the permissive way; else empty."""
    from coherence.ir.nodes import Binary

    if not (isinstance(old, Binary) and isinstance(new, Binary) and old.op == new.op):
        return ""
    if old.op not in ("<", "<=", ">", ">=") or repr(_unspanned(old.left)) != repr(
        _unspanned(new.left)
    ):
        return ""
    a, b = _value(old_ts, old.right), _value(new_ts, new.right)
    if a is None or b is None:
        return ""
    if (old.op in ("<", "<=") and b > a) or (old.op in (">", ">=") and b < a):
        return f"bound loosened from {old.op} {a:.4g} to {new.op} {b:.4g}"
    return ""


def _unspanned(e: Any) -> Any:
    """``e`` without its spans (two versions of a spec put the same term on other lines)."""
    import dataclasses

    if dataclasses.is_dataclass(e) and not isinstance(e, type):
        values = {
            f.name: _unspanned(getattr(e, f.name))
            for f in dataclasses.fields(e)
            if f.name != "span"
        }
        return (type(e).__name__, tuple(sorted(values.items())))
    if isinstance(e, tuple):
        return tuple(_unspanned(v) for v in e)
    return e


def relaxations(
    old: Sequence[TransitionSystem], new: Sequence[TransitionSystem]
) -> list[Relaxation]:
    """What the new version asks less of than the old, system by system (paired by name):
    objectives and requirements removed or weakened. A system removed altogether relaxes
    every requirement it had."""
    out = []
    after = {ts.name: ts for ts in new}
    for ts in old:
        n = after.get(ts.name)
        if n is None:
            if ts.requirements:
                out.append(
                    Relaxation(ts.name, f"system `{ts.name}`", "removed, with its requirements")
                )
            continue
        out += _requirement_relaxations(ts, n)
        out += _objective_relaxations(ts, n)
    return out


# ---- checking a spec's text ----------------------------------------------------------------


def check_text(path: str, text: str, options: Any) -> FileReport:
    """Check a spec given as text, reported at ``path`` (as the pipeline checks a file)."""
    from coherence.compile import compile_source
    from coherence.pipeline import analyse_cached, analyses_for
    from coherence.source import SourceFile

    result = compile_source(SourceFile(path, text))
    systems: list[SystemReport] = []
    if result.ok:
        chosen = analyses_for(options)
        systems = [analyse_cached(ts, chosen, options) for ts in result.systems]
    return FileReport(path, result.diagnostics, tuple(systems), text)


def read_text(path: str) -> str:
    from coherence.compile import read_source

    src = read_source(path)
    if isinstance(src, Diagnostic):
        raise CoherenceError(src.message, src.help)
    return src.text


def git_show(path: str, rev: str) -> str:
    """The text of ``path`` at git revision ``rev`` (``git show REV:./NAME`` in its folder)."""
    p = Path(path)
    try:
        proc = subprocess.run(
            ["git", "show", f"{rev}:./{p.name}"],
            cwd=p.parent if str(p.parent) else Path("."),
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise CoherenceError("`git` is not installed", "compare two files instead") from None
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CoherenceError(
            f"cannot read `{path}` at revision `{rev}`: {reason[-1] if reason else 'git failed'}",
            "is the file tracked by git, and the revision right?",
        )
    try:
        return proc.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise CoherenceError(f"`{path}` at `{rev}` is not UTF-8 text") from None


# ---- rendering -----------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    from coherence.reports.text import fmt_cell

    if v is None:
        return "-"
    if v == "":
        return "(empty)"
    if isinstance(v, float | int | bool | str):
        return fmt_cell(v)
    return json.dumps(v)


def _number_line(n: NumberChange) -> str:
    key = "spectral radius (coupled)" if n.key == "spectral_radius" else n.key
    text = f"{key}: {_fmt(n.old)} -> {_fmt(n.new)}"
    d, r = n.delta, n.relative
    if d is not None:
        text += f" ({d:+.4g}" + (f", {r:+.1%}" if r is not None else "") + ")"
    return text


def _finding_line(c: FindingChange) -> str:
    f = c.finding
    s = f.span
    mark = "+" if c.change == "appeared" else "-"
    return f"{mark} {f.level}[{f.code}] {s.path}:{s.line}:{s.column}: {f.message}"


def _earlier_line(e: EarlierViolation) -> str:
    f = e.finding
    return (
        f"{f.code} ({f.key or f.message}): violated at t={e.new_time:g}s, "
        f"was t={e.old_time:g}s ({e.new_time - e.old_time:+g}s)"
    )


def _result(regressions: int, relaxed: int) -> str:
    """``1 regression; 2 relaxed objectives or requirements (review: ...)``."""
    parts = []
    if regressions:
        parts.append(f"{regressions} regression{'s' if regressions != 1 else ''}")
    if relaxed:
        parts.append(
            f"{relaxed} relaxed objective{'s' if relaxed != 1 else ''} or requirement"
            f"{'s' if relaxed != 1 else ''} (it asks less of the system: review it, it is "
            "not a pass)"
        )
    return "; ".join(parts) if parts else "no regression, nothing relaxed"


def _spec_title(d: SpecDiff) -> str:
    if d.status == "added":
        return f"{d.new}: new spec"
    if d.status == "deleted":
        return f"{d.old}: deleted"
    return f"{d.old} -> {d.new}"


def _render_spec(console: Any, d: SpecDiff) -> None:
    from rich.text import Text

    console.print(Text(f"coherence diff: {_spec_title(d)}", style="bold"), soft_wrap=True)
    if not d.changed:
        console.print(Text("no change in verdicts, findings, margins or objectives"))
    for name in d.systems_added:
        console.print(Text(f"system {name}: added"))
    for name in d.systems_removed:
        console.print(Text(f"system {name}: removed"))
    for name, a, b in d.coherence:
        console.print(Text(f"system {name}: control coherence {a.upper()} -> {b.upper()}"))
    if d.verdicts:
        console.print(Text("verdicts", style="bold"))
        for v in d.verdicts:
            line = f"  {v.system}: {v.requirement} [{v.analysis}]: {v.old or '-'} -> {v.new or '-'}"
            style = "bold red" if v.regression else ""
            console.print(
                Text(line + ("  REGRESSION" if v.regression else ""), style=style), soft_wrap=True
            )
    if d.relaxed:
        console.print(Text("relaxed (asks less of the system than before)", style="bold"))
        for r in d.relaxed:
            console.print(
                Text(f"  {r.system}: {r.subject}: {r.change}  RELAXED", style="bold yellow"),
                soft_wrap=True,
            )
    if d.earlier:
        console.print(Text("violations that moved earlier", style="bold"))
        for e in d.earlier:
            console.print(
                Text(f"  {e.system}: {_earlier_line(e)}  REGRESSION", style="bold red"),
                soft_wrap=True,
            )
    if d.findings:
        console.print(Text("findings", style="bold"))
        for c in d.findings:
            line = "  " + _finding_line(c) + ("  REGRESSION" if c.regression else "")
            console.print(Text(line, style="bold red" if c.regression else ""), soft_wrap=True)
    if d.numbers:
        console.print(Text("stability, margins and alignment", style="bold"))
        for n in d.numbers:
            console.print(Text(f"  {n.system}: {_number_line(n)}"), soft_wrap=True)


def diff_text(d: SpecDiff, stream: TextIO, color: bool | None = None) -> None:
    from rich.text import Text

    from coherence.reports.text import make_console

    console = make_console(stream, color)
    _render_spec(console, d)
    bad = d.regressions or d.relaxed
    console.print(
        Text(
            f"result: {_result(d.regressions, len(d.relaxed))}",
            style="bold red" if bad else "bold green",
        ),
        soft_wrap=True,
    )


def diff_set_text(diffs: Sequence[SpecDiff], stream: TextIO, color: bool | None = None) -> None:
    """Every spec that changed, then how many did not and the result."""
    from rich.text import Text

    from coherence.reports.text import make_console

    console = make_console(stream, color)
    changed = [d for d in diffs if d.changed]
    for d in changed:
        _render_spec(console, d)
        console.print()
    same = len(diffs) - len(changed)
    if same:
        console.print(Text(f"{same} spec{'s' if same != 1 else ''} unchanged"))
    regressions = sum(d.regressions for d in diffs)
    relaxed = sum(len(d.relaxed) for d in diffs)
    console.print(
        Text(
            f"result: {_result(regressions, relaxed)}",
            style="bold red" if regressions or relaxed else "bold green",
        ),
        soft_wrap=True,
    )


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>") or " "


def diff_markdown(diffs: Sequence[SpecDiff], old: str, new: str) -> str:
    """A pull-request comment: the result first, a table of the specs that changed, then
    per spec its verdicts, relaxed objectives, earlier violations, findings and numbers."""
    regressions = sum(d.regressions for d in diffs)
    relaxed = sum(len(d.relaxed) for d in diffs)
    changed = [d for d in diffs if d.changed]
    icon = ":x:" if regressions else (":warning:" if relaxed else ":white_check_mark:")
    out = [
        f"## coherence diff: `{old}` -> `{new}`",
        "",
        f"{icon} **{_result(regressions, relaxed)}**",
        "",
    ]
    if changed:
        out += [
            "| spec | coherence | regressions | relaxed | findings +/- |",
            "|---|---|---|---|---|",
        ]
        for d in changed:
            verdicts = ", ".join(f"`{s}` {a.upper()} -> {b.upper()}" for s, a, b in d.coherence)
            plus = sum(1 for c in d.findings if c.change == "appeared")
            minus = len(d.findings) - plus
            status = {"added": " (new)", "deleted": " (deleted)"}.get(d.status, "")
            out.append(
                f"| `{d.new if d.status != 'deleted' else d.old}`{status} | "
                f"{_md_cell(verdicts) if verdicts else 'unchanged'} | {d.regressions} | "
                f"{len(d.relaxed)} | +{plus} / -{minus} |"
            )
        out.append("")
    same = len(diffs) - len(changed)
    if same:
        out += [f"{same} spec{'s' if same != 1 else ''} unchanged.", ""]
    for d in changed:
        out += [f"### {_md_cell(_spec_title(d))}", ""]
        for name in d.systems_added:
            out.append(f"- system `{name}` added")
        for name in d.systems_removed:
            out.append(f"- system `{name}` removed")
        for v in d.verdicts:
            mark = " **regression**" if v.regression else ""
            out.append(
                f"- `{v.system}`: `{v.requirement}` ({v.analysis}): "
                f"{v.old or '-'} -> **{v.new or '-'}**{mark}"
            )
        for r in d.relaxed:
            out.append(f"- :warning: **relaxed**: `{r.system}`: {r.subject}: {_md_cell(r.change)}")
        for e in d.earlier:
            out.append(f"- **regression**: `{e.system}`: {_md_cell(_earlier_line(e))}")
        for c in d.findings:
            f = c.finding
            mark = " **regression**" if c.regression else ""
            word = "new" if c.change == "appeared" else "gone"
            out.append(
                f"- {word}: {f.level}[{f.code}] `{f.span.path}:{f.span.line}`: "
                f"{_md_cell(f.message)}{mark}"
            )
        if d.numbers:
            out += ["", "| system | what | old | new | change |", "|---|---|---|---|---|"]
            for n in d.numbers:
                key = "spectral radius (coupled)" if n.key == "spectral_radius" else n.key
                delta = ""
                if n.delta is not None:
                    delta = f"{n.delta:+.4g}" + (
                        f" ({n.relative:+.1%})" if n.relative is not None else ""
                    )
                out.append(
                    f"| `{n.system}` | {_md_cell(key)} | {_md_cell(_fmt(n.old))} | "
                    f"{_md_cell(_fmt(n.new))} | {delta} |"
                )
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def diff_json(d: SpecDiff) -> dict[str, Any]:
    from coherence.reports._common import jsonable
    from coherence.reports.json import finding_json

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "diff",
        "old": d.old,
        "new": d.new,
        "status": d.status,
        "regressions": d.regressions,
        "systems": {"added": list(d.systems_added), "removed": list(d.systems_removed)},
        "coherence": [{"system": s, "old": a, "new": b} for s, a, b in d.coherence],
        "verdicts": [
            {
                "system": v.system,
                "requirement": v.requirement,
                "analysis": v.analysis,
                "old": v.old,
                "new": v.new,
                "regression": v.regression,
            }
            for v in d.verdicts
        ],
        "numbers": [
            {
                "system": n.system,
                "analysis": n.analysis,
                "key": n.key,
                "old": jsonable(n.old),
                "new": jsonable(n.new),
                "delta": jsonable(n.delta),
                "relative": jsonable(n.relative),
            }
            for n in d.numbers
        ],
        "findings": [
            {"change": c.change, "regression": c.regression, "finding": finding_json(c.finding)}
            for c in d.findings
        ],
        "earlier": [
            {
                "system": e.system,
                "finding": finding_json(e.finding),
                "old_time_s": e.old_time,
                "new_time_s": e.new_time,
            }
            for e in d.earlier
        ],
        "relaxed": [
            {"system": r.system, "subject": r.subject, "change": r.change} for r in d.relaxed
        ],
    }


def diff_set_json(diffs: Sequence[SpecDiff], old: str, new: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "diff-set",
        "old": old,
        "new": new,
        "regressions": sum(d.regressions for d in diffs),
        "relaxed": sum(len(d.relaxed) for d in diffs),
        "specs": [diff_json(d) for d in diffs],
    }


# ---- the command ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Side:
    """One version of a spec: where it is reported, its label, its text (None: absent)."""

    path: str
    label: str
    text: str | None


def _git_specs(directory: str, rev: str) -> list[str]:
    """The ``*.coh`` files under ``directory`` at ``rev`` (paths as the working copy names
    them: ``directory/...``)."""
    try:
        proc = subprocess.run(
            ["git", "ls-tree", "-r", "--name-only", rev, "--", "."],
            cwd=directory,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise CoherenceError("`git` is not installed", "compare two folders instead") from None
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CoherenceError(
            f"cannot list `{directory}` at revision `{rev}`: "
            f"{reason[-1] if reason else 'git failed'}",
            "is the folder in a git repository, and the revision right?",
        )
    names = proc.stdout.decode("utf-8", "replace").splitlines()
    return [str(Path(directory) / n) for n in names if n.endswith(".coh")]


def _specs_under(directory: str) -> list[str]:
    return [str(p) for p in sorted(Path(directory).rglob("*.coh"))]


def spec_pairs(args: argparse.Namespace) -> tuple[list[tuple[Side, Side]], str, str, bool]:
    """The (old, new) versions to compare, the two labels, and whether it is a set (a
    folder) rather than one spec."""
    from coherence.reports.command import display_path

    if args.rev and args.new:
        raise CoherenceError("give two specs, or one spec with --rev, not both")
    if not args.rev and not args.new:
        raise CoherenceError("give two specs (OLD NEW), or one spec and --rev GITREV")
    old_arg = args.old
    if args.rev and Path(old_arg).is_dir():
        base = display_path(old_arg)
        now = {display_path(p) for p in _specs_under(old_arg)}
        then = {display_path(p) for p in _git_specs(old_arg, args.rev)}
        pairs = []
        for path in sorted(now | then):
            old_text = git_show(path, args.rev) if path in then else None
            new_text = read_text(path) if path in now else None
            pairs.append((Side(path, f"{path}@{args.rev}", old_text), Side(path, path, new_text)))
        return pairs, f"{base}@{args.rev}", base, True
    if args.rev:
        path = display_path(old_arg)
        return (
            [(Side(path, f"{path}@{args.rev}", git_show(old_arg, args.rev)),
              Side(path, path, read_text(old_arg)))],
            f"{path}@{args.rev}",
            path,
            False,
        )  # fmt: skip
    old_dir, new_dir = Path(old_arg).is_dir(), Path(args.new).is_dir()
    if old_dir != new_dir:
        raise CoherenceError(
            "compare two spec files or two folders, not a file with a folder",
            "or one folder with --rev GITREV",
        )
    if old_dir:
        a = {Path(p).relative_to(old_arg).as_posix() for p in _specs_under(old_arg)}
        b = {Path(p).relative_to(args.new).as_posix() for p in _specs_under(args.new)}
        pairs = []
        for rel in sorted(a | b):
            op, np_ = (
                display_path(str(Path(old_arg) / rel)),
                display_path(str(Path(args.new) / rel)),
            )
            pairs.append(
                (
                    Side(np_, op, read_text(op) if rel in a else None),
                    Side(np_, np_, read_text(np_) if rel in b else None),
                )
            )
        return pairs, display_path(old_arg), display_path(args.new), True
    op, np_ = display_path(old_arg), display_path(args.new)
    return [(Side(op, op, read_text(old_arg)), Side(np_, np_, read_text(args.new)))], op, np_, False


def diff_pair(old: Side, new: Side, options: Any, selection: Any) -> SpecDiff:
    """Check both versions and compare them (a missing side: a new or a deleted spec)."""
    from coherence.compile import compile_text
    from coherence.plot import add_topology
    from coherence.suppress import front_end_only, triage

    empty_old = FileReport(old.path, ())
    empty_new = FileReport(new.path, ())
    old_report = check_text(old.path, old.text, options) if old.text is not None else empty_old
    new_report = check_text(new.path, new.text, options) if new.text is not None else empty_new
    both = add_topology(RunReport((old_report, new_report)))
    files = triage(both, selection, None, front_end_only).report.files
    before = compile_text(old.path, old.text).systems if old.text is not None else ()
    after = compile_text(new.path, new.text).systems if new.text is not None else ()
    status = "added" if old.text is None else "deleted" if new.text is None else "changed"
    return diff_files(files[0], files[1], old.label, new.label, relaxations(before, after), status)


def run_diff(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """``coherence diff OLD NEW`` / ``coherence diff SPEC|DIR --rev REV``; returns the exit
    code (1 on a regression or a relaxed objective)."""
    from coherence.pipeline import CheckOptions
    from coherence.reports.command import project_config, results_cache
    from coherence.suppress import Selection

    pairs, old_label, new_label, is_set = spec_pairs(args)
    config = project_config(args)
    options = CheckOptions(
        linear=config.linear and not args.no_linear,
        smt=config.smt and not args.no_smt,
        ticks=args.ticks or config.ticks,
        horizon=args.horizon or config.horizon,
        mode=config.mode or "auto",
        rlimit=args.rlimit or config.rlimit,
        cache=results_cache(args, config.cache),
    )
    selection = Selection(config.select, config.ignore)
    diffs = [diff_pair(old, new, options, selection) for old, new in pairs]
    color = {"auto": None, "always": True, "never": False}[args.color]
    if args.format == "json":
        doc = diff_set_json(diffs, old_label, new_label) if is_set else diff_json(diffs[0])
        stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    elif args.format == "markdown":
        stdout.write(diff_markdown(diffs, old_label, new_label))
    elif is_set:
        diff_set_text(diffs, stdout, color)
    else:
        diff_text(diffs[0], stdout, color)
    if args.exit_zero:
        return EXIT_OK
    flagged = any(d.regressions or d.relaxed for d in diffs)
    return EXIT_REGRESSION if flagged else EXIT_OK
