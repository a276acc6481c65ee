"""YAML with positions: the nodes of ``yaml.compose``, wrapped so every value knows its origin.

Importers never see plain Python values: each :class:`Node` carries the file, the 1-based line
and column where it starts, and its field path (``spec.metrics[0].resource.name``), so that a
generated spec line can say where it came from and an error can say where it is. PyYAML is
imported on first use only; without it, :func:`load_documents` raises :class:`MissingYaml`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class MissingYaml(Exception):
    """PyYAML is not installed."""


@dataclass(frozen=True, slots=True)
class Loc:
    path: str
    line: int
    column: int

    @property
    def short(self) -> str:
        return f"{Path(self.path).name}:{self.line}"


class ImportFailure(Exception):
    """A located error in the input: ``FILE:LINE:COL: error: MESSAGE`` and a hint."""

    def __init__(self, loc: Loc, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.hint = hint

    def render(self) -> str:
        out = f"{self.loc.path}:{self.loc.line}:{self.loc.column}: error: {self.message}\n"
        if self.hint:
            out += f"hint: {self.hint}\n"
        return out


@dataclass(frozen=True, slots=True)
class Node:
    """One YAML node: a mapping, a sequence or a scalar, with its location and field path."""

    raw: Any  # yaml.Node
    loc: Loc
    path: str

    # ---- what it is -------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        name = type(self.raw).__name__
        return {"MappingNode": "mapping", "SequenceNode": "list", "ScalarNode": "scalar"}.get(
            name, name
        )

    @property
    def origin(self) -> str:
        """``hpa.yaml:12 spec.behavior.scaleDown.stabilizationWindowSeconds``."""
        return f"{self.loc.short} {self.path}" if self.path else self.loc.short

    def fail(self, message: str, hint: str = "") -> ImportFailure:
        return ImportFailure(self.loc, message, hint)

    def _expect(self, kind: str) -> None:
        if self.kind != kind:
            raise self.fail(f"`{self.path or 'document'}` must be a {kind}, not a {self.kind}")

    # ---- mappings ---------------------------------------------------------------------------

    def _child(self, value: Any, key: str) -> Node:
        path = f"{self.path}.{key}" if self.path else key
        return Node(value, _loc(self.loc.path, value), path)

    def get(self, key: str) -> Node | None:
        self._expect("mapping")
        found = None
        for k, v in self.raw.value:
            if type(k).__name__ == "ScalarNode" and k.value == key:
                found = self._child(v, key)
        if found is not None and found.is_null:
            return None
        return found

    def require(self, key: str, hint: str = "") -> Node:
        node = self.get(key)
        if node is None:
            where = f"`{self.path}`" if self.path else "the document"
            raise self.fail(f"{where} has no `{key}`", hint or f"add `{key}:` here")
        return node

    def keys(self) -> list[str]:
        self._expect("mapping")
        return [str(k.value) for k, _ in self.raw.value]

    def entries(self) -> list[tuple[str, Node]]:
        self._expect("mapping")
        return [(str(k.value), self._child(v, str(k.value))) for k, v in self.raw.value]

    # ---- sequences --------------------------------------------------------------------------

    def items(self) -> list[Node]:
        self._expect("list")
        return [
            Node(v, _loc(self.loc.path, v), f"{self.path}[{i}]")
            for i, v in enumerate(self.raw.value)
        ]

    # ---- scalars ----------------------------------------------------------------------------

    @property
    def is_null(self) -> bool:
        return self.kind == "scalar" and str(self.raw.tag) == "tag:yaml.org,2002:null"

    def text(self) -> str:
        self._expect("scalar")
        return str(self.raw.value)

    def number(self) -> float:
        """A plain number, or a Kubernetes quantity (``500m``, ``2Gi``, ``1.5k``)."""
        value = parse_quantity(self.text())
        if value is None or not math.isfinite(value):
            raise self.fail(
                f"`{self.path}` must be a number or a Kubernetes quantity, not `{self.text()}`",
                "for example 80, 0.5, 500m or 2Gi",
            )
        return value

    def integer(self, lo: int | None = None) -> int:
        v = self.number()
        if abs(v) > INT32_MAX:
            raise self.fail(
                f"`{self.path}` must be at most {INT32_MAX} (a 32-bit integer), not `{self.text()}`",
                "Kubernetes counts and seconds are 32-bit integers",
            )
        if v != int(v):
            raise self.fail(f"`{self.path}` must be a whole number, not `{self.text()}`")
        if lo is not None and v < lo:
            raise self.fail(f"`{self.path}` must be at least {lo}, not {int(v)}")
        return int(v)

    def boolean(self) -> bool:
        t = self.text().strip().lower()
        if t in ("true", "yes", "on", "1"):
            return True
        if t in ("false", "no", "off", "0"):
            return False
        raise self.fail(f"`{self.path}` must be true or false, not `{self.text()}`")

    def duration(self) -> float:
        """Seconds from ``60s``, ``5m``, ``1h30m``, ``250ms`` or a bare number of seconds."""
        t = self.text().strip()
        v = parse_duration(t)
        if v is None:
            raise self.fail(
                f"`{self.path}` must be a duration, not `{t}`", "for example 60s, 5m or 1h"
            )
        return v


INT32_MAX = 2**31 - 1
MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_YAML_DEPTH = 64
"""Nesting of flow collections (``[[[...]]]``) a Kubernetes object never needs; deeper input
is refused before PyYAML's recursive composer sees it."""


def _too_deep(text: str) -> tuple[int, int] | None:
    """(line, column) where flow nesting first exceeds MAX_YAML_DEPTH, or None."""
    depth, line, col, quote, prev = 0, 1, 0, "", "\n"
    comment = False
    for ch in text:
        col += 1
        before, prev = prev, ch
        if ch == "\n":
            line, col, comment = line + 1, 0, False
            continue
        if comment:
            continue
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "#" and before in " \t\n":
            comment = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_YAML_DEPTH:
                return line, col
        elif ch in "]}":
            depth = max(0, depth - 1)
    return None


def _loc(path: str, raw: Any) -> Loc:
    mark = raw.start_mark
    return Loc(path, int(mark.line) + 1, int(mark.column) + 1)


_SUFFIX = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
    "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$"
)


def parse_quantity(text: str) -> float | None:
    """A Kubernetes resource quantity as a float (``500m`` -> 0.5), or None."""
    m = _QUANTITY.match(text.strip())
    if not m:
        return None
    return float(m.group(1)) * _SUFFIX[m.group(2)]


_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ms|h|m|s)")


def parse_duration(text: str) -> float | None:
    """A Go-style duration (``1m30s``) or plain seconds, in seconds; None if malformed."""
    t = text.strip()
    if re.fullmatch(r"\d+(?:\.\d*)?", t):
        return float(t)
    pos, total = 0, 0.0
    scale = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    for m in _DURATION.finditer(t):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * scale[m.group(2)]
        pos = m.end()
    return total if pos == len(t) and pos > 0 else None


def load_documents(path: str) -> list[Node]:
    """Every non-empty document of a YAML file, as located nodes.

    Raises :class:`MissingYaml` without PyYAML and :class:`ImportFailure` for unreadable
    files and syntax errors (located at the parser's mark).
    """
    try:
        import yaml
    except ImportError:
        raise MissingYaml() from None
    from coherence.source import SourceReadError, read_text_file

    try:
        text = read_text_file(path, MAX_YAML_BYTES, "YAML file")
    except SourceReadError as e:
        raise ImportFailure(Loc(path, e.line, e.column), e.message, e.help) from None
    deep = _too_deep(text)
    if deep is not None:
        raise ImportFailure(
            Loc(path, *deep),
            f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep here",
            "a Kubernetes object nests a few levels; check the brackets",
        )
    try:
        nodes = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None]
    except RecursionError:
        raise ImportFailure(
            Loc(path, 1, 1),
            "the YAML is nested too deeply to read",
            "a Kubernetes object nests a few levels; check the indentation",
        ) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = " ".join(x for x in (e.context, e.problem) if x) or "malformed YAML"
        raise ImportFailure(
            Loc(path, line, col), f"YAML syntax error: {what}", "check the indentation and quoting"
        ) from None
    except yaml.YAMLError as e:
        raise ImportFailure(Loc(path, 1, 1), f"YAML error: {e}") from None
    docs = [Node(n, _loc(path, n), "") for n in nodes]
    if not docs:
        raise ImportFailure(Loc(path, 1, 1), "the file holds no YAML document")
    return docs


def find_kind(docs: list[Node], kinds: tuple[str, ...], api_prefixes: tuple[str, ...]) -> Node:
    """The first document of one of ``kinds``; a located error naming what was found."""
    for doc in docs:
        if doc.kind != "mapping":
            raise doc.fail("a Kubernetes object must be a mapping")
        kind = doc.get("kind")
        if kind is not None and kind.kind == "scalar" and kind.text() in kinds:
            api = doc.require("apiVersion", "for example `apiVersion: autoscaling/v2`")
            version = api.text()
            if not any(version == a or version.startswith(a) for a in api_prefixes):
                raise api.fail(
                    f"unsupported apiVersion `{version}` for {kind.text()}",
                    f"supported: {', '.join(api_prefixes)}",
                )
            return doc
    first = docs[0]
    kind = first.get("kind")
    found = kind.text() if kind is not None and kind.kind == "scalar" else ""
    where = kind if kind is not None else first
    hint = _IMPORTER.get(found, "")
    hint = f"for a {found} use `{hint}`" if hint else f"this importer reads a {' or '.join(kinds)}"
    raise where.fail(
        f"expected a {' or '.join(kinds)}, found {f'`{found}`' if found else 'no kind'}", hint
    )


_IMPORTER = {
    "HorizontalPodAutoscaler": "coherence import hpa",
    "ScaledObject": "coherence import keda",
    "Service": "coherence import knative",
    "Configuration": "coherence import knative",
    "Revision": "coherence import knative",
}
