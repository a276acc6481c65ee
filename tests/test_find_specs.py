"""Spec discovery: a directory that cannot be listed is a named error, never a silent skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coherence.diagnostics import CoherenceError
from coherence.pipeline import find_specs

SPEC = "system s {\n  state x: float in [0, 1] = 0\n}\n"


def test_directories_are_searched_recursively_in_sorted_order(tmp_path: Path) -> None:
    for rel in ("b/z.coh", "a/y.coh", "x.coh", "a/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(SPEC)
    found = [p.relative_to(tmp_path).as_posix() for p in find_specs([str(tmp_path)])]
    assert found == ["a/y.coh", "b/z.coh", "x.coh"]


def test_an_unlistable_subdirectory_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.coh").write_text(SPEC)
    (tmp_path / "locked").mkdir()
    real = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(CoherenceError) as err:
        find_specs([str(tmp_path)])
    assert "locked" in str(err.value)


def test_a_directory_without_specs_says_so(tmp_path: Path) -> None:
    with pytest.raises(CoherenceError) as err:
        find_specs([str(tmp_path)])
    assert "no `*.coh` spec files" in str(err.value)
