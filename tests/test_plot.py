"""``coherence plot --finding``: a finding's counterexample trace, to PNG and SVG."""

from __future__ import annotations

import io
import json
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from coherence.cli import main

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
HPA_VPA = str(ROOT / "specs" / "conflicts" / "hpa_vpa_broken.coh")
FAST = ("--no-linear", "--no-cache")  # the conflicts and requirements come from simulation
SVG = "{http://www.w3.org/2000/svg}"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def svg_texts(root: ET.Element) -> str:
    return "\n".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


def path_points(root: ET.Element, gid: str) -> list[tuple[float, float]]:
    (group,) = [g for g in root.iter(f"{SVG}g") if g.get("id") == gid]
    (path,) = group.iter(f"{SVG}path")
    numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_conflict_acting_and_holding_overlaid(tmp_path: Path) -> None:
    out = tmp_path / "conflict.svg"
    code, _, err = cli("plot", HPA_VPA, "--finding", "conflict:hpa", "--out", str(out), *FAST)
    assert code == 0, err
    assert "COH401 conflict:hpa" in err
    root = ET.fromstring(out.read_bytes())  # valid XML
    texts = svg_texts(root)
    for label in (
        "acting run",
        "counterfactual: hpa holds",
        "bound: pod_quota <= 30 replica",
        "hpa acts",
        "pod_quota [replica]",
        "replicas [replica]",
        "time [s]",
    ):
        assert label in texts, label
    # SVG y grows downwards: the acting run ends above the quota, the counterfactual in
    # which the HPA holds stays below it all along (the finding: 50 against 20 replicas)
    ((_, bound_y), _) = path_points(root, "bound:pod_quota")
    acting = path_points(root, "series:pod_quota")
    holding = path_points(root, "holding:pod_quota")
    assert acting[-1][1] < bound_y
    assert all(y > bound_y for _, y in holding)
    assert holding[0][0] > acting[0][0]  # the counterfactual starts when the HPA acts


def test_a_falsified_requirement_to_png_and_svg(tmp_path: Path) -> None:
    png, svg = tmp_path / "req.png", tmp_path / "req.svg"
    assert cli("plot", HPA_VPA, "--finding", "COH501", "--out", str(png), *FAST)[0] == 0
    width, height = png_size(png.read_bytes())
    assert width > 300 and height > 300
    assert cli("plot", HPA_VPA, "--finding", "COH501", "--out", str(svg), *FAST)[0] == 0
    root = ET.fromstring(svg.read_bytes())
    texts = svg_texts(root)
    assert "bound: always replicas <= quota for 120 ticks (30 replica)" in texts
    assert "counterfactual" not in texts  # not a conflict
    ((_, bound_y), _) = path_points(root, "bound:replicas")
    violation = [g for g in root.iter(f"{SVG}g") if g.get("id") == "violation:replicas"]
    assert violation  # the violated tick is marked
    assert min(y for _, y in path_points(root, "series:replicas")) < bound_y


def test_a_saved_json_report_is_drawn_as_it_is(tmp_path: Path) -> None:
    code, report, _ = cli("check", HPA_VPA, "--format", "json", *FAST)
    assert code == 1
    saved = tmp_path / "report.json"
    saved.write_text(report, encoding="utf-8")
    findings = [f for s in json.loads(report)["files"][0]["systems"] for f in s["findings"]]
    vpa = next(f for f in findings if f["key"] == "conflict:vpa")
    out = tmp_path / "vpa.svg"
    code, _, err = cli("plot", str(saved), "--finding", vpa["fingerprint"][:8], "--out", str(out))
    assert code == 0, err
    texts = svg_texts(ET.fromstring(out.read_bytes()))
    assert "counterfactual: vpa holds" in texts and "bound: hpa.util <= 0.7" in texts


def test_an_unknown_finding_and_a_text_format(tmp_path: Path) -> None:
    out = str(tmp_path / "x.png")
    code, _, err = cli("plot", HPA_VPA, "--finding", "COH999", "--out", out, *FAST)
    assert code == 2 and "no finding `COH999`" in err and "conflict:hpa" in err
    code, _, err = cli("plot", HPA_VPA, "--finding", "COH401", "--out", "x.dot", *FAST)
    assert code == 2 and "--kind coupling" in err
    assert not Path(out).exists()
