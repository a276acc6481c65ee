"""The rule catalog (docs/rules.md), generated from the registry of diagnostic codes.

``coherence rules --format markdown > docs/rules.md`` regenerates it; a test keeps the
committed file equal to this output, so every code is documented in exactly one place:
:data:`coherence.diagnostics.REGISTRY`.
"""

from __future__ import annotations

from coherence.diagnostics import REGISTRY, Rule

FAMILIES = (
    ("COH1", "Syntax"),
    ("COH2", "Semantics and units"),
    ("COH3", "Stability (linear analysis)"),
    ("COH4", "Coupling and conflicts"),
    ("COH5", "Bounded properties and equilibria"),
    ("COH9", "Inconclusive and internal"),
)


def _rule(r: Rule) -> list[str]:
    out = [f"### {r.code} {r.name}", "", f"*{r.severity}*: {r.summary}", "", r.explanation, ""]
    if r.example:
        out += ["Example:", "", "```", r.example, "```", ""]
    if r.fix:
        out += [f"**Fix:** {r.fix}", ""]
    return out


def rules_markdown() -> str:
    """The catalog: an index table, then every rule under its family."""
    out = [
        "# Rule catalog",
        "",
        "<!-- Generated from coherence/diagnostics.py: "
        "`coherence rules --format markdown > docs/rules.md`. Do not edit by hand. -->",
        "",
        "Every diagnostic and finding of coherence has a stable code. `coherence explain CODE`",
        "prints the same text in the terminal; SARIF output carries it as each rule's help.",
        'Select or ignore codes by prefix in `[tool.coherence]` (`select = ["COH3"]`), and',
        "silence one finding with `# coherence: ignore[CODE] reason` (see docs/ci.md).",
        "",
        "| code | name | severity | summary |",
        "|---|---|---|---|",
    ]
    codes = sorted(REGISTRY)
    for code in codes:
        r = REGISTRY[code]
        anchor = f"{code.lower()}-{r.name}"
        summary = r.summary.replace("|", "\\|")
        out.append(f"| [{code}](#{anchor}) | {r.name} | {r.severity} | {summary} |")
    out.append("")
    for prefix, title in FAMILIES:
        members = [REGISTRY[c] for c in codes if c.startswith(prefix)]
        if not members:
            continue
        out += [f"## {prefix}xx: {title}", ""]
        for r in members:
            out += _rule(r)
    others = [REGISTRY[c] for c in codes if not c.startswith(tuple(p for p, _ in FAMILIES))]
    if others:
        out += ["## Other", ""]
        for r in others:
            out += _rule(r)
    return "\n".join(out).rstrip("\n") + "\n"
