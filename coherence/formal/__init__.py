"""The formal analysis: orchestration of the engines, as data.

``analyze(ts, options)`` model-checks a transition system's requirements, searches conflict
witnesses between loops and bad equilibria, and returns an
:class:`~coherence.results.AnalysisResult` whose every trace the simulator reproduced.

- :mod:`coherence.formal.bounded`: the strategy of a bounded requirement, a tuple of steps
  (``BOUNDED = (patterns, intervals, dwell, localized, induction, bmc, invariants)``) and the
  one loop that runs them;
- :mod:`coherence.formal.analyze`: the independent pieces of the analysis and their assembly;
- :mod:`coherence.formal.conflicts`: the conflict analysis, pair by pair (witnesses from the
  search, interval proofs, then solver proofs on shared budgets);
- :mod:`coherence.formal.equilibria`: the order of the bad-equilibrium queries;
- :mod:`coherence.formal.findings`: the words, one function per finding code.

The engines are :mod:`coherence.smt` (the only code that imports z3), :mod:`coherence.search`
and :mod:`coherence.intervals`. See docs/formal.md.
"""

from coherence.formal.analyze import analyze
from coherence.smt.options import SmtOptions

__all__ = ["SmtOptions", "analyze"]
