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
        for depth, code, comment in self._lines:
            pad = "  " * depth
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
