"""``coherence diff``: which versions of which specs, checking each, and the exit code."""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from coherence.diagnostics import CoherenceError, Diagnostic
from coherence.diff.compare import EXIT_OK, EXIT_REGRESSION, SpecDiff, diff_files
from coherence.diff.relaxed import relaxations
from coherence.diff.render import diff_json, diff_markdown, diff_set_json, diff_set_text, diff_text
from coherence.results import FileReport, RunReport, SystemReport

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
