"""Figures of a system: the coupling graph, a simulated trace, and the poles.

``coherence plot SPEC --kind coupling|trace|poles --out FILE`` and
``coherence plot SPEC --finding ID --out FILE``:

- ``coupling``: the control-loop topology, derived from the IR (:func:`coupling_table`): which
  loops actuate which states, which states and inputs each loop senses (through its sensors)
  or reads (in its law or guard), and which states and inputs drive each plant state. Written
  as Graphviz DOT (``.dot``, ``.gv``) or Mermaid (``.mmd``, ``.mermaid``) without any extra
  dependency, or drawn as SVG/PNG with Matplotlib.
- ``trace``: the declared states and inputs over a simulation (nominal by default, or the
  scenarios given with ``--scenario``), one panel each (Matplotlib).
- ``--finding ID``: a finding's counterexample trace (:func:`finding_figure`): every column
  of its trace over time, the violated bound as a dashed line, the violation marked, and for
  a conflict the objective when the loop acts and when it holds, overlaid. The finding is
  named by its fingerprint, key or code; SPEC is checked first (through the results cache),
  or is a JSON report (``coherence check --format json``) whose findings are drawn as they are.
- ``poles``: the eigenvalues of the lifted linear system against the unit circle; needs the
  linear analysis (:mod:`coherence.linear`). They are read from its result's data, by name
  only: ``eigenvalues`` (or ``poles``), every eigenvalue; failing that, the ``eigenvalue`` of
  each record in a list (the dominant modes, drawn with their conjugates). Values may be
  complex numbers, ``[re, im]`` pairs or ``{"re", "im"}``.

Matplotlib is the optional extra ``plot`` (``pip install coherence[plot]``); SVG output is
deterministic (fixed ``svg.hashsalt``, no date, text kept as text) so it can be compared in
tests. This module also owns the *topology step* of ``coherence check``
(:func:`add_topology`), which puts the coupling table into every system's report so that
reports can draw it without computing anything.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from coherence.diagnostics import CoherenceError, Severity
from coherence.ir.nodes import Binary, Call, Expr, Ite, TransitionSystem, Unary, Var
from coherence.reports.graph import (
    COUPLING_COLUMNS,
    COUPLING_TITLE,
    RELATIONS,
    coupling_table_of,
)
from coherence.results import AnalysisResult, RunReport, SystemReport, Table

EXIT_OK, EXIT_ERROR = 0, 2
TEXT_SUFFIXES = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid"}
IMAGE_SUFFIXES = (".svg", ".png")
PLOT_HINT = "install the plotting extra: pip install 'coherence[plot]'"


# ---- the coupling graph, from the IR -------------------------------------------------------


def _names(e: Expr) -> Iterator[str]:
    stack = [e]
    while stack:
        node = stack.pop()
        match node:
            case Var(name):
                yield name
            case Unary(_, a):
                stack.append(a)
            case Binary(_, left, right):
                stack += (left, right)
            case Call(_, args):
                stack += args
            case Ite(c, a, b):
                stack += (c, a, b)
            case _:
                pass


class _Reach:
    """Which declared states and inputs an expression depends on within a tick.

    Lets are looked through; so are the states the compiler adds (sensor registers,
    stabilization history, cooldown counters), which only delay or hold what they copy.
    """

    def __init__(self, ts: TransitionSystem) -> None:
        self.lets = {d.name: d.expr for d in ts.lets}
        self.internal = {s.name: s.update for s in ts.states if s.kind not in ("plant", "actuator")}
        self.user = {s.name for s in ts.states if s.kind in ("plant", "actuator")}
        self.inputs = set(ts.input_names)

    def __call__(self, e: Expr) -> set[str]:
        out: set[str] = set()
        seen: set[str] = set()
        stack = list(_names(e))
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n in self.user or n in self.inputs:
                out.add(n)
            elif n in self.lets:
                stack += _names(self.lets[n])
            elif n in self.internal:
                stack += _names(self.internal[n])
        return out


def coupling_table(ts: TransitionSystem) -> Table:
    """The coupling graph of a system as a table (see :mod:`coherence.reports.graph`)."""
    reach = _Reach(ts)

    def kind(name: str) -> str:
        return "input" if name in reach.inputs else "state"

    rows: set[tuple[str, str, str, str, str]] = set()
    for lp in ts.loops:
        own = set(lp.actuates)
        for st in lp.actuates:
            rows.add((lp.name, "loop", "actuates", st, "state"))
        sensed: set[str] = set()
        for sn in lp.sensors:
            sensed |= reach(sn.signal)
        read: set[str] = set()
        for a in lp.actions:
            read |= reach(a.law)
        read |= reach(Var(lp.fires))
        for n in sorted(sensed):
            rows.add((n, kind(n), "senses", lp.name, "loop"))
        for n in sorted(read - sensed - own):
            rows.add((n, kind(n), "reads", lp.name, "loop"))
    for s in ts.states:
        if s.kind == "plant":
            for n in sorted(reach(s.update) - {s.name}):
                rows.add((n, kind(n), "drives", s.name, "state"))
    order = {r: i for i, r in enumerate(RELATIONS)}
    ordered = sorted(rows, key=lambda r: (order[r[2]], r[0], r[3]))
    return Table(
        COUPLING_TITLE,
        COUPLING_COLUMNS,
        tuple(ordered),
        note="derived from the spec: loops, the states they actuate, and what they sense or read",
    )


def topology_analysis(ts: TransitionSystem) -> AnalysisResult:
    """The topology step: the coupling table of a system, as an analysis result."""
    return AnalysisResult("topology", tables=(coupling_table(ts),))


def add_topology(report: RunReport) -> RunReport:
    """Add the coupling table to every analysed system that has none yet.

    The pipeline's reports carry no IR, so each analysed file is compiled again from the
    text the pipeline read (cheap next to the analyses, and always the same systems).
    """
    from coherence.compile import compile_text

    files = []
    for fr in report.files:
        if not fr.systems or all(coupling_table_of(s) for s in fr.systems):
            files.append(fr)
            continue
        compiled = {ts.name: ts for ts in compile_text(fr.path, fr.source_text).systems}
        systems: list[SystemReport] = []
        for s in fr.systems:
            ts = compiled.get(s.name)
            if ts is None or coupling_table_of(s) is not None:
                systems.append(s)
            else:
                systems.append(replace(s, analyses=(*s.analyses, topology_analysis(ts))))
        files.append(replace(fr, systems=tuple(systems)))
    return replace(report, files=tuple(files))


# ---- loading -------------------------------------------------------------------------------


def load_system(path: str, system: str | None = None) -> TransitionSystem:
    """The one (or the named) system of a spec file; errors are usage errors (exit 2)."""
    from coherence.compile import compile_path

    result = compile_path(path)
    systems = result.systems
    if system is not None:
        systems = tuple(s for s in systems if s.name == system)
        if not systems:
            names = ", ".join(s.name for s in result.systems)
            raise CoherenceError(f"no system `{system}` in `{path}`", f"systems: {names}")
    if len(systems) != 1:
        names = ", ".join(s.name for s in systems)
        raise CoherenceError(f"`{path}` has several systems", f"choose one with --system ({names})")
    return systems[0]


# ---- figures -------------------------------------------------------------------------------


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise CoherenceError(
            "plotting needs Matplotlib, which is not installed", PLOT_HINT
        ) from None
    return matplotlib


def _figure(rows: int = 1, width: float = 7.0, height: float = 4.0) -> tuple[Any, Any]:
    _matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(rows, 1, squeeze=False)[:, 0]


def save_figure(fig: Any, out: Path) -> None:
    """Save deterministically: fixed hash salt, no date or software stamp, text as text."""
    matplotlib = _matplotlib()
    fmt = out.suffix.lstrip(".").lower()
    metadata: dict[str, Any] = (
        {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
    )
    with matplotlib.rc_context({"svg.hashsalt": "coherence", "svg.fonttype": "none"}):
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format=fmt, metadata=metadata)


def coupling_figure(table: Table, title: str) -> Any:
    """The coupling graph drawn in three columns: inputs, states, loops."""
    import math

    from coherence.reports.graph import edges_of, nodes_of

    edges = edges_of(table)
    nodes = nodes_of(edges)
    columns = {"input": 0.0, "state": 1.0, "loop": 2.0}
    groups: dict[str, list[str]] = {}
    for name, kind in nodes:
        groups.setdefault(kind, []).append(name)
    pos: dict[str, tuple[float, float]] = {}
    for kind, names in groups.items():
        for i, name in enumerate(names):
            pos[name] = (columns.get(kind, 1.0), -(i + 0.5) / max(len(names), 1))
    fig, (ax,) = _figure(width=8.0, height=max(3.0, 0.45 * max(map(len, groups.values()))))
    colour = {"actuates": "#1e40af", "senses": "#059669", "reads": "#6b7280", "drives": "#9ca3af"}
    style = {"actuates": "-", "senses": "--", "reads": ":", "drives": "-"}
    face = {"loop": "#dbeafe", "state": "white", "input": "#f3f4f6"}
    boxes = {}
    for name, kind in nodes:
        x, y = pos[name]
        text = ax.text(
            x,
            y,
            name,
            ha="center",
            va="center",
            fontsize=9,
            zorder=3,
            bbox={"boxstyle": "round" if kind == "loop" else "square", "fc": face.get(kind)},
        )
        boxes[name] = text
    for a, _, rel, b, _ in edges:
        (x0, _y0), (x1, _y1) = pos[a], pos[b]
        bend = 0.3 if math.isclose(x0, x1) else 0.08
        ax.annotate(
            "",
            xy=pos[b],
            xytext=pos[a],
            zorder=2,
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour.get(rel, "black"),
                "linestyle": style.get(rel, "-"),
                "connectionstyle": f"arc3,rad={bend}",
                "patchA": boxes[a].get_bbox_patch(),
                "patchB": boxes[b].get_bbox_patch(),
            },
        )
    for rel in RELATIONS:
        ax.plot([], [], color=colour[rel], linestyle=style[rel], label=rel)
    ax.legend(
        loc="lower center",
        ncol=len(RELATIONS),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, -0.12),
    )
    for kind, x in columns.items():
        ax.text(x, 0.05, kind + "s", ha="center", fontsize=9, fontweight="bold")
    ax.set_xlim(-0.5, 2.5)
    ax.set_ylim(-1.05, 0.15)
    ax.set_axis_off()
    ax.set_title(title)
    return fig


def trace_figure(ts: TransitionSystem, scenarios: list[str], ticks: int) -> Any:
    """Declared inputs and states over a simulation, one panel each, scenarios overlaid."""
    from coherence.simulate.engine import simulate
    from coherence.simulate.scenarios import scenario_inputs
    from coherence.simulate.view import user_columns

    trace = simulate(ts, ticks, inputs=scenario_inputs(ts, scenarios, ticks))
    cols = user_columns(ts)
    fig, axes = _figure(rows=len(cols), height=1.6 * len(cols) + 0.6)
    time = [t * ts.tick for t in range(ticks)]
    for ax, (label, _, scale, name) in zip(axes, cols, strict=True):
        series = trace.series(name)
        for i, sc in enumerate(scenarios):
            ax.plot(time, series[i] / (scale or 1.0), label=sc, linewidth=1.2)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("time [s]")
    if len(scenarios) > 1:
        axes[0].legend(fontsize=7)
    axes[0].set_title(f"{ts.name}: {ticks} ticks")
    return fig


def eigenvalues(result: AnalysisResult) -> tuple[list[complex], bool]:
    """The eigenvalues a linear-analysis result carries, and whether they are all of them.

    The result's data holds them as ``eigenvalues`` (or ``poles``): every eigenvalue; or,
    failing that, as a list of records with an ``eigenvalue`` field (the dominant modes).
    """
    data = dict(result.data)
    for key in ("eigenvalues", "poles"):
        if key in data:
            return [_complex(v) for v in data[key]], True
    for value in data.values():
        if (
            isinstance(value, list | tuple)
            and value
            and all(isinstance(v, dict) and "eigenvalue" in v for v in value)
        ):
            modes = [_complex(v["eigenvalue"]) for v in value]
            # modes list each conjugate pair once: draw both
            return modes + [m.conjugate() for m in modes if m.imag != 0.0], False
    raise CoherenceError(
        "the linear analysis reported no eigenvalues",
        "it is expected to put them in its data as `eigenvalues`",
    )


def _complex(v: Any) -> complex:
    if isinstance(v, dict):
        return complex(float(v["re"]), float(v["im"]))
    if isinstance(v, list | tuple):
        return complex(float(v[0]), float(v[1]))
    return complex(v)


def poles_figure(ts: TransitionSystem, poles: list[complex], complete: bool = True) -> Any:
    import numpy as np

    fig, (ax,) = _figure(width=5.0, height=5.0)
    angle = np.linspace(0.0, 2.0 * np.pi, 361)
    ax.plot(np.cos(angle), np.sin(angle), color="#6b7280", linewidth=0.8)
    ax.axhline(0.0, color="#d1d5db", linewidth=0.6)
    ax.axvline(0.0, color="#d1d5db", linewidth=0.6)
    outside = [p for p in poles if abs(p) > 1.0]
    inside = [p for p in poles if abs(p) <= 1.0]
    ax.scatter([p.real for p in inside], [p.imag for p in inside], marker="x", color="#1e40af")
    ax.scatter([p.real for p in outside], [p.imag for p in outside], marker="x", color="#dc2626")
    radius = max([1.0, *(abs(p) for p in poles)])
    ax.set_xlim(-1.1 * radius, 1.1 * radius)
    ax.set_ylim(-1.1 * radius, 1.1 * radius)
    ax.set_aspect("equal")
    ax.set_xlabel("Re")
    ax.set_ylabel("Im")
    which = "eigenvalues" if complete else "dominant eigenvalues"
    ax.set_title(f"{ts.name}: {which} per hyperperiod", fontsize=10)
    return fig


# ---- a finding's counterexample trace ------------------------------------------------------

MAX_PANELS = 12
CMP_OPS = ("<=", "<", ">=", ">")


@dataclass(frozen=True, slots=True)
class Bound:
    """A constant bound drawn on the panel of ``column`` (display units)."""

    column: str
    value: float
    label: str


def _column_name(label: str) -> str:
    """``"queue [req]"`` -> ``"queue"``; ``"x (acting) [u]"`` -> ``"x (acting)"``."""
    return label.split(" [", 1)[0].strip()


def _display_scale(ts: TransitionSystem, name: str) -> tuple[float, str]:
    for kind in ("objective", "state", "let", "param"):
        try:
            var = getattr(ts, kind)(name)
        except (KeyError, AttributeError):
            continue
        return float(var.scale or 1.0), str(var.unit)
    for u in ts.inputs:
        if u.name == name:
            return float(u.scale or 1.0), u.unit
    return 1.0, ""


def _constant(ts: TransitionSystem, expr: Expr) -> float | None:
    """The value of ``expr`` when it does not change over a short nominal run, else None."""
    import numpy as np

    from coherence.simulate.engine import evaluate, simulate

    try:
        values = evaluate(expr, simulate(ts, 3))[0]
    except Exception:  # a bound that cannot be evaluated alone is not drawn
        return None
    if not np.all(np.isfinite(values)) or float(np.ptp(values)) > 1e-12 * max(
        1.0, float(np.max(np.abs(values)))
    ):
        return None
    return float(values[0])


def _unit_text(unit: str) -> str:
    return "" if unit in ("", "1", "bool") else f" {unit}"


def finding_bounds(ts: TransitionSystem, finding: dict[str, Any]) -> list[Bound]:
    """The bounds a finding is about, where they are constant: a keep objective's bound
    (conflicts, violated objectives) or the comparison of an ``always`` requirement."""
    out: list[Bound] = []
    data = finding.get("data") or {}
    names = [str(data["objective"])] if "objective" in data else []
    key = str(finding.get("key", ""))
    if key.startswith("objective:"):
        names.append(key.partition(":")[2])
    for name in names:
        try:
            obj = ts.objective(name)
        except KeyError:
            continue
        if obj.kind == "keep" and obj.bound is not None and obj.cmp in CMP_OPS:
            value = _constant(ts, obj.bound)
            if value is not None:
                scale = obj.scale or 1.0
                shown = f"{value / scale:.4g}{_unit_text(obj.unit)}"
                out.append(Bound(name, value / scale, f"bound: {name} {obj.cmp} {shown}"))
    loc = finding.get("location") or {}
    for req in ts.requirements:
        if (req.span.line, req.span.column) != (loc.get("line"), loc.get("column")):
            continue
        cond = req.cond
        if not isinstance(cond, Binary) or cond.op not in CMP_OPS:
            continue
        for side, other in ((cond.left, cond.right), (cond.right, cond.left)):
            if isinstance(side, Var):
                value = _constant(ts, other)
                if value is not None:
                    scale, unit = _display_scale(ts, side.name)
                    shown = f"{value / scale:.4g}{_unit_text(unit)}"
                    text = f"bound: {req.text.removeprefix('require ')} ({shown})"
                    out.append(Bound(side.name, value / scale, text))
                break
    return out


def finding_figure(finding: dict[str, Any], ts: TransitionSystem | None = None) -> Any:
    """A finding's counterexample trace: each column of its trace over time, one panel
    each (the panels of what the finding is about first), the violated bound as a dashed
    line, the violation marked; for a conflict (COH401), the objective of the acting run
    and of the counterfactual in which the loop holds, overlaid.

    ``finding`` is the finding as the JSON report writes it (``coherence check --format
    json``); ``ts`` (the spec's system) gives the bounds and the objective's units.
    """
    trace = finding.get("trace")
    if not trace or not trace.get("steps"):
        raise CoherenceError(
            f"finding {finding.get('code')} ({finding.get('key') or finding.get('fingerprint')}) "
            "has no trace to draw",
            "choose a finding with a counterexample: its report shows a trace",
        )
    steps = trace["steps"]
    labels = [str(c) for c in trace["columns"]]
    time = [float(st["time"]) for st in steps]
    series = {lab: [_number(st["values"][i]) for st in steps] for i, lab in enumerate(labels)}
    violated = [i for i, st in enumerate(steps) if st.get("violated")]
    data = finding.get("data") or {}
    objective = str(data.get("objective", ""))
    bounds = finding_bounds(ts, finding) if ts is not None else []
    tick = _tick_seconds(steps, ts)

    shown = [lab for lab in labels if "(acting)" not in _column_name(lab)]
    about = {objective, *(b.column for b in bounds)}
    shown.sort(key=lambda lab: _column_name(lab) not in about)  # stable: the rest keep order
    dropped = shown[MAX_PANELS:]
    shown = shown[:MAX_PANELS]
    fig, axes = _figure(rows=len(shown), width=8.0, height=1.7 * len(shown) + 0.9)
    for ax, lab in zip(axes, shown, strict=True):
        name = _column_name(lab)
        conflict = bool(objective) and name == objective and "acting" in data
        ax.plot(
            time,
            series[lab],
            label="acting run" if conflict else name,
            gid=f"series:{name}",
            color="#1e40af",
            linewidth=1.3,
            drawstyle="steps-post",
        )
        if conflict:
            start = int(data.get("start_tick", 0))
            scale = _objective_scale(ts, objective)
            holding = [float(v) / scale for v in data.get("holding", ())]
            t_hold = [(start + i) * tick for i in range(len(holding))]
            actor = str(finding.get("key", "")).partition(":")[2] or "the loop"
            ax.plot(
                t_hold,
                holding,
                label=f"counterfactual: {actor} holds",
                gid=f"holding:{name}",
                color="#d97706",
                linewidth=1.3,
                linestyle="--",
                drawstyle="steps-post",
            )
            ax.axvline(start * tick, color="#6b7280", linewidth=0.8, linestyle=":")
            ax.annotate(
                f"{actor} acts",
                (start * tick, 0.02),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                va="bottom",
                ha="left",
            )
        for b in bounds:
            if b.column == name:
                ax.axhline(
                    b.value,
                    color="#dc2626",
                    linewidth=1.0,
                    linestyle="--",
                    label=b.label,
                    gid=f"bound:{name}",
                )
        if violated:
            ax.plot(
                [time[i] for i in violated],
                [series[lab][i] for i in violated],
                linestyle="none",
                marker="o",
                markersize=4,
                color="#dc2626",
                label="violation" if name in about or len(shown) == 1 else None,
                gid=f"violation:{name}",
            )
        ax.set_ylabel(lab, fontsize=8)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0] and (conflict or name in about):
            ax.legend(fontsize=7, loc="best")
    axes[-1].set_xlabel("time [s]")
    title = f"{finding.get('code')}: {trace.get('title', '')}"
    if dropped:
        title += f" ({len(dropped)} more columns not drawn)"
    axes[0].set_title(title, fontsize=9)
    return fig


def _number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")  # "inf"/"nan" written as strings, or null


def _tick_seconds(steps: list[dict[str, Any]], ts: TransitionSystem | None) -> float:
    if ts is not None:
        return float(ts.tick)
    for st in steps:
        if int(st["tick"]) > 0:
            return float(st["time"]) / int(st["tick"])
    return 1.0


def _objective_scale(ts: TransitionSystem | None, name: str) -> float:
    if ts is None:
        return 1.0
    try:
        return float(ts.objective(name).scale or 1.0)
    except KeyError:
        return 1.0


def select_finding(findings: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    """The finding ``wanted`` names: a fingerprint (or a prefix of 4+ characters), a key, or a
    code (the first such finding that has a trace)."""
    w = wanted.strip()
    exact = [f for f in findings if f.get("fingerprint") == w or f.get("key") == w]
    if not exact and len(w) >= 4:
        exact = [f for f in findings if str(f.get("fingerprint", "")).startswith(w)]
    if not exact:
        by_code = [f for f in findings if str(f.get("code", "")).upper() == w.upper()]
        exact = [f for f in by_code if f.get("trace")] or by_code
    if not exact:
        listed = "; ".join(
            f"{f.get('code')} {f.get('key') or ''} {f.get('fingerprint')}".replace("  ", " ")
            for f in findings
            if f.get("trace")
        )
        raise CoherenceError(
            f"no finding `{wanted}`",
            f"findings with a trace: {listed}" if listed else "no finding of this run has a trace",
        )
    return exact[0]


def _findings_of_report(path: Path, system: str | None) -> list[dict[str, Any]]:
    """The findings of a JSON report (``coherence check --format json``)."""
    import json

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CoherenceError(f"cannot read the JSON report `{path}`: {e}") from None
    out: list[dict[str, Any]] = []
    for fr in doc.get("files", []) if isinstance(doc, dict) else []:
        for s in fr.get("systems", []):
            if system is None or s.get("name") == system:
                out += list(s.get("findings", []))
    return out


def _findings_of_spec(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Check the spec (as ``coherence check`` would, through the results cache)."""
    from coherence.pipeline import CheckOptions, check_paths
    from coherence.reports.command import results_cache
    from coherence.reports.json import finding_json

    options = CheckOptions(
        linear=not args.no_linear, smt=not args.no_smt, cache=results_cache(args, True)
    )
    report = check_paths([args.spec], options)
    out: list[dict[str, Any]] = []
    for fr in report.files:
        errors = [d for d in fr.diagnostics if d.level == Severity.ERROR]
        if errors:
            raise CoherenceError(f"`{args.spec}` has errors", "run `coherence lint` on it")
        for s in fr.systems:
            if args.system is None or s.name == args.system:
                out += [finding_json(f) for f in s.findings]
    return out


def plot_finding(args: argparse.Namespace, out: Path) -> str:
    """Draw the finding ``args.finding`` of ``args.spec`` (a spec or a JSON report)."""
    spec = Path(args.spec)
    if spec.suffix.lower() == ".json":
        finding = select_finding(_findings_of_report(spec, args.system), args.finding)
        location = str((finding.get("location") or {}).get("path", ""))
        ts = _system_of(location, args.system) if location else None
    else:
        finding = select_finding(_findings_of_spec(args), args.finding)
        ts = load_system(args.spec, args.system)
    save_figure(finding_figure(finding, ts), out)
    return f"{finding.get('code')} {finding.get('key') or ''}".strip()


def _system_of(path: str, system: str | None) -> TransitionSystem | None:
    """The spec a JSON report points at, when it can be read (for bounds and units)."""
    try:
        return load_system(path, system)
    except CoherenceError:
        return None


# ---- the command ---------------------------------------------------------------------------


def run_plot(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """``coherence plot``: write the figure to ``args.out``; exit 2 on any problem."""
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in TEXT_SUFFIXES and suffix not in IMAGE_SUFFIXES:
        raise CoherenceError(
            f"cannot tell the format of `{out}`",
            "use .svg or .png (Matplotlib), or .dot / .mmd for the coupling graph",
        )
    finding = getattr(args, "finding", None)
    if suffix in TEXT_SUFFIXES and (args.kind != "coupling" or finding):
        raise CoherenceError(f"`{suffix}` output is for `--kind coupling` only", "use .svg or .png")
    if suffix in IMAGE_SUFFIXES:
        _matplotlib()
    if finding:
        drawn = plot_finding(args, out)
        stderr.write(f"wrote {out}: {drawn}\n")
        return EXIT_OK
    ts = load_system(args.spec, args.system)
    if args.kind == "coupling":
        table = coupling_table(ts)
        if suffix in TEXT_SUFFIXES:
            from coherence.reports.graph import dot, mermaid

            text = dot(table, ts.name) if TEXT_SUFFIXES[suffix] == "dot" else mermaid(table)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        else:
            save_figure(coupling_figure(table, f"{ts.name}: coupling graph"), out)
    elif args.kind == "trace":
        from coherence.simulate.nominal import default_ticks

        ticks = args.ticks or default_ticks(ts)
        save_figure(trace_figure(ts, args.scenario or ["nominal"], ticks), out)
    else:
        try:
            from coherence import linear

            analyze = linear.analyze
        except (ImportError, AttributeError):
            raise CoherenceError(
                "pole plots need the linear analysis, which is not available in this install"
            ) from None
        poles, complete = eigenvalues(analyze(ts))
        save_figure(poles_figure(ts, poles, complete), out)
    stderr.write(f"wrote {out}\n")
    return EXIT_OK
