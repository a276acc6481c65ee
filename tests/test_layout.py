"""The package's layout holds: z3 is imported in one place (``coherence/smt/``), and the
solver-free stages (intervals, search, IR) import without loading it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "coherence"
SOLVER_FREE = ("coherence.intervals", "coherence.search", "coherence.ir")


def _imports_z3(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: list[str] = []
    for node in ast.walk(tree):  # at module level and inside functions alike
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names.append(node.module)
    return any(n == "z3" or n.startswith("z3.") for n in names)


def test_z3_is_imported_only_under_smt() -> None:
    importers = sorted(
        str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py") if _imports_z3(p)
    )
    assert importers, "the scan found no z3 import at all: it no longer sees the solver"
    outside = [p for p in importers if not p.startswith("coherence/smt/")]
    assert outside == []


@pytest.mark.parametrize("package", SOLVER_FREE)
def test_solver_free_stages_import_without_z3(package: str) -> None:
    """Every module of the package is imported in a fresh interpreter; z3 stays unloaded."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "names = [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert names, 'no modules found'\n"
        "loaded = sorted(m for m in sys.modules if m == 'z3' or m.startswith('z3.'))\n"
        "print(len(names), loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    got = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert got.returncode == 0, got.stdout + got.stderr
