"""Runtime drift between two versions of a spec: ``coherence diff OLD NEW``.

Both versions are checked with the same options (and the project's selection and inline
suppressions); then, system by system (paired by name):

- **verdicts** that changed status; a *regression* when a requirement that passed
  (proved, holds) becomes unknown or falsified, or an unknown one becomes falsified;
- **numbers** that moved: every numeric leaf of every analysis's ``data`` (nested mappings
  and lists flattened to ``key.sub[0]``), and the numeric cells of every table, matched by
  analysis and title, rows by their first column (or all their text cells when the first
  column repeats); tables' rows that appeared or went away;
- **findings** that appeared or went away, matched by fingerprint (line-independent; the old
  file's findings are fingerprinted as if at the new path); a new error is a regression.

``coherence diff SPEC --rev GITREV`` compares ``git show GITREV:SPEC`` with the working copy.
Exit code 1 on a regression (unless ``--exit-zero``), 0 otherwise, 2 on errors. Nothing here
knows any particular analysis: data keys and tables are compared generically.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from coherence.diagnostics import CoherenceError, Diagnostic, Severity
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
class SpecDiff:
    old: str  # labels: "specs/a.coh@HEAD~1", "specs/a.coh"
    new: str
    systems_added: tuple[str, ...]
    systems_removed: tuple[str, ...]
    coherence: tuple[tuple[str, str, str], ...]  # (system, old, new) where it changed
    verdicts: tuple[VerdictChange, ...]
    numbers: tuple[NumberChange, ...]
    findings: tuple[FindingChange, ...]

    @property
    def regressions(self) -> int:
        return sum(v.regression for v in self.verdicts) + sum(f.regression for f in self.findings)

    @property
    def changed(self) -> bool:
        return bool(
            self.systems_added
            or self.systems_removed
            or self.coherence
            or self.verdicts
            or self.numbers
            or self.findings
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


def _number_changes(old: SystemReport, new: SystemReport) -> list[NumberChange]:
    from coherence.reports._common import jsonable

    changes: list[NumberChange] = []
    old_by = {a.analysis: a for a in old.analyses}
    for b in new.analyses:
        a = old_by.get(b.analysis)
        if a is None:
            continue
        x, y = flatten(jsonable(dict(a.data))), flatten(jsonable(dict(b.data)))
        for key in sorted(x.keys() | y.keys()):
            if key not in x or key not in y or not _same(x[key], y[key]):
                changes.append(NumberChange(new.name, b.analysis, key, x.get(key), y.get(key)))
        tables_a = {t.title: t for t in a.tables}
        for t in b.tables:
            if t.title in tables_a:
                changes += _table_changes(new.name, b.analysis, tables_a[t.title], t)
    return changes


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


def diff_files(old: FileReport, new: FileReport, old_label: str, new_label: str) -> SpecDiff:
    """Compare the checked old and new versions of one spec file."""
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
    )


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
    text = f"{n.analysis}: {n.key}: {_fmt(n.old)} -> {_fmt(n.new)}"
    d, r = n.delta, n.relative
    if d is not None:
        text += f" ({d:+.4g}" + (f", {r:+.1%}" if r is not None else "") + ")"
    return text


def _finding_line(c: FindingChange) -> str:
    f = c.finding
    s = f.span
    mark = "+" if c.change == "appeared" else "-"
    return f"{mark} {f.level}[{f.code}] {s.path}:{s.line}:{s.column}: {f.message}"


def diff_text(d: SpecDiff, stream: TextIO, color: bool | None = None) -> None:
    from rich.text import Text

    from coherence.reports.text import make_console

    console = make_console(stream, color)
    console.print(Text(f"coherence diff: {d.old} -> {d.new}", style="bold"))
    if not d.changed:
        console.print(Text("no change in verdicts, numbers or findings"))
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
            console.print(Text(line + ("  REGRESSION" if v.regression else ""), style=style))
    if d.numbers:
        console.print(Text("numbers", style="bold"))
        for n in d.numbers:
            console.print(Text(f"  {n.system}: {_number_line(n)}"), soft_wrap=True)
    if d.findings:
        console.print(Text("findings", style="bold"))
        for c in d.findings:
            line = "  " + _finding_line(c) + ("  REGRESSION" if c.regression else "")
            console.print(Text(line, style="bold red" if c.regression else ""), soft_wrap=True)
    count = d.regressions
    verdict = f"{count} regression{'s' if count != 1 else ''}" if count else "no regression"
    console.print(Text(f"result: {verdict}", style="bold red" if count else "bold green"))


def diff_json(d: SpecDiff) -> dict[str, Any]:
    from coherence.reports._common import jsonable
    from coherence.reports.json import finding_json

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "diff",
        "old": d.old,
        "new": d.new,
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
    }


# ---- the command ---------------------------------------------------------------------------


def run_diff(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """``coherence diff OLD NEW`` / ``coherence diff SPEC --rev REV``; returns the exit code."""
    from coherence.pipeline import CheckOptions
    from coherence.plot import add_topology
    from coherence.reports.command import display_path, project_config, results_cache
    from coherence.suppress import Selection, front_end_only, triage

    if args.rev and args.new:
        raise CoherenceError("give two specs, or one spec with --rev, not both")
    if not args.rev and not args.new:
        raise CoherenceError("give two specs (OLD NEW), or one spec and --rev GITREV")
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
    if args.rev:
        path = display_path(args.old)
        old_text, old_label = git_show(args.old, args.rev), f"{path}@{args.rev}"
        new_path, new_label = path, path
        old_path = path
    else:
        old_path, new_path = display_path(args.old), display_path(args.new)
        old_text, old_label, new_label = read_text(args.old), old_path, new_path
    new_text = read_text(args.new or args.old)
    old_report = check_text(old_path, old_text, options)
    new_report = check_text(new_path, new_text, options)
    both = add_topology(RunReport((old_report, new_report)))
    selection = Selection(config.select, config.ignore)
    triaged = triage(both, selection, None, front_end_only).report.files
    d = diff_files(triaged[0], triaged[1], old_label, new_label)
    if args.format == "json":
        stdout.write(json.dumps(diff_json(d), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    else:
        color = {"auto": None, "always": True, "never": False}[args.color]
        diff_text(d, stdout, color)
    if args.exit_zero:
        return EXIT_OK
    return EXIT_REGRESSION if d.regressions else EXIT_OK
