"""Source text and spans: where every diagnostic and finding points.

A :class:`SourceFile` holds the text of one spec; a :class:`Span` is a half-open range of it
with 1-based line and column numbers for both ends, as editors and SARIF count them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    """A range in a source file: 1-based lines and columns, end exclusive."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    @staticmethod
    def unknown(path: str = "<unknown>") -> Span:
        return Span(path, 1, 1, 1, 1)

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(self.path, self.line, self.column, other.end_line, other.end_column)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """The text of one spec file, with line access for rendering carets."""

    path: str
    text: str
    _lines: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lines", tuple(self.text.splitlines()))

    def line(self, number: int) -> str:
        if 1 <= number <= len(self._lines):
            return self._lines[number - 1]
        return ""

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def span_at(self, line: int, column: int, length: int = 1) -> Span:
        return Span(self.path, line, column, line, column + max(length, 1))

    def offset_to_span(self, start: int, end: int) -> Span:
        """A span for the character offsets ``[start, end)`` of the text."""
        sl, sc = self._position(start)
        el, ec = self._position(max(end, start + 1))
        return Span(self.path, sl, sc, el, ec)

    def _position(self, offset: int) -> tuple[int, int]:
        offset = max(0, min(offset, len(self.text)))
        line = self.text.count("\n", 0, offset) + 1
        last_nl = self.text.rfind("\n", 0, offset)
        return line, offset - last_nl


# ---- standard input ------------------------------------------------------------------------

STDIN = "-"
"""The path that names standard input on the command line."""

STDIN_NAME = "<stdin>"
"""The name a spec read from standard input has, unless ``--stdin-filename`` gives one."""

_STDIN_TEXT: dict[str, str] = {}


def provide_stdin(name: str, text: str) -> None:
    """Let ``name`` read as ``text`` (a spec the command line read from standard input).

    The command line reads standard input once, then passes ``name`` on as the spec's path:
    every location, report and cache key then says ``name``, and reading ``name`` gives this
    text rather than a file of that name.
    """
    _STDIN_TEXT.clear()  # standard input is read once a command: the last one counts
    _STDIN_TEXT[name] = text


def stdin_text(path: object) -> str | None:
    """The text standard input gave for ``path``, or None when it is an ordinary file."""
    return _STDIN_TEXT.get(str(path)) if _STDIN_TEXT else None
