"""`coherence check --suggest-fixes`: the nearest one-parameter change that makes a falsified
requirement hold, re-checked with the full analysis, as the finding's help line."""

from __future__ import annotations

import io
import json
from pathlib import Path

from coherence.cli import main

# x[k+1] = x[k] + K (r - x[k-1]): an integrating actuator under proportional control with
# one tick of measurement delay. Characteristic polynomial z^2 - z + K; Jury's conditions
# (P(1) = K > 0, P(-1) = 2 + K > 0, |K| < 1) give stability iff 0 < K < 1 (Astrom &
# Wittenmark, Computer-Controlled Systems, 3.2). At K = 1.5 `require stable` is falsified.
SPEC = """system p { tick 1s
  param K = 1.5
  param r = 10
  state x in [-1000000, 1000000] init 0
  loop c { senses x as xm delay 1s  actuates x by K * (r - xm) }
  require stable }
"""


def test_a_falsified_stability_gets_the_nearest_stable_gain(tmp_path: Path) -> None:
    spec = tmp_path / "p.coh"
    spec.write_text(SPEC)
    out, err = io.StringIO(), io.StringIO()
    argv = [str(spec), "--suggest-fixes", "--no-cache", "--format", "json", "-j", "1"]
    code = main(["check", *argv], out, err)
    assert code == 1
    report = json.loads(out.getvalue())
    fixed = [
        f
        for fr in report["files"]
        for s in fr["systems"]
        for f in s["findings"]
        if "fix" in f.get("data", {})
    ]
    assert fixed, err.getvalue()
    fix = fixed[0]["data"]["fix"]
    assert fix["knob"] == "K" and fix["rechecked"]
    # the nearest stable gain lies just below the closed-form boundary K = 1
    assert 0.8 <= float(fix["to"]) < 1.0
    assert fixed[0]["help"].endswith("(re-checked)")
