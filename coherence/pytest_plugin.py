"""A pytest plugin: spec files as tests, one per requirement.

Registered through the ``pytest11`` entry point ``coherence``, so installing coherence makes
it available everywhere; collection is **opt-in**, so that a project's own test fixtures
(``*.coh`` files with deliberate errors) are not collected by accident::

    pytest --coherence specs/            # on the command line, or
    [tool.pytest.ini_options]
    coherence_specs = true               # in the project's configuration

Each spec file gives a ``diagnostics`` item and, per system, one item per requirement
(``specs/fleet.coh::fleet::require stable``). Items pass and fail by the same decision as
``coherence check`` (:mod:`coherence.policy`), with the project's ``fail-level``,
``unknown`` and ``baseline`` from ``[tool.coherence]`` and the spec's inline suppressions:

- ``diagnostics`` fails on front-end findings that the policy fails (errors, at the default
  fail level) and that no inline suppression or baseline entry silences;
- a requirement fails when an analysis or the simulator falsifies it (the failure shows the
  finding and its trace), unless every finding that decides it is suppressed or baselined:
  then it is an expected failure (``xfailed``: ``falsified (suppressed)``);
- an unknown requirement fails under ``unknown = "fail"`` (or ``--coherence-unknown fail``),
  and under ``warn`` at ``fail-level = "warning"``; otherwise it is skipped with the solver's
  reason (never passed);
- it is skipped when nothing in this install can decide it.

The analyses run once per system, with the options of ``[tool.coherence]`` (ticks, horizon,
rlimit, mode, linear, smt); ``--coherence-analyses simulate,linear`` or the ini option
``coherence_analyses`` choose them.

The engine is imported only when a spec file is collected, so the plugin costs nothing in
test runs that do not use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from coherence.baseline import Baseline
    from coherence.ir.nodes import Requirement, TransitionSystem
    from coherence.pipeline import CheckOptions
    from coherence.policy import Decision, Policy
    from coherence.results import FileReport, SystemReport
    from coherence.source import SourceFile
    from coherence.strategies import RequirementOutcome

ANALYSES = ("simulate", "linear", "smt")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("coherence", "coherence spec files")
    group.addoption(
        "--coherence",
        action="store_true",
        default=False,
        help="collect *.coh spec files as tests: one per requirement",
    )
    group.addoption(
        "--coherence-analyses",
        default=None,
        metavar="NAMES",
        help="analyses for spec tests, comma-separated: simulate,linear,smt (default: all)",
    )
    group.addoption(
        "--coherence-unknown",
        default=None,
        choices=("fail", "warn", "ignore"),
        help="what an unknown requirement does: fail it, or skip it with the reason (warn, the "
        "default, fails at fail-level warning; ignore never fails). Default: `unknown` in "
        "[tool.coherence], else warn",
    )
    parser.addini(
        "coherence_specs", "collect *.coh spec files as tests (like --coherence)", type="bool"
    )
    parser.addini(
        "coherence_unknown",
        "what an unknown requirement does: fail | warn | ignore (like --coherence-unknown)",
        default="",
    )
    parser.addini(
        "coherence_analyses",
        "analyses for spec tests: simulate linear smt (default: all available)",
        type="args",
    )


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("coherence") or config.getini("coherence_specs"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SpecFile | None:
    if file_path.suffix == ".coh" and _enabled(parent.config):
        spec: SpecFile = SpecFile.from_parent(parent, path=file_path)
        return spec
    return None


def _options(config: pytest.Config) -> CheckOptions:
    from coherence.config import load_config
    from coherence.pipeline import CheckOptions

    project = load_config(start=Path(str(config.rootpath)))
    chosen = config.getoption("coherence_analyses")
    names = (
        [n.strip() for n in chosen.split(",") if n.strip()]
        if chosen
        else list(config.getini("coherence_analyses") or ANALYSES)
    )
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        raise pytest.UsageError(
            f"unknown coherence analysis `{unknown[0]}`: choose from {', '.join(ANALYSES)}"
        )
    from coherence.cache import cache_dir, results_disabled

    return CheckOptions(
        simulate="simulate" in names,
        linear="linear" in names and project.linear,
        smt="smt" in names and project.smt,
        ticks=project.ticks,
        horizon=project.horizon,
        mode=project.mode or "auto",
        rlimit=project.rlimit,
        # spec files are checked as `coherence check` checks them: through the results cache
        cache=cache_dir() if project.cache and not results_disabled() else None,
    )


def _policy(config: pytest.Config) -> tuple[Policy, Baseline | None]:
    """The project's policy and baseline: what ``coherence check`` run at the rootdir uses."""
    from coherence.baseline import load_baseline
    from coherence.config import load_config
    from coherence.diagnostics import CoherenceError
    from coherence.policy import UNKNOWN_CHOICES, Policy

    project = load_config(start=Path(str(config.rootpath)))
    unknown = config.getoption("coherence_unknown") or config.getini("coherence_unknown")
    if unknown and unknown not in UNKNOWN_CHOICES:
        raise pytest.UsageError(
            f"coherence_unknown = {unknown}: choose from {', '.join(UNKNOWN_CHOICES)}"
        )
    policy = Policy.parse(project.fail_level, unknown or project.unknown)
    try:
        baseline = load_baseline(project.baseline) if project.baseline else None
    except CoherenceError as e:
        raise pytest.UsageError(e.message) from None
    return policy, baseline


_POLICY = pytest.StashKey[tuple["Policy", "Baseline | None"]]()


def decide_file(config: pytest.Config, fr: FileReport) -> Decision:
    """One spec file's report as ``coherence check`` would decide it: inline suppressions,
    the baseline, ``fail-level`` and ``unknown``."""
    from coherence.policy import decide
    from coherence.results import RunReport
    from coherence.suppress import front_end_only, triage

    if _POLICY not in config.stash:
        config.stash[_POLICY] = _policy(config)
    policy, baseline = config.stash[_POLICY]
    return decide(triage(RunReport((fr,)), None, baseline, front_end_only), policy)


class SpecFailure(Exception):
    """Raised by spec items; carries the text shown as the failure."""


class SpecFile(pytest.File):
    """A ``*.coh`` file: its diagnostics, then one collector per system."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from coherence.compile import compile_source, read_source
        from coherence.diagnostics import Diagnostic
        from coherence.source import SourceFile

        src = read_source(self.path)
        if isinstance(src, Diagnostic):
            yield DiagnosticsItem.from_parent(self, name="diagnostics", diagnostics=(src,))
            return
        try:  # findings name the spec as the project does: relative to the rootdir
            shown = self.path.relative_to(self.config.rootpath).as_posix()
        except ValueError:
            shown = str(self.path)
        result = compile_source(SourceFile(shown, src.text))
        yield DiagnosticsItem.from_parent(
            self, name="diagnostics", diagnostics=result.diagnostics, source=result.source
        )
        for ts in result.systems:
            yield SystemCollector.from_parent(self, name=ts.name, ts=ts, source=result.source)


class _SpecItem(pytest.Item):
    """An item whose failures are spec findings: shown as text, without a Python traceback."""

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, SpecFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))


class DiagnosticsItem(_SpecItem):
    def __init__(
        self, *, diagnostics: tuple[Any, ...], source: SourceFile | None = None, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.diagnostics = diagnostics
        self.source = source

    def runtest(self) -> None:
        from coherence.policy import Disposition
        from coherence.reports._common import finding_text
        from coherence.results import FileReport

        text = self.source.text if self.source is not None else ""
        path = self.source.path if self.source is not None else str(self.path)
        decision = decide_file(self.config, FileReport(path, self.diagnostics, (), text))
        failing = [d.finding for d in decision.findings if d.outcome == Disposition.FAIL]
        if failing:
            raise SpecFailure("\n\n".join(finding_text(f, self.source) for f in failing))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.name}: diagnostics"


class SystemCollector(pytest.Collector):
    """One system of a spec: its requirements; the analyses run once, on first use."""

    def __init__(self, *, ts: TransitionSystem, source: SourceFile, **kw: Any) -> None:
        super().__init__(**kw)
        self.ts = ts
        self.source = source
        self._report: SystemReport | None = None

    def report(self) -> SystemReport:
        if self._report is None:
            from coherence.strategies import evaluate

            self._report = evaluate(self.ts, _options(self.config))
        return self._report

    def collect(self) -> Iterator[pytest.Item]:
        for req in self.ts.requirements:
            yield RequirementItem.from_parent(self, name=req.text, requirement=req)


class RequirementItem(_SpecItem):
    def __init__(self, *, requirement: Requirement, **kw: Any) -> None:
        super().__init__(**kw)
        self.requirement = requirement

    @property
    def system(self) -> SystemCollector:
        parent = self.parent
        assert isinstance(parent, SystemCollector)
        return parent

    def outcome(self) -> RequirementOutcome:
        from coherence.strategies import requirement_outcome

        return requirement_outcome(self.system.ts, self.requirement, self.system.report())

    def decision(self, o: RequirementOutcome) -> Decision:
        """The system's report, with the simulator's counterexample for this requirement as
        one more falsified verdict, decided as ``coherence check`` decides it."""
        from dataclasses import replace

        from coherence.results import AnalysisResult, FileReport, Status, Verdict

        report = self.system.report()
        extra = tuple(f for f in o.findings if f.key.startswith("simulation:"))
        if extra:
            req = self.requirement
            verdict = Verdict(
                req.text,
                req.kind,
                Status.FALSIFIED,
                req.span,
                "simulation",
                codes=tuple(f.code for f in extra),
            )
            replay = AnalysisResult("simulation", extra, (verdict,))
            report = replace(report, analyses=(*report.analyses, replay))
        source = self.system.source
        return decide_file(self.config, FileReport(source.path, (), (report,), source.text))

    def runtest(self) -> None:
        from coherence.policy import Disposition
        from coherence.results import Status
        from coherence.strategies import _matches, explain

        o = self.outcome()
        decision = self.decision(o)
        mine = [
            d
            for d in decision.verdicts
            if _matches(d.verdict, self.requirement) and d.verdict.status != Status.SKIPPED
        ]
        policy = decision.policy.describe()
        if any(d.outcome == Disposition.FAIL for d in mine):
            raise SpecFailure(f"{explain(o, self.system.source)}\n[{policy}]")
        unknown = [d for d in mine if d.verdict.status == Status.UNKNOWN and not d.outcome.accepted]
        if unknown:  # not a pass, not a failure under this policy
            reasons = "; ".join(d.verdict.reason for d in unknown if d.verdict.reason)
            label = unknown[0].label
            pytest.skip(
                f"{o.requirement}: {label}" + (f": {reasons}" if reasons else "") + f" [{policy}]"
            )
        accepted = [d for d in mine if d.outcome.accepted]
        if accepted:
            pytest.xfail(f"{o.requirement}: {accepted[0].label}")
        if o.status == Status.SKIPPED:
            pytest.skip(f"{o.requirement}: {o.reason}")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.requirement.span.line
        return self.path, line - 1 if line > 0 else None, f"{self.system.name}: {self.name}"
