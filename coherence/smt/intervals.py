"""Moved to coherence.intervals.arith; kept for imports not yet updated.

Only re-exports: new code imports :mod:`coherence.intervals.arith`.
"""

from coherence.intervals.arith import INF as INF
from coherence.intervals.arith import Interval as Interval
