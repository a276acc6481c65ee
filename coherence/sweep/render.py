"""A sweep for people and machines: the text report, JSON, and the map of two axes.

Nothing here computes a verdict: :mod:`.regions` has them all. The map (PNG or SVG, by the
file's suffix) colours the plane of two knobs by the overall verdict of the nearest sampled
point, marks every sampled point, the boxes the formal analysis certified, and the spec's
current values; Matplotlib's object API with the Agg canvas, saved deterministically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from coherence.sweep.evaluate import CODES, FALSIFIED, INVALID, NOT_FOUND, PROVED, UNKNOWN
from coherence.sweep.regions import Sweep, answer, boundaries, overall_code, summary


def _axis_text(sw: Sweep, i: int) -> str:
    ax = sw.axes[i]
    k = ax.knob
    spacing = "log" if ax.log else "linear"
    return f"{k.label}: {k.show(ax.lo)}..{k.show(ax.hi)} ({spacing}), current {k.show(float(sw.current[i]))}"


def write_text(sw: Sweep, out: TextIO, fixes: list[Any] | None = None) -> None:
    """The report: what was swept, the safe region per requirement along each axis, the
    one-line answer, and the verified fixes."""
    w = out.write
    w(f"sweep of {sw.system} ({sw.path})\n")
    for i in range(len(sw.axes)):
        w(f"  {_axis_text(sw, i)}\n")
    counts = ", ".join(f"{n} {word}" for word, n in summary(sw).items())
    w(
        f"  {len(sw.points)} points in {sw.rounds} rounds ({counts}); analyses: "
        f"{', '.join(sw.analyses)}; {sw.where}, {sw.chunk} points per task, "
        f"{sw.seconds:.1f} s\n\n"
    )
    rows = [("axis", "requirement", "safe for", "verdict changes between")]
    for b in boundaries(sw):
        ax = sw.axes[b.axis]
        k = ax.knob
        name = "all judged" if b.requirement is None else sw.requirements[b.requirement].text
        safe = (
            " or ".join(k.show(a) if a == c else f"{k.show(a)}..{k.show(c)}" for a, c in b.safe)
            or "nowhere"
        )
        flips = ", ".join(f"{k.show(a)} and {k.show(c)}" for a, c in b.flips) or "-"
        rows.append((k.label, name.removeprefix("require "), safe, flips))
    widths = [max(len(r[j]) for r in rows) for j in range(4)]
    for n, r in enumerate(rows):
        w("  " + "  ".join(c.ljust(widths[j]) for j, c in enumerate(r)).rstrip() + "\n")
        if n == 0:
            w("  " + "  ".join("-" * x for x in widths) + "\n")
    skipped = [sw.requirements[r].text for r in range(len(sw.requirements)) if r not in sw.judged]
    if skipped:
        w(
            "\n  not judged by the selected analyses: "
            + "; ".join(f"`{s}`" for s in skipped)
            + " (add --formal)\n"
        )
    if len(sw.axes) > 1:
        w("\n  boundaries are read on the line through the current values of the other knobs\n")
    if sw.certified:
        proved = sum(
            1 for _, _, st in sw.certified if all(int(st[r]) in (PROVED,) for r in sw.judged)
        )
        w(f"\n  formal: {proved} of {len(sw.certified)} boxes of the sampled safe region proved\n")
    if sw.errors:
        w(
            f"\n  invalid values: {sw.errors[0]}"
            + (f" (and {len(sw.errors) - 1} more)" if len(sw.errors) > 1 else "")
            + "\n"
        )
    w("\n")
    for line in answer(sw):
        w(line + "\n")
    for f in fixes or []:
        w(f"fix: {f.sentence}\n")


def to_data(sw: Sweep, fixes: list[Any] | None = None) -> dict[str, Any]:
    """The sweep as plain JSON data (canonical units: seconds, the spec's base units)."""
    reqs = [r.text for r in sw.requirements]
    return {
        "system": sw.system,
        "path": sw.path,
        "axes": [
            {
                "name": a.knob.name,
                "label": a.knob.label,
                "unit": "s" if a.knob.duration else a.knob.unit,
                "lo": a.lo,
                "hi": a.hi,
                "spacing": "log" if a.log else "linear",
                "current": float(sw.current[i]),
            }
            for i, a in enumerate(sw.axes)
        ],
        "requirements": reqs,
        "judged": [reqs[r] for r in sw.judged],
        "analyses": list(sw.analyses),
        "points": [
            {
                "values": [float(x) for x in sw.points[i]],
                "verdicts": {reqs[r]: CODES[int(sw.status[i, r])] for r in range(len(reqs))},
                "overall": CODES[overall_code(sw.status[i], sw.judged)],
                "spectral_radius": None if np.isnan(sw.rho[i]) else float(sw.rho[i]),
            }
            for i in range(len(sw.points))
        ],
        "current": {
            "values": [float(x) for x in sw.current],
            "verdicts": {reqs[r]: CODES[int(sw.current_status[r])] for r in range(len(reqs))},
            "safe": sw.safe_current(),
        },
        "boundaries": [
            {
                "axis": sw.axes[b.axis].knob.name,
                "requirement": None if b.requirement is None else reqs[b.requirement],
                "safe": [list(p) for p in b.safe],
                "changes_between": [list(p) for p in b.flips],
            }
            for b in boundaries(sw)
        ],
        "certified_boxes": [
            {
                "lo": [float(x) for x in lo],
                "hi": [float(x) for x in hi],
                "verdicts": {reqs[r]: CODES[int(st[r])] for r in range(len(reqs))},
            }
            for lo, hi, st in sw.certified
        ],
        "answer": answer(sw),
        "fixes": [f.to_data() for f in fixes or []],
        "rounds": sw.rounds,
        "errors": list(sw.errors),
    }


def write_json(sw: Sweep, out: TextIO, fixes: list[Any] | None = None) -> None:
    json.dump(to_data(sw, fixes), out, indent=2, sort_keys=False)
    out.write("\n")


_COLOURS = {
    "safe": "#7fc97f",
    "falsified": "#e7298a",
    "unknown": "#bdbdbd",
    "invalid": "#ffffff",
}


def _category(code: int) -> str:
    if code == FALSIFIED:
        return "falsified"
    if code == UNKNOWN:
        return "unknown"
    if code == INVALID:
        return "invalid"
    return "safe"


def write_map(sw: Sweep, out: Path, resolution: int = 200) -> None:
    """The verdict map of a two-axis sweep, to ``out`` (.png or .svg)."""
    from coherence.plot import _figure, save_figure

    if len(sw.axes) != 2:
        from coherence.diagnostics import CoherenceError

        raise CoherenceError("a verdict map needs exactly two --vary axes", "vary two knobs")
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Rectangle
    from scipy.interpolate import NearestNDInterpolator

    cats = list(_COLOURS)
    codes = np.array([cats.index(_category(overall_code(r, sw.judged))) for r in sw.status])
    axes = sw.axes
    u = np.column_stack([_unit(axes[i], sw.points[:, i]) for i in range(2)])
    grid = np.linspace(0.0, 1.0, resolution)
    gx, gy = np.meshgrid(grid, grid)
    field = NearestNDInterpolator(u, codes)(gx, gy)
    xs = _from_unit(axes[0], grid)
    ys = _from_unit(axes[1], grid)
    fig, (ax,) = _figure(1, 8.0, 5.0)
    ax.pcolormesh(
        [_shown(axes[0], x) for x in xs],
        [_shown(axes[1], y) for y in ys],
        field,
        cmap=ListedColormap([_COLOURS[c] for c in cats]),
        vmin=-0.5,
        vmax=len(cats) - 0.5,
        shading="nearest",
        rasterized=True,
    )
    for lo, hi, st in sw.certified:
        proved = all(int(st[r]) == PROVED for r in sw.judged)
        if proved:
            x0, y0 = _shown(axes[0], lo[0]), _shown(axes[1], lo[1])
            x1, y1 = _shown(axes[0], hi[0]), _shown(axes[1], hi[1])
            ax.add_patch(
                Rectangle(
                    (x0, y0),
                    x1 - x0,
                    y1 - y0,
                    fill=False,
                    hatch="//",
                    edgecolor="#1b7837",
                    linewidth=0.5,
                )
            )
    px = [_shown(axes[0], v) for v in sw.points[:, 0]]
    py = [_shown(axes[1], v) for v in sw.points[:, 1]]
    ax.scatter(px, py, s=4, c="black", linewidths=0, label="sampled point")
    cx, cy = _shown(axes[0], float(sw.current[0])), _shown(axes[1], float(sw.current[1]))
    ax.scatter(
        [cx],
        [cy],
        s=120,
        marker="*",
        c="gold",
        edgecolors="black",
        zorder=5,
        label=f"current ({'safe' if sw.safe_current() else 'not safe'})",
    )
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    for i, axis in ((0, ax.xaxis), (1, ax.yaxis)):
        if axes[i].log:
            (ax.set_xscale if i == 0 else ax.set_yscale)("log")
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(_label(axes[0]))
    ax.set_ylabel(_label(axes[1]))
    present = sorted(set(codes.tolist()))
    from matplotlib.patches import Patch

    handles = [Patch(color=_COLOURS[cats[c]], label=_legend(cats[c])) for c in present]
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(
        f"{sw.system}: verdicts of {', '.join(sw.requirements[r].text.removeprefix('require ') for r in sw.judged) or 'nothing judged'}",
        fontsize=8,
    )
    save_figure(fig, out)


def _legend(cat: str) -> str:
    return {
        "safe": f"safe ({CODES[NOT_FOUND]} / holds / proved)",
        "falsified": "falsified",
        "unknown": "unknown",
        "invalid": "invalid value",
    }[cat]


def _label(ax: Any) -> str:
    k = ax.knob
    unit = "s" if k.duration else ("" if k.unit in ("", "1") else k.unit)
    return f"{k.label} [{unit}]" if unit else k.label


def _shown(ax: Any, v: float) -> float:
    k = ax.knob
    return float(v) if k.duration or not k.scale else float(v) / k.scale


def _unit(ax: Any, v: Any) -> Any:
    v = np.clip(np.asarray(v, dtype=float), ax.lo, ax.hi)
    if ax.log:
        return (np.log(v) - np.log(ax.lo)) / (np.log(ax.hi) - np.log(ax.lo))
    return (v - ax.lo) / (ax.hi - ax.lo)


def _from_unit(ax: Any, u: Any) -> Any:
    if ax.log:
        return np.exp(np.log(ax.lo) + u * (np.log(ax.hi) - np.log(ax.lo)))
    return ax.lo + u * (ax.hi - ax.lo)
