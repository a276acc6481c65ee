"""Which findings a run shows: code selection, inline suppressions and the baseline.

Takes the :class:`~coherence.results.RunReport` of the pipeline and returns a
:class:`Triaged` run: the same report with the deselected and suppressed findings taken out
(what the reports show and the exit code counts), and the suppressed findings listed beside
it with the reason (what JSON and SARIF list, SARIF as ``suppressions``).

Three filters, in this order:

1. ``select`` / ``ignore`` code prefixes (``"COH3"`` selects every COH3xx; the longest
   matching prefix decides, ``ignore`` winning a tie, as in ruff). Deselected findings are
   counted, not listed. COH100 (unreadable file) cannot be deselected.
2. inline suppressions: ``# coherence: ignore[COH401,COH505] reason`` at the end of the line
   of a finding, or on a line of its own just before it (several such lines may be stacked).
   The reason is required: a suppression without one is an error (COH220) and silences
   nothing; a suppression that silences nothing is a warning (COH221).
3. the baseline (:mod:`coherence.baseline`): findings whose fingerprint it lists.

>>> from coherence.results import RunReport
>>> triage(RunReport(())).report.files
()
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from coherence.baseline import Baseline
from coherence.diagnostics import REGISTRY, Diagnostic, sorted_diagnostics
from coherence.results import AnalysisResult, FileReport, Finding, RunReport, SystemReport
from coherence.source import Span

_DIRECTIVE = re.compile(r"coherence\s*:\s*ignore\b(?P<rest>.*)$")
_CODES = re.compile(r"\[(?P<codes>[^\]]*)\]")
_CODE = re.compile(r"^COH\d{0,3}$")
# codes whose findings come from the front end; every run can judge their suppressions
FRONT_END = ("COH1", "COH2")
UNSUPPRESSIBLE = ("COH100", "COH220", "COH221")


@dataclass(frozen=True, slots=True)
class Suppression:
    """One ``# coherence: ignore[...] reason`` comment."""

    span: Span  # the comment
    target: int  # the line whose findings it silences
    codes: tuple[str, ...]
    reason: str

    def matches(self, f: Finding) -> bool:
        return f.span.line == self.target and any(f.code.startswith(c) for c in self.codes)


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A finding that a suppression or the baseline silenced, and why."""

    finding: Finding
    kind: str  # "inSource" (an inline comment) | "external" (the baseline)
    justification: str
    location: Span | None = None  # the comment, for inline suppressions
    system: str = ""  # the system whose analysis found it ("" for front-end diagnostics)


@dataclass(frozen=True, slots=True)
class BaselineUse:
    path: str
    matched: int
    stale: int  # entries of the baseline that no finding matched: fixed since


@dataclass(frozen=True, slots=True)
class Triaged:
    """A run after selection and suppression: what is shown, and what was silenced."""

    report: RunReport
    suppressed: tuple[Suppressed, ...] = ()
    deselected: int = 0
    baseline: BaselineUse | None = None
    selection: Selection | None = None  # what was selected: verdicts follow their codes

    def deselected_code(self, code: str) -> bool:
        """Whether ``code`` was left out by ``select`` / ``ignore``."""
        return self.selection is not None and not self.selection.enabled(code)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.report.findings


def as_triaged(run: RunReport | Triaged) -> Triaged:
    return run if isinstance(run, Triaged) else Triaged(run)


# ---- parsing -------------------------------------------------------------------------------


def _comment_start(line: str) -> int:
    """The index of the ``#`` that starts a comment, skipping string literals; -1 if none."""
    in_string = False
    escaped = False
    for i, ch in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "#":
            return i
    return -1


def parse_suppressions(path: str, text: str) -> tuple[list[Suppression], list[Diagnostic]]:
    """The inline suppressions of a spec, and a COH220 error for each malformed one."""
    lines = text.splitlines()
    found: list[Suppression] = []
    errors: list[Diagnostic] = []
    pending: list[tuple[Span, tuple[str, ...], str]] = []  # own-line comments awaiting a line
    for number, line in enumerate(lines, start=1):
        start = _comment_start(line)
        code_part = line if start < 0 else line[:start]
        own_line = not code_part.strip()
        if start >= 0:
            m = _DIRECTIVE.search(line, start + 1)
            if m is not None and line[start + 1 : m.start()].strip() == "":
                span = Span(path, number, start + 1, number, len(line) + 1)
                parsed = _parse_directive(m.group("rest"), span)
                if isinstance(parsed, Diagnostic):
                    errors.append(parsed)
                elif own_line:
                    pending.append((span, *parsed))
                else:
                    found.append(Suppression(span, number, *parsed))
        if not own_line:
            found += [Suppression(sp, number, codes, why) for sp, codes, why in pending]
            pending = []
    # own-line suppressions at the end of the file silence nothing: reported as unused
    found += [Suppression(sp, sp.line + 1, codes, why) for sp, codes, why in pending]
    return found, errors


def _parse_directive(rest: str, span: Span) -> tuple[tuple[str, ...], str] | Diagnostic:
    m = _CODES.match(rest.lstrip())
    if m is None:
        return Diagnostic(
            "COH220",
            "this suppression names no codes",
            span,
            help="write `# coherence: ignore[COH505] why this finding is accepted`",
        )
    codes = tuple(c.strip().upper() for c in m.group("codes").split(",") if c.strip())
    bad = [c for c in codes if not _CODE.match(c)]
    reason = rest.lstrip()[m.end() :].strip().lstrip(":-—").strip()
    if not codes or bad:
        what = f"`{bad[0]}` is not a diagnostic code" if bad else "this suppression names no codes"
        return Diagnostic("COH220", what, span, help="codes look like `COH505` or `COH5`")
    if not any(ch.isalnum() for ch in reason):
        return Diagnostic(
            "COH220",
            f"the suppression of {', '.join(codes)} gives no reason",
            span,
            help=f"say why it is accepted: `# coherence: ignore[{','.join(codes)}] the reason`",
        )
    return codes, reason


# ---- selection -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """Code prefixes selected and ignored; the longest matching prefix decides."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def enabled(self, code: str) -> bool:
        if code == "COH100":
            return True
        sel = max((len(p) for p in self.select or ("COH",) if code.startswith(p)), default=-1)
        ign = max((len(p) for p in self.ignore if code.startswith(p)), default=-1)
        return sel >= 0 and sel > ign


def check_prefixes(prefixes: Iterable[str]) -> list[str]:
    """The prefixes that match no registered code (for configuration errors)."""
    return [p for p in prefixes if not any(code.startswith(p) for code in REGISTRY)]


# ---- triage --------------------------------------------------------------------------------


Judge = Callable[[str, FileReport], bool]


def front_end_only(code: str, fr: FileReport) -> bool:
    """Judge unused suppressions of front-end codes only (lint, partial runs)."""
    return code.startswith(FRONT_END)


def every_code(code: str, fr: FileReport) -> bool:
    """Judge every code where the file's systems were analysed without an internal error
    (complete runs); otherwise front-end codes only."""
    if code.startswith(FRONT_END):
        return True
    crashed = any(f.code == "COH903" for s in fr.systems for f in s.findings)
    return bool(fr.systems) and not crashed


class _Triage:
    def __init__(self, selection: Selection, baseline: Baseline | None, judge: Judge) -> None:
        self.selection = selection
        self.baseline = baseline
        self.remaining: Counter[str] = baseline.counter() if baseline else Counter()
        self.judge = judge
        self.suppressed: list[Suppressed] = []
        self.deselected = 0
        self.matched = 0

    def keep(
        self, f: Finding, inline: list[Suppression], used: set[tuple[int, str]], system: str = ""
    ) -> bool:
        if not self.selection.enabled(f.code):
            self.deselected += 1
            return False
        if f.code in UNSUPPRESSIBLE:
            return True
        for i, s in enumerate(inline):
            if s.matches(f):
                for c in s.codes:
                    if f.code.startswith(c):
                        used.add((i, c))
                self.suppressed.append(Suppressed(f, "inSource", s.reason, s.span, system))
                return False
        if self.remaining[f.fingerprint] > 0:
            self.remaining[f.fingerprint] -= 1
            self.matched += 1
            assert self.baseline is not None
            why = f"in baseline {self.baseline.path}"
            self.suppressed.append(Suppressed(f, "external", why, None, system))
            return False
        return True

    def file(self, fr: FileReport) -> FileReport:
        inline, errors = parse_suppressions(fr.path, fr.source_text)
        used: set[tuple[int, str]] = set()
        diagnostics = [
            d for d in fr.diagnostics if self.keep(Finding.from_diagnostic(d), inline, used)
        ]
        systems = tuple(self.system(s, inline, used) for s in fr.systems)
        new: list[Diagnostic] = list(errors)
        for i, s in enumerate(inline):
            for c in s.codes:
                if (i, c) in used or not self.selection.enabled(c.ljust(6, "0")):
                    continue
                if not self.judge(c, fr):
                    continue
                new.append(
                    Diagnostic(
                        "COH221",
                        f"this suppression of {c} silences nothing",
                        s.span,
                        notes=(f"no {c} finding starts on line {s.target}",),
                        help="remove it, or move it next to the finding it is meant for",
                    )
                )
        for d in new:
            if self.selection.enabled(d.code):
                diagnostics.append(d)
            else:
                self.deselected += 1
        return replace(fr, diagnostics=sorted_diagnostics(diagnostics), systems=systems)

    def system(
        self, s: SystemReport, inline: list[Suppression], used: set[tuple[int, str]]
    ) -> SystemReport:
        analyses = tuple(self.analysis(a, inline, used, s.name) for a in s.analyses)
        return replace(s, analyses=analyses)

    def analysis(
        self,
        a: AnalysisResult,
        inline: list[Suppression],
        used: set[tuple[int, str]],
        system: str,
    ) -> AnalysisResult:
        kept = tuple(f for f in a.findings if self.keep(f, inline, used, system))
        return a if len(kept) == len(a.findings) else replace(a, findings=kept)


def triage(
    report: RunReport,
    selection: Selection | None = None,
    baseline: Baseline | None = None,
    judge: Judge = every_code,
) -> Triaged:
    """Apply selection, inline suppressions and the baseline to a run.

    ``judge(code, file)`` says whether an unused suppression of ``code`` is worth a COH221
    warning: only when the run could have reported that code (see :func:`front_end_only`).
    """
    t = _Triage(selection or Selection(), baseline, judge)
    files = tuple(t.file(fr) for fr in report.files)
    use = None
    if baseline is not None:
        use = BaselineUse(baseline.path, t.matched, sum(t.remaining.values()))
    suppressed = tuple(sorted(t.suppressed, key=lambda s: s.finding.sort_key()))
    return Triaged(replace(report, files=files), suppressed, t.deselected, use, t.selection)
