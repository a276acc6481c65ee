"""What ``coherence`` keeps between runs: the analyses' results and the pieces' durations.

Both live in one directory (:func:`cache_dir`): ``$COHERENCE_CACHE_DIR``, else
``$XDG_CACHE_HOME/coherence``, else ``~/.cache/coherence``; ``COHERENCE_CACHE_DIR`` set to
the empty string turns every cache off.

The results cache (:class:`ResultCache`, ``results/`` in that directory) keeps the report of
each analysed system. Every analysis is a deterministic function of the lowered system and
the options (solver budgets are Z3 ``rlimit`` units, seeds are fixed), so a report computed
once is the report every later run computes: a run whose key matches reads the report
instead of analysing. The key (:func:`result_key`) is a SHA-256 over

- the lowered system's full ``repr``: every declaration, expression, parameter value (those a
  calibration profile supplied included), source span and the file's path;
- the options that change results (the analyses chosen, ticks, horizon, mode, rlimit,
  invariants; not ``jobs``, which changes none);
- the code: a hash of every file of the ``coherence`` package (:func:`build_id`), and the
  versions of Python and of the libraries the analyses compute with (Z3, NumPy, SciPy, SymPy,
  python-control).

What is not in the key is not cached: a report where a solver call was stopped by the
wall-clock guard (:data:`GUARD_NOTE`, a machine-dependent answer) or an
analysis failed (COH903) is never written. Code patched into a running process (a test's
monkeypatch) is not seen by the key; such callers run without the cache (``--no-cache``,
``COHERENCE_NO_CACHE=1``).

Entries are data, never code: a report is kept as tagged JSON (:mod:`coherence.codec`) with
its key inside, and read back through an allowlist of the result classes, so a file planted in
the directory (a CI cache restored from another job) can at worst be a miss, never run
anything. Nothing here is pickled, and the parser is built in each process rather than loaded
from this directory.

Entries are written to a temporary file and renamed into place, so concurrent runs never see
half an entry; one that cannot be read (damaged, or from an incompatible build) is a miss and
is removed. The directory is pruned to :data:`MAX_BYTES`, least recently used first.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

FORMAT = 2  # the layout of an entry; bumped when it changes (2: tagged JSON)
MAX_BYTES = 256 * 2**20  # the results directory's size, pruned least recently used first
LIBRARIES = ("z3-solver", "numpy", "scipy", "sympy", "control")
# how the reason of a solver call the wall-clock guard stopped begins
# (:mod:`coherence.smt.solver`): such an answer depends on the machine, so a report that
# carries it is never kept
GUARD_NOTE = "stopped by the wall-clock guard"


def cache_dir() -> Path | None:
    """Where ``coherence`` keeps what it caches between runs: ``$COHERENCE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/coherence``, else ``~/.cache/coherence``; None (no cache) when
    ``COHERENCE_CACHE_DIR`` is set to the empty string or the directory cannot be made."""
    env = os.environ.get("COHERENCE_CACHE_DIR")
    if env is not None:
        if not env:
            return None
        path = Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".cache") / "coherence"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path


def results_disabled() -> bool:
    """``COHERENCE_NO_CACHE`` set to anything but the empty string: the same as ``--no-cache``."""
    return bool(os.environ.get("COHERENCE_NO_CACHE"))


@functools.cache
def build_id() -> str:
    """A hash of the code that computes results: every file of the ``coherence`` package (its
    modules, grammar and schemas, in path order), and the versions of Python and of
    :data:`LIBRARIES`."""
    from importlib import metadata

    h = hashlib.sha256(f"coherence-results/{FORMAT}\n{sys.version}\n".encode())
    for lib in LIBRARIES:
        try:
            version = metadata.version(lib)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{lib}=={version}\n".encode())
    package = Path(__file__).resolve().parent
    for path in sorted(_package_files(package)):
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _package_files(package: Path) -> Iterable[Path]:
    for path in package.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def result_key(system: Any, options: tuple[Any, ...]) -> str:
    """The key of one system's report under ``options`` (see the module docstring)."""
    h = hashlib.sha256(build_id().encode())
    h.update(repr(options).encode())
    h.update(b"\0")
    h.update(repr(system).encode())
    return h.hexdigest()


class ResultCache:
    """Reports of analysed systems, one file each under ``root / "results"``."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "results"
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        """The report kept under ``key``, or None (counted as a hit or a miss)."""
        path = self._path(key)
        from coherence.codec import CodecError, loads

        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, UnicodeDecodeError):
            _remove(path)
            self.misses += 1
            return None
        try:
            report = loads(text, key)
        except (CodecError, TypeError, ValueError):
            # damaged, planted, from a build whose classes differ, or not what its name
            # says: a miss, and the file goes
            _remove(path)
            self.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        self.hits += 1
        return report

    def put(self, key: str, report: Any) -> None:
        """Keep ``report`` under ``key``; a directory that cannot be written is passed over."""
        from coherence.codec import CodecError, dumps

        path = self._path(key)
        try:
            text = dumps(report, key)
        except CodecError:  # a value no report format holds: not kept
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as stream:
                    stream.write(text)
                os.replace(tmp, path)
            except BaseException:
                _remove(Path(tmp))
                raise
        except OSError:
            return
        self.prune()

    def prune(self, limit: int = MAX_BYTES) -> None:
        """Remove the least recently used entries until the directory holds ``limit`` bytes."""
        entries = []
        for path in self.dir.glob("*/*.json"):
            try:
                st = path.stat()
            except OSError:
                continue
            entries.append((st.st_mtime_ns, path.name, st.st_size, path))
        total = sum(e[2] for e in entries)
        for _, _, size, path in sorted(entries):
            if total <= limit:
                break
            _remove(path)
            total -= size


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


class Durations:
    """How long each piece of a check took when it last ran (``durations.json`` in the cache
    directory), so that ``-j`` hands out the longest first. Only the order of the pieces
    depends on it, never a result: the pieces are independent (docs/ci.md, "Parallel runs").
    A piece is named by its file, system and piece (``specs/a.coh\\0a\\0conflicts``); the
    most recently recorded :data:`KEPT` are kept."""

    FILE = "durations.json"
    KEPT = 4096

    def __init__(self, root: Path) -> None:
        self.path = root / self.FILE
        self.seconds: dict[str, float] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self.seconds = {
                    str(k): float(v)
                    for k, v in data.items()
                    if isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
                }
        except (OSError, ValueError):
            pass

    def get(self, name: str) -> float | None:
        return self.seconds.get(name)

    def record(self, measured: Mapping[str, float]) -> None:
        """Keep ``measured`` (the newest last) and write the file; one that cannot be
        written is passed over."""
        for name, sec in measured.items():
            self.seconds.pop(name, None)
            self.seconds[name] = round(float(sec), 3)
        items = list(self.seconds.items())[-self.KEPT :]
        self.seconds = dict(items)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".", suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump(self.seconds, stream, indent=0)
            os.replace(tmp, self.path)
        except OSError:
            _remove(Path(tmp))


def longest_first(
    names: Sequence[str], first: Sequence[int], durations: Durations | None
) -> list[int]:
    """The order in which to hand out pieces named ``names``: those a run has timed, longest
    first; a piece never timed keeps its place by the caller's guess (``first``, the pieces
    it expects to be long, ahead of every timed one; the others after them)."""
    guess = set(first)
    fallback = list(dict.fromkeys([*first, *range(len(names))]))
    rank = {i: n for n, i in enumerate(fallback)}

    def key(i: int) -> tuple[int, float, int]:
        sec = durations.get(names[i]) if durations is not None else None
        if sec is None:
            return (0 if i in guess else 2, 0.0, rank[i])
        return (1, -sec, rank[i])

    return sorted(range(len(names)), key=key)


def run_command(clear: bool, out: TextIO) -> int:
    """``coherence cache [--clear]``: the cache directory and what it holds; with ``clear``,
    empty it (what another process is writing is left to it)."""
    root = cache_dir()
    if root is None:
        out.write("no cache: COHERENCE_CACHE_DIR is empty, or the directory cannot be made\n")
        return 0
    results = ResultCache(root)
    entries = sorted(results.dir.glob("*/*.json"))
    size = 0
    for path in entries:
        with contextlib.suppress(OSError):
            size += path.stat().st_size
    others = [root / Durations.FILE]
    if clear:
        for path in [*entries, *others]:
            _remove(path)
        for sub in sorted(results.dir.glob("*"), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
        out.write(f"cleared {root}: {len(entries)} report{'' if len(entries) == 1 else 's'}\n")
        return 0
    timed = len(Durations(root).seconds)
    out.write(
        f"{root}\n"
        f"  results    {len(entries)} report{'' if len(entries) == 1 else 's'}, "
        f"{size / 2**20:.1f} MiB (at most {MAX_BYTES // 2**20} MiB){_off()}\n"
        f"  durations  {timed} piece{'' if timed == 1 else 's'} timed\n"
    )
    return 0


def _off() -> str:
    return "; off: COHERENCE_NO_CACHE is set" if results_disabled() else ""
