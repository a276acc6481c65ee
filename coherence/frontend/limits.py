"""The front end's stated limits: what a spec may ask for before any analysis runs.

Each limit keeps one run within seconds and a few hundred megabytes, and each is reported as a
located error that names the limit (never an overflow, a recursion error or a memory blow-up
in a later stage). docs/language.md ("Limits") lists them for users.
"""

from __future__ import annotations

MAX_EXPR_DEPTH = 50
"""Nesting levels of one expression (operators, calls, `if`): the library's deepest is 8."""

MAX_REGISTER_TICKS = 3600
"""Ticks of one sensor's delay plus window, and periods of one stabilization window: each
tick is one extra state of the transition system (an hour at a 1 s tick)."""

MAX_TIME_TICKS = 1_000_000
"""Ticks of a horizon, response time, flapping window, period, phase or cooldown."""

MAX_UNIT_EXPONENT = 12
"""The largest power of a unit in a unit expression (`tok/s^2`)."""

RESERVED_PREFIX = "__"
"""Names that start with this are the tool's own (the simulator's tick counter is `__t`)."""
