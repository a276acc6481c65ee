"""Reports: render a run; they never compute.

Every format renders the same :class:`~coherence.policy.Decision`: the
:class:`~coherence.suppress.Triaged` run (a :class:`~coherence.results.RunReport` after
selection and suppression, with the suppressed findings beside it) together with what the
policy (``--fail-level``, ``--unknown``) made of each finding, verdict and system. No format
decides anything itself: which findings fail, how a verdict is shown (``falsified
(suppressed)``), each system's coherence and the run's result come from the decision, so that
the exit code and every format agree. Formats know nothing about any particular analysis:
findings, verdicts, tables, traces and data are rendered generically.

=========  =====================================================================
text       the terminal report (Rich; plain when NO_COLOR is set or not a TTY)
json       versioned JSON, schema in ``coherence/schemas/report-1.schema.json``
sarif      SARIF 2.1.0 for code scanning (GitHub, VS Code SARIF viewer)
junit      JUnit XML: a test case per requirement verdict and per file's findings
github     GitHub Actions workflow commands (``::error file=...``)
markdown   a summary for a CI job page, with the coupling graph in Mermaid
gitlab     GitLab Code Quality JSON, schema in ``coherence/schemas/``
=========  =====================================================================

>>> sorted(FORMATS)
['github', 'gitlab', 'json', 'junit', 'markdown', 'sarif', 'text']
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol, TextIO

from coherence.policy import Decision, Policy, decide
from coherence.results import RunReport
from coherence.suppress import Triaged, as_triaged


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How to render: the same for every format (each uses what applies to it)."""

    verbose: bool = False
    color: bool | None = None  # None: auto (NO_COLOR, TTY)
    width: int | None = None
    lint: bool = False  # a `coherence lint` run: front-end diagnostics only
    quiet: bool = False  # text: one line per system (the verdict and why)
    streamed: bool = False  # text: each spec's part was printed as it was checked
    limit: int | None = None  # markdown: the most bytes it may take (None: just under 1 MiB)


class Renderer(Protocol):
    def __call__(self, decision: Decision, stream: TextIO, options: RenderOptions) -> None: ...


# format name -> module that defines ``write(run, stream, options)``
FORMATS: dict[str, str] = {
    "text": "coherence.reports.text",
    "json": "coherence.reports.json",
    "sarif": "coherence.reports.sarif",
    "junit": "coherence.reports.junit",
    "github": "coherence.reports.github",
    "markdown": "coherence.reports.markdown",
    "gitlab": "coherence.reports.gitlab",
}


def renderer(fmt: str) -> Renderer:
    """The ``write`` function of a format (imported on first use)."""
    module = importlib.import_module(FORMATS[fmt])
    write: Renderer = module.write
    return write


def decision_of(run: RunReport | Triaged | Decision, policy: Policy | None = None) -> Decision:
    """``run`` as decided: a :class:`Decision` as it is, anything else judged by ``policy``
    (default: ``--fail-level error --unknown warn``)."""
    if isinstance(run, Decision):
        return run
    return decide(as_triaged(run), policy)


def render(
    fmt: str,
    run: RunReport | Triaged | Decision,
    stream: TextIO,
    options: RenderOptions | None = None,
    policy: Policy | None = None,
) -> None:
    """Render a run in one of :data:`FORMATS` (decided once, here, when it is not already)."""
    renderer(fmt)(decision_of(run, policy), stream, options or RenderOptions())
