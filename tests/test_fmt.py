"""`coherence fmt`: canonical layout that keeps every comment, --check, --in-place, many files."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest

from coherence.cli import main
from coherence.compile import compile_source, read_source
from coherence.frontend.format import comments_of, format_source
from coherence.source import SourceFile, Span

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.coh"))


def cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err, io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def _no_spans(value: Any) -> Any:
    """A value with every source span dropped: what the IR means, not where it came from."""
    if isinstance(value, Span):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (_no_spans(getattr(value, f.name)) for f in dataclasses.fields(value))
        return (type(value).__name__, *fields)
    if isinstance(value, (tuple, list)):
        return tuple(_no_spans(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _no_spans(v)) for k, v in value.items()))
    if isinstance(value, float) and value != value:
        return "nan"
    return value


def _fmt(text: str, path: str = "t.coh") -> str:
    src = SourceFile(path, text)
    result = compile_source(src)
    assert result.module is not None
    return format_source(src, result.module)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_library_round_trip_keeps_every_comment_and_the_ir(spec: Path) -> None:
    src = read_source(spec)
    assert isinstance(src, SourceFile)
    before = compile_source(src)
    assert before.module is not None
    text = format_source(src, before.module)
    # every comment, in order
    assert [c.text for c in comments_of(text)] == [c.text for c in comments_of(src.text)]
    # the same transition systems
    after = compile_source(SourceFile(str(spec), text))
    assert after.ok
    assert _no_spans(after.systems) == _no_spans(before.systems)
    # and formatting is idempotent
    assert _fmt(text, str(spec)) == text


COMMENTED = """# file header

system s "doc" {   # on the header
  tick 1s          # the tick
  # before x
  state x : 1 in [0, 10] init 1
  let y = x +
          1        # y's last line
  loop l {
    # leads every
    every 1s       # sync period
    senses x as s0 # why
    actuates x by 0.1 * (5 - s0)
    # end of loop
  }                # after the loop

  # coherence: ignore[COH218] used below
  require always x <= 10 for 5 ticks
  # end of system
}
# end of file
"""


def test_comments_stay_next_to_their_statements() -> None:
    out = _fmt(COMMENTED)
    assert out == (
        "# file header\n\n"
        'system s "doc" {  # on the header\n'
        "  tick 1 s  # the tick\n"
        "  # before x\n"
        "  state x : 1 in [0, 10] init 1\n"
        "  let y = x + 1  # y's last line\n"
        "  loop l {\n"
        "    # leads every\n"
        "    every 1 s  # sync period\n"
        "    senses x as s0  # why\n"
        "    actuates x by 0.1 * (5 - s0)\n"
        "    # end of loop\n"
        "  }  # after the loop\n\n"
        "  # coherence: ignore[COH218] used below\n"
        "  require always x <= 10 for 5 ticks\n"
        "  # end of system\n"
        "}\n"
        "# end of file\n"
    )
    assert _fmt(out) == out


def test_a_hash_inside_a_string_is_not_a_comment() -> None:
    text = 'system s "a # b" {\n  tick 1s\n  state x : 1 in [0, 1] init 0\n  next x = x\n}\n'
    assert [c.text for c in comments_of(text)] == []
    assert '"a # b"' in _fmt(text)


def test_infinite_numbers_are_an_error_not_an_overflow(tmp_path: Path) -> None:
    p = tmp_path / "inf.coh"
    p.write_text("system s {\n  tick 1s\n  param g = 1e400\n  state x : 1 in [0, 1] init 0\n}\n")
    code, out, err = cli("fmt", str(p))
    assert code == 2 and out == ""
    assert "COH105" in err and "not formatted" in err


def test_check_in_place_and_several_files(tmp_path: Path) -> None:
    messy = tmp_path / "messy.coh"
    messy.write_text(
        "system s {  tick 1s\n state x : 1 in [0,1] init 0   # keep me\n next x = x }\n"
    )
    clean = tmp_path / "clean.coh"
    clean.write_text(_fmt(messy.read_text()))
    original = messy.read_text()

    code, out, _ = cli("fmt", "--check", str(messy), str(clean))
    assert code == 1
    assert f"would reformat {messy}" in out and str(clean) + "\n" not in out.split("---")[0]
    assert "+  state x : 1 in [0, 1] init 0  # keep me" in out  # a unified diff
    assert messy.read_text() == original  # --check never writes

    code, out, _ = cli("fmt", "-i", str(messy), str(clean))
    assert code == 0 and out == f"reformatted {messy}\n"
    assert messy.read_text() == clean.read_text()
    assert "# keep me" in messy.read_text()
    assert cli("fmt", "--check", str(messy), str(clean))[0] == 0

    code, out, _ = cli("fmt", str(messy), str(clean))
    assert code == 0 and out == clean.read_text() * 2


def test_a_file_with_syntax_errors_is_never_rewritten(tmp_path: Path) -> None:
    p = tmp_path / "bad.coh"
    p.write_text("system s {\n  tick 1s\n  state x in [0, 1 init 0\n}\n")
    before = p.read_text()
    code, _, err = cli("fmt", "--in-place", str(p))
    assert code == 2 and "not formatted" in err
    assert p.read_text() == before


def test_standard_input_is_formatted_but_not_in_place() -> None:
    code, out, _ = cli("fmt", "-", stdin="system s { tick 1s # t\n}\n")
    assert code == 0 and out == "system s {\n  tick 1 s  # t\n}\n"
    code, _, err = cli("fmt", "-i", "-", stdin="system s { tick 1s }\n")
    assert code == 2 and "standard input" in err
