"""Running the spec library against its expected verdicts (specs/manifest.toml).

The manifest says, per spec, what each analysis must find, which requirement statuses it
must give, and how the spec behaves in the reference semantics (the simulator) under named
input scenarios and under a seeded random search over admissible inputs. This module turns a
spec and its manifest entry into the same shape, so that tests compare plain data.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coherence.compile import compile_source, read_source
from coherence.diagnostics import Diagnostic
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.simulate.engine import Trace, simulate
from coherence.simulate.requirements import check_requirement, objective_slack
from coherence.simulate.scenarios import scenario_inputs

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
MANIFEST = SPECS / "manifest.toml"
ANALYSES = ("simulate", "linear", "smt")
TRACE_KINDS = ("always", "response", "flapping")


def _load_toml() -> dict[str, Any]:
    with MANIFEST.open("rb") as fh:
        return tomllib.load(fh)


def load_manifest() -> dict[str, dict[str, Any]]:
    """The per-spec tables of the manifest, keyed by path relative to specs/."""
    specs = _load_toml().get("specs", {})
    assert isinstance(specs, dict)
    return specs


def reconciled() -> set[str]:
    """The analyses whose expectations have been checked against their implementation."""
    return set(_load_toml().get("manifest", {}).get("reconciled", ["simulate"]))


def library_specs() -> list[str]:
    """Every spec under specs/, relative to specs/ with forward slashes."""
    return sorted(p.relative_to(SPECS).as_posix() for p in SPECS.rglob("*.coh"))


def load_system(rel: str) -> TransitionSystem:
    src = read_source(SPECS / rel)
    assert not isinstance(src, Diagnostic), src.message
    result = compile_source(src)
    assert result.ok and len(result.systems) == 1, f"{rel} does not compile to one system"
    return result.systems[0]


def requirement_key(text: str) -> str:
    """A requirement as the manifest names it: its text without the leading `require `."""
    return text.removeprefix("require ").strip()


def _trace_requirements(ts: TransitionSystem) -> list[Requirement]:
    return [r for r in ts.requirements if r.kind in TRACE_KINDS]


@dataclass(frozen=True)
class Behaviour:
    """What one simulated scenario shows: what was violated anywhere, and at the end."""

    violated: tuple[str, ...]
    at_end: tuple[str, ...]


def judge(ts: TransitionSystem, trace: Trace, s: int, tail: int) -> Behaviour:
    """Keep objectives (by name) and trace requirements (by text) that scenario ``s`` violates."""
    violated: set[str] = set()
    at_end: set[str] = set()
    for o in ts.objectives:
        if o.kind != "keep":
            continue
        slack = objective_slack(o, trace)[s]
        bad = slack <= 0 if o.cmp in ("<", ">") else slack < -1e-9
        if bad.any():
            violated.add(o.name)
        if bad[-tail:].any():
            at_end.add(o.name)
    for r in _trace_requirements(ts):
        first = check_requirement(r, trace)
        assert first is not None
        if first[s] >= 0:
            violated.add(requirement_key(r.text))
    return Behaviour(tuple(sorted(violated)), tuple(sorted(at_end)))


def run_scenario(ts: TransitionSystem, scenario: str, ticks: int) -> Behaviour:
    inputs = scenario_inputs(ts, [scenario], ticks)
    trace = simulate(ts, ticks, inputs=inputs)
    return judge(ts, trace, 0, max(1, ticks // 10))


def random_inputs(ts: TransitionSystem, ticks: int, samples: int, seed: int, held: bool) -> Any:
    """Piecewise-constant admissible inputs: segments of 1-60 ticks, values often at the ends."""
    rng = np.random.default_rng(seed)
    n = len(ts.inputs)
    out = np.empty((samples, ticks, n))
    for j, u in enumerate(ts.inputs):
        for s in range(samples):
            t = 0
            while t < ticks:
                length = ticks if held else int(rng.integers(1, 61))
                pick = rng.random()
                if pick < 0.25:
                    v = u.lo
                elif pick < 0.5:
                    v = u.hi
                elif pick < 0.6:
                    v = u.nominal
                else:
                    v = rng.uniform(u.lo, u.hi)
                out[s, t : t + length, j] = v
                t += length
    return out


def random_search(ts: TransitionSystem, samples: int = 200, seed: int = 0) -> tuple[str, ...]:
    """Trace requirements that some seeded random admissible input sequence violates.

    A cheap stand-in for bounded model checking: inputs are chosen per segment (``free``) or
    once per run (``held``), as each requirement says, and every sample starts from the
    declared initial state.
    """
    found: set[str] = set()
    for r in _trace_requirements(ts):
        ticks = r.horizon + 1
        inputs = random_inputs(ts, ticks, samples, seed, held=r.inputs == "held")
        trace = simulate(ts, ticks, inputs=inputs)
        first = check_requirement(r, trace)
        assert first is not None
        if (first >= 0).any():
            found.add(requirement_key(r.text))
    return tuple(sorted(found))
