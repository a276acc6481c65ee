"""The Language Server Protocol side of ``coherence lsp`` (pygls).

Documents are kept by pygls (full or incremental sync); each open, change and save lints
the document's text again (:func:`coherence.lsp.document.lint_document`) and publishes the
diagnostics, replacing the previous ones. Positions are converted between the spec's
character columns and the editor's position encoding (UTF-16 unless the editor negotiates
another) by pygls' position codec.
"""

from __future__ import annotations

from dataclasses import dataclass

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from coherence import __version__
from coherence.compile import CompileResult
from coherence.diagnostics import Diagnostic, Severity
from coherence.lsp.document import (
    Declaration,
    compile_document,
    declaration_at,
    declarations,
    hover_text,
    lint_document,
)
from coherence.source import Span

SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.NOTE: types.DiagnosticSeverity.Information,
}


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A document's text, compiled once per version for hover and definition."""

    text: str
    result: CompileResult
    decls: tuple[Declaration, ...]


class CoherenceServer(LanguageServer):
    """The server, with the last compilation of each open document."""

    def __init__(self) -> None:
        super().__init__("coherence", __version__)
        self.compiled: dict[str, _Compiled] = {}

    def document(self, uri: str) -> tuple[TextDocument, _Compiled]:
        doc = self.workspace.get_text_document(uri)
        text = doc.source
        kept = self.compiled.get(uri)
        if kept is None or kept.text != text:
            result = compile_document(_path(doc), text)
            kept = _Compiled(text, result, declarations(result))
            self.compiled[uri] = kept
        return doc, kept


def _path(doc: TextDocument) -> str:
    return doc.path or doc.uri


def to_range(doc: TextDocument, span: Span) -> types.Range:
    """A spec span (1-based, character columns, end exclusive) as the editor counts it."""
    start = types.Position(max(span.line - 1, 0), max(span.column - 1, 0))
    end = types.Position(max(span.end_line - 1, 0), max(span.end_column - 1, 0))
    return doc.position_codec.range_to_client_units(doc.lines, types.Range(start, end))


def to_diagnostic(doc: TextDocument, d: Diagnostic) -> types.Diagnostic:
    message = d.message
    if d.label:
        message += f" ({d.label})"
    for note in d.notes:
        message += f"\nnote: {note}"
    if d.help:
        message += f"\nhelp: {d.help}"
    return types.Diagnostic(
        range=to_range(doc, d.span),
        message=message,
        severity=SEVERITY[d.level],
        code=d.code,
        source="coherence",
    )


def publish(ls: CoherenceServer, uri: str) -> None:
    doc, kept = ls.document(uri)
    found = lint_document(_path(doc), kept.text, kept.result)
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(
            uri=uri, version=doc.version, diagnostics=[to_diagnostic(doc, d) for d in found]
        )
    )


def _declaration(
    ls: CoherenceServer, uri: str, position: types.Position
) -> tuple[TextDocument, Declaration | None]:
    doc, kept = ls.document(uri)
    at = doc.position_codec.position_from_client_units(doc.lines, position)
    return doc, declaration_at(kept.result, at.line + 1, at.character + 1, kept.decls)


def build_server() -> CoherenceServer:
    """A server with the features registered; ``start_io()`` runs it."""
    server = CoherenceServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CoherenceServer, params: types.DidOpenTextDocumentParams) -> None:
        publish(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CoherenceServer, params: types.DidChangeTextDocumentParams) -> None:
        publish(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CoherenceServer, params: types.DidSaveTextDocumentParams) -> None:
        publish(ls, params.text_document.uri)  # the configuration may have changed

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CoherenceServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.compiled.pop(uri, None)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: CoherenceServer, params: types.HoverParams) -> types.Hover | None:
        doc, decl = _declaration(ls, params.text_document.uri, params.position)
        if decl is None:
            return None
        return types.Hover(
            contents=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=hover_text(decl, doc.source)
            ),
            range=to_range(doc, decl.name_span),
        )

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: CoherenceServer, params: types.DefinitionParams) -> types.Location | None:
        doc, decl = _declaration(ls, params.text_document.uri, params.position)
        if decl is None:
            return None
        return types.Location(uri=doc.uri, range=to_range(doc, decl.name_span))

    return server
