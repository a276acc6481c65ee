"""The ``coherence calibrate`` command: options, progress, the profile file and a summary.

This module owns the command's surface only. ``add_arguments`` declares the options on a parser
the CLI gives it; ``run`` takes the parsed options and the two output streams, runs
``run_calibration``, writes the profile and prints a short summary, and returns the exit code:
0 on success, 2 for a usage or environment error (printed as ``error: ...`` with a ``help:``
line). The progress bar (Rich) goes to stderr, only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from coherence.calibrate.backend import BACKEND_CHOICES
from coherence.calibrate.benchmarks import PRESETS, ProgressCallback
from coherence.calibrate.calibration import run_calibration
from coherence.calibrate.errors import CalibrationError
from coherence.calibrate.models import FitError, FittedModel
from coherence.calibrate.profile import Profile, write_profile

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``coherence calibrate`` on ``parser``."""
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="where to write the calibration profile (JSON)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="auto",
        help="cupy (CUDA GPU), numpy (CPU) or auto: cupy when a GPU is usable (default: auto)",
    )
    parser.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="standard",
        help="benchmark sizes: quick (seconds, CPU), standard, full (LLM-sized, for a GPU) "
        "(default: standard)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for the operand data (default: 0)"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="do not show a progress bar on stderr"
    )


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run the calibration described by ``args``; returns the exit code (0 or 2).

    >>> import sys
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--out", "cpu.json", "--backend", "numpy", "--preset", "quick"])
    >>> run(args, sys.stdout, sys.stderr)                   # doctest: +SKIP
    0
    """
    out = Path(args.out)
    problem = _unwritable(out)
    if problem is not None:
        return _error(stderr, problem, "choose a --out path in a directory you can write to")
    if args.seed < 0:
        return _error(stderr, f"--seed must be >= 0, got {args.seed}", "pass a seed such as 0")
    try:
        with _progress(stderr, enabled=not args.no_progress and _is_tty(stderr)) as callback:
            profile = run_calibration(args.backend, args.preset, args.seed, callback)
    except CalibrationError as exc:
        return _error(stderr, exc.message, exc.hint)
    try:
        write_profile(profile, out)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return _error(stderr, f"cannot write {out}: {reason}", "check the --out path")
    _summary(profile, out, stdout)
    return 0


def _error(stderr: TextIO, message: str, hint: str | None) -> int:
    stderr.write(f"error: {message}\n")
    if hint:
        stderr.write(f"help: {hint}\n")
    return 2


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _unwritable(out: Path) -> str | None:
    """Why ``out`` cannot be written, checked before spending minutes on benchmarks."""
    if out.is_dir():
        return f"{out} is a directory"
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        return f"cannot write {out}: directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write {out}: directory {parent} is not writable"
    if out.exists() and not os.access(out, os.W_OK):
        return f"cannot write {out}: the file is not writable"
    return None


@contextmanager
def _progress(stderr: TextIO, *, enabled: bool) -> Iterator[ProgressCallback | None]:
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("calibrating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=Console(file=stderr),
        transient=True,
    )
    task = bar.add_task("", total=None)

    def callback(done: int, total: int, label: str) -> None:
        bar.update(task, completed=done, total=total, description=label)

    with bar:
        yield callback


# --- summary -----------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-12:.3g} ps" if value else "0 s"


def _rate(seconds_per_unit: float, unit: str) -> str:
    if seconds_per_unit <= 0.0:
        return f"unbounded {unit}/s (term not resolved)"
    rate = 1.0 / seconds_per_unit
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.3g} {prefix}{unit}/s"
    return f"{rate:.3g} {unit}/s"


def _coefficients(model: FittedModel) -> str:
    c = model.coefficient
    if model.name == "linear_tokens":
        return (
            f"a={_seconds(c('a_s'))}, per token {_seconds(c('s_per_token'))}, "
            f"per KV token {_seconds(c('s_per_kv_token'))}"
        )
    return (
        f"t0={_seconds(c('t0_s'))}, {_rate(c('s_per_flop'), 'FLOP')}, {_rate(c('s_per_byte'), 'B')}"
    )


def _pct(error: FitError, which: str) -> str:
    value = error.mape if which == "mape" else error.max_rel
    return "n/a" if value is None else f"{100.0 * value:.1f}%"


def _summary(profile: Profile, out: Path, stdout: TextIO) -> None:
    console = Console(file=stdout, highlight=False, soft_wrap=False, width=120)
    d = profile.device
    held = sum(p.held_out for p in profile.points)
    if profile.cpu_run:
        console.print(
            f"CPU run: {d.name} ({d.cpu_count} cores). These timings describe this CPU, not a GPU."
        )
    else:
        memory = f", {d.memory_bytes / 2**30:.0f} GiB" if d.memory_bytes else ""
        console.print(
            f"GPU run: {d.name}{memory}, CUDA {d.cuda_runtime_version} "
            f"(driver {d.cuda_driver_version}), CuPy {d.cupy_version}"
        )
    console.print(
        f"backend {profile.backend}, {profile.dtype}, preset {profile.preset}, "
        f"hidden {profile.shape.hidden}, {len(profile.points)} points ({held} held out)"
    )
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("model")
    table.add_column("coefficients")
    table.add_column("fit MAPE", justify="right")
    table.add_column("held-out MAPE", justify="right")
    table.add_column("held-out max", justify="right")
    for m in profile.models:
        name = f"{m.name} (primary)" if m.name == profile.primary_model else m.name
        table.add_row(
            name,
            _coefficients(m),
            _pct(m.train_error, "mape"),
            _pct(m.held_out_error, "mape"),
            _pct(m.held_out_error, "max"),
        )
    console.print(table)
    console.print(f"wrote {out}")
