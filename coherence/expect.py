"""Expected verdicts: compare a run with a manifest of what each spec must produce.

A spec library (``specs/manifest.toml``) states, per spec, the finding codes each analysis
must report and the status of each requirement. ``coherence check PATHS --expect MANIFEST``
runs the analyses and exits 0 only when every spec produced exactly what the manifest says,
so a library of deliberately broken specs can run in CI: a regression is a difference, in
either direction.

Manifest format (TOML)::

    [manifest]
    reconciled = ["simulate", "linear", "smt"]   # analyses whose expectations are checked

    [specs."conflicts/hpa_lag_broken.coh"]       # path relative to the manifest's folder
    lint = []                                    # front-end diagnostics
    simulate = []
    linear = ["COH307"]
    smt = ["COH503"]
    verdicts = { "no flapping of replicas max 2 within 10 min" = "falsified" }
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coherence.diagnostics import CoherenceError
from coherence.results import FileReport, RunReport, Status, Table

PASSING = {Status.PROVED.value, Status.HOLDS.value}


@dataclass(frozen=True, slots=True)
class Expectation:
    path: str
    what: str  # "lint", an analysis name, or "verdict: <requirement>"
    expected: str
    actual: str
    pending: bool = False  # from an analysis whose expectations are not reconciled yet

    @property
    def ok(self) -> bool:
        return self.pending or self.expected == self.actual


def load_manifest(path: str | Path) -> tuple[Path, dict[str, Any], set[str]]:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise CoherenceError(f"no such manifest `{p}`") from None
    except tomllib.TOMLDecodeError as e:
        raise CoherenceError(f"{p}: {e}", "the manifest is TOML") from None
    specs = doc.get("specs", {})
    if not isinstance(specs, dict):
        raise CoherenceError(f"{p}: `specs` must be a table of spec paths")
    reconciled = set(doc.get("manifest", {}).get("reconciled", ["simulate"]))
    return p.parent, specs, reconciled


def _codes(codes: list[str]) -> str:
    return ", ".join(sorted(set(codes))) or "-"


def _verdict_class(status: str) -> str:
    return "pass" if status in PASSING else status


def compare(report: RunReport, manifest: str | Path) -> list[Expectation]:
    """Every expectation of every checked file, with what the run produced."""
    base, specs, reconciled = load_manifest(manifest)
    out: list[Expectation] = []
    for fr in report.files:
        try:
            rel = Path(fr.path).resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            rel = fr.path
        entry = specs.get(rel)
        if entry is None:
            out.append(Expectation(rel, "manifest entry", "present", "missing"))
            continue
        out += _compare_file(rel, fr, entry, reconciled)
    return out


def _compare_file(
    rel: str, fr: FileReport, entry: dict[str, Any], reconciled: set[str]
) -> list[Expectation]:
    out = [
        Expectation(
            rel, "lint", _codes(entry.get("lint", [])), _codes([d.code for d in fr.diagnostics])
        )
    ]
    ran: dict[str, list[str]] = {}
    for s in fr.systems:
        for a in s.analyses:
            ran.setdefault(a.analysis, []).extend(f.code for f in a.findings)
    for analysis, codes in sorted(ran.items()):
        if analysis in entry:
            out.append(
                Expectation(
                    rel,
                    analysis,
                    _codes(entry[analysis]),
                    _codes(codes),
                    pending=analysis not in reconciled,
                )
            )
    verdicts = entry.get("verdicts", {})
    actual = {
        v.requirement.removeprefix("require ").strip(): (v.status.value, v.analysis)
        for s in fr.systems
        for v in s.verdicts
    }
    for req, want in sorted(verdicts.items()):
        if req not in actual:
            continue  # the analysis that decides it did not run
        got, analysis = actual[req]
        exp = str(want)
        shown = _verdict_class(got) if exp == "pass" else got
        out.append(
            Expectation(rel, f"verdict: {req}", exp, shown, pending=analysis not in reconciled)
        )
    return out


def expectation_table(items: list[Expectation]) -> Table:
    def mark(e: Expectation) -> str:
        if e.expected == e.actual:
            return "ok"
        return "pending" if e.pending else "DIFFERENT"

    rows = tuple(
        (e.path, e.what, e.expected, e.actual, mark(e)) for e in items if e.expected != e.actual
    )
    n_bad = sum(not e.ok for e in items)
    n_pending = sum(e.pending and e.expected != e.actual for e in items)
    files = len({e.path for e in items})
    pending = (
        f"; {n_pending} differences from analyses not yet reconciled with the manifest "
        "(pending: listed, not failing)"
        if n_pending
        else ""
    )
    met = "all met" if not n_bad else f"{n_bad} not met"
    return Table(
        "Expected verdicts",
        ("spec", "what", "expected", "actual", ""),
        rows,
        f"{files} specs, {len(items)} expectations: {met}{pending}",
    )
