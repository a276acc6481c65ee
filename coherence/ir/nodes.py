"""The transition system: the one meaning every analysis reads.

A spec lowers to a :class:`TransitionSystem`: a discrete-time hybrid system whose state vector
advances one tick at a time. Everything that has memory is a state here, flattened: plant
states, actuators, the shift registers of measurement delays and averaging windows, the
recommendation history of stabilization windows, and cooldown counters. Every state has one
``update`` expression over the values of the current tick, so the next state is

    x(t+1) = F(x(t), u(t), p, t mod H)

where H is the hyperperiod of the loops; the only dependence on time is through
:class:`Phase` nodes ("this tick is one where the loop acts"). Backends evaluate lets in the
order given (already topologically sorted), then every state update simultaneously.

All values are in canonical units (seconds, requests, watts, dollars ...); ``unit`` and
``scale`` on a declaration say how to show a value back as the spec wrote it
(``shown = value / scale``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from coherence.source import Span

_NOSPAN = Span.unknown()


def _span() -> Span:
    return field(default=_NOSPAN, compare=False, repr=False)


# ---- expressions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    value: float
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Var:
    """A reference to an input, parameter, state or let of the system, by name."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "neg" | "not"
    arg: Expr
    span: Span = _span()


ARITH_OPS = ("+", "-", "*", "/", "^")
CMP_OPS = ("<", "<=", ">", ">=", "==", "!=")
BOOL_OPS = ("and", "or")


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # one of ARITH_OPS, CMP_OPS, BOOL_OPS
    left: Expr
    right: Expr
    span: Span = _span()


FUNCTIONS = ("min", "max", "abs", "ceil", "floor", "round", "sqrt", "exp", "log")


@dataclass(frozen=True, slots=True)
class Call:
    """A closed-set function: min and max take two or more args, the rest one.

    ``round`` is ``floor(x + 0.5)`` (halves round up), the same in every backend.
    """

    fn: str
    args: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Ite:
    cond: Expr
    then: Expr
    other: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Phase:
    """True on ticks ``t`` with ``t % period == offset``: the ticks on which a loop acts."""

    period: int
    offset: int
    span: Span = _span()


Expr = Const | Var | Unary | Binary | Call | Ite | Phase


# ---- declarations --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputVar:
    """An exogenous signal: chosen by a scenario in simulation, by the adversary in SMT.

    ``slew``: the most it moves from one tick to the next (canonical units; ``inf`` when the
    spec declares no ``slew``)."""

    name: str
    lo: float
    hi: float
    nominal: float
    unit: str
    scale: float
    span: Span = _span()
    slew: float = math.inf


@dataclass(frozen=True, slots=True)
class ParamVar:
    """A constant; ``lo``/``hi`` give its uncertainty range (equal to ``value`` if fixed).

    ``internal`` marks parameters the compiler adds (each action's gain, 1 by default), which
    analyses vary to compute margins but reports do not list.
    """

    name: str
    value: float
    lo: float
    hi: float
    unit: str
    scale: float
    internal: bool = False
    span: Span = _span()


STATE_KINDS = ("plant", "actuator", "sensor", "history", "cooldown")


@dataclass(frozen=True, slots=True)
class StateVar:
    """A state: its range, initial value, whether it is integer, and its update.

    ``kind`` is plant (a ``next`` update), actuator (set by loops, holds otherwise), sensor
    (a shift register of a delay or window), history (a stabilization window's past
    recommendations) or cooldown (ticks left before a loop may act again).
    ``owner`` is the loop that owns a sensor, history or cooldown state.
    ``init`` is an expression evaluated at tick 0 over the declared initial states, the
    inputs of tick 0 and the parameters (registers start full of the signal's first value).
    """

    name: str
    kind: str
    lo: float
    hi: float
    init: Expr
    update: Expr
    integer: bool = False
    owner: str | None = None
    unit: str = "1"
    scale: float = 1.0
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Let:
    """A named expression of the current tick. ``owner`` is set for a loop's internal lets."""

    name: str
    expr: Expr
    unit: str = "1"
    scale: float = 1.0
    owner: str | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Sensor:
    """What a loop senses: ``signal`` delayed by ``delay`` ticks and averaged over ``window``.

    The value the loop sees at tick t is ``mean(signal(t-delay-j) for j in range(window))``,
    held in the let ``name``. ``registers[k]`` holds ``signal(t-k-1)``.
    """

    name: str
    alias: str
    signal: Expr
    delay: int
    window: int
    registers: tuple[str, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Action:
    """One actuation of a loop, after shaping.

    ``target`` names the let holding the shaped new value the loop proposes; ``changes`` the
    let that is true when the loop acts on this tick and moves the actuator; ``gain`` the
    internal parameter that scales the law's change (1 as written); ``recommendation`` the let
    holding the law's value before any shaping (what a stabilization window remembers).
    """

    state: str
    mode: str  # to | by
    law: Expr
    target: str
    changes: str
    gain: str
    history: tuple[str, ...] = ()
    span: Span = _span()
    recommendation: str = ""


@dataclass(frozen=True, slots=True)
class LoopIR:
    """A control loop: when it acts, what it senses, what it actuates.

    ``fires`` names a boolean let: the loop's period selects this tick, its guard holds and
    no cooldown is running. ``states`` are every state the loop owns (registers, history,
    cooldown); its actuators are in ``actions``.
    """

    name: str
    doc: str | None
    period: int
    phase: int
    sensors: tuple[Sensor, ...]
    actions: tuple[Action, ...]
    fires: str
    cooldown: int
    cooldown_state: str | None
    states: tuple[str, ...]
    objectives: tuple[str, ...]
    span: Span = _span()

    @property
    def actuates(self) -> tuple[str, ...]:
        return tuple(a.state for a in self.actions)


@dataclass(frozen=True, slots=True)
class ObjectiveIR:
    """A named scalar objective and when it counts as violated.

    minimize/maximize: a loop wants ``expr`` low/high; ``tolerance`` is how much worse it
    accepts (relative if ``relative``). keep: ``expr cmp bound`` must hold, with
    ``tolerance`` of slack (relative to the bound if ``relative``).

    ``floor`` is the smallest change of ``expr`` that is material, absolute and in canonical
    units (``floor 50ms`` is 0.05); ``None`` when the spec gives none, and the analysis then
    uses its default (docs/language.md, section 9).
    """

    name: str
    owner: str | None
    kind: str  # minimize | maximize | keep
    expr: Expr
    cmp: str | None
    bound: Expr | None
    tolerance: float
    relative: bool
    unit: str = "1"
    scale: float = 1.0
    span: Span = _span()
    floor: float | None = None


@dataclass(frozen=True, slots=True)
class Requirement:
    """What the spec requires.

    ``kind``: stable, coherent, always (``cond`` for ``horizon`` ticks), response (after
    ``trigger``, ``cond`` within ``within`` ticks, checked over ``horizon``), flapping (state
    ``state`` reverses direction at most ``max_reversals`` times in any ``within`` ticks, over
    ``horizon``), no_bad_equilibrium. ``inputs`` is ``free`` (chosen per tick) or ``held``.
    """

    kind: str
    cond: Expr | None = None
    trigger: Expr | None = None
    within: int = 0
    horizon: int = 0
    state: str | None = None
    max_reversals: int = 0
    inputs: str = "free"
    text: str = ""
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Binding:
    """A parameter bound to a calibration profile: what the spec assumes and what was measured.

    Analyses use ``assumed`` (the parameter's value); ``coherence validate`` substitutes
    ``measured`` and re-runs them.
    """

    param: str
    profile: str
    path: str
    source: str  # "h100.step_time(1)"
    assumed: float
    measured: float
    unit: str = "1"
    scale: float = 1.0
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class TransitionSystem:
    """One spec system, lowered. Lets are in evaluation order; states in a fixed order."""

    name: str
    doc: str | None
    path: str
    tick: float
    inputs: tuple[InputVar, ...]
    params: tuple[ParamVar, ...]
    states: tuple[StateVar, ...]
    lets: tuple[Let, ...]
    loops: tuple[LoopIR, ...]
    objectives: tuple[ObjectiveIR, ...]
    requirements: tuple[Requirement, ...]
    span: Span = _span()
    bindings: tuple[Binding, ...] = ()
    # derived once from ``states``: not part of equality, hashing or the repr
    _state_names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _content: list[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_state_names", tuple(s.name for s in self.states))
        object.__setattr__(self, "_content", [])

    @property
    def content_key(self) -> str:
        """A hash of everything the system is (its repr: every node with its span),
        computed once per object: the key of the per-process caches
        (:mod:`coherence.caches`). Equal systems have equal keys."""
        if not self._content:
            import hashlib

            self._content.append(hashlib.sha256(repr(self).encode()).hexdigest())
        return self._content[0]

    @property
    def hyperperiod(self) -> int:
        from math import lcm

        return lcm(1, *(lp.period for lp in self.loops))

    def state(self, name: str) -> StateVar:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)

    def loop(self, name: str) -> LoopIR:
        for lp in self.loops:
            if lp.name == name:
                return lp
        raise KeyError(name)

    def param(self, name: str) -> ParamVar:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def let(self, name: str) -> Let:
        for d in self.lets:
            if d.name == name:
                return d
        raise KeyError(name)

    def objective(self, name: str) -> ObjectiveIR:
        for o in self.objectives:
            if o.name == name:
                return o
        raise KeyError(name)

    @property
    def state_names(self) -> tuple[str, ...]:
        return self._state_names

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(u.name for u in self.inputs)


# ---- small builders shared by lowering and the backends ----------------------------------------


def walk(e: Expr) -> Iterator[Expr]:
    """Every node of an expression, depth first, parents before children."""
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        match node:
            case Unary(_, a):
                stack.append(a)
            case Binary(_, left, right):
                stack += (right, left)
            case Call(_, args):
                stack += reversed(args)
            case Ite(c, a, b):
                stack += (b, a, c)
            case _:
                pass


def map_children(e: Expr, f: Callable[[Expr], Expr]) -> Expr:
    """``e`` with ``f`` applied to each of its direct children (a leaf is ``e`` itself)."""
    match e:
        case Unary(op, a):
            return Unary(op, f(a), e.span)
        case Binary(op, a, b):
            return Binary(op, f(a), f(b), e.span)
        case Call(fn, args):
            return Call(fn, tuple(f(a) for a in args), e.span)
        case Ite(c, a, b):
            return Ite(f(c), f(a), f(b), e.span)
    return e


def names_in(e: Expr) -> frozenset[str]:
    """The names (states, lets, inputs, parameters) an expression reads."""
    return frozenset(n.name for n in walk(e) if isinstance(n, Var))


def conjunction(parts: list[Expr]) -> Expr:
    """``p1 and p2 and ...`` (true for no parts), left-nested."""
    if not parts:
        return Const(1.0)
    out = parts[0]
    for p in parts[1:]:
        out = Binary("and", out, p)
    return out


def sum_terms(e: Expr) -> list[Expr]:
    """The terms of a left-nested chain of additions (long window sums stay shallow)."""
    terms: list[Expr] = []
    while isinstance(e, Binary) and e.op == "+":
        terms.append(e.right)
        e = e.left
    terms.append(e)
    return terms[::-1]
