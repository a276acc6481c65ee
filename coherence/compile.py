"""The front half of the pipeline: file -> text -> AST -> checks -> transition systems.

>>> from coherence.compile import compile_text
>>> r = compile_text("a.coh", "system s { tick 1s state x in [0, 1] init 0 next x = x }")
>>> [ts.name for ts in r.systems], r.ok
(['s'], True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from coherence.diagnostics import Diagnostic, Severity, sorted_diagnostics
from coherence.frontend import ast
from coherence.frontend.check import check_system
from coherence.frontend.parser import parse_source
from coherence.ir.lower import lower
from coherence.ir.nodes import TransitionSystem
from coherence.source import SourceFile, SourceReadError, Span, read_text_file, stdin_text

MAX_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CompileResult:
    source: SourceFile
    module: ast.Module | None
    systems: tuple[TransitionSystem, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.level == Severity.ERROR for d in self.diagnostics)


def read_source(path: str | Path) -> SourceFile | Diagnostic:
    """The spec at ``path``, or a COH100 diagnostic saying why it cannot be read (located at
    the first byte that is not UTF-8; a FIFO or device is refused, never opened to block)."""
    given = stdin_text(path)  # a spec the command line read from standard input
    if given is not None:
        return SourceFile(str(path), given)
    try:
        text = read_text_file(path, MAX_FILE_BYTES, "spec file")
    except SourceReadError as e:
        return Diagnostic(
            "COH100",
            e.message,
            Span(str(path), e.line, e.column, e.line, e.column + 1),
            help=e.help,
        )
    return SourceFile(str(path), text)


def compile_source(
    source: SourceFile, profile_paths: Mapping[str, str] | None = None
) -> CompileResult:
    """Parse, check and lower every system of a source file.

    ``profile_paths`` overrides the paths of calibration profiles the spec declares.
    """
    module, diags, broken = parse_source(source)
    all_diags: list[Diagnostic] = list(diags)
    systems: list[TransitionSystem] = []
    names: set[str] = set()
    for system in module.systems:
        if system.name in names:
            all_diags.append(
                Diagnostic("COH202", f"system `{system.name}` is declared twice", system.name_span)
            )
        names.add(system.name)
        checked, sdiags = check_system(
            system, broken | ({"<syntax>"} if diags else set()), profile_paths
        )
        all_diags += sdiags
        if checked is not None and not diags:
            systems.append(lower(checked))
    if not module.systems and not diags:
        all_diags.append(
            Diagnostic(
                "COH101",
                "the file declares no system",
                source.span_at(1, 1),
                help="a spec is `system NAME { tick 1s ... }`",
            )
        )
    return CompileResult(source, module, tuple(systems), sorted_diagnostics(all_diags))


def compile_text(path: str, text: str) -> CompileResult:
    return compile_source(SourceFile(path, text))


def compile_path(
    path: str | Path,
    profile_paths: Mapping[str, str] | None = None,
    *,
    require_ok: bool = True,
) -> CompileResult:
    """Read and compile a spec file for a command that needs it whole.

    An unreadable file is a usage error, and so (with ``require_ok``) is a spec with errors,
    whose rendered diagnostics the message carries: both raise :class:`CoherenceError`.
    """
    from coherence.diagnostics import CoherenceError, render

    src = read_source(path)
    if isinstance(src, Diagnostic):
        raise CoherenceError(src.message, src.help)
    result = compile_source(src, profile_paths)
    if require_ok and not result.ok:
        text = "\n\n".join(
            render(d, result.source) for d in result.diagnostics if d.level == Severity.ERROR
        )
        raise CoherenceError(f"`{path}` has errors:\n\n{text}", "run `coherence lint` on it")
    return result
