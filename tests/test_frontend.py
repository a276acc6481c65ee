"""The front end: parsing, formatting round trips, units, and robustness on any input."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coherence.compile import compile_text
from coherence.frontend import parser as parser_module
from coherence.frontend.format import format_module
from coherence.frontend.parser import parse_source
from coherence.frontend.units import UnitError, UnitTable
from coherence.source import SourceFile

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.coh"))


def parse(text: str):  # type: ignore[no-untyped-def]
    module, diags, _ = parse_source(SourceFile("x.coh", text))
    return module, diags


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_specs_compile_without_errors(path: Path) -> None:
    result = compile_text(str(path), path.read_text(encoding="utf-8"))
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.systems


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_format_round_trips(path: Path) -> None:
    module, diags = parse(path.read_text(encoding="utf-8"))
    assert not diags
    text = format_module(module)
    again, diags2 = parse(text)
    assert not diags2
    assert again.systems == module.systems
    assert format_module(again) == text


def test_spans_point_at_the_source() -> None:
    module, _ = parse("system s {\n  tick 1s\n  let latency = queue / capacity\n}")
    let = module.systems[0].items[1]
    assert (let.name_span.line, let.name_span.column) == (3, 7)
    assert (let.value.span.line, let.value.span.column) == (3, 17)
    assert let.value.span.end_column == 33


def test_keywords_need_word_boundaries() -> None:
    _, diags = parse("system s { tick 1s state x in [0, 1] init 0 loop l { actuates x too 1 } }")
    assert [d.message for d in diags] == ["unexpected `too`"]
    assert diags[0].help == "did you mean `to`?"


def test_reserved_words_are_not_names() -> None:
    _, diags = parse("system s { tick 1s let if = 3 }")
    assert diags and diags[0].code == "COH101"


def test_durations_in_every_unit() -> None:
    r = compile_text(
        "d.coh",
        """system d { tick 500ms
      state a in [0, 10] init 0
      loop x { every 1min actuates a by 1 }
      loop y { every 3 ticks actuates a by 1 }
      loop z { every 1.5s phase 1s actuates a by 1 } }""",
    )
    assert r.ok
    ts = r.systems[0]
    assert [lp.period for lp in ts.loops] == [120, 3, 3]
    assert ts.loop("z").phase == 2
    assert ts.hyperperiod == 120


@pytest.mark.parametrize(
    ("text", "scale", "dim"),
    [
        ("req/s", 1.0, "req/s"),
        ("$/h", 1 / 3600, "$/s"),
        ("ms", 1e-3, "s"),
        ("%", 0.01, "1"),
        ("GiB", 1024.0**3, "B"),
        ("tok/s^2", 1.0, "tok/s^2"),
        ("kW", 1000.0, "W"),
    ],
)
def test_unit_table(text: str, scale: float, dim: str) -> None:
    u = UnitTable.new().parse(text)
    assert u.scale == pytest.approx(scale)
    assert str(u.dim) == dim


def test_unknown_unit_suggests_a_close_one() -> None:
    with pytest.raises(UnitError) as exc:
        UnitTable.new().parse("reqs/s")
    assert "req" in exc.value.hint


def test_declared_units() -> None:
    r = compile_text(
        "u.coh",
        """system u { tick 1s unit euro unit keuro = 1000 euro
      param budget = 2 keuro/h
      state spend : euro/h in [0, 100000] init 0
      loop l { actuates spend to budget } }""",
    )
    assert r.ok, [d.message for d in r.diagnostics]
    assert r.systems[0].param("budget").value == pytest.approx(2000 / 3600)


# ---- robustness: no input, however malformed, produces a traceback ------------------------

TOKENS = st.sampled_from(
    [
        "system",
        "s",
        "{",
        "}",
        "tick",
        "1s",
        "state",
        "x",
        ":",
        "req/s",
        "in",
        "[",
        "0",
        ",",
        "10",
        "]",
        "init",
        "let",
        "=",
        "+",
        "-",
        "*",
        "/",
        "(",
        ")",
        "loop",
        "every",
        "actuates",
        "to",
        "by",
        "senses",
        "delay",
        "window",
        "require",
        "always",
        "for",
        "ticks",
        "objective",
        "keep",
        "<=",
        "minimize",
        "if",
        "then",
        "else",
        "max",
        "3",
        "0.5",
        "%",
        "next",
        "input",
        "nominal",
        "param",
        "\n",
        "#",
        '"doc"',
        "@",
        "cooldown",
        "stabilize",
        "down",
        "rate",
        "up",
        "when",
        "and",
        "tolerance",
        "floor",
    ]
)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(TOKENS, max_size=60))
def test_token_soup_never_crashes(tokens: list[str]) -> None:
    result = compile_text("fuzz.coh", " ".join(tokens))
    for d in result.diagnostics:
        assert d.span.line >= 1 and d.span.column >= 1


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(alphabet=string.printable + "é→∞\u0000", max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    result = compile_text("fuzz.coh", text)
    assert isinstance(result.diagnostics, tuple)


def test_deeply_nested_expression_is_an_error_not_a_crash() -> None:
    text = "system s { tick 1s let x = " + "(" * 5000 + "1" + ")" * 5000 + " }"
    result = compile_text("deep.coh", text)
    assert result.diagnostics


# ---- generated valid specs parse and lower --------------------------------------------------

NAMES = st.sampled_from(["alpha", "beta", "gamma", "delta"])


@st.composite
def valid_specs(draw: st.DrawFn) -> str:
    n_states = draw(st.integers(1, 3))
    lines = ["tick 1s", "input demand : req/s in [0, 200] nominal 100"]
    states = [f"s{i}" for i in range(n_states)]
    for s in states:
        init = draw(st.integers(0, 10))
        lines.append(f"state {s} : req/s in [0, 1000] init {init}")
    plant = draw(st.sampled_from(states))
    gain = draw(st.floats(0.01, 2.0, allow_nan=False))
    lines.append(f"next {plant} = max(0, {plant} + {gain:.3f} * (demand - {plant}))")
    for i, s in enumerate(x for x in states if x != plant):
        period = draw(st.integers(1, 5))
        delay = draw(st.integers(0, 3))
        window = draw(st.integers(1, 3))
        k = draw(st.floats(0.01, 1.0, allow_nan=False))
        lines.append(
            f"loop l{i} {{ every {period}s senses {plant} delay {delay}s window {window}s "
            f"actuates {s} by {k:.3f} * (demand - {plant}) }}"
        )
    tolerance = draw(st.sampled_from(["", " tolerance 5%", " tolerance 2 req/s"]))
    floor = draw(st.sampled_from(["", " floor 0", " floor 1 req/s", " floor 30 req/min"]))
    lines.append(f"objective minimize {plant}{tolerance}{floor}")
    lines.append("require always demand <= 200 req/s for 20 ticks")
    return "system gen {\n  " + "\n  ".join(lines) + "\n}\n"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(valid_specs())
def test_generated_valid_specs_parse_and_lower(text: str) -> None:
    result = compile_text("gen.coh", text)
    assert result.ok, [d.message for d in result.diagnostics]
    ts = result.systems[0]
    assert len(ts.states) >= 1
    module, _ = parse(text)
    again, diags = parse(format_module(module))
    assert not diags and again.systems == module.systems


# ---- regressions found in review -------------------------------------------------------------


def codes(text: str) -> set[str]:
    return {d.code for d in compile_text("r.coh", text).diagnostics}


def test_a_sensor_sees_the_world_not_the_loops_other_sensed_values() -> None:
    from coherence.simulate.engine import simulate

    r = compile_text(
        "s.coh",
        """system s { tick 1s input u : 1 in [0, 10] nominal 2
      state a in [0, 100] init 0
      loop l { senses u delay 1s senses u * 2 as v delay 1s actuates a to v } }""",
    )
    assert r.ok
    assert simulate(r.systems[0], 3).state("a")[0].tolist() == [0, 4, 4, 4]


def test_one_shaping_clause_cannot_span_dimensions() -> None:
    assert "COH219" in codes("""system s { tick 1s state a : s in [0, 9] init 0
      state b : req in [0, 9] init 0
      loop l { limit [0, 5] actuates a by 1 s actuates b by 1 req } }""")


def test_negative_initial_and_nominal_values() -> None:
    r = compile_text(
        "n.coh",
        """system s { tick 1s input u : 1 in [-5, 5] nominal -1
      state y in [-10, 10] init -5 next y = y + u }""",
    )
    assert r.ok
    assert r.systems[0].state("y").init.value == -5  # type: ignore[union-attr]


def test_declared_unit_cannot_shadow_a_built_in() -> None:
    assert "COH202" in codes(
        "system s { tick 1s unit h = 1 s state y in [0, 1] init 0 next y = y }"
    )


def test_units_may_contain_digits_and_precede_the_tick() -> None:
    r = compile_text(
        "u.coh",
        """system s { tick 2 blink unit blink = 500 ms unit H100
      param n = 8 H100 state y : H100 in [0, 100] init 0 next y = y + n }""",
    )
    assert r.ok, [d.message for d in r.diagnostics]
    assert r.systems[0].tick == 1.0


def test_reversal_count_is_whole() -> None:
    assert "COH213" in codes("""system s { tick 1s state y in [0, 9] init 0
      loop l { actuates y by 1 } require no flapping of y max 2.5 within 10s }""")


def test_computed_parameter_range_reads_in_a_declared_unit() -> None:
    r = compile_text(
        "p.coh",
        """system s { tick 1s param budget = 900 $/h
      param b = 2 * budget in [1600, 2000] state y in [0, 1] init 0 next y = y * b / b }""",
    )
    assert r.ok, [d.message for d in r.diagnostics]


# ---- the grammar cache ----------------------------------------------------------------------

_PROBES = (
    (ROOT / "specs" / "llm_serving.coh").read_text(encoding="utf-8"),
    # a keyword that starts a longer word: `initial` is not `init` and `ial`
    "system s { tick 1s state x in [0, 1] initial 0 }",
    "system s { tick 1s lets y = 1 }",
)


def _parsed_with(monkeypatch: pytest.MonkeyPatch, cache: str) -> list[object]:
    """What the probes parse to with a parser built afresh under ``COHERENCE_CACHE_DIR``."""
    monkeypatch.setenv("COHERENCE_CACHE_DIR", cache)
    parser_module._parser.cache_clear()
    try:
        return [parse_source(SourceFile("a.coh", text))[:2] for text in _PROBES]
    finally:
        parser_module._parser.cache_clear()


def test_the_parser_is_built_in_process_and_never_read_from_the_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lark keeps its tables as pickles: the parser never writes or reads them in the
    cache directory (which CI may restore from another job), whatever is planted there."""
    fresh = _parsed_with(monkeypatch, "")
    assert _parsed_with(monkeypatch, str(tmp_path)) == fresh
    assert not list(tmp_path.iterdir())  # nothing written
    for name in ("parser.lark-cache", "terminals.lark-cache"):
        (tmp_path / name).write_bytes(b"not a cache\n")
    assert _parsed_with(monkeypatch, str(tmp_path)) == fresh  # nothing read
    assert [[d.message for d in diags] for _, diags in fresh] == [  # type: ignore[attr-defined]
        [],
        ["unexpected `initial`"],
        ["unexpected `lets`"],
    ]


# ---- objective floors --------------------------------------------------------------------

_FLOORS = """system s {
  tick 1s
  param price = 8 $/h
  param floor = 2
  state queue : req in [0, 1000] init 0
  let latency = 0.2s + queue / (120 req/s)
  let cost = price * queue / (1 req)
  next queue = max(0, queue - floor(queue / floor))
  objective minimize latency tolerance 5% floor 50ms
  objective minimize cost floor 10 $/h
  objective keep slow = latency <= 2s floor 0.1 s
  objective minimize q = floor(queue / 1 req) * floor floor 1
}
"""


def test_an_objective_takes_a_floor_after_its_tolerance() -> None:
    module, diags = parse(_FLOORS)
    assert not diags
    objectives = [i for i in module.systems[0].items if type(i).__name__ == "Objective"]
    got = [(o.tolerance and (o.tolerance.value, o.tolerance.unit), o.floor) for o in objectives]
    assert [(t, (f.value, f.unit)) for t, f in got] == [
        ((5, "%"), (50, "ms")),
        (None, (10, "$/h")),
        (None, (0.1, "s")),
        (None, (1, None)),
    ]
    floor = objectives[0].floor
    assert (floor.span.line, floor.span.column, floor.span.end_column) == (9, 49, 53)


def test_floor_is_still_a_function_and_a_name_in_expressions() -> None:
    module, diags = parse(_FLOORS)
    assert not diags
    assert format_module(module).count("floor(") == 2
    r = compile_text("s.coh", _FLOORS)
    assert r.ok, [d.message for d in r.diagnostics]
    # `floor * 2`: the parameter, not the keyword
    assert compile_text("f.coh", "system s { tick 1s param floor = 2 let y = floor * 2 }").ok


def test_an_objective_floor_round_trips_through_the_formatter() -> None:
    module, _ = parse(_FLOORS)
    text = format_module(module)
    assert "objective minimize latency tolerance 5 % floor 50 ms" in text
    assert "objective minimize cost floor 10 $/h" in text
    again, diags = parse(text)
    assert not diags
    assert again.systems == module.systems
    assert format_module(again) == text


def test_a_floor_in_another_dimension_is_a_located_unit_error() -> None:
    text = _FLOORS.replace("floor 50ms", "floor 50 req")
    diags = compile_text("s.coh", text).diagnostics
    assert [(d.code, d.span.line, d.span.column) for d in diags] == [("COH207", 9, 49)]
    assert diags[0].message == (
        "the floor of objective `latency` must be a quantity in s, not a quantity in req"
    )
    assert diags[0].help.endswith("write `floor 50 s`")


def test_a_floor_is_never_relative_and_never_infinite() -> None:
    relative = compile_text("s.coh", _FLOORS.replace("floor 50ms", "floor 5%")).diagnostics
    assert [d.code for d in relative] == ["COH207"]
    assert "never relative" in relative[0].help
    # a literal beyond the largest double is refused where it is written (COH105)
    huge = compile_text("s.coh", _FLOORS.replace("floor 50ms", "floor 1e999 s")).diagnostics
    assert [(d.code, d.span.line) for d in huge] == [("COH105", 9)]
    # a finite literal that overflows once converted still has a located error
    big = compile_text("s.coh", _FLOORS.replace("floor 50ms", "floor 1e308 h")).diagnostics
    assert [(d.code, d.span.line) for d in big] == [("COH213", 9)]


def test_a_tolerance_after_a_floor_says_which_comes_first() -> None:
    _, diags = parse("system s { tick 1s objective minimize x floor 1 s tolerance 5% }")
    assert [d.message for d in diags] == ["unexpected `tolerance`"]
    assert "comes before its `floor`" in diags[0].help


def test_a_loop_tolerance_after_an_objective_floor_is_the_loops() -> None:
    _, diags = parse(
        "system s { tick 1s state x in [0, 9] init 0 "
        "loop l { actuates x by 1 objective minimize x floor 1 tolerance 5% } }"
    )
    assert not diags
