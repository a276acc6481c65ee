"""Input scenarios for simulation: nominal, step, ramp, burst, and CSV files.

A scenario is written as text on the command line (values in the input's declared unit,
times in ticks or with a time unit)::

    nominal
    step:demand=140@10s            demand steps from nominal to 140 at t = 10 s
    ramp:demand=80..140@10..60     demand ramps linearly from 80 at tick 10 to 140 at tick 60
    burst:demand=140@10+30s        demand is 140 for 30 s from tick 10, nominal otherwise
    csv:path/to/file.csv           columns named after inputs (optionally a `tick` column)

Several inputs are separated by commas: ``step:demand=140@10,prompt=2000@20``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coherence.diagnostics import CoherenceError
from coherence.frontend.units import TIME, UnitError, UnitTable
from coherence.ir.nodes import TransitionSystem
from coherence.simulate.engine import Array, nominal_inputs


@dataclass(frozen=True, slots=True)
class Scenario:
    text: str
    kind: str  # nominal | step | ramp | burst | csv


_NUM = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TIME = rf"({_NUM})\s*([A-Za-z]*)"


def _ticks(value: str, unit: str, tick: float, text: str) -> int:
    v = float(value)
    if unit in ("", "tick", "ticks"):
        seconds = v * tick
    else:
        try:
            u = UnitTable.new().parse(unit)
        except UnitError as e:
            raise CoherenceError(f"scenario `{text}`: {e.message}", e.hint) from None
        if u.dim != TIME:
            raise CoherenceError(f"scenario `{text}`: `{unit}` is not a time unit")
        seconds = v * u.scale
    n = seconds / tick
    if abs(n - round(n)) > 1e-9:
        raise CoherenceError(f"scenario `{text}`: {v:g}{unit} is not a whole number of ticks")
    return round(n)


def build_inputs(ts: TransitionSystem, scenario: str, ticks: int) -> Array:
    """Input values [T, n_inputs] (canonical units) for one scenario text."""
    base: Array = np.array(nominal_inputs(ts, ticks)[0], dtype=float)
    text = scenario.strip()
    if text in ("", "nominal"):
        return base
    kind, _, body = text.partition(":")
    if kind == "csv":
        return _from_csv(ts, Path(body), ticks, base)
    if kind not in ("step", "ramp", "burst") or not body:
        raise CoherenceError(
            f"unknown scenario `{text}`",
            "scenarios are nominal, step:IN=V@T, ramp:IN=A..B@T1..T2, burst:IN=V@T+D, csv:FILE",
        )
    names = list(ts.input_names)
    for part in body.split(","):
        name, eq, spec = part.partition("=")
        name = name.strip()
        if not eq or name not in names:
            known = ", ".join(names) or "none"
            raise CoherenceError(f"scenario `{text}`: unknown input `{name}`", f"inputs: {known}")
        j = names.index(name)
        scale = ts.inputs[j].scale
        if kind == "step":
            m = re.fullmatch(rf"({_NUM})@{_TIME}", spec.strip())
            if not m:
                raise CoherenceError(f"scenario `{text}`: write step:{name}=VALUE@TIME")
            t0 = _ticks(m.group(2), m.group(3), ts.tick, text)
            base[t0:, j] = float(m.group(1)) * scale
        elif kind == "burst":
            m = re.fullmatch(rf"({_NUM})@{_TIME}\+{_TIME}", spec.strip())
            if not m:
                raise CoherenceError(f"scenario `{text}`: write burst:{name}=VALUE@START+DURATION")
            t0 = _ticks(m.group(2), m.group(3), ts.tick, text)
            d = _ticks(m.group(4), m.group(5), ts.tick, text)
            base[t0 : t0 + d, j] = float(m.group(1)) * scale
        else:
            m = re.fullmatch(rf"({_NUM})\.\.({_NUM})@{_TIME}\.\.{_TIME}", spec.strip())
            if not m:
                raise CoherenceError(f"scenario `{text}`: write ramp:{name}=FROM..TO@T1..T2")
            a, b = float(m.group(1)) * scale, float(m.group(2)) * scale
            t1 = _ticks(m.group(3), m.group(4), ts.tick, text)
            t2 = _ticks(m.group(5), m.group(6), ts.tick, text)
            if t2 <= t1:
                raise CoherenceError(f"scenario `{text}`: the ramp must end after it starts")
            t = np.arange(ticks)
            frac = np.clip((t - t1) / (t2 - t1), 0.0, 1.0)
            base[t >= t1, j] = (a + (b - a) * frac)[t >= t1]
        lo, hi = ts.inputs[j].lo, ts.inputs[j].hi
        if (base[:, j] < lo - 1e-9).any() or (base[:, j] > hi + 1e-9).any():
            raise CoherenceError(
                f"scenario `{text}`: `{name}` leaves its declared range "
                f"[{lo / scale:g}, {hi / scale:g}] {ts.inputs[j].unit}",
                "the formal analyses assume inputs within their range; widen the range or the scenario",
            )
    return base


def _from_csv(ts: TransitionSystem, path: Path, ticks: int, base: Array) -> Array:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise CoherenceError(f"cannot read scenario file `{path}`: {e.strerror}") from None
    if not rows:
        raise CoherenceError(f"scenario file `{path}` has no rows")
    names = list(ts.input_names)
    cols = [c for c in rows[0] if c != "tick"]
    unknown = [c for c in cols if c not in names]
    if unknown:
        raise CoherenceError(
            f"{path}: unknown input column `{unknown[0]}`", f"inputs: {', '.join(names)}"
        )
    for i, row in enumerate(rows):
        t = i
        if "tick" in row:
            try:
                t = int(row["tick"])
            except ValueError:
                raise CoherenceError(f"{path}:{i + 2}: `tick` must be a whole number") from None
        if t >= ticks:
            break
        for c in cols:
            j = names.index(c)
            try:
                base[t:, j] = float(row[c]) * ts.inputs[j].scale
            except ValueError:
                raise CoherenceError(
                    f"{path}:{i + 2}: `{row[c]}` is not a number (column {c})"
                ) from None
    return base


def scenario_inputs(ts: TransitionSystem, scenarios: list[str], ticks: int) -> Array:
    """Stack several scenarios: shape [S, T, n_inputs]."""
    return np.stack([build_inputs(ts, s, ticks) for s in scenarios or ["nominal"]])
