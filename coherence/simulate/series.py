"""Writing simulated time series to CSV or JSON (values in the spec's declared units)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from coherence.diagnostics import CoherenceError
from coherence.simulate.engine import Trace


def _columns(trace: Trace) -> list[tuple[str, str, float]]:
    ts = trace.ts
    cols = [(u.name, u.unit, u.scale) for u in ts.inputs]
    cols += [(s.name, s.unit, s.scale) for s in ts.states if s.kind in ("plant", "actuator")]
    cols += [(d.name, d.unit, d.scale) for d in ts.lets if d.owner is None]
    return cols


def write_series(trace: Trace, scenarios: list[str], path: str, fmt: str) -> None:
    cols = _columns(trace)
    try:
        # like --output and --write-baseline: missing parent directories are created
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            with Path(path).open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["scenario", "tick", "time_s", *(f"{n} [{u}]" for n, u, _ in cols)])
                for s, name in enumerate(scenarios):
                    data = [trace.series(n)[s] / sc for n, _, sc in cols]
                    for t in range(trace.ticks):
                        w.writerow(
                            [
                                name,
                                t,
                                f"{t * trace.ts.tick:g}",
                                *(f"{float(col[t]):.9g}" for col in data),
                            ]
                        )
        else:
            doc = {
                "system": trace.ts.name,
                "tick_s": trace.ts.tick,
                "ticks": trace.ticks,
                "scenarios": [
                    {
                        "scenario": name,
                        "series": {
                            n: {"unit": u, "values": [float(v) for v in trace.series(n)[s] / sc]}
                            for n, u, sc in cols
                        },
                    }
                    for s, name in enumerate(scenarios)
                ],
            }
            Path(path).write_text(
                json.dumps(doc, indent=1, allow_nan=True) + "\n", encoding="utf-8"
            )
    except OSError as e:
        raise CoherenceError(f"cannot write `{path}`: {e.strerror}") from None
