"""The formal analysis (Z3): the only code of coherence that imports z3.

``analyze(ts, options)`` model-checks a transition system's requirements (bounded model
checking, k-induction), searches conflict witnesses between loops and bad equilibria, and
returns an :class:`~coherence.results.AnalysisResult` whose every trace the simulator
reproduced. See docs/formal.md.
"""

from coherence.smt.analyze import analyze
from coherence.smt.options import SmtOptions

__all__ = ["SmtOptions", "analyze"]
