"""Project configuration: ``[tool.coherence]`` in ``pyproject.toml``, or ``coherence.toml``.

Found by walking up from the current directory: in each directory a ``coherence.toml``
(keys at the top level) wins over a ``pyproject.toml`` with a ``[tool.coherence]`` table; a
``pyproject.toml`` without that table is passed over. The first file found is the project's
configuration; its directory is the project root, and relative paths in it are relative to it.

```toml
[tool.coherence]
paths = ["specs"]            # checked when `coherence check` is given no paths
select = ["COH"]             # code prefixes: "COH3" selects every COH3xx
ignore = ["COH218"]
fail-level = "warning"       # error | warning | note
unknown = "warn"             # fail | warn | ignore: what an unknown verdict does to the run
baseline = "coherence-baseline.json"
ticks = 600                  # nominal simulation length
horizon = 40                 # BMC horizon (ticks)
rlimit = 2000000             # Z3 resource limit per query
mode = "auto"                # auto | exact | overapprox
invariants = false           # Houdini invariants for undecided `always` requirements
jobs = 0                     # worker processes for `coherence check` (0: one per CPU)
cache = true                 # keep reports between runs (the results cache)
linear = true                # run the linear analysis
smt = true                   # run the formal analysis
```

Keys are written with dashes or underscores. Command-line options override the file. A bad
file is a configuration error (exit 2) that names the file, the line where it can, and the key.

>>> Config().fail_level
'error'
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coherence.diagnostics import CoherenceError, Severity

CONFIG_FILES = ("coherence.toml", "pyproject.toml")
MODES = ("auto", "exact", "overapprox")


class ConfigError(CoherenceError):
    """A configuration file that cannot be used: exit code 2, located at file and key."""


@dataclass(frozen=True, slots=True)
class Config:
    """The settings of a project; ``source`` is the file they came from (None: defaults)."""

    source: str | None = None
    root: str = "."
    paths: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_level: str = "error"
    unknown: str = "warn"  # fail | warn | ignore (coherence.policy)
    baseline: str | None = None
    ticks: int | None = None
    horizon: int | None = None
    rlimit: int | None = None
    mode: str | None = None
    invariants: bool = False
    linear: bool = True
    smt: bool = True
    jobs: int = 0  # worker processes for `coherence check`: 0 is one per CPU
    cache: bool = True  # the results cache of `coherence check` (coherence.cache)


def find_config(start: Path | None = None) -> Path | None:
    """The configuration file for ``start`` (default: the current directory), or None."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "coherence.toml"
        if candidate.is_file():
            return candidate
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and _has_tool_table(candidate):
            return candidate
    return None


def _has_tool_table(path: Path) -> bool:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        # a broken pyproject.toml is reported when it is the one in use, not here
        return "[tool.coherence]" in path.read_text(encoding="utf-8", errors="replace")
    tool = doc.get("tool")
    return isinstance(tool, dict) and "coherence" in tool


def load_config(path: Path | None = None, start: Path | None = None) -> Config:
    """Read the configuration at ``path``, or the one found from ``start``; defaults if none."""
    file = path if path is not None else find_config(start)
    if file is None:
        return Config()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no configuration file `{file}`") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the configuration `{file}`: {e}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{file}: not valid TOML: {e}") from None
    tool = doc.get("tool")
    if file.name == "pyproject.toml" or (isinstance(tool, dict) and "coherence" in tool):
        table = tool.get("coherence") if isinstance(tool, dict) else None
        prefix = "tool.coherence"
        if table is None:
            raise ConfigError(f"{file}: no [tool.coherence] table")
    else:
        table, prefix = doc, ""
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: [{prefix}] must be a table")
    return _parse(table, file, text, prefix)


_Check = Callable[[Any], Any]


def _strings(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise ValueError("expected a string or a list of strings")


def _positive(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"expected a positive whole number, got {v!r}")
    return v


def _jobs(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"expected 0 (one per CPU) or a positive whole number, got {v!r}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _choice(options: tuple[str, ...]) -> _Check:
    def check(v: Any) -> str:
        if not isinstance(v, str) or v.lower() not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {v!r}")
        return v.lower()

    return check


def _string(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a path, got {v!r}")
    return v


def _codes(v: Any) -> tuple[str, ...]:
    from coherence.suppress import check_prefixes

    codes = tuple(c.strip().upper() for c in _strings(v))
    unknown = check_prefixes(codes)
    if unknown:
        raise ValueError(f"`{unknown[0]}` matches no diagnostic code (see `coherence rules`)")
    return codes


_KEYS: dict[str, tuple[str, _Check]] = {
    "paths": ("paths", _strings),
    "select": ("select", _codes),
    "ignore": ("ignore", _codes),
    "fail-level": ("fail_level", _choice(tuple(str(s) for s in Severity))),
    "unknown": ("unknown", _choice(("fail", "warn", "ignore"))),
    "baseline": ("baseline", _string),
    "ticks": ("ticks", _positive),
    "horizon": ("horizon", _positive),
    "rlimit": ("rlimit", _positive),
    "mode": ("mode", _choice(MODES)),
    "invariants": ("invariants", _bool),
    "linear": ("linear", _bool),
    "smt": ("smt", _bool),
    "jobs": ("jobs", _jobs),
    "cache": ("cache", _bool),
}


def _parse(table: Mapping[str, Any], file: Path, text: str, prefix: str) -> Config:
    values: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("_", "-")
        where = _locate(file, text, prefix, raw_key)
        table_name = f"[{prefix}] " if prefix else ""
        if key not in _KEYS:
            close = difflib.get_close_matches(key, list(_KEYS), n=1)
            raise ConfigError(
                f"{where}: {table_name}unknown key `{raw_key}`",
                f"did you mean `{close[0]}`?" if close else f"keys: {', '.join(_KEYS)}",
            )
        field, check = _KEYS[key]
        try:
            values[field] = check(value)
        except ValueError as e:
            raise ConfigError(f"{where}: {table_name}`{raw_key}`: {e}") from None
    root = file.parent
    if "paths" in values:
        values["paths"] = tuple(_relative(root / p) for p in values["paths"])
    if "baseline" in values:
        values["baseline"] = _relative(root / values["baseline"])
    return Config(source=str(file), root=_relative(root), **values)


def _relative(path: Path) -> str:
    """A path relative to the current directory (``..`` included), as reports show it."""
    return Path(os.path.relpath(Path(path).resolve(), Path.cwd().resolve())).as_posix()


def _locate(file: Path, text: str, prefix: str, key: str) -> str:
    """``file:line`` of a key for error messages (just ``file`` where it is not found)."""
    lines = text.splitlines()
    start = 0
    if prefix:
        header = re.compile(r"^\s*\[\s*" + re.escape(prefix) + r"\s*\]\s*(#.*)?$")
        start = next((i + 1 for i, line in enumerate(lines) if header.match(line)), 0)
    pattern = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=")
    for i in range(start, len(lines)):
        if i > start and prefix and lines[i].lstrip().startswith("["):
            break
        if pattern.match(lines[i]):
            return f"{file}:{i + 1}"
    return str(file)
