"""The profile JSON Schema and a small validator for the subset of draft 2020-12 it uses.

This module owns checking a decoded profile document against ``profile.schema.json``. The
runtime does not depend on ``jsonschema`` (a development dependency only): the validator below
interprets exactly the keywords the schema uses, reports every violation with a dotted field
path (``points[3].median_s``) and a plain message, and refuses a schema that uses a keyword it
does not know, so it cannot silently drift from the schema. The tests check that it agrees with
``jsonschema``'s ``Draft202012Validator`` on valid and malformed documents.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

__all__ = ["SCHEMA_FILE", "SUPPORTED_KEYWORDS", "SchemaViolation", "load_schema", "validate"]

SCHEMA_FILE: Final = "profile.schema.json"

_ANNOTATIONS: Final = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"}
)
_ASSERTIONS: Final = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "const",
        "minimum",
        "exclusiveMinimum",
        "maximum",
        "minLength",
        "pattern",
        "minItems",
        "minProperties",
        "required",
        "properties",
        "additionalProperties",
        "items",
    }
)
SUPPORTED_KEYWORDS: Final = _ANNOTATIONS | _ASSERTIONS


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """One place where a document breaks the schema: a dotted field path and what is wrong."""

    field: str
    message: str


@cache
def load_schema() -> dict[str, Any]:
    """The profile schema shipped with the package (parsed once)."""
    text = resources.files("coherence.calibrate").joinpath(SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate(document: object, schema: dict[str, Any] | None = None) -> list[SchemaViolation]:
    """Every violation of ``schema`` (default: the profile schema) in ``document``, in order.

    >>> [(v.field, v.message) for v in validate({"format": "x"})][:1]
    [('schema_version', 'is required but missing')]
    """
    root = load_schema() if schema is None else schema
    out: list[SchemaViolation] = []
    _check(document, root, "", root, out)
    return out


_TYPE_NAMES: Final = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: object, name: str) -> bool:
    actual = _json_type(value)
    if name == "number":
        return actual in ("integer", "number")
    if name == "integer":
        # Draft 2020-12: a number with a zero fractional part is an integer.
        return actual == "integer" or (isinstance(value, float) and value.is_integer())
    return actual == name


def _show(value: object) -> str:
    text = json.dumps(value) if _json_type(value) in _TYPE_NAMES else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise RuntimeError(f"schema: only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    if not isinstance(node, dict):
        raise RuntimeError(f"schema: $ref {ref!r} does not name a schema object")
    return node


def _check(
    value: object,
    schema: dict[str, Any],
    path: str,
    root: dict[str, Any],
    out: list[SchemaViolation],
) -> None:
    unknown = set(schema) - SUPPORTED_KEYWORDS
    if unknown:
        raise RuntimeError(f"schema: unsupported keyword(s) {sorted(unknown)} at {path or '/'}")
    where = path or "(top level)"

    def fail(message: str) -> None:
        out.append(SchemaViolation(where, message))

    if "$ref" in schema:
        before = len(out)
        _check(value, _resolve(schema["$ref"], root), path, root, out)
        if len(out) > before:
            return

    if "type" in schema:
        allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in allowed):
            wanted = " or ".join(_TYPE_NAMES[t] for t in allowed)
            got = _TYPE_NAMES.get(_json_type(value), _json_type(value))
            fail(f"expected {wanted}, got {got} ({_show(value)})")
            return
    if "const" in schema and not _same(value, schema["const"]):
        fail(f"must be {_show(schema['const'])}, got {_show(value)}")
        return
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        choices = ", ".join(_show(e) for e in schema["enum"])
        fail(f"must be one of {choices}; got {_show(value)}")
        return

    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if not math.isfinite(number):
            fail(f"must be a finite number, got {number!r}")
            return
        if "minimum" in schema and number < schema["minimum"]:
            fail(f"must be >= {schema['minimum']}, got {_show(value)}")
        if "exclusiveMinimum" in schema and number <= schema["exclusiveMinimum"]:
            fail(f"must be > {schema['exclusiveMinimum']}, got {_show(value)}")
        if "maximum" in schema and number > schema["maximum"]:
            fail(f"must be <= {schema['maximum']}, got {_show(value)}")
    elif isinstance(value, str):
        text = value
        if "minLength" in schema and len(text) < schema["minLength"]:
            fail("must not be empty" if schema["minLength"] == 1 else "is too short")
        if "pattern" in schema and re.search(schema["pattern"], text) is None:
            fail(f"does not match the expected format ({_show(value)})")
    elif isinstance(value, list | tuple):
        items: list[object] = list(value)
        if "minItems" in schema and len(items) < schema["minItems"]:
            fail(f"must have at least {schema['minItems']} item(s)")
        if "items" in schema:
            for i, item in enumerate(items):
                _check(item, schema["items"], f"{path}[{i}]", root, out)
    elif isinstance(value, dict):
        obj: dict[str, object] = value
        props: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in obj:
                out.append(SchemaViolation(_join(path, name), "is required but missing"))
        if "minProperties" in schema and len(obj) < schema["minProperties"]:
            fail(f"must have at least {schema['minProperties']} entr(y/ies)")
        extra = schema.get("additionalProperties", True)
        for name, item in obj.items():
            if name in props:
                _check(item, props[name], _join(path, name), root, out)
            elif extra is False:
                allowed_names = ", ".join(props) or "none"
                out.append(
                    SchemaViolation(
                        _join(path, name), f"is not an allowed field (allowed: {allowed_names})"
                    )
                )
            elif isinstance(extra, dict):
                _check(item, extra, _join(path, name), root, out)


def _same(a: object, b: object) -> bool:
    """JSON equality: booleans are not numbers, 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b
