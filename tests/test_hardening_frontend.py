"""Hostile and odd input to the front end: every one gets a located error or a right answer.

Each test starts from a reproducer found by fuzzing (issue 30), copied inline: line ends and
odd bytes, names in the tool's own namespace, numbers beyond a double or beyond a stated limit,
deep nesting, hostile profile paths, and spec paths that are not regular files.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from coherence.cli import main
from coherence.compile import compile_text, read_source
from coherence.diagnostics import Diagnostic, render
from coherence.frontend.limits import MAX_EXPR_DEPTH, MAX_REGISTER_TICKS, MAX_TIME_TICKS
from coherence.source import SourceFile

BASE = "system s {\n  tick 1s\n  state x : 1 in [0, 10] init 1\n  next x = x\n}\n"


def codes(text: str) -> list[tuple[str, int, int]]:
    """(code, line, column) of every error and warning of ``text``."""
    result = compile_text("t.coh", text)
    return [(d.code, d.span.line, d.span.column) for d in result.diagnostics if d.code != "COH218"]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


# ---- line ends and odd bytes -------------------------------------------------------------

CR_IN_COMMENT = (
    "system s {\n  tick 1s\n  state x : 1 in [0, 10] init 1\n  next x = x + 1\n"
    "  # x grows by one per tick\r  require always x <= 3 for 20 ticks\n}\n"
)


def test_a_lone_carriage_return_ends_a_comment() -> None:
    # cr_in_comment_hides_requirement.coh: the requirement after the CR was swallowed
    result = compile_text("t.coh", CR_IN_COMMENT)
    assert result.ok
    (ts,) = result.systems
    assert [r.kind for r in ts.requirements] == ["always"]
    assert ts.requirements[0].span.line == 6


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"])
def test_every_line_end_counts_for_the_lexer_and_for_locations(newline: str) -> None:
    # cr_only_line_endings.coh, cr_only_with_comment.coh
    text = "# comment\nsystem s {\n  tick 1s\n  state x : 1 in [0, 10] init 1\n  next x = y\n}\n"
    result = compile_text("t.coh", text.replace("\n", newline))
    (d,) = [d for d in result.diagnostics if d.code == "COH201"]
    assert (d.span.line, d.span.column) == (5, 12)
    assert "  next x = y" in render(d, result.source)


def test_a_byte_order_mark_is_accepted() -> None:
    # bom_rejected.coh
    result = compile_text("t.coh", "\ufeff" + BASE)
    assert result.ok and [ts.name for ts in result.systems] == ["s"]


def test_a_form_feed_does_not_shift_the_quoted_excerpt() -> None:
    # formfeed_comment_wrong_excerpt.coh
    text = (
        "system s {\n  tick 1s\n  # a comment with a form feed \f here\n"
        "  state x : 1 in [0, 10] init 1\n  next x = x\n  require stabel\n}\n"
    )
    result = compile_text("t.coh", text)
    (d,) = result.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("COH101", 6, 11)
    assert "6 |   require stabel" in render(d, result.source)


def test_source_lines_split_only_at_line_ends() -> None:
    src = SourceFile("t.coh", "a\fb\x1cc\r\nd\re\n")
    assert src.line_count == 3
    assert [src.line(i) for i in (1, 2, 3)] == ["a\fb\x1cc", "d", "e"]


def test_bytes_that_are_not_utf8_are_located(tmp_path: Path) -> None:
    p = tmp_path / "bad.coh"
    p.write_bytes(b"system s {\r\n  tick 1s \xff\n}\n")
    d = read_source(p)
    assert isinstance(d, Diagnostic) and d.code == "COH100"
    assert (d.span.line, d.span.column) == (2, 11)
    assert "not UTF-8" in d.message and "0xff" in d.message


def test_a_fifo_as_spec_path_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.coh"
    os.mkfifo(fifo)
    start = time.monotonic()
    d = read_source(fifo)
    assert isinstance(d, Diagnostic) and "FIFO" in d.message
    assert time.monotonic() - start < 5
    code, out, err = cli("lint", str(fifo), "--color", "never")
    assert code != 0 and "is a FIFO" in out + err


def test_a_directory_that_cannot_be_searched_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tests run as root in CI containers, where chmod does not deny: deny in os.stat instead
    target = tmp_path / "locked" / "a.coh"
    real_stat = os.stat

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if str(path) == str(target):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", stat)
    d = read_source(target)
    assert isinstance(d, Diagnostic) and d.code == "COH100"
    assert "permission denied" in d.message and "cannot be searched" in d.help


def test_a_directory_as_spec_path_is_refused(tmp_path: Path) -> None:
    d = read_source(tmp_path)
    assert isinstance(d, Diagnostic) and "is a directory" in d.message


# ---- the reserved namespace ----------------------------------------------------------------

DUNDER_LET = """system s {
  tick 1s
  let __t = 0
  state x : 1 in [0, 100] init 0
  loop l {
    every 10s
    actuates x to x + 1 + 0 * __t
  }
  require always x <= 3 for 30 ticks
}
"""


def test_a_name_in_the_tools_namespace_is_refused() -> None:
    # dunder_t_false_violation.coh: `let __t` collided with the simulator's tick key
    result = compile_text("t.coh", DUNDER_LET)
    assert not result.ok and not result.systems
    (d,) = [d for d in result.diagnostics if d.code == "COH224"]
    assert (d.span.line, d.span.column) == (3, 7)
    assert "reserved" in d.message and "`t`" in d.help


@pytest.mark.parametrize(
    "decl, where",
    [
        ("param __t = 5", (3, 9)),  # dunder_t_missed_violation.coh
        ("input __d : 1 in [0, 1] nominal 0", (3, 9)),
        ("unit __u", (3, 8)),
        ("loop __l { every 1s senses x as __a actuates x by 0 }", (3, 8)),
        ("objective minimize __o = x", (3, 3)),
    ],
)
def test_every_kind_of_declaration_is_checked(decl: str, where: tuple[int, int]) -> None:
    text = BASE.replace("  state x", f"  {decl}\n  state x")
    found = [(line, col) for code, line, col in codes(text) if code == "COH224"]
    assert found and found[0] == where


def test_a_single_leading_underscore_is_an_ordinary_name() -> None:
    text = "system s {\n  tick 1s\n  state _x : 1 in [0, 1] init 1\n  next _x = _x\n}\n"
    assert compile_text("t.coh", text).ok


# ---- numbers beyond a double, and the stated limits ----------------------------------------


@pytest.mark.parametrize(
    "text, where",
    [
        # nonfinite_literal.coh
        (BASE.replace("next x = x", "param g = 1e400\n  next x = min(10, x * 0 + g)"), (4, 13)),
        # integer_state_inf_bound.coh
        (BASE.replace(": 1 in [0, 10]", ": 1 integer in [1, 1e400]").replace("init 1", "init 2"),
         (3, 30)),
        # overflow_require_horizon_inf.coh
        (BASE.replace("}\n", "  require always x <= 20 for 2e308 ticks\n}\n"), (5, 30)),
        # a count
        (BASE.replace("}\n", "  require no flapping of x max 1e999 within 10s\n}\n"), (5, 32)),
    ],
)  # fmt: skip
def test_a_literal_beyond_a_double_is_located_and_nothing_else_is_reported(
    text: str, where: tuple[int, int]
) -> None:
    found = codes(text)
    assert [c for c, *_ in found] == ["COH105"]
    assert tuple(found[0][1:]) == where


WINDOW = """system s {
  tick 1s
  state x : 1 in [0, 10] init 1
  loop l {
    every 1s
    senses x window WINDOW
    actuates x by 0.1 * (5 - x)
  }
}
"""


def test_a_window_that_would_blow_memory_is_refused_quickly() -> None:
    # memblow_window_1000000h.coh: 3.6e9 hidden states
    start = time.monotonic()
    found = codes(WINDOW.replace("WINDOW", "1000000h"))
    assert time.monotonic() - start < 5
    assert found == [("COH223", 6, 21)]
    d = compile_text("t.coh", WINDOW.replace("WINDOW", "1000000h")).diagnostics[0]
    assert f"{MAX_REGISTER_TICKS:,} ticks" in d.message


def test_a_window_at_the_limit_is_accepted_and_one_beyond_is_not() -> None:
    assert compile_text("t.coh", WINDOW.replace("WINDOW", f"{MAX_REGISTER_TICKS}s")).ok
    assert [c for c, *_ in codes(WINDOW.replace("WINDOW", f"{MAX_REGISTER_TICKS + 1}s"))] == [
        "COH223"
    ]
    both = WINDOW.replace("WINDOW", f"{MAX_REGISTER_TICKS}s delay 10s")
    assert [c for c, *_ in codes(both)] == ["COH223"]


def test_a_duration_that_overflows_is_located() -> None:
    # overflow_duration_inf.coh (1e400s); 1e305 h is finite as written, infinite in seconds
    assert codes(WINDOW.replace("WINDOW", "1e400s")) == [("COH105", 6, 21)]
    assert codes(WINDOW.replace("WINDOW", "1e305 h")) == [("COH223", 6, 21)]


def test_horizons_beyond_the_limit_name_it() -> None:
    # flapping_within_2p31_ticks_coh903.coh
    text = BASE.replace("}\n", "  require no flapping of x max 2 within 2147483648 ticks\n}\n")
    result = compile_text("t.coh", text)
    (d,) = result.diagnostics
    assert (d.code, d.span.line) == ("COH223", 5)
    assert f"{MAX_TIME_TICKS:,} ticks" in d.message
    ok = BASE.replace("}\n", f"  require always x <= 20 for {MAX_TIME_TICKS} ticks\n}}\n")
    assert compile_text("t.coh", ok).ok


def test_a_unit_power_beyond_the_limit_is_located() -> None:
    # overflow_unit_exponent.coh
    text = BASE.replace("next x = x", "param a = 1 h^999999999999999999\n  next x = x + 0 * a / a")
    assert codes(text) == [("COH223", 4, 13)]
    assert compile_text("t.coh", BASE.replace("next x = x", "param a = 1 s^2\n  next x = x")).ok


def test_a_parameter_that_computes_to_infinity_is_located() -> None:
    text = BASE.replace("next x = x", "param g = 1e300 * 1e300\n  next x = x + 0 * g")
    assert codes(text) == [("COH223", 4, 13)]


# ---- deep nesting ---------------------------------------------------------------------------


def _nest(kind: str, n: int) -> str:
    e = "x"
    for _ in range(n):
        e = {"ite": f"if x > 1 then {e} else 1", "min": f"min({e}, 1)"}.get(kind, "") or f"x^{e}"
    return BASE.replace("next x = x", f"let y = {e}\n  next x = min(10, max(0, y))")


@pytest.mark.parametrize("kind, n", [("ite", 1000), ("pow", 1000), ("min", 100)])
def test_deep_nesting_is_located_with_the_limit(kind: str, n: int) -> None:
    # recursion_ite_nest_1000.coh, recursion_pow_tower_1000.coh, min_nest_100_lambdify.coh
    result = compile_text("t.coh", _nest(kind, n))
    (d,) = result.diagnostics
    assert d.code == "COH104" and d.span.line == 4 and d.span.column > 1
    assert f"{MAX_EXPR_DEPTH} levels" in " ".join(d.notes)


@pytest.mark.parametrize("kind", ["ite", "pow", "min"])
def test_nesting_within_the_limit_compiles(kind: str) -> None:
    assert compile_text("t.coh", _nest(kind, MAX_EXPR_DEPTH - 2)).ok


# ---- hostile profiles ---------------------------------------------------------------------


def _profile_spec(tmp_path: Path, target: str) -> Path:
    spec = tmp_path / "p.coh"
    spec.write_text(
        "system s {\n  tick 1s\n"
        f'  profile p = "{target}"\n'
        "  param a = 1 s from p.overhead\n"
        "  state x : 1 in [0, 10] init 1\n  next x = x + 0 * a / 1s\n}\n"
    )
    return spec


def _profile_note(spec: Path) -> Diagnostic:
    src = read_source(spec)
    assert isinstance(src, SourceFile)
    result = compile_text(str(spec), src.text)
    (d,) = [d for d in result.diagnostics if d.code == "COH222"]
    return d


def _hostile_profiles(tmp_path: Path) -> dict[str, str]:
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "binary.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with open(tmp_path / "huge.json", "wb") as fh:  # sparse: 64 MiB that take no disk
        fh.truncate(64 * 1024 * 1024)
    (tmp_path / "inf.json").write_text('{"schema_version": 1e400}')
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    return {
        "/dev/zero": "not a regular file",  # profile_dev_zero.coh
        "fifo.json": "FIFO",
        "dir.json": "is a directory",
        "binary.json": "not UTF-8",
        "huge.json": "larger than",
        "inf.json": "too large",
        "deep.json": "nested too deeply",
        "list.json": "",
        "absent.json": "no such file",
    }


def test_hostile_profile_paths_are_located_at_the_declaration_quickly(tmp_path: Path) -> None:
    for target, words in _hostile_profiles(tmp_path).items():
        start = time.monotonic()
        d = _profile_note(_profile_spec(tmp_path, target))
        assert time.monotonic() - start < 5, target
        assert (d.span.line, d.span.column) == (3, 3), target
        assert words in d.message, (target, d.message)


def test_validate_names_the_profile_declaration(tmp_path: Path) -> None:
    spec = _profile_spec(tmp_path, "/dev/zero")
    code, _, err = cli("validate", str(spec), "--color", "never")
    assert code == 2
    assert f"{spec}:3:3" in err and "not a regular file" in err


def test_a_profile_with_non_finite_numbers_is_refused(tmp_path: Path) -> None:
    good = Path(__file__).resolve().parent.parent / "specs" / "profiles" / "cpu-ci.json"
    data = json.loads(good.read_text())
    text = json.dumps(data).replace(f'"holdout_every": {data["holdout_every"]}', '"x": 1e999', 1)
    (tmp_path / "bad.json").write_text(text)
    d = _profile_note(_profile_spec(tmp_path, "bad.json"))
    assert "too large" in d.message


def test_an_integer_state_with_an_infinite_initial_value_is_located() -> None:
    # found by `python -m benchmarks.fuzz` (seed 0): OverflowError before COH105
    text = "system s {\n  tick 1s\n  state x : 1 integer in [0, 10] init 1e400\n  next x = x\n}\n"
    assert ("COH105", 3, 39) in codes(text)
