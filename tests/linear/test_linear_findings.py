"""The words of the linear analysis: one code constant per COH3xx rule in the catalog."""

from __future__ import annotations

from coherence.diagnostics import REGISTRY
from coherence.linear import findings


def test_codes_are_the_stability_rules_of_the_catalog() -> None:
    catalog = sorted(code for code in REGISTRY if code.startswith("COH3"))
    assert sorted(findings.CODES) == catalog
    assert findings.STABILITY.issubset(findings.CODES)


def test_join_names_in_the_users_words() -> None:
    assert findings.join([]) == ""
    assert findings.join(["a"]) == "a"
    assert findings.names(["a", "b", "c"]) == "`a`, `b` and `c`"
