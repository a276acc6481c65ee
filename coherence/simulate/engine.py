"""The reference semantics: NumPy simulation of a transition system, vectorised over scenarios.

Every claim another backend makes about a trace is replayed here. Expressions are compiled
once to closures over NumPy arrays of shape ``[S]`` (one entry per scenario or parameter
sample); each tick evaluates the lets in order, then every state update, then clamps each
state to its range. Booleans are NumPy bools; ``round(x)`` is ``floor(x + 0.5)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from coherence.caches import Kept
from coherence.ir.limits import check_run
from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    Phase,
    TransitionSystem,
    Unary,
    Var,
    sum_terms,
)

Array = NDArray[np.float64]
Value = np.ndarray | float | bool
Env = dict[str, Value]
Fn = Callable[[Env], Value]

_ARITH: dict[str, Callable[[Value, Value], Value]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "^": np.power,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
    "and": np.logical_and,
    "or": np.logical_or,
}

_UNARY_FN: dict[str, Callable[[Value], Value]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "round": lambda x: np.floor(np.asarray(x, dtype=float) + 0.5),
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
}


def compile_expr(e: Expr) -> Fn:
    """Compile an IR expression to a function of the environment (``__t`` is the tick)."""
    match e:
        case Const(v):
            c = float(v)
            return lambda env: c
        case Var(name):
            return lambda env: env[name]
        case Unary("neg", a):
            fa = compile_expr(a)
            return lambda env: np.negative(fa(env))
        case Unary(_, a):
            fa = compile_expr(a)
            return lambda env: np.logical_not(fa(env))
        case Binary("+", _, _):
            parts = sum_terms(e)
            terms = [compile_expr(t) for t in parts]
            if len(terms) > 2:
                return _fold(np.add, parts, terms)
            fl, fr = terms
            return lambda env: np.add(fl(env), fr(env))
        case Binary(op, left, right):
            return _binary(_ARITH[op], left, right)
        case Call("min", args):
            return _fold(np.minimum, args, [compile_expr(a) for a in args])
        case Call("max", args):
            return _fold(np.maximum, args, [compile_expr(a) for a in args])
        case Call(fn, (arg,)):
            g = _UNARY_FN[fn]
            fa = compile_expr(arg)
            return lambda env: g(fa(env))
        case Ite(c, a, b):
            fc, fa, fb = compile_expr(c), compile_expr(a), compile_expr(b)
            return lambda env: np.where(fc(env), fa(env), fb(env))
        case Phase(period, offset):
            return lambda env: _phase(env["__t"], period, offset)
    raise ValueError(f"cannot compile {e!r}")


def _binary(f: Callable[[Value, Value], Value], left: Expr, right: Expr) -> Fn:
    """``f(left, right)``; a name or a constant operand is read in place rather than through
    a function of its own (the same values, a call fewer: most operands are one or the
    other)."""
    match left, right:
        case Var(a), Var(b):
            return lambda env: f(env[a], env[b])
        case Var(a), Const(v):
            c = float(v)
            return lambda env: f(env[a], c)
        case Const(v), Var(b):
            c = float(v)
            return lambda env: f(c, env[b])
        case Var(a), _:
            fr = compile_expr(right)
            return lambda env: f(env[a], fr(env))
        case _, Var(b):
            fl = compile_expr(left)
            return lambda env: f(fl(env), env[b])
        case _, Const(v):
            fl, c = compile_expr(left), float(v)
            return lambda env: f(fl(env), c)
        case Const(v), _:
            fr, c = compile_expr(right), float(v)
            return lambda env: f(c, fr(env))
    fl, fr = compile_expr(left), compile_expr(right)
    return lambda env: f(fl(env), fr(env))


def _phase(t: Value, period: int, offset: int) -> Value:
    """Whether tick ``t`` is a phase tick; ``t`` is an int, or an array of ticks."""
    if isinstance(t, np.ndarray):
        return np.equal(np.remainder(t, period), offset)
    return int(t) % period == offset


def _reduce(f: Callable[[Value, Value], Value], vals: list[Value]) -> Value:
    out = vals[0]
    for v in vals[1:]:
        out = f(out, v)
    return out


# a left fold of at least this many named values runs as one accumulate over their stack
_STACK_MIN = 8


def fold_key(names: Sequence[str]) -> str:
    """The environment key under which an evaluator may pass the values of ``names`` (a fold
    of names, see :func:`stacked_folds`) already stacked: a float array [len(names), ...]."""
    return "\x00" + "\x00".join(names)


def fold_walk(e: Expr, stop: Collection[str] = ()) -> Iterator[tuple[Expr, tuple[str, ...] | None]]:
    """Every node of ``e``, each with the operand names of a *fold* (a sum, ``min`` or ``max``
    whose operands are all names) or None. A fold whose :func:`fold_key` is in ``stop`` is
    yielded but its operands are not visited (one whose operands after its first one or two
    are keyed there: only those first ones)."""
    stack = [e]
    while stack:
        x = stack.pop()
        parts: Sequence[Expr] | None = None
        match x:
            case Binary("+", _, _):
                parts = sum_terms(x)
            case Call(fn, args) if fn in ("min", "max"):
                parts = args
        if parts is not None:
            names = tuple(p.name for p in parts if isinstance(p, Var))
            folded = names if len(names) == len(parts) else None
            yield x, folded
            stack.extend(parts[: _unstacked(folded, stop) if folded else len(parts)])
            continue
        yield x, None
        match x:
            case Binary(_, left, right):
                stack.extend((left, right))
            case Unary(_, a):
                stack.append(a)
            case Call(_, args):
                stack.extend(args)
            case Ite(c, a, b):
                stack.extend((c, a, b))


def _unstacked(names: tuple[str, ...], stop: Collection[str]) -> int:
    """How many leading operands of the fold of ``names`` are read one by one when the
    blocks keyed in ``stop`` are passed stacked (all of them when none is)."""
    if not stop:
        return len(names)
    for h in range(_HEADS + 1):
        if len(names) - h < _STACK_MIN:
            break
        if fold_key(names[h:]) in stop:
            return h
    return len(names)


def stacked_folds(e: Expr) -> list[tuple[str, ...]]:
    """The folds of ``e`` that take their operands stacked: sums, mins and maxes of at least
    ``_STACK_MIN`` names (a window's registers, a stabilization window's history)."""
    return [n for _, n in fold_walk(e) if n is not None and len(n) >= _STACK_MIN]


def _names_only(parts: Sequence[Expr]) -> tuple[str, ...] | None:
    names = tuple(p.name for p in parts if isinstance(p, Var))
    return names if len(names) >= max(len(parts), _STACK_MIN) else None


# a fold may also read its operands as a few leading values (the signal a window sums,
# before its registers) and a stacked block of the rest
_HEADS = 2


def _is_float(v: Value) -> bool:
    if isinstance(v, np.ndarray):
        return v.dtype == np.float64
    return isinstance(v, float)


# a fold over a stack of more values than this runs row by row, in place (see _fold_rows)
_ROWS_OVER = 32_768


def _fold_rows(f: np.ufunc, acc: Value, rows: Array) -> Array:
    """``f(...f(f(acc, rows[0]), rows[1])..., rows[-1])``, one row at a time into one array:
    the operations of ``f.accumulate`` over ``[acc, *rows]``, in its order, without its
    output (a row per step) or a stack to run it over. For a stack of many scenarios those
    two arrays cost more than the steps (fresh memory, page by page)."""
    out = np.array(f(acc, rows[0]), dtype=np.float64)
    for row in rows[1:]:
        f(out, row, out=out)
    return out


def _accumulated(f: np.ufunc, block: Array) -> Value:
    """The left fold of the rows of ``block`` (``f.accumulate(block, axis=0)[-1]``)."""
    if block.size > _ROWS_OVER and block.ndim == 2 and block.shape[0] > 1:
        return _fold_rows(f, block[0], block[1:])
    return f.accumulate(block, axis=0)[-1]  # type: ignore[no-any-return]


def _fold_onto(f: np.ufunc, heads: list[Value], tail: Array) -> Value:
    """The left fold of ``heads`` then the rows of ``tail``, as one accumulate over
    ``[fold of heads, *tail]`` (or row by row, for a large stack): the same operations in
    the same order as the plain fold."""
    acc = heads[0]
    for v in heads[1:]:
        acc = f(acc, v)
    if tail.size > _ROWS_OVER and tail.ndim == 2:
        return _fold_rows(f, acc, tail)
    stack = np.empty((tail.shape[0] + 1, *tail.shape[1:]))
    stack[0] = acc
    stack[1:] = tail
    return f.accumulate(stack, axis=0)[-1]  # type: ignore[no-any-return]


def stacked_blocks(e: Expr, position: Mapping[str, int]) -> list[tuple[str, int, int]]:
    """The stacked folds of ``e`` whose operands (all of them, or all but up to ``_HEADS``
    leading ones) are consecutive in ``position``: (fold key of those, first, end)."""
    out = []
    for names in stacked_folds(e):
        for h in range(0, _HEADS + 1):
            rest = names[h:]
            if len(rest) < _STACK_MIN:
                break
            pos = [position.get(n, -1) for n in rest]
            first = pos[0]
            if first >= 0 and pos == list(range(first, first + len(pos))):
                out.append((fold_key(rest), first, first + len(pos)))
                break
    return out


def _fold(f: np.ufunc, parts: Sequence[Expr], fns: list[Fn]) -> Fn:
    """``f(f(f(a0, a1), a2), ...)``, left to right.

    When every operand is a name and they are float arrays of one shape, the fold runs as
    ``f.accumulate`` over their stack (passed in by the evaluator under :func:`fold_key`, or
    stacked here): the same elementwise operations in the same order, so the same values, in
    one call.
    """
    names = _names_only(parts)
    if names is None:
        return lambda env: _reduce(f, [g(env) for g in fns])
    key = fold_key(names)
    tails = [(h, fold_key(names[h:])) for h in range(1, _HEADS + 1) if len(names) - h >= _STACK_MIN]

    def stacked(env: Env) -> Value:
        block = env.get(key)
        if isinstance(block, np.ndarray):
            return _accumulated(f, block)
        for h, tail_key in tails:
            tail = env.get(tail_key)
            if isinstance(tail, np.ndarray):
                heads = [env[n] for n in names[:h]]
                if all(_is_float(v) for v in heads):
                    return _fold_onto(f, heads, tail)
                break
        vals = [env[n] for n in names]
        a, b = vals[0], vals[1]
        # the fold is float from its first step on, so later booleans count as 0.0 / 1.0
        # either way; values of different shapes (broadcasting) take the plain fold
        if (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == np.float64
            and b.dtype == np.float64
        ):
            try:
                stack = np.array(vals, dtype=np.float64)
            except ValueError:
                return _reduce(f, vals)
            return f.accumulate(stack, axis=0)[-1]  # type: ignore[no-any-return]
        return _reduce(f, vals)

    return stacked


@dataclass(frozen=True, slots=True)
class Compiled:
    """A transition system compiled for simulation (cache it; compiling is the slow part)."""

    ts: TransitionSystem
    lets: tuple[tuple[str, Fn], ...]
    updates: tuple[tuple[int, Fn], ...]  # (state index, update) for states that compute
    shift_dst: NDArray[np.intp]  # states whose update copies another state (registers)
    shift_src: NDArray[np.intp]
    inits: tuple[Fn, ...]
    # per state, the first state whose init expression equals its own (a window's registers
    # all start at their signal's value: it is computed once)
    init_keys: tuple[int, ...]
    user_lets: tuple[tuple[str, Fn], ...]
    # folds over consecutive states: (fold key, first state, end), stacked once per tick
    blocks: tuple[tuple[str, int, int], ...] = ()
    # after the first tick (see :func:`_settled_copies`): the copies that need no clamp, as
    # runs (first destination, end, first source); the states clamped, and their ranges
    runs: tuple[tuple[int, int, int], ...] = ()
    clamped: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    loose_dst: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    loose_src: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    # the states a let or an update reads one by one (not only as part of a stacked block)
    read: tuple[tuple[str, int], ...] | None = None


def _settled_copies(
    ts: TransitionSystem, dst: list[int], src: list[int]
) -> tuple[list[tuple[int, int, int]], list[int], list[int], list[int]]:
    """Which register copies can skip the clamp once every state has been clamped once.

    After the first tick every state's value is one that its own clamp leaves unchanged,
    bit for bit (``np.clip`` is idempotent; NaN passes). A copy keeps that for its
    destination when the destination's range is the source's, bit for bit, or holds it with
    room at both ends (a value at a bound equal in value but not in sign of zero would be
    replaced by the bound). Those copies are taken as they are, in runs of consecutive
    states (one slice each); the others are clamped like the updates. Returns the runs, the
    clamped states (updates and the other copies, sorted) and the other copies' pairs."""
    states = ts.states

    def same(a: float, b: float) -> bool:
        return bool(np.float64(a).view(np.int64) == np.float64(b).view(np.int64))

    settled: list[tuple[int, int]] = []
    loose: list[tuple[int, int]] = []
    for d, s_ in zip(dst, src, strict=True):
        a, b = states[d], states[s_]
        exact = same(a.lo, b.lo) and same(a.hi, b.hi)
        inside = a.lo < b.lo and b.hi < a.hi
        (settled if exact or inside else loose).append((d, s_))
    runs: list[tuple[int, int, int]] = []
    for d, s_ in sorted(settled):
        if runs and runs[-1][1] == d and runs[-1][2] + (d - runs[-1][0]) == s_:
            runs[-1] = (runs[-1][0], d + 1, runs[-1][2])
        else:
            runs.append((d, d + 1, s_))
    copied = {d for d, _ in settled}
    clamped = [i for i in range(len(states)) if i not in copied]
    return runs, clamped, [d for d, _ in loose], [s_ for _, s_ in loose]


def compile_system(ts: TransitionSystem) -> Compiled:
    """Compile every expression once; shift registers become one vectorised copy per tick."""
    lets = tuple((d.name, compile_expr(d.expr)) for d in ts.lets)
    user = tuple((d.name, f) for d, (_, f) in zip(ts.lets, lets, strict=True) if d.owner is None)
    index = {s.name: i for i, s in enumerate(ts.states)}
    updates: list[tuple[int, Fn]] = []
    dst: list[int] = []
    src: list[int] = []
    for i, s in enumerate(ts.states):
        if isinstance(s.update, Var) and s.update.name in index:
            dst.append(i)
            src.append(index[s.update.name])
        else:
            updates.append((i, compile_expr(s.update)))
    blocks: dict[str, tuple[str, int, int]] = {}
    for e in [d.expr for d in ts.lets] + [s.update for s in ts.states]:
        for key, first, end in stacked_blocks(e, index):
            blocks[key] = (key, first, end)
    runs, clamped, loose_dst, loose_src = _settled_copies(ts, dst, src)
    keys = set(blocks)
    outside: set[str] = set()
    copies = set(dst)
    computed = [s.update for i, s in enumerate(ts.states) if i not in copies]
    for e in [d.expr for d in ts.lets] + computed:
        outside |= {x.name for x, _ in fold_walk(e, keys) if isinstance(x, Var)}
    read = tuple((s.name, i) for i, s in enumerate(ts.states) if s.name in outside)
    return Compiled(
        ts,
        lets,
        tuple(updates),
        np.array(dst, dtype=np.intp),
        np.array(src, dtype=np.intp),
        tuple(compile_expr(s.init) for s in ts.states),
        _init_keys(ts),
        user,
        tuple(blocks.values()),
        tuple(runs),
        np.array(clamped, dtype=np.intp),
        np.array(loose_dst, dtype=np.intp),
        np.array(loose_src, dtype=np.intp),
        read,
    )


def _init_keys(ts: TransitionSystem) -> tuple[int, ...]:
    # keyed by the text, not by equality: ``x + 0.0`` and ``x + -0.0`` are equal
    # expressions whose values differ in the sign of a zero
    first: dict[str, int] = {}
    return tuple(first.setdefault(repr(s.init), i) for i, s in enumerate(ts.states))


# compiled systems and nominal runs, by the content of the system they were made from
_COMPILED: Kept[Compiled] = Kept("simulate.compiled", 8)
_NOMINAL: Kept[Trace] = Kept("simulate.nominal", 8)


def compiled(ts: TransitionSystem) -> Compiled:
    """``compile_system(ts)``, kept for the last few systems: every replay of a system's
    counterexamples and every run of an analysis compiles it once."""
    hit = _COMPILED.get(ts.content_key)
    if hit is not None:
        return hit
    comp = compile_system(ts)
    _COMPILED.put(ts.content_key, comp)
    return comp


def nominal_trace(ts: TransitionSystem, ticks: int) -> Trace:
    """The run of ``ticks`` ticks at nominal input from the initial state, shared by the
    analyses that ask for it (the nominal simulation, the operating point of the conflict
    search and of the equilibria): computed once per system for the longest run asked,
    its arrays read-only."""
    hit = _NOMINAL.get(ts.content_key)
    if hit is not None and hit.ticks >= ticks:
        return hit.prefix(ticks)
    with np.errstate(all="ignore"):
        tr = simulate(ts, ticks)
    remember_nominal(tr)
    return tr


def remember_nominal(tr: Trace) -> None:
    """Keep ``tr`` as its system's nominal run (:func:`nominal_trace`), its arrays made
    read-only: a run computed elsewhere (in a worker process) and handed back, so that the
    analyses forked after it do not compute it again. Only the nominal run from the initial
    state belongs here; a longer run than one kept replaces it."""
    hit = _NOMINAL.get(tr.ts.content_key)
    if hit is not None and hit.ticks >= tr.ticks:
        return
    for a in (tr.states, tr.inputs, tr.lets, tr.clipped, *tr.params.values()):
        a.flags.writeable = False
    _NOMINAL.put(tr.ts.content_key, tr)


@dataclass(frozen=True, slots=True)
class Trace:
    """A simulated run of S scenarios for T ticks.

    ``states[s, t, i]`` is state i at tick t (t = 0..T); ``inputs[s, t, j]`` and
    ``lets[s, t, k]`` are the input and let values of tick t (t = 0..T-1);
    ``clipped[s, t, i]`` says the update of tick t left state i's range and was clamped.
    All values are canonical units; booleans are stored as 0.0 / 1.0.
    """

    ts: TransitionSystem
    states: Array
    inputs: Array
    lets: Array
    clipped: NDArray[np.bool_]
    params: Mapping[str, Array]
    # name -> position of every state and let, derived once from ``ts``
    _state_index: dict[str, int] = field(init=False, repr=False, compare=False)
    _let_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        states: dict[str, int] = {}
        for i, n in enumerate(self.ts.state_names):
            states.setdefault(n, i)
        lets: dict[str, int] = {}
        for k, d in enumerate(self.ts.lets):
            lets.setdefault(d.name, k)
        object.__setattr__(self, "_state_index", states)
        object.__setattr__(self, "_let_index", lets)

    @property
    def ticks(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def scenarios(self) -> int:
        return int(self.states.shape[0])

    def prefix(self, ticks: int) -> Trace:
        """The first ``ticks`` ticks (views of this trace's arrays)."""
        if ticks >= self.ticks:
            return self
        return Trace(
            self.ts,
            self.states[:, : ticks + 1],
            self.inputs[:, :ticks],
            self.lets[:, :ticks],
            self.clipped[:, :ticks],
            self.params,
        )

    def state(self, name: str) -> Array:
        i = self._state_index.get(name)
        if i is None:
            raise ValueError(f"{name!r} is not a state")
        return self.states[:, :, i]

    def let(self, name: str) -> Array:
        k = self._let_index.get(name)
        if k is None:
            raise ValueError(f"{name!r} is not a let")
        return self.lets[:, :, k]

    def series(self, name: str) -> Array:
        """Any named value at ticks 0..T-1, shape [S, T]."""
        if name in self._state_index:
            return self.state(name)[:, :-1]
        if name in self.ts.input_names:
            return self.inputs[:, :, self.ts.input_names.index(name)]
        if name in self.params:
            return np.broadcast_to(self.params[name][:, None], (self.scenarios, self.ticks))
        return self.let(name)

    def env_at(self, t: int) -> Env:
        """The environment (states, inputs, params, lets) of tick t, for evaluating expressions."""
        env: Env = {"__t": t}
        for i, n in enumerate(self.ts.state_names):
            env[n] = self.states[:, t, i]
        for j, n in enumerate(self.ts.input_names):
            env[n] = self.inputs[:, t, j]
        env.update(self.params)
        for k, d in enumerate(self.ts.lets):
            env[d.name] = self.lets[:, t, k]
        return env

    def env_all(self) -> Env:
        """The environment of every tick at once: series of shape [S, T] (parameters [S, 1],
        ``__t`` the ticks 0..T-1), for evaluating an expression over the whole trace."""
        T = self.ticks
        env: Env = {"__t": np.arange(T)}
        for i, n in enumerate(self.ts.state_names):
            env[n] = self.states[:, :T, i]
        for j, n in enumerate(self.ts.input_names):
            env[n] = self.inputs[:, :T, j]
        for n, v in self.params.items():
            env[n] = np.asarray(v)[:, None]
        for k, d in enumerate(self.ts.lets):
            env[d.name] = self.lets[:, :T, k]
        return env


def evaluate(expr: Expr, trace: Trace) -> Array:
    """Evaluate an expression at every tick of a trace: shape [S, T] (booleans as 0/1).

    The expression runs once over the whole trace, vectorised over scenarios and ticks: the
    same elementwise operations as tick by tick (:func:`evaluate_ticks`), so the same values.
    """
    f = compile_expr(expr)
    shape = (trace.scenarios, trace.ticks)
    v = f(trace.env_all())
    return np.array(np.broadcast_to(np.asarray(v, dtype=float), shape), dtype=float)


def evaluate_ticks(expr: Expr, trace: Trace) -> Array:
    """:func:`evaluate`, one tick at a time (the reference the vectorised form is tested by)."""
    f = compile_expr(expr)
    out = np.empty((trace.scenarios, trace.ticks))
    for t in range(trace.ticks):
        out[:, t] = np.broadcast_to(np.asarray(f(trace.env_at(t)), dtype=float), (trace.scenarios,))
    return out


def nominal_inputs(ts: TransitionSystem, ticks: int, scenarios: int = 1) -> Array:
    nominal = np.array([u.nominal for u in ts.inputs], dtype=float)
    return np.broadcast_to(nominal, (scenarios, ticks, len(ts.inputs))).copy()


def slew_limited(system: TransitionSystem, inputs: Array) -> Array:
    """``inputs`` [S, T, n] with every input that declares a ``slew`` rate-limited: from
    one tick to the next it moves at most its slew towards what the scenario asks (a step
    becomes a ramp). The first tick is the scenario's. A move within the slew (up to a
    relative ``1e-9``, for values a solver computed in exact arithmetic) is kept as it is."""
    slews = [(j, u.slew) for j, u in enumerate(system.inputs) if math.isfinite(u.slew)]
    if not slews or inputs.shape[1] < 2:
        return inputs
    out = np.array(inputs, dtype=float, copy=True)
    for j, r in slews:
        col = out[:, :, j]
        room = r * (1 + 1e-9)
        for t in range(1, col.shape[1]):
            prev, want = col[:, t - 1], col[:, t]
            col[:, t] = np.where(
                np.abs(want - prev) <= room, want, np.clip(want, prev - r, prev + r)
            )
    return out


UNTIL_FIRST = 32  # ticks after which ``until`` first looks at a run


def simulate(
    ts: TransitionSystem | Compiled,
    ticks: int,
    inputs: Array | None = None,
    params: Mapping[str, float | Array] | None = None,
    init: Mapping[str, float | Array] | None = None,
    scenarios: int | None = None,
    until: Callable[[Trace], bool] | None = None,
    start_tick: int | np.ndarray = 0,
) -> Trace:
    """Run the system for ``ticks`` ticks.

    ``inputs`` has shape [S, T, n_inputs] in canonical units (nominal if omitted);
    ``params`` overrides parameter values (a float, or an array of S samples);
    ``init`` overrides initial states: any state, including registers; registers not given
    start from their init expression over the other initial values.
    ``until`` stops the run early: it is shown the trace so far after ``UNTIL_FIRST`` ticks,
    then each time their count has doubled, and the run stops at the first prefix it returns
    True for (that prefix is returned; its values are those of the whole run's first ticks).
    ``start_tick`` is the tick of the run that tick 0 stands for (one per scenario, or one for
    all): the loops' phases read it, so a run continued from a state of another run at its
    tick ``t`` acts on the same ticks as that run did.

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", "system s { tick 1s state x in [0, 10] init 1 "
    ...                   "next x = 2 * x }").systems[0]
    >>> simulate(ts, 4).state("x")[0].tolist()
    [1.0, 2.0, 4.0, 8.0, 10.0]

    A run beyond :data:`~coherence.ir.limits.MAX_TRACE_VALUES` raises
    :class:`~coherence.ir.limits.TooLarge`, naming the limit.
    """
    comp = ts if isinstance(ts, Compiled) else compiled(ts)
    system = comp.ts
    rows = (scenarios or 1) if inputs is None else int(np.shape(inputs)[0])
    check_run(rows, ticks, len(system.states) + len(system.lets))
    if inputs is None:
        inputs = nominal_inputs(system, ticks, scenarios or 1)
    inputs = np.asarray(inputs, dtype=float)
    if inputs.ndim != 3 or inputs.shape[1] < ticks or inputs.shape[2] != len(system.inputs):
        raise ValueError(
            f"inputs must have shape [S, {ticks}, {len(system.inputs)}], got {inputs.shape}"
        )
    inputs = slew_limited(system, inputs)
    S = inputs.shape[0]
    pvals: dict[str, Array] = {}
    for p in system.params:
        v = p.value if params is None or p.name not in params else params[p.name]
        pvals[p.name] = _column(v, S)
    if params:
        unknown = set(params) - set(pvals)
        if unknown:
            raise KeyError(f"unknown parameters: {sorted(unknown)}")
    n = len(system.states)
    lo = np.array([s.lo for s in system.states])
    hi = np.array([s.hi for s in system.states])
    states = np.empty((S, ticks + 1, n))
    lets = np.empty((S, ticks, len(system.lets)))
    clipped = np.zeros((S, ticks, n), dtype=bool)

    # initial state: declared values and overrides first, then registers from their signals
    t0: int | np.ndarray = (
        start_tick
        if isinstance(start_tick, int)
        else np.broadcast_to(np.asarray(start_tick, dtype=np.int64), (S,)).copy()
    )
    env: Env = {"__t": t0}
    env.update(pvals)
    first = inputs[:, 0, :] if inputs.shape[1] else nominal_inputs(system, 1, S)[:, 0, :]
    for j, u in enumerate(system.inputs):
        env[u.name] = first[:, j]
    init = init or {}
    unknown_init = set(init) - set(system.state_names)
    if unknown_init:
        raise KeyError(f"unknown states: {sorted(unknown_init)}")
    pending = []
    for i, s in enumerate(system.states):
        if s.name in init:
            env[s.name] = _column(init[s.name], S)
        elif isinstance(s.init, Const):
            env[s.name] = np.full(S, s.init.value)
        else:
            pending.append(i)
    if pending:
        for name, f in comp.user_lets:
            env[name] = f(env)
        # the names an init reads are all set by now (one that is not fails the same way),
        # so states whose inits are equal get the same values: computed once
        done: dict[int, Array] = {}
        for i in pending:
            like = comp.init_keys[i]
            if like not in done:
                done[like] = _as_array(comp.inits[like](env), S)
            env[system.states[i].name] = done[like]
    for i, s in enumerate(system.states):
        states[:, 0, i] = env[s.name]

    names = system.state_names
    raw = np.empty((S, n))
    lo_c, hi_c = lo[comp.clamped], hi[comp.clamped]
    look = UNTIL_FIRST if until is not None else ticks + 1
    for t in range(ticks):
        if t == look:
            assert until is not None
            look *= 2
            head = Trace(system, states[:, : t + 1], inputs[:, :t], lets[:, :t],
                         clipped[:, :t], pvals)  # fmt: skip
            if until(head):
                return head
        env = {"__t": t + t0}
        env.update(pvals)
        for j, u in enumerate(system.inputs):
            env[u.name] = inputs[:, t, j]
        current = states[:, t, :]
        if comp.read is None:
            env.update(zip(names, current.T, strict=True))
        else:  # the registers a window sums are read as their stacked block
            cols = current.T
            for name, i in comp.read:
                env[name] = cols[i]
        for key, start, end in comp.blocks:
            env[key] = current[:, start:end].T
        with np.errstate(all="ignore"):
            for k, (name, f) in enumerate(comp.lets):
                v = f(env)
                env[name] = v
                lets[:, t, k] = v
            if t == 0:  # every state clamped (its start may lie outside its range)
                raw[:, comp.shift_dst] = current[:, comp.shift_src]
                for i, f in comp.updates:
                    raw[:, i] = f(env)
                states[:, t + 1, :] = np.clip(raw, lo, hi)
                clipped[:, t, :] = (raw < lo) | (raw > hi)
                continue
            # from then on the settled copies are taken as they are (see _settled_copies):
            # the same values, and clamping them would flag nothing
            nxt = states[:, t + 1, :]
            for d0, d1, s0 in comp.runs:
                nxt[:, d0:d1] = current[:, s0 : s0 + (d1 - d0)]
            raw[:, comp.loose_dst] = current[:, comp.loose_src]
            for i, f in comp.updates:
                raw[:, i] = f(env)
            core = raw[:, comp.clamped]
            nxt[:, comp.clamped] = np.clip(core, lo_c, hi_c)
            clipped[:, t, comp.clamped] = (core < lo_c) | (core > hi_c)
    return Trace(system, states, inputs[:, :ticks, :], lets, clipped, pvals)


def _column(v: float | Array, S: int) -> Array:
    """``v`` (a number, or one value per scenario) as a new float array of ``S`` values."""
    a = np.asarray(v, dtype=float)
    if a.shape == (S,):
        return a.copy()
    if a.ndim == 0:
        return np.full(S, a[()])
    return np.broadcast_to(a, (S,)).copy()


def _as_array(v: Value, S: int) -> Array:
    return np.broadcast_to(np.asarray(v, dtype=float), (S,))
