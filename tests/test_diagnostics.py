"""Diagnostics, data-driven: the expected codes are written next to the offending lines.

Each ``tests/diagnostics/*.coh`` marks lines with ``# E: CODE [CODE...]``; the test compiles
the file and requires exactly those (line, code) pairs. The rendered text is a golden file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coherence.compile import compile_source, read_source
from coherence.diagnostics import REGISTRY, render
from coherence.source import SourceFile

CASES = sorted((Path(__file__).parent / "diagnostics").glob("*.coh"))
MARK = re.compile(r"#\s*E:\s*((?:COH\d{3}\s*)+)$")


def expected_codes(text: str) -> set[tuple[int, str]]:
    out = set()
    for i, line in enumerate(text.splitlines(), start=1):
        m = MARK.search(line)
        if m:
            out |= {(i, code) for code in m.group(1).split()}
    return out


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_expected_codes_on_their_lines(path: Path) -> None:
    src = read_source(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    assert isinstance(src, SourceFile)
    result = compile_source(src)
    actual = {(d.span.line, d.code) for d in result.diagnostics}
    assert actual == expected_codes(src.text)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_rendered_diagnostics_golden(path: Path, golden, root: Path) -> None:  # type: ignore[no-untyped-def]
    rel = path.relative_to(root)
    src = SourceFile(str(rel), path.read_text(encoding="utf-8"))
    result = compile_source(src)
    text = "\n\n".join(render(d, src) for d in result.diagnostics) + "\n"
    golden.check(f"diagnostics/{path.stem}.txt", text)


def test_three_mistakes_give_three_located_errors() -> None:
    path = Path(__file__).parent / "diagnostics" / "three.coh"
    result = compile_source(SourceFile("three.coh", path.read_text(encoding="utf-8")))
    errors = [d for d in result.diagnostics if d.level.name == "ERROR"]
    assert [(d.code, d.span.line, d.span.column) for d in errors] == [
        ("COH101", 8, 3),
        ("COH201", 8, 25),
        ("COH207", 9, 14),
    ]
    rendered = render(errors[1], result.source)
    assert "three.coh:8:25" in rendered
    assert "^^^^^^^" in rendered
    assert "did you mean `capacity`?" in rendered


def test_every_code_used_is_registered() -> None:
    for path in CASES:
        for _, code in expected_codes(path.read_text(encoding="utf-8")):
            assert code in REGISTRY


def test_registry_entries_are_complete() -> None:
    for code, rule in REGISTRY.items():
        assert re.fullmatch(r"COH\d{3}", code)
        assert rule.code == code
        assert rule.summary and rule.explanation
        assert rule.name == rule.name.lower()
    names = [r.name for r in REGISTRY.values()]
    assert len(names) == len(set(names))
