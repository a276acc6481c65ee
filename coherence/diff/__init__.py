"""Runtime drift between two versions of a spec: ``coherence diff OLD NEW``.

Both versions are checked with the same options (and the project's selection and inline
suppressions); then, system by system (paired by name), what a reviewer needs:

- **verdicts** that changed status; a *regression* when a requirement that passed
  (proved, holds) becomes unknown or falsified, or an unknown one becomes falsified;
- **findings** that appeared or went away, matched by fingerprint (line-independent; the old
  file's findings are fingerprinted as if at the new path); a new error is a regression;
- **violations that moved earlier**: a finding in both versions whose replayed trace now
  violates at an earlier tick (a regression);
- **relaxed objectives**: a requirement removed or weakened (a shorter horizon, a looser
  bound, more reversals allowed, a longer response time), an objective removed, its
  tolerance or materiality floor raised or its bound loosened. Such a change can turn a
  failing check green without making the system any better, so it is flagged: it is never
  "no regression";
- **numbers** a reviewer reads: the coupled spectral radius, the Stability table (each
  loop alone, the pairs), the Margins table (gain and delay margins per loop), and the
  objective-alignment matrix. The analyses' internals (eigenvalue lists, solver statistics,
  the nominal run's extremes) are in ``coherence check --format json``, not in the diff.

``coherence diff SPEC --rev GITREV`` compares ``git show GITREV:SPEC`` with the working copy;
``coherence diff DIR --rev GITREV`` every spec under DIR (new and deleted specs included), and
``coherence diff OLD_DIR NEW_DIR`` the specs of two folders, paired by relative path.
``--format markdown`` writes a comment for a pull request. Exit code 1 on a regression or a
relaxed objective (unless ``--exit-zero``), 0 otherwise, 2 on errors.
"""

from __future__ import annotations

from coherence.diff.command import (
    Side,
    check_text,
    diff_pair,
    git_show,
    read_text,
    run_diff,
    spec_pairs,
)
from coherence.diff.compare import (
    EarlierViolation,
    FindingChange,
    NumberChange,
    Relaxation,
    SpecDiff,
    VerdictChange,
    diff_files,
    flatten,
)
from coherence.diff.relaxed import relaxations
from coherence.diff.render import diff_json, diff_markdown, diff_set_json, diff_set_text, diff_text

__all__ = [
    "EarlierViolation",
    "FindingChange",
    "NumberChange",
    "Relaxation",
    "Side",
    "SpecDiff",
    "VerdictChange",
    "check_text",
    "diff_files",
    "diff_json",
    "diff_markdown",
    "diff_pair",
    "diff_set_json",
    "diff_set_text",
    "diff_text",
    "flatten",
    "git_show",
    "read_text",
    "relaxations",
    "run_diff",
    "spec_pairs",
]
