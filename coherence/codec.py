"""Reports as data: a system's report to JSON and back, with nothing ever run on the way in.

The results cache (:mod:`coherence.cache`) keeps reports in a directory others may write (a CI
cache restored from a previous job), so what it reads back must be data, not code: no
``pickle``. :func:`dumps` writes a :class:`~coherence.results.SystemReport` as JSON in which
every object is tagged by its class name; :func:`loads` rebuilds it from an allowlist of the
result classes (:data:`CLASSES`, :data:`ENUMS`), field by field, checking each field's name,
and rejects anything else with :class:`CodecError`. Tuples, dicts with any keys and the
float values JSON lacks (inf, -inf, NaN) keep their identity, so a report read back equals
the report written.

>>> from coherence.results import SystemReport
>>> from coherence.source import Span
>>> r = SystemReport("s", "a.coh", Span("a.coh", 1, 1, 1, 5), (), ("up",))
>>> loads(dumps(r)) == r
True
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from typing import Any

import numpy as np

from coherence.diagnostics import Severity
from coherence.results import (
    AnalysisResult,
    Coherence,
    Finding,
    PieceTime,
    Status,
    SystemReport,
    Table,
    TraceStep,
    TraceView,
    Verdict,
)
from coherence.source import Span


class CodecError(ValueError):
    """Data that is not a report this build writes."""


CLASSES: dict[str, type] = {
    c.__name__: c
    for c in (
        SystemReport,
        AnalysisResult,
        Finding,
        Verdict,
        Table,
        TraceView,
        TraceStep,
        PieceTime,
        Span,
    )
}
ENUMS: dict[str, type[enum.Enum]] = {e.__name__: e for e in (Status, Severity, Coherence)}


def _encode(x: Any) -> Any:
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, enum.Enum):
        if type(x).__name__ not in ENUMS:
            raise CodecError(f"enum {type(x).__name__} is not a report value")
        return {"e": type(x).__name__, "v": x.name}
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return f if math.isfinite(f) else {"f": repr(f)}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        name = type(x).__name__
        if CLASSES.get(name) is not type(x):
            raise CodecError(f"class {name} is not a report value")
        fields = {f.name: _encode(getattr(x, f.name)) for f in dataclasses.fields(x) if f.init}
        return {"c": name, "v": fields}
    if isinstance(x, tuple):
        return {"t": [_encode(v) for v in x]}
    if isinstance(x, list):
        return [_encode(v) for v in x]
    if isinstance(x, dict):
        return {"d": [[_encode(k), _encode(v)] for k, v in x.items()]}
    if isinstance(x, np.ndarray):
        return [_encode(v) for v in x.tolist()]
    raise CodecError(f"a {type(x).__name__} is not a report value")


def _decode(x: Any) -> Any:
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, list):
        return [_decode(v) for v in x]
    if not isinstance(x, dict) or len(x) not in (1, 2):
        raise CodecError("an object that is not a tagged report value")
    if "t" in x and len(x) == 1:
        return tuple(_decode(v) for v in _list(x["t"]))
    if "d" in x and len(x) == 1:
        out = {}
        for pair in _list(x["d"]):
            if not isinstance(pair, list) or len(pair) != 2:
                raise CodecError("a dict entry that is not a pair")
            out[_decode(pair[0])] = _decode(pair[1])
        return out
    if "f" in x and len(x) == 1:
        if x["f"] not in ("inf", "-inf", "nan"):
            raise CodecError("a float that is not inf, -inf or nan")
        return float(x["f"])
    if "e" in x and "v" in x:
        cls = ENUMS.get(x["e"]) if isinstance(x["e"], str) else None
        if cls is None or not isinstance(x["v"], str) or x["v"] not in cls.__members__:
            raise CodecError("an unknown enum value")
        return cls[x["v"]]
    if "c" in x and "v" in x:
        kind = CLASSES.get(x["c"]) if isinstance(x["c"], str) else None
        if kind is None or not isinstance(x["v"], dict):
            raise CodecError("an unknown class")
        names = {f.name for f in dataclasses.fields(kind) if f.init}
        if not set(x["v"]) <= names:
            raise CodecError(f"unknown fields of {x['c']}")
        return kind(**{k: _decode(v) for k, v in x["v"].items()})
    raise CodecError("an object that is not a tagged report value")


def _list(x: Any) -> list[Any]:
    if not isinstance(x, list):
        raise CodecError("a list was expected")
    return x


def dumps(report: SystemReport, key: str = "") -> str:
    """``report`` as JSON (with ``key``, the cache key it is kept under)."""
    return json.dumps({"key": key, "report": _encode(report)}, separators=(",", ":"))


def loads(text: str, key: str | None = None) -> SystemReport:
    """The report in ``text``; :class:`CodecError` when it is not one (or, with ``key``,
    when it was kept under another key)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"key", "report"}:
        raise CodecError("not a kept report")
    if key is not None and doc["key"] != key:
        raise CodecError("kept under another key")
    try:
        report = _decode(doc["report"])
    except (TypeError, RecursionError) as exc:
        raise CodecError(str(exc)) from None
    if not isinstance(report, SystemReport):
        raise CodecError("not a system report")
    return report
