"""Linear analysis: operating point, linearization, lifting, eigen-analysis, margins, RGA.

The entry point is :func:`analyze`, a pure function from a transition system to an
:class:`~coherence.results.AnalysisResult` (``analysis="linear"``). :func:`operating_point`,
:func:`linearize` and :func:`topology` expose the intermediate results. Only NumPy and
SciPy's linear algebra are imported here; SymPy is imported on first use (by the derivative
templates), python-control never.
"""

from coherence.linear.analysis import Linearization, analyze, linearize, operating_point, topology
from coherence.linear.options import LinearOptions

__all__ = ["LinearOptions", "Linearization", "analyze", "linearize", "operating_point", "topology"]
