"""Writing a spec: lines of code, each with the comment that says where its value came from.

Every line an importer generates carries its provenance: ``from hpa.yaml:12 FIELD`` for a
value read from the YAML, ``default: VALUE (SOURCE)`` for a controller default, or
``PLACEHOLDER: ...`` for what the user must fill in. :class:`SpecWriter` aligns those
comments and indents blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from coherence.importers.yamlsrc import Node

# Words a spec name may not be (the grammar's NAME terminal), and the built-in functions.
RESERVED = frozenset(
    (
        *("actuates", "and", "as", "by", "cooldown", "deadband", "delay", "else", "every"),
        *("for", "if", "in", "input", "keep", "let", "limit", "loop", "maximize", "minimize"),
        *("next", "not", "objective", "or", "param", "phase", "rate", "require", "senses"),
        *("stabilize", "state", "then", "tick", "to", "tolerance", "when", "window", "within"),
        *("min", "max", "abs", "ceil", "floor", "round", "sqrt", "exp", "log", "system"),
    )
)


def ident(text: str, fallback: str = "x") -> str:
    """A spec identifier from arbitrary text: ``vllm:num_requests_waiting`` -> ``vllm_num_requests_waiting``."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower() or fallback
    if name[0].isdigit() or name in RESERVED:
        name = f"m_{name}"
    return name


_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def quote(text: str) -> str:
    """``text`` as a spec string literal: quotes and backslashes escaped, and every line break
    or control character written as a space, so that YAML text can never end the string (or
    the line) and inject spec text.

    >>> quote('web }\nsystem evil { tick 1s }')
    '"web } system evil { tick 1s }"'
    """
    clean = _CONTROL.sub(" ", _BREAKS.sub(" ", text))
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def one_line(text: str) -> str:
    """Comment text on one line: a line break from the YAML is shown as ``\\n``, never kept."""
    return _CONTROL.sub("?", _BREAKS.sub(lambda m: repr(m.group())[1:-1], text))


def balanced(op: str, terms: list[str]) -> str:
    """``terms`` joined by the associative ``op`` (``max``, ``min``, ``or``, ``and``, ``+``)
    as a balanced tree: nesting grows with log2 of the count, so 65 KEDA triggers give 7
    levels, not 65 (the language's limit is 50 levels).

    >>> balanced("max", ["a", "b", "c"])
    'max(max(a, b), c)'
    >>> balanced("or", ["a", "b", "c"])
    '(a or b) or c'
    """
    if len(terms) == 1:
        return terms[0]
    half = (len(terms) + 1) // 2
    left, right = balanced(op, terms[:half]), balanced(op, terms[half:])
    if op in ("max", "min"):
        return f"{op}({left}, {right})"
    wrap = [
        f"({t})" if len(part) > 1 else t
        for t, part in ((left, terms[:half]), (right, terms[half:]))
    ]
    return f"{wrap[0]} {op} {wrap[1]}"


def num(value: float) -> str:
    """A number as the spec writes it: no trailing ``.0``, no exponent for ordinary values."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def seconds(value: float) -> str:
    return f"{num(value)}s"


def origin(node: Node) -> str:
    return f"from {node.origin}"


def default(what: str, source: str) -> str:
    return f"default: {what} ({source})"


PLACEHOLDER = "PLACEHOLDER"


@dataclass
class SpecWriter:
    """Lines of a spec with aligned trailing comments."""

    column: int = 60
    _lines: list[tuple[int, str, str]] = field(default_factory=list)
    _depth: int = 0

    def line(self, code: str, comment: str = "") -> None:
        self._lines.append((self._depth, code, comment))

    def comment(self, text: str) -> None:
        self._lines.append((self._depth, "", text))

    def blank(self) -> None:
        self._lines.append((0, "", ""))

    def open(self, code: str, comment: str = "") -> None:
        self.line(code + " {", comment)
        self._depth += 1

    def close(self) -> None:
        self._depth -= 1
        self.line("}")

    def render(self) -> str:
        out: list[str] = []
        for depth, code, raw_comment in self._lines:
            pad = "  " * depth
            # the YAML's text reaches comments (origins, names): never a line break there, and
            # never one in code (a generated line is one line whatever the input held)
            comment = one_line(raw_comment)
            code = _BREAKS.sub(" ", code)
            if not code and not comment:
                out.append("")
            elif not code:
                out.append(f"{pad}# {comment}")
            elif not comment:
                out.append(f"{pad}{code}")
            else:
                text = f"{pad}{code}"
                out.append(f"{text.ljust(self.column - 1)} # {comment}")
        return "\n".join(out) + "\n"
