"""Source text and spans: where every diagnostic and finding points.

A :class:`SourceFile` holds the text of one spec; a :class:`Span` is a half-open range of it
with 1-based line and column numbers for both ends, as editors and SARIF count them.

Line ends are the three that editors honour: ``\\r\\n``, a lone ``\\r`` and ``\\n``. A source
file stores its text with each of them written as ``\\n`` (so the lexer, the locations and
the quoted excerpts agree on where a line ends: a comment never runs past a lone carriage
return) and without a leading UTF-8 byte-order mark. Form feeds and other control
characters are ordinary characters inside a line; they never start a new one.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

BOM = "\ufeff"
MAX_SOURCE_BYTES = 8 * 1024 * 1024


def normalize_newlines(text: str) -> str:
    """``text`` with a leading byte-order mark removed and every line end written ``\\n``.

    >>> normalize_newlines("\\ufeffa\\r\\nb\\rc\\n")
    'a\\nb\\nc\\n'
    """
    if text.startswith(BOM):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


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
    """The text of one spec file, with line access for rendering carets.

    The text is stored normalized (:func:`normalize_newlines`): line and column numbers are
    those of the file as written, whatever its line ends.
    """

    path: str
    text: str
    _lines: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        text = normalize_newlines(self.text)
        if text is not self.text:
            object.__setattr__(self, "text", text)
        object.__setattr__(self, "_lines", tuple(text.split("\n")))

    def line(self, number: int) -> str:
        if 1 <= number <= len(self._lines):
            return self._lines[number - 1]
        return ""

    @property
    def line_count(self) -> int:
        # a final line end does not start another line
        n = len(self._lines)
        return n - 1 if n > 1 and self._lines[-1] == "" else (0 if self.text == "" else n)

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


class SourceReadError(Exception):
    """A spec path that cannot be read as text; ``line``/``column`` locate bad bytes."""

    def __init__(self, message: str, help: str = "", line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.help = help
        self.line = line
        self.column = column


def decode_position(data: bytes, offset: int) -> tuple[int, int]:
    """Line and column (1-based, in characters) of byte ``offset`` of UTF-8 ``data``."""
    head = data[:offset]
    starts = [head.rfind(b"\n"), head.rfind(b"\r")]
    last = max(starts)
    line = 1 + head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n")
    prefix = head[last + 1 :].decode("utf-8", "replace")
    if line == 1 and prefix.startswith(BOM):
        prefix = prefix[1:]
    return line, len(prefix) + 1


def read_text_file(path: str | Path, limit: int = MAX_SOURCE_BYTES, what: str = "file") -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes, read without blocking.

    Raises :class:`SourceReadError` with a plain message for a missing path, a directory, a
    FIFO or device (never opened for reading, so it cannot block), a permission problem, a
    file over the limit (at most ``limit + 1`` bytes are ever read) or bytes that are not
    UTF-8 (located at the first bad byte).
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise SourceReadError(f"no such file `{p}`", "check the path") from None
    except PermissionError:
        raise SourceReadError(
            f"cannot reach `{p}`: permission denied",
            "a folder on the path cannot be searched; check its permissions",
        ) from None
    except OSError as e:
        raise SourceReadError(f"cannot read `{p}`: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise SourceReadError(f"`{p}` is a directory", f"give the path of a {what}")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        raise SourceReadError(f"`{p}` is {kind}", f"give the path of a regular {what}")
    if st.st_size > limit:
        raise SourceReadError(f"`{p}` is larger than {_size(limit)}", f"is this really a {what}?")
    try:
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(p, flags)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
    except PermissionError:
        raise SourceReadError(
            f"cannot read `{p}`: permission denied", "check the file's permissions"
        ) from None
    except OSError as e:
        raise SourceReadError(f"cannot read `{p}`: {e.strerror}") from None
    if len(data) > limit:
        raise SourceReadError(f"`{p}` is larger than {_size(limit)}", f"is this really a {what}?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line, column = decode_position(data, e.start)
        raise SourceReadError(
            f"`{p}` is not UTF-8 text ({e.reason}: byte 0x{data[e.start]:02x})",
            "save the file as UTF-8",
            line,
            column,
        ) from None


def _size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // 1024 // 1024} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


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
