"""``coherence lsp``: a language server for spec files, over standard input and output.

It publishes the diagnostics that ``coherence lint`` reports (the same front end, the same
configuration: ``select``, ``ignore`` and inline suppressions) when a spec is opened, changed
or saved; shows a name's declaration and unit on hover; and jumps to where a name (a state,
parameter, input, let, loop, objective, unit or profile) is declared. Editors start it as
``coherence lsp``; docs/editors.md has the configuration for VS Code, Neovim and Helix.

:mod:`coherence.lsp.document` computes everything from a document's text (no editor
protocol); :mod:`coherence.lsp.server` speaks the Language Server Protocol with pygls.
"""

from __future__ import annotations


def serve() -> int:
    """Run the language server on standard input and output until the editor exits it."""
    from coherence.lsp.server import build_server

    build_server().start_io()
    return 0
