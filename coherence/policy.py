"""The policy: one decision on a run, from which every output derives.

Takes a :class:`~coherence.suppress.Triaged` run (after code selection, inline suppressions
and the baseline) and a :class:`Policy` (``--fail-level``, ``--unknown``) and returns a
:class:`Decision`: per finding whether it fails, warns, is ignored, suppressed or baselined;
per requirement verdict its outcome and the status the reports show
(``falsified (suppressed)``); per system its control-coherence verdict and the sentence that
explains it; the counts; and whether the run failed. The exit code, the text and Markdown
summaries, JSON ``summary``, SARIF levels, JUnit failures and skips, GitHub annotations and
the pytest plugin all read this one object; no renderer decides anything itself.

The rules (docs/ci.md, "Exit codes"):

- A finding that is shown fails the run when its level is at or above the fail level. An
  unknown (COH901) takes its level from ``--unknown``: ``fail`` makes it an error that fails
  whatever the fail level, ``warn`` (the default) a warning, which fails only at
  ``--fail-level warning`` or ``note``, ``ignore`` a note that never fails.
- A falsified requirement fails the run, unless every finding that decides it was suppressed,
  baselined or deselected: then it is *accepted* and shown as ``falsified (suppressed)``.
- An unknown requirement follows ``--unknown`` as its COH901 does; it is never shown as a pass.
- The run fails when anything fails.

>>> from coherence.results import RunReport
>>> from coherence.suppress import triage
>>> decide(triage(RunReport(()))).result
'passed'
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from coherence.diagnostics import Severity
from coherence.results import (
    Coherence,
    FileReport,
    Finding,
    RunReport,
    Status,
    SystemReport,
    Table,
    Verdict,
    judge_coherence,
)
from coherence.suppress import Suppressed, Triaged

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
# findings that say "the solver could not decide": what --unknown governs
UNKNOWN_CODES = ("COH901",)
# the table whose cells a conflict finding decides (coherence.formal.findings.matrix): a row per
# acting loop, a column per affected loop. A COH401 is keyed "conflict:ACTOR" with the loops
# it works against in its data ("affects"); "conflict:ACTOR->AFFECTED" names one cell.
ALIGNMENT_TABLE = "Objective alignment"
_CELL_KEYS = ("conflict:", "unknown:conflict:")


class Unknown(enum.Enum):
    """What an unknown verdict does to the run (``--unknown``)."""

    FAIL = "fail"  # fails the run, whatever the fail level
    WARN = "warn"  # a warning: shown as unknown, fails only where warnings fail
    IGNORE = "ignore"  # left out of the decision: shown as unknown, never fails

    @property
    def level(self) -> Severity:
        """The level an unknown finding is shown at."""
        return {
            Unknown.FAIL: Severity.ERROR,
            Unknown.WARN: Severity.WARNING,
            Unknown.IGNORE: Severity.NOTE,
        }[self]


UNKNOWN_CHOICES = tuple(u.value for u in Unknown)
UNKNOWN_HELP = (
    "what an unknown verdict (the solver could not decide; COH901) does to the run: `fail` "
    "fails it; `warn`, the default, shows it as a warning that fails only at --fail-level "
    "warning or note; `ignore` leaves it out of the decision. Unknown is never shown as a "
    "pass (config `unknown`)"
)


@dataclass(frozen=True, slots=True)
class Policy:
    """How a run is judged: ``--fail-level`` and ``--unknown``."""

    fail_level: Severity = Severity.ERROR
    unknown: Unknown = Unknown.WARN

    @staticmethod
    def parse(fail_level: str = "error", unknown: str = "warn") -> Policy:
        return Policy(Severity.parse(fail_level), Unknown(unknown.lower()))

    def describe(self) -> str:
        return f"--fail-level {self.fail_level} --unknown {self.unknown.value}"


class Disposition(enum.Enum):
    """What one finding or verdict does to the run."""

    PASS = "pass"  # a verdict: proved, or holds
    FAIL = "fail"  # fails the run
    WARN = "warn"  # shown; does not fail (below the fail level, or an unknown under `warn`)
    IGNORED = "ignored"  # an unknown left out of the decision (`--unknown ignore`)
    SUPPRESSED = "suppressed"  # silenced by an inline `# coherence: ignore[CODE] reason`
    BASELINED = "baselined"  # a known finding listed in the baseline
    DESELECTED = "deselected"  # a verdict whose deciding codes `select`/`ignore` left out
    SKIPPED = "skipped"  # a verdict: not checked in this run

    @property
    def accepted(self) -> bool:
        """Out of the decision because the project accepted it (a falsified or unknown
        verdict whose deciding findings were all silenced)."""
        return self in (Disposition.SUPPRESSED, Disposition.BASELINED, Disposition.DESELECTED)


@dataclass(frozen=True, slots=True)
class FindingDecision:
    finding: Finding  # as shown: an unknown's severity is the policy's
    outcome: Disposition
    system: str = ""


@dataclass(frozen=True, slots=True)
class VerdictDecision:
    path: str
    system: str
    verdict: Verdict
    outcome: Disposition
    evidence: tuple[Finding, ...] = ()  # the shown findings whose codes the verdict names

    @property
    def label(self) -> str:
        """The status as every report shows it: ``falsified (suppressed)``, ``unknown``."""
        status = self.verdict.status.value
        if self.outcome.accepted or self.outcome == Disposition.IGNORED:
            return f"{status} ({self.outcome.value})"
        return status

    @property
    def passed(self) -> bool:
        return self.outcome == Disposition.PASS


@dataclass(frozen=True, slots=True)
class SystemDecision:
    path: str
    name: str
    coherence: Coherence
    explanation: str  # one sentence: what decided the verdict
    cells: tuple[tuple[str, str, str, str], ...] = ()  # (table, row, column, "suppressed")


@dataclass(frozen=True, slots=True)
class Counts:
    errors: int = 0  # shown findings, by the level they are shown at
    warnings: int = 0
    notes: int = 0
    suppressed: int = 0  # inline
    baselined: int = 0
    failing_findings: int = 0
    failing_verdicts: int = 0
    falsified: int = 0  # falsified verdicts that count (not accepted)
    unknown: int = 0  # unknown verdicts that count (not accepted)
    accepted: int = 0  # falsified or unknown verdicts out of the decision (silenced)


@dataclass(frozen=True, slots=True)
class Decision:
    """The run and what the policy made of it: handed to every renderer."""

    run: Triaged  # the run as shown: unknown findings at the policy's level
    policy: Policy
    findings: tuple[FindingDecision, ...]  # shown findings, then silenced ones
    verdicts: tuple[VerdictDecision, ...]
    systems: tuple[SystemDecision, ...]
    counts: Counts
    _findings: Mapping[tuple[object, ...], FindingDecision] = field(
        default_factory=dict, repr=False, compare=False
    )
    _verdicts: Mapping[tuple[str, str, Verdict], VerdictDecision] = field(
        default_factory=dict, repr=False, compare=False
    )
    _systems: Mapping[tuple[str, str], SystemDecision] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def report(self) -> RunReport:
        return self.run.report

    @property
    def failed(self) -> bool:
        return bool(self.counts.failing_findings or self.counts.failing_verdicts)

    @property
    def result(self) -> str:
        """``failed``; ``inconclusive`` (nothing fails, but a verdict is unknown and the
        policy does not ignore it: never called a pass); or ``passed``."""
        if self.failed:
            return "failed"
        if self.counts.unknown and self.policy.unknown != Unknown.IGNORE:
            return "inconclusive"
        return "passed"

    def finding(self, f: Finding) -> FindingDecision:
        """The decision on a finding that is shown (from :attr:`run`)."""
        return self._findings[_key(f)]

    def silenced(self, s: Suppressed) -> FindingDecision:
        return FindingDecision(s.finding, _silenced(s), s.system)

    def verdict(self, s: SystemReport, v: Verdict) -> VerdictDecision:
        return self._verdicts[(s.path, s.name, v)]

    def system(self, s: SystemReport) -> SystemDecision:
        return self._systems[(s.path, s.name)]

    def table(self, s: SystemReport, t: Table) -> Table:
        """``t`` with the cells that a silenced finding decided marked as such."""
        marks = {(r, c): note for title, r, c, note in self.system(s).cells if title == t.title}
        if not marks:
            return t
        rows = []
        for row in t.rows:
            cells = list(row)
            for j, column in enumerate(t.columns[1:], start=1):
                note = marks.get((str(row[0]), column))
                if note is not None and isinstance(cells[j], str):
                    text = str(cells[j])
                    cells[j] = f"{text[:-1]}; {note})" if text.endswith(")") else f"{text} ({note})"
            rows.append(tuple(cells))
        return replace(t, rows=tuple(rows))

    def exit_code(self, exit_zero: bool = False) -> int:
        """2 when a spec could not be read (COH100); 0 with ``--exit-zero``; 1 when the run
        failed; else 0."""
        if any(f.code == "COH100" for f in self.report.findings):
            return EXIT_ERROR
        if exit_zero:
            return EXIT_OK
        return EXIT_FINDINGS if self.failed else EXIT_OK


def _key(f: Finding) -> tuple[object, ...]:
    # content, not identity: a file's diagnostics become new Finding objects on every access
    return (f.code, f.span, f.message, f.key)


def _silenced(s: Suppressed) -> Disposition:
    return Disposition.SUPPRESSED if s.kind == "inSource" else Disposition.BASELINED


def _unknown(code: str) -> bool:
    return code in UNKNOWN_CODES


def _finding_outcome(f: Finding, policy: Policy) -> Disposition:
    if _unknown(f.code) and policy.unknown == Unknown.IGNORE:
        return Disposition.IGNORED
    return Disposition.FAIL if f.level >= policy.fail_level else Disposition.WARN


def _shown_at(f: Finding, policy: Policy) -> Finding:
    """An unknown finding at the level the policy gives it; any other finding as it is."""
    if _unknown(f.code) and f.level != policy.unknown.level:
        return replace(f, severity=policy.unknown.level)
    return f


def _named(v: Verdict, findings: Sequence[Finding]) -> list[Finding]:
    """The findings of the verdict's system whose codes it names; those on the verdict's own
    line when there are any (each bounded requirement's violation sits on its line)."""
    named = [f for f in findings if f.code in v.codes]
    here = [f for f in named if (f.span.path, f.span.line) == (v.span.path, v.span.line)]
    return here or named


def _deciding_codes(v: Verdict) -> tuple[str, ...]:
    if v.status == Status.UNKNOWN:
        return tuple(c for c in v.codes if _unknown(c))
    return tuple(c for c in v.codes if not c.startswith("COH9"))


def _deciding(v: Verdict, findings: Sequence[Finding]) -> list[Finding]:
    """The findings that decide a falsified or unknown verdict: its COH901 for an unknown;
    for a falsified one, the most severe of the others it names (a warning that rides along
    with an error does not keep the verdict falsified once the error is silenced). Levels
    are the analyses' own: ``findings`` are taken before the policy sets an unknown's."""
    codes = _deciding_codes(v)
    mine = [f for f in _named(v, findings) if f.code in codes]
    if v.status == Status.FALSIFIED and mine:
        top = max(f.level for f in mine)
        mine = [f for f in mine if f.level == top]
    return mine


def _verdict_outcome(
    v: Verdict,
    shown: Sequence[Finding],
    silenced: Sequence[Suppressed],
    run: Triaged,
    policy: Policy,
) -> Disposition:
    if v.status.passed:
        return Disposition.PASS
    if v.status == Status.SKIPPED:
        return Disposition.SKIPPED
    every = [*shown, *(s.finding for s in silenced)]
    deciding = _deciding(v, every)
    if deciding:
        live = [f for f in deciding if any(f is g for g in shown)]
        if not live:
            kinds = {_silenced(s) for s in silenced if any(s.finding is f for f in deciding)}
            return (
                Disposition.BASELINED
                if kinds == {Disposition.BASELINED}
                else Disposition.SUPPRESSED
            )
    else:
        codes = _deciding_codes(v)
        if codes and all(run.deselected_code(c) for c in codes):
            return Disposition.DESELECTED
    if v.status == Status.FALSIFIED:
        return Disposition.FAIL
    # unknown: as its COH901 would be
    if policy.unknown == Unknown.IGNORE:
        return Disposition.IGNORED
    return Disposition.FAIL if policy.unknown.level >= policy.fail_level else Disposition.WARN


def _cells(silenced: Iterable[Suppressed]) -> tuple[tuple[str, str, str, str], ...]:
    """The alignment-table cells that silenced conflict findings decided."""
    out = []
    for s in silenced:
        key = s.finding.key
        prefix = next((p for p in _CELL_KEYS if key.startswith(p)), None)
        if prefix is None:
            continue
        actor, arrow, affected = key[len(prefix) :].partition("->")
        if arrow:
            targets: tuple[str, ...] = (affected,)
        else:
            affects = dict(s.finding.data).get("affects", ())
            targets = tuple(str(a) for a in affects) if isinstance(affects, tuple | list) else ()
        out += [(ALIGNMENT_TABLE, actor, t, _silenced(s).value) for t in targets]
    return tuple(sorted(set(out)))


def _explain(
    shown: Sequence[Finding],
    counted: Sequence[Verdict],
    silenced: Sequence[Suppressed],
    accepted: Sequence[VerdictDecision],
) -> tuple[Coherence, str]:
    coherence, sentence = judge_coherence(shown, counted)
    left_out = [f"{x.finding.code} ({x.finding.key or x.finding.message})" for x in silenced]
    left_out += [f"`{d.verdict.requirement}` {d.label}" for d in accepted]
    if left_out:
        more = f" and {len(left_out) - 3} more" if len(left_out) > 3 else ""
        sentence += f" (not counted: {', '.join(left_out[:3])}{more})"
    return coherence, sentence


def decide(run: Triaged, policy: Policy | None = None) -> Decision:
    """Judge a triaged run once; every output renders the result.

    >>> from coherence.results import RunReport
    >>> from coherence.suppress import triage
    >>> d = decide(triage(RunReport(())), Policy.parse("warning", "fail"))
    >>> (d.failed, d.exit_code(), d.policy.describe())
    (False, 0, '--fail-level warning --unknown fail')
    """
    policy = policy or Policy()
    silenced_by_system: dict[tuple[str, str], list[Suppressed]] = {}
    for sup in run.suppressed:
        silenced_by_system.setdefault((sup.finding.span.path, sup.system), []).append(sup)

    finding_decisions: list[FindingDecision] = []
    verdict_decisions: list[VerdictDecision] = []
    system_decisions: list[SystemDecision] = []
    files: list[FileReport] = []
    for fr in run.report.files:
        for d in fr.diagnostics:
            f = Finding.from_diagnostic(d)
            finding_decisions.append(FindingDecision(f, _finding_outcome(f, policy)))
        systems = []
        for s in fr.systems:
            shown = s.findings  # at the levels the analyses gave them
            silenced = silenced_by_system.get((fr.path, s.name), [])
            analyses = tuple(
                replace(a, findings=tuple(_shown_at(f, policy) for f in a.findings))
                for a in s.analyses
            )
            as_shown = replace(s, analyses=analyses)
            decisions = [
                VerdictDecision(
                    s.path,
                    s.name,
                    v,
                    _verdict_outcome(v, shown, silenced, run, policy),
                    tuple(_named(v, as_shown.findings)),
                )
                for v in s.verdicts
            ]
            verdict_decisions += decisions
            accepted = [d for d in decisions if d.outcome.accepted]
            counted = [d.verdict for d in decisions if not d.outcome.accepted]
            coherence, sentence = _explain(shown, counted, silenced, accepted)
            system_decisions.append(
                SystemDecision(s.path, s.name, coherence, sentence, _cells(silenced))
            )
            finding_decisions += [
                FindingDecision(f, _finding_outcome(f, policy), s.name) for f in as_shown.findings
            ]
            systems.append(as_shown)
        files.append(replace(fr, systems=tuple(systems)))
    shown_run = replace(
        run,
        report=replace(run.report, files=tuple(files)),
        suppressed=tuple(replace(x, finding=_shown_at(x.finding, policy)) for x in run.suppressed),
    )
    counts = _count(shown_run, finding_decisions, verdict_decisions)
    return Decision(
        shown_run,
        policy,
        (
            *finding_decisions,
            *(FindingDecision(x.finding, _silenced(x), x.system) for x in shown_run.suppressed),
        ),
        tuple(verdict_decisions),
        tuple(system_decisions),
        counts,
        {_key(d.finding): d for d in finding_decisions},
        {(d.path, d.system, d.verdict): d for d in verdict_decisions},
        {(d.path, d.name): d for d in system_decisions},
    )


def _count(
    run: Triaged, findings: Sequence[FindingDecision], verdicts: Sequence[VerdictDecision]
) -> Counts:
    levels = [d.finding.level for d in findings]
    return Counts(
        errors=levels.count(Severity.ERROR),
        warnings=levels.count(Severity.WARNING),
        notes=levels.count(Severity.NOTE),
        suppressed=sum(1 for s in run.suppressed if s.kind == "inSource"),
        baselined=sum(1 for s in run.suppressed if s.kind != "inSource"),
        failing_findings=sum(1 for d in findings if d.outcome == Disposition.FAIL),
        failing_verdicts=sum(1 for d in verdicts if d.outcome == Disposition.FAIL),
        falsified=sum(
            1 for d in verdicts if d.verdict.status == Status.FALSIFIED and not d.outcome.accepted
        ),
        unknown=sum(
            1 for d in verdicts if d.verdict.status == Status.UNKNOWN and not d.outcome.accepted
        ),
        accepted=sum(1 for d in verdicts if d.outcome.accepted),
    )
