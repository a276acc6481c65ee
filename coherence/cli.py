"""The command line: argument parsing only; every command returns an exit code.

``main(argv, stdout, stderr) -> int`` runs in-process, so the CLI is tested end to end
without subprocesses. Exit codes: 0 the run passed (or is inconclusive without failing),
1 the policy failed it (:mod:`coherence.policy`: ``--fail-level``, ``--unknown``), 2 usage,
configuration or internal error.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from coherence import __version__
from coherence.diagnostics import REGISTRY, CoherenceError
from coherence.source import STDIN

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so errors keep our exit code and stream."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CoherenceError(message, f"see `{self.prog} --help`")


HORIZON_HELP = "cap on the solver's unrolling (ticks); input patterns run the full horizon"


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; ``argv`` lets it skip importing what the chosen command does not need."""
    p = _Parser(
        prog="coherence",
        description="Model checker and control-theory analyzer for "
        "the feedback loops that run AI inference fleets.",
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("check", help="parse, check and analyse specs (files or directories)")
    c.add_argument(
        "paths", nargs="*", metavar="PATH", help="specs or directories (default: `paths` in config)"
    )
    _output_args(c)
    c.add_argument("--no-linear", action="store_true", help="skip the linear analysis")
    c.add_argument("--no-smt", action="store_true", help="skip the formal (Z3) analysis")
    c.add_argument("--ticks", type=positive_int, help="ticks of the nominal simulation")
    c.add_argument("--horizon", type=positive_int, help=HORIZON_HELP)
    c.add_argument(
        "--mode",
        choices=("auto", "exact", "overapprox"),
        default=None,
        help="nonlinear arithmetic: exact, sound over-approximation, or auto (the default)",
    )
    c.add_argument("--rlimit", type=positive_int, help="Z3 resource limit per query")
    c.add_argument(
        "--invariants",
        action="store_true",
        help="try k-induction with auxiliary invariants mined from simulation (Houdini) on "
        "`always` requirements that stay undecided",
    )
    c.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N",
        help="run the analyses in N worker processes (0, the default: one per CPU, at most "
        "8); the results do not depend on it",
    )
    c.add_argument(
        "--no-cache",
        action="store_true",
        help="analyse every system, neither reading nor writing the results cache (a system "
        "checked before with the same code, spec and options is otherwise read from it)",
    )
    amount = c.add_mutually_exclusive_group()
    amount.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="text report: also the notes, the traces in full and the analyses' tables",
    )
    amount.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="text report: one line per system (its verdict, counts and why), then the result",
    )
    c.add_argument(
        "--timings",
        action="store_true",
        help="after the report, list what each piece of the run cost (wall time, solver "
        "calls, unknowns, rlimit), slowest first, on standard error",
    )
    shown = c.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        action="store_true",
        default=None,
        help="show which spec and analysis is running on standard error (the default when "
        "it is a terminal)",
    )
    shown.add_argument(
        "--no-progress", dest="progress", action="store_false", help="show no progress"
    )
    c.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="run the analyses on the Dask cluster of this scheduler (tcp://HOST:PORT)",
    )
    c.add_argument(
        "--suggest-fixes",
        action="store_true",
        help="for each falsified requirement, search the nearest one-parameter change that "
        "makes it hold and re-check it with the full analysis (docs/sweep.md); slow",
    )
    c.add_argument(
        "--expect",
        metavar="MANIFEST",
        help="compare the findings and verdicts with a manifest of expected results (TOML); "
        "exit 0 only when every spec matches it",
    )

    lint = sub.add_parser("lint", help="parse and semantic checks only (fast, for pre-commit)")
    lint.add_argument(
        "paths", nargs="*", metavar="PATH", help="specs or directories (default: `paths` in config)"
    )
    _output_args(lint)

    df = sub.add_parser("diff", help="compare two versions of a spec: verdicts, numbers, findings")
    df.add_argument(
        "old", metavar="OLD", help="the old spec or folder (or the spec or folder, with --rev)"
    )
    df.add_argument("new", metavar="NEW", nargs="?", help="the new spec or folder")
    df.add_argument(
        "--rev",
        metavar="GITREV",
        help="compare SPEC (or every spec under a folder) at this git revision with the "
        "working copy",
    )
    df.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="report format (markdown: a pull-request comment)",
    )
    df.add_argument("--no-linear", action="store_true", help="skip the linear analysis")
    df.add_argument("--no-smt", action="store_true", help="skip the formal (Z3) analysis")
    df.add_argument("--ticks", type=positive_int, help="ticks of the nominal simulation")
    df.add_argument("--horizon", type=positive_int, help=HORIZON_HELP)
    df.add_argument("--rlimit", type=positive_int, help="Z3 resource limit per query")
    df.add_argument("--exit-zero", action="store_true", help="exit 0 even on a regression")
    df.add_argument(
        "--no-cache",
        action="store_true",
        help="analyse both versions, neither reading nor writing the results cache",
    )
    df.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    _config_args(df)

    pl = sub.add_parser(
        "plot",
        help="draw the coupling graph, a simulated trace, the poles, or a finding's trace",
    )
    pl.add_argument("spec", metavar="SPEC", help="a spec (`-`: standard input) or a JSON report")
    pl.add_argument("--kind", choices=("coupling", "trace", "poles"), default="coupling")
    pl.add_argument(
        "--finding",
        metavar="ID",
        help="draw this finding's counterexample trace: its fingerprint (or a prefix), its key "
        "(conflict:vpa) or its code (COH401: the first with a trace); the spec is checked "
        "first (through the results cache)",
    )
    pl.add_argument(
        "--out", required=True, metavar="FILE", help=".svg/.png (Matplotlib), .dot/.mmd (coupling)"
    )
    pl.add_argument("--no-linear", action="store_true", help="--finding: skip the linear analysis")
    pl.add_argument("--no-smt", action="store_true", help="--finding: skip the formal analysis")
    pl.add_argument(
        "--no-cache", action="store_true", help="--finding: neither read nor write the cache"
    )
    _stdin_arg(pl)
    pl.add_argument("--system", help="the system to draw when the file has several")
    pl.add_argument("--ticks", type=positive_int, help="ticks to simulate (--kind trace)")
    pl.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="SCENARIO",
        help="scenarios to simulate (--kind trace); as for `coherence simulate`",
    )

    s = sub.add_parser("simulate", help="simulate a spec under input scenarios")
    s.add_argument("spec", metavar="SPEC")
    s.add_argument("--system", help="the system to simulate when the file has several")
    s.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="SCENARIO",
        help="nominal | step:IN=V@T | ramp:IN=A..B@T1..T2 | burst:IN=V@T+D | csv:FILE "
        "(repeat for several scenarios, simulated at once)",
    )
    s.add_argument("--ticks", type=positive_int, default=300, help="ticks to simulate (300)")
    s.add_argument(
        "--csv",
        metavar="FILE",
        help="write the time series as CSV (`-`: standard output; missing directories are created)",
    )
    s.add_argument(
        "--json",
        metavar="FILE",
        help="write the time series as JSON (`-`: standard output; missing directories are "
        "created)",
    )
    s.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    _stdin_arg(s)

    v = sub.add_parser("validate", help="compare a spec's assumed plant with a calibration profile")
    v.add_argument("spec", metavar="SPEC")
    v.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="use this profile file for the spec's profile NAME (repeatable)",
    )
    v.add_argument("--no-linear", action="store_true", help="skip the linear analysis")
    v.add_argument("--no-smt", action="store_true", help="skip the formal (Z3) analysis")
    v.add_argument("--color", choices=("auto", "always", "never"), default="auto")

    r = sub.add_parser("rules", help="list every diagnostic code")
    r.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="markdown: the rule catalog (docs/rules.md)",
    )
    e = sub.add_parser(
        "explain",
        help="explain a diagnostic code, or `coherence`: how a system's verdict is decided",
    )
    e.add_argument("code", help="a code (COH401), or `coherence`")

    d = sub.add_parser("ir", help="print the transition system a spec lowers to")
    d.add_argument("spec", metavar="SPEC")
    _stdin_arg(d)

    f = sub.add_parser(
        "fmt",
        help="print specs in canonical layout, comments kept; --check reports, -i rewrites",
        description="Print each spec in canonical layout. Comments are kept next to the "
        "statement they belong to (a comment at the end of a line stays there, a comment on a "
        "line of its own stays above the statement after it). Files with syntax errors are "
        "reported and never rewritten.",
    )
    f.add_argument("spec", metavar="SPEC", nargs="+", help="spec files (`-` for standard input)")
    fmode = f.add_mutually_exclusive_group()
    fmode.add_argument(
        "--check",
        action="store_true",
        help="print nothing for formatted files; for the others a diff, and exit 1",
    )
    fmode.add_argument(
        "-i", "--in-place", action="store_true", help="rewrite the files that are not formatted"
    )
    _stdin_arg(f)

    ca = sub.add_parser(
        "cache", help="where coherence keeps results between runs; --clear empties it"
    )
    ca.add_argument(
        "--clear",
        action="store_true",
        help="remove the kept reports, the pieces' durations and the parser's tables",
    )

    imp = sub.add_parser("import", help="turn HPA, KEDA or Knative autoscaling YAML into a spec")
    from coherence.importers import add_arguments as add_import_arguments

    add_import_arguments(imp)

    ls = sub.add_parser(
        "lsp", help="run the language server over standard input and output (for editors)"
    )
    ls.add_argument("--stdio", action="store_true", help="accepted for editors that pass it")
    co = sub.add_parser("completion", help="print a shell completion script")
    co.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell")

    sw = sub.add_parser(
        "sweep", help="safe operating regions over params and shaping values; verified fixes"
    )
    from coherence.sweep import command as sweep_command

    sweep_command.add_arguments(sw)

    cal = sub.add_parser("calibrate", help="measure plant parameters on this machine's hardware")
    if argv is None or "calibrate" in argv:
        # the calibration package pulls in SciPy's optimizers: only for this command
        from coherence.calibrate import command as calibrate_command

        calibrate_command.add_arguments(cal)
    return p


def _ignore_bad_columns() -> None:
    """``COLUMNS`` that is not a width (``abc``, empty, 0, negative, absurdly wide) is ignored,
    as if unset: reports keep their default width and no diagnostic is lost."""
    import os

    cols = os.environ.get("COLUMNS")
    if cols is None:
        return
    text = cols.strip()
    if not (text.isascii() and text.isdigit() and 20 <= int(text) <= 10_000):
        del os.environ["COLUMNS"]


def _make_parent(path: str | None) -> None:
    """Create the missing parent directories of an output file, as every writing option does
    (``--output``, ``--write-baseline``, ``simulate --csv/--json``, ``import --out``)."""
    if not path or path == STDIN:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CoherenceError(f"cannot create the directory of `{path}`: {e.strerror}") from None


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"`{text}` must be positive")
    return v


def _jobs(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"`{text}` must be 0 (one per CPU) or more")
    return v


def _output_args(p: argparse.ArgumentParser) -> None:
    from coherence.reports import FORMATS

    p.add_argument("--format", choices=tuple(FORMATS), default="text", help="report format")
    p.add_argument(
        "--output",
        action="append",
        metavar="FORMAT=PATH",
        help="also write the report in FORMAT to PATH (repeatable; missing directories are "
        "created): --output sarif=out.sarif",
    )
    p.add_argument(
        "--fail-level",
        choices=("error", "warning", "note"),
        default=None,
        help="the lowest severity of a finding that fails the run (config `fail-level`, else "
        "error); a falsified requirement always fails unless its findings are suppressed",
    )
    from coherence.policy import UNKNOWN_CHOICES, UNKNOWN_HELP

    p.add_argument("--unknown", choices=UNKNOWN_CHOICES, default=None, help=UNKNOWN_HELP)
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.add_argument(
        "--select",
        action="append",
        metavar="CODES",
        help="report only these code prefixes (comma-separated; COH3 = every COH3xx)",
    )
    p.add_argument(
        "--ignore", action="append", metavar="CODES", help="do not report these code prefixes"
    )
    p.add_argument(
        "--baseline", metavar="FILE", help="do not fail on the known findings listed in FILE"
    )
    p.add_argument(
        "--write-baseline",
        metavar="FILE",
        help="write today's findings to FILE as the baseline (missing directories are created)",
    )
    p.add_argument(
        "--no-baseline", action="store_true", help="ignore the baseline set in the configuration"
    )
    _config_args(p)
    _stdin_arg(p)


def _stdin_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stdin-filename",
        metavar="NAME",
        help="with `-` as the spec: the name that locations say, and where to look for the "
        "configuration (default: <stdin>, the configuration of the current directory)",
    )


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="FILE", help="configuration file (default: found from the cwd up)"
    )
    p.add_argument("--isolated", action="store_true", help="ignore every configuration file")


def _read_stdin(args: argparse.Namespace, stdin: TextIO) -> None:
    """`-` as the spec: read standard input once and pass the spec on under its name.

    The name is ``--stdin-filename`` (else ``<stdin>``); with it, the configuration is the
    one that file would have (found from its directory up), unless ``--config`` or
    ``--isolated`` says otherwise.
    """
    from coherence.source import STDIN_NAME, provide_stdin

    paths = list(getattr(args, "paths", None) or ())
    spec = getattr(args, "spec", None)
    specs = spec if isinstance(spec, list) else []  # `fmt` takes several specs
    given = paths.count(STDIN) + specs.count(STDIN) + (spec == STDIN)
    name = getattr(args, "stdin_filename", None)
    if given == 0:
        if name:
            raise CoherenceError(
                "`--stdin-filename` names a spec read from standard input",
                "pass `-` as the spec to read it from standard input",
            )
        return
    if given > 1:
        raise CoherenceError("standard input (`-`) can be read only once", "pass `-` once")
    raw = getattr(stdin, "buffer", None)
    try:
        text = raw.read().decode("utf-8") if raw is not None else stdin.read()
    except UnicodeDecodeError as e:
        raise CoherenceError(
            f"standard input is not UTF-8 text ({e.reason} at byte {e.start})",
            "save the spec as UTF-8",
        ) from None
    name = name or STDIN_NAME
    if name != STDIN_NAME:
        from coherence.reports.command import display_path

        name = display_path(name)
        if hasattr(args, "config") and not args.config and not args.isolated:
            from coherence.config import find_config

            found = find_config(Path(name).parent)
            args.config = str(found) if found is not None else None
            args.isolated = found is None
    provide_stdin(name, text)
    if spec == STDIN:
        args.spec = name
    elif specs:
        args.spec = [name if p == STDIN else p for p in specs]
    else:
        args.paths = [name if p == STDIN else p for p in paths]


def _output_to_stdout(args: argparse.Namespace) -> None:
    """``--output FORMAT=-``: that report goes to standard output, in place of the text one."""
    outputs = getattr(args, "output", None)
    if not outputs:
        return
    piped = [v for v in outputs if v.partition("=")[2].strip() == STDIN]
    if not piped:
        return
    if len(piped) > 1 or args.format != "text":
        raise CoherenceError(
            "only one report can go to standard output",
            "write the others to files: --output FORMAT=PATH",
        )
    fmt = piped[0].partition("=")[0].strip().lower()
    from coherence.reports import FORMATS

    if fmt not in FORMATS:
        raise CoherenceError(f"unknown output format `{fmt}`", f"formats: {', '.join(FORMATS)}")
    args.format = fmt
    args.output = [v for v in outputs if v not in piped]


def _color(args: argparse.Namespace) -> bool | None:
    return {"auto": None, "always": True, "never": False}[args.color]


def cmd_check(
    args: argparse.Namespace, stdout: TextIO, lint: bool = False, stderr: TextIO | None = None
) -> int:
    from coherence.reports.command import run_check

    address = getattr(args, "scheduler", None)
    if not address:
        return run_check(args, stdout, stderr or sys.stderr, lint=lint)
    from coherence.parallel import use_scheduler

    use_scheduler(address)  # the pieces go to the cluster, whatever -j says
    args.jobs = max(args.jobs or 0, 2)
    try:
        return run_check(args, stdout, stderr or sys.stderr, lint=lint)
    finally:
        use_scheduler(None)


def cmd_simulate(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from coherence.plot import load_system
    from coherence.reports.text import make_console, render_table
    from coherence.simulate.engine import simulate
    from coherence.simulate.nominal import summary_table
    from coherence.simulate.scenarios import scenario_inputs
    from coherence.simulate.series import write_series

    if args.csv == STDIN and args.json == STDIN:
        raise CoherenceError(
            "`--csv -` and `--json -` both want standard output", "write one of them to a file"
        )
    ts = load_system(args.spec, args.system)
    scenarios = args.scenario or ["nominal"]
    from coherence.ir.limits import check_run

    check_run(len(scenarios), args.ticks, len(ts.states) + len(ts.lets))  # before any array
    inputs = scenario_inputs(ts, scenarios, args.ticks)
    trace = simulate(ts, args.ticks, inputs=inputs)
    # with the series on standard output, the summary goes to standard error
    piped = STDIN in (args.csv, args.json)
    console = make_console(stderr if piped else stdout, _color(args))
    violated = False
    for i, sc in enumerate(scenarios):
        table = summary_table(
            ts,
            trace,
            i,
            title=f"{ts.name}: scenario {sc}, {args.ticks} ticks ({args.ticks * ts.tick:g}s)",
        )
        violated |= any(str(r[-1]).startswith(("violated", "non-finite")) for r in table.rows)
        render_table(console, table)
    for fmt, path in (("csv", args.csv), ("json", args.json)):
        if path == STDIN:
            _series_to(stdout, functools.partial(write_series, trace, scenarios, fmt=fmt))
        elif path:
            write_series(trace, scenarios, path, fmt)
    return EXIT_FINDINGS if violated else EXIT_OK


def _series_to(stdout: TextIO, write: Callable[[str], None]) -> None:
    """Run a writer that takes a path, and copy what it wrote to ``stdout``."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="coherence-") as d:
        path = Path(d) / "series"
        write(str(path))
        with path.open(encoding="utf-8", newline="") as fh:
            while chunk := fh.read(1 << 16):
                stdout.write(chunk)


def cmd_validate(args: argparse.Namespace, stdout: TextIO) -> int:
    from coherence.compile import compile_path
    from coherence.pipeline import CheckOptions
    from coherence.reports.text import make_console, render_table
    from coherence.validate import validate_system

    overrides: dict[str, str] = {}
    for item in args.profile:
        name, eq, path = item.partition("=")
        if not eq or not name or not path:
            raise CoherenceError(
                f"`--profile {item}`: write NAME=PATH", "NAME is the profile's name in the spec"
            )
        overrides[name] = path
    result = compile_path(args.spec, overrides)
    unloaded = [d for d in result.diagnostics if d.code == "COH222"]
    if unloaded:  # validation needs every profile: each failure, located at its declaration
        from coherence.diagnostics import render

        raise CoherenceError(
            f"`{args.spec}` binds parameters to a calibration profile that cannot be loaded:"
            "\n\n" + "\n\n".join(render(d, result.source) for d in unloaded),
            "measure a profile with `coherence calibrate --out PATH`, or pass "
            "`--profile NAME=PATH`",
        )
    bound = [ts for ts in result.systems if ts.bindings]
    if not bound:
        raise CoherenceError(
            f"`{args.spec}` binds no parameter to a calibration profile",
            "bind one: `param step_base = 12 ms from h100.step_time(1)`",
        )
    console = make_console(stdout, _color(args))
    changed = False
    opts = CheckOptions(linear=not args.no_linear, smt=not args.no_smt)
    for ts in bound:
        v = validate_system(ts, opts)
        render_table(console, v.bindings_table())
        render_table(console, v.changes_table())
        changed |= bool(v.changes)
    return EXIT_FINDINGS if changed else EXIT_OK


def cmd_rules(stdout: TextIO, fmt: str = "text") -> int:
    if fmt == "markdown":
        from coherence.reports.rules import rules_markdown

        stdout.write(rules_markdown())
        return EXIT_OK
    for code in sorted(REGISTRY):
        r = REGISTRY[code]
        stdout.write(f"{code}  {r.severity!s:<8} {r.name:<30} {r.summary}\n")
    return EXIT_OK


def cmd_explain(code: str, stdout: TextIO) -> int:
    if code.lower() == "coherence":
        from coherence.results import COHERENCE_RULE

        stdout.write(COHERENCE_RULE + "\n")
        return EXIT_OK
    rule = REGISTRY.get(code.upper())
    if rule is None:
        import difflib

        close = difflib.get_close_matches(code.upper(), list(REGISTRY), n=1)
        raise CoherenceError(
            f"no diagnostic code `{code}`",
            f"did you mean `{close[0]}`?"
            if close
            else "see `coherence rules`; `coherence explain coherence` for the verdict",
        )
    out = [f"{rule.code}: {rule.name} ({rule.severity})", "", rule.summary, "", rule.explanation]
    if rule.example:
        out += ["", "Example:", *("    " + line for line in rule.example.splitlines())]
    if rule.fix:
        out += ["", f"Fix: {rule.fix}"]
    stdout.write("\n".join(out) + "\n")
    return EXIT_OK


def cmd_ir(args: argparse.Namespace, stdout: TextIO) -> int:
    from coherence.compile import compile_path
    from coherence.ir.dump import dump

    result = compile_path(args.spec)
    for ts in result.systems:
        stdout.write(dump(ts))
    return EXIT_OK


def cmd_fmt(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from coherence.frontend.format import run_fmt
    from coherence.source import stdin_text

    if args.in_place and any(stdin_text(p) is not None for p in args.spec):
        raise CoherenceError("`fmt -i` rewrites files; standard input is not one", "drop `-i`")
    return run_fmt(args.spec, args.check, args.in_place, stdout, stderr)


def main(
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the command line; returns the exit code. ``stdin`` is read for a spec named `-`."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    _ignore_bad_columns()
    try:
        argv = list(argv) if argv is not None else sys.argv[1:]
        parser = build_parser(argv)
        args = parser.parse_args(list(argv) if argv is not None else None)
        if args.version:
            out.write(f"coherence {__version__}\n")
            return EXIT_OK
        if args.command is None:
            parser.print_help(out)
            return EXIT_ERROR
        _read_stdin(args, stdin or sys.stdin)
        _output_to_stdout(args)
        if args.command in ("check", "lint"):
            return cmd_check(args, out, lint=args.command == "lint", stderr=err)
        if args.command == "diff":
            from coherence.diff import run_diff

            return run_diff(args, out, err)
        if args.command == "plot":
            from coherence.plot import run_plot

            return run_plot(args, out, err)
        if args.command == "simulate":
            return cmd_simulate(args, out, err)
        if args.command == "validate":
            return cmd_validate(args, out)
        if args.command == "rules":
            return cmd_rules(out, args.format)
        if args.command == "explain":
            return cmd_explain(args.code, out)
        if args.command == "ir":
            return cmd_ir(args, out)
        if args.command == "fmt":
            return cmd_fmt(args, out, err)
        if args.command == "lsp":
            from coherence.lsp import serve

            return serve()
        if args.command == "completion":
            from coherence.completion import completion_script

            out.write(completion_script(build_parser(), args.shell))
            return EXIT_OK
        if args.command == "cache":
            from coherence.cache import run_command

            return run_command(args.clear, out)
        if args.command == "import":
            from coherence.importers import run as run_import

            _make_parent(args.out)

            return run_import(args, out, err)
        if args.command == "sweep":
            from coherence.sweep import command as sweep_command

            return sweep_command.run(args, out, err)
        if args.command == "calibrate":
            from coherence.calibrate import command as calibrate_command

            return int(calibrate_command.run(args, out, err))
        raise CoherenceError(f"unknown command `{args.command}`")
    except CoherenceError as e:
        err.write(f"error: {e.message}\n")
        if e.hint:
            err.write(f"hint: {e.hint}\n")
        return EXIT_ERROR
    except SystemExit as e:  # --help and --version
        return int(e.code) if isinstance(e.code, int) else EXIT_OK
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # never a traceback for the user
        err.write(
            f"internal error: {type(e).__name__}: {e}\n"
            "this is a bug in coherence; please report it with the spec\n"
        )
        if __import__("os").environ.get("COHERENCE_DEBUG"):
            raise
        return EXIT_ERROR


def entry() -> None:
    sys.exit(main())
