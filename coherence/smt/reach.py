"""Moved to coherence.intervals.reach; kept for imports not yet updated.

Only re-exports: new code imports :mod:`coherence.intervals.reach` (the enclosures),
:mod:`coherence.intervals.compile` (expressions to interval functions) and
:mod:`coherence.intervals.fixedpoint` (the fixed-point contraction).
"""

from coherence.intervals.reach import Enclosure as Enclosure
from coherence.intervals.reach import Outcome as Outcome
from coherence.intervals.reach import check_reach as check_reach
from coherence.intervals.reach import enclosure_box as enclosure_box
from coherence.intervals.reach import reachable as reachable
from coherence.intervals.reach import reachable_enclosure as reachable_enclosure
from coherence.intervals.reach import remember_enclosure as remember_enclosure
