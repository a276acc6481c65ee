"""What ``coherence check`` says on standard error while it works.

- A progress display (when standard error is a terminal, or with ``--progress``; never with
  ``--no-progress``): which spec, which system, which analysis, and how many specs are done.
  On a terminal it is Rich's live progress bar, cleared when the run ends; elsewhere (a CI
  log, a captured stream) one plain line per step.
- Before the work, a note for each requirement whose check will be expensive, and what would
  make it cheaper (:func:`coherence.pipeline.expensive_requirements`), with or without the
  display.
- As each spec is checked, its part of the report is handed to ``on_done`` (the text report
  prints it at once, in the order the specs were given); the display is cleared while it
  prints, so the two never interleave on one terminal.

Nothing here goes to standard output, so the report is the same with or without progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from coherence.pipeline import Progress as Hooks
from coherence.results import FileReport

ANALYSIS_WORDS = {
    "simulate": "nominal simulation",
    "linear": "linear analysis",
    "smt": "formal analysis",
}


def wanted(option: bool | None, stream: TextIO) -> bool:
    """Whether to show progress: ``--progress`` (True), ``--no-progress`` (False), else only
    when ``stream`` is a terminal."""
    if option is not None:
        return option
    return bool(getattr(stream, "isatty", lambda: False)())


class CheckProgress(Hooks):
    """The hooks :func:`coherence.pipeline.check_paths` calls, drawn on ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        show: bool,
        color: bool | None = None,
        on_done: Callable[[FileReport], None] | None = None,
    ) -> None:
        self.stream = stream
        self.show = show
        self.on_done = on_done
        self.streamed = on_done is not None  # the report's parts are printed as they come
        self.total = 0
        self.current = ""
        self.started = time.perf_counter()
        tty = bool(getattr(stream, "isatty", lambda: False)())
        self.console = Console(
            file=stream,
            no_color=color is False,
            force_terminal=color if color is not None else None,
            highlight=False,
            soft_wrap=True,
            emoji=False,
        )
        self.bar: Progress | None = None
        if show and tty:
            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("specs"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.task = self.bar.add_task("starting", total=None)

    # ---- the display ------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        if not self.show:
            return
        if self.bar is not None:
            self.bar.update(self.task, description=text)
        else:
            elapsed = time.perf_counter() - self.started
            self.stream.write(f"coherence [{elapsed:5.1f}s] {text}\n")
            self.stream.flush()

    def __enter__(self) -> CheckProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    # ---- the pipeline's hooks ---------------------------------------------------------------

    def file(self, path: str, index: int, total: int) -> None:
        self.total = total
        self.current = f"[{index + 1}/{total}] {path}"
        if self.bar is not None:
            self.bar.update(self.task, total=total)
        self._say(self.current)

    def analysis(self, path: str, system: str, analysis: str) -> None:
        self._say(f"{self.current}: {system}: {ANALYSIS_WORDS.get(analysis, analysis)}")

    def parallel(self, systems: int, pieces: int, workers: int) -> None:
        self._say(
            f"analysing {systems} system{'s' if systems != 1 else ''}: {pieces} pieces in "
            f"{workers} worker processes"
        )

    def expensive(self, path: str, system: str, notes: tuple[str, ...]) -> None:
        for note in notes:
            self.console.print(
                Text.assemble(("note", "bold cyan"), f": {path}: system {system}: {note}")
            )

    def done(self, report: FileReport) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)
        if self.on_done is None:
            return
        if self.bar is not None:  # cleared while the report prints, then drawn again
            self.bar.stop()
            self.on_done(report)
            self.bar.start()
        else:
            self.on_done(report)
