"""The engine's stated limits: how large a run or a system any analysis takes on.

The front end rejects absurd sizes where they are written (:mod:`coherence.frontend.limits`:
horizons, windows, delays, nesting). What the engine derives from them can still be large: a
run of many scenarios, the hyperperiod of loops whose periods have no common factor, the
pairs of a fleet of loops. Each limit here keeps one analysis within seconds and a few hundred
megabytes; where one is hit the analysis says so, naming the limit (COH905), and what it could
not decide is unknown, never a pass. docs/limits.md lists them for users.
"""

from __future__ import annotations

from coherence.diagnostics import CoherenceError
from coherence.ir.nodes import TransitionSystem

MAX_TRACE_VALUES = 25_000_000
"""Numbers one simulated batch holds: scenarios x ticks x (states + definitions), about
200 MB of float64: the nominal analysis and the searches keep their runs within it (in
batches of scenarios, or a shorter run)."""

MAX_SIMULATE_VALUES = 125_000_000
"""Numbers any one call of the simulator holds at most (about 1 GB with its flags): beyond it
the run is refused (:class:`TooLarge`), never attempted. The analyses keep to
:data:`MAX_TRACE_VALUES`; this bounds what a command asks for directly."""

MAX_RUN_TICKS = 100_000
"""Ticks the nominal analysis and the falsification searches simulate at most (a few seconds
of simulation each). A longer horizon is searched over this prefix: a violation there is a
violation, no violation there proves nothing beyond it (the solver's steps still run)."""

MAX_HYPERPERIOD = 10_000
"""Ticks of the hyperperiod (the least common multiple of the loops' periods): the
linear analysis lifts one hyperperiod, the operating point settles over twenty."""

MAX_CONFLICT_LOOPS = 12
"""Loops of one system the conflict analysis takes on: n loops have n(n - 1) ordered pairs,
each searched and, up to :data:`coherence.formal.conflicts.MAX_PROVED_PAIRS`, proved. Beyond
it ``require coherent`` is unknown."""

LIMIT_CODE = "COH905"


class TooLarge(CoherenceError, ValueError):
    """A run or a system beyond a stated limit; the message names the limit and what would
    fit. On the command line it is an error (exit 2); in a check, COH905."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint or "ask for a shorter run or a smaller system")


def trace_values(scenarios: int, ticks: int, width: int) -> int:
    """The numbers a run of ``scenarios`` x ``ticks`` holds, ``width`` per tick."""
    return max(1, scenarios) * (max(0, ticks) + 1) * max(1, width)


def max_ticks(scenarios: int, width: int) -> int:
    """The longest run of ``scenarios`` that fits :data:`MAX_TRACE_VALUES`."""
    return max(1, MAX_TRACE_VALUES // (max(1, scenarios) * max(1, width)) - 1)


def check_run(scenarios: int, ticks: int, width: int) -> None:
    """Raise :class:`TooLarge` where the run does not fit :data:`MAX_SIMULATE_VALUES`."""
    if trace_values(scenarios, ticks, width) > MAX_SIMULATE_VALUES:
        fits = max(1, MAX_SIMULATE_VALUES // (max(1, scenarios) * max(1, width)) - 1)
        raise TooLarge(
            f"a run of {ticks:,} ticks x {max(1, scenarios):,} scenario(s) x {width:,} values "
            f"per tick is beyond the limit of {MAX_SIMULATE_VALUES:,} values (about "
            f"{MAX_SIMULATE_VALUES * 9 // 10**9:,} GB) per simulated run; at most {fits:,} "
            f"ticks fit"
        )


def beyond_limits(ts: TransitionSystem) -> str:
    """Why no analysis can take ``ts`` on (its hyperperiod is beyond
    :data:`MAX_HYPERPERIOD`), or "" when it is within the limits."""
    h = ts.hyperperiod
    if h > MAX_HYPERPERIOD:
        periods = ", ".join(f"`{lp.name}` every {lp.period:,}" for lp in ts.loops[:6])
        return (
            f"the hyperperiod of {h:,} ticks (the least common multiple of the loops' "
            f"periods: {periods}) is beyond the limit of {MAX_HYPERPERIOD:,} ticks"
        )
    return ""
