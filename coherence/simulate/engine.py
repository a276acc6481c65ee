"""The reference semantics: NumPy simulation of a transition system, vectorised over scenarios.

Every claim another backend makes about a trace is replayed here. Expressions are compiled
once to closures over NumPy arrays of shape ``[S]`` (one entry per scenario or parameter
sample); each tick evaluates the lets in order, then every state update, then clamps each
state to its range. Booleans are NumPy bools; ``round(x)`` is ``floor(x + 0.5)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

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
            terms = [compile_expr(t) for t in sum_terms(e)]
            if len(terms) > 2:
                return lambda env: _reduce(np.add, [g(env) for g in terms])
            fl, fr = terms
            return lambda env: np.add(fl(env), fr(env))
        case Binary(op, left, right):
            f = _ARITH[op]
            fl, fr = compile_expr(left), compile_expr(right)
            return lambda env: f(fl(env), fr(env))
        case Call("min", args):
            fs = [compile_expr(a) for a in args]
            return lambda env: _reduce(np.minimum, [g(env) for g in fs])
        case Call("max", args):
            fs = [compile_expr(a) for a in args]
            return lambda env: _reduce(np.maximum, [g(env) for g in fs])
        case Call(fn, (arg,)):
            g = _UNARY_FN[fn]
            fa = compile_expr(arg)
            return lambda env: g(fa(env))
        case Ite(c, a, b):
            fc, fa, fb = compile_expr(c), compile_expr(a), compile_expr(b)
            return lambda env: np.where(fc(env), fa(env), fb(env))
        case Phase(period, offset):
            return lambda env: int(env["__t"]) % period == offset
    raise ValueError(f"cannot compile {e!r}")


def _reduce(f: Callable[[Value, Value], Value], vals: list[Value]) -> Value:
    out = vals[0]
    for v in vals[1:]:
        out = f(out, v)
    return out


@dataclass(frozen=True, slots=True)
class Compiled:
    """A transition system compiled for simulation (cache it; compiling is the slow part)."""

    ts: TransitionSystem
    lets: tuple[tuple[str, Fn], ...]
    updates: tuple[tuple[int, Fn], ...]  # (state index, update) for states that compute
    shift_dst: NDArray[np.intp]  # states whose update copies another state (registers)
    shift_src: NDArray[np.intp]
    inits: tuple[Fn, ...]
    user_lets: tuple[tuple[str, Fn], ...]


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
    return Compiled(
        ts,
        lets,
        tuple(updates),
        np.array(dst, dtype=np.intp),
        np.array(src, dtype=np.intp),
        tuple(compile_expr(s.init) for s in ts.states),
        user,
    )


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

    @property
    def ticks(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def scenarios(self) -> int:
        return int(self.states.shape[0])

    def state(self, name: str) -> Array:
        return self.states[:, :, self.ts.state_names.index(name)]

    def let(self, name: str) -> Array:
        return self.lets[:, :, [d.name for d in self.ts.lets].index(name)]

    def series(self, name: str) -> Array:
        """Any named value at ticks 0..T-1, shape [S, T]."""
        if name in self.ts.state_names:
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


def evaluate(expr: Expr, trace: Trace) -> Array:
    """Evaluate an expression at every tick of a trace: shape [S, T] (booleans as 0/1)."""
    f = compile_expr(expr)
    out = np.empty((trace.scenarios, trace.ticks))
    for t in range(trace.ticks):
        out[:, t] = np.broadcast_to(np.asarray(f(trace.env_at(t)), dtype=float), (trace.scenarios,))
    return out


def nominal_inputs(ts: TransitionSystem, ticks: int, scenarios: int = 1) -> Array:
    nominal = np.array([u.nominal for u in ts.inputs], dtype=float)
    return np.broadcast_to(nominal, (scenarios, ticks, len(ts.inputs))).copy()


def simulate(
    ts: TransitionSystem | Compiled,
    ticks: int,
    inputs: Array | None = None,
    params: Mapping[str, float | Array] | None = None,
    init: Mapping[str, float | Array] | None = None,
    scenarios: int | None = None,
) -> Trace:
    """Run the system for ``ticks`` ticks.

    ``inputs`` has shape [S, T, n_inputs] in canonical units (nominal if omitted);
    ``params`` overrides parameter values (a float, or an array of S samples);
    ``init`` overrides initial states: any state, including registers; registers not given
    start from their init expression over the other initial values.

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", "system s { tick 1s state x in [0, 10] init 1 "
    ...                   "next x = 2 * x }").systems[0]
    >>> simulate(ts, 4).state("x")[0].tolist()
    [1.0, 2.0, 4.0, 8.0, 10.0]
    """
    comp = ts if isinstance(ts, Compiled) else compile_system(ts)
    system = comp.ts
    if inputs is None:
        inputs = nominal_inputs(system, ticks, scenarios or 1)
    inputs = np.asarray(inputs, dtype=float)
    if inputs.ndim != 3 or inputs.shape[1] < ticks or inputs.shape[2] != len(system.inputs):
        raise ValueError(
            f"inputs must have shape [S, {ticks}, {len(system.inputs)}], got {inputs.shape}"
        )
    S = inputs.shape[0]
    pvals: dict[str, Array] = {}
    for p in system.params:
        v = p.value if params is None or p.name not in params else params[p.name]
        pvals[p.name] = np.broadcast_to(np.asarray(v, dtype=float), (S,)).copy()
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
    env: Env = {"__t": 0}
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
            env[s.name] = np.broadcast_to(np.asarray(init[s.name], dtype=float), (S,)).copy()
        elif isinstance(s.init, Const):
            env[s.name] = np.full(S, s.init.value)
        else:
            pending.append(i)
    if pending:
        for name, f in comp.user_lets:
            env[name] = f(env)
        for i in pending:
            env[system.states[i].name] = _as_array(comp.inits[i](env), S)
    for i, s in enumerate(system.states):
        states[:, 0, i] = env[s.name]

    names = system.state_names
    raw = np.empty((S, n))
    for t in range(ticks):
        env = {"__t": t}
        env.update(pvals)
        for j, u in enumerate(system.inputs):
            env[u.name] = inputs[:, t, j]
        current = states[:, t, :]
        for i, name in enumerate(names):
            env[name] = current[:, i]
        with np.errstate(all="ignore"):
            for k, (name, f) in enumerate(comp.lets):
                v = f(env)
                env[name] = v
                lets[:, t, k] = v
            raw[:, comp.shift_dst] = current[:, comp.shift_src]
            for i, f in comp.updates:
                raw[:, i] = f(env)
            states[:, t + 1, :] = np.clip(raw, lo, hi)
            clipped[:, t, :] = (raw < lo) | (raw > hi)
    return Trace(system, states, inputs[:, :ticks, :], lets, clipped, pvals)


def _as_array(v: Value, S: int) -> Array:
    return np.broadcast_to(np.asarray(v, dtype=float), (S,))
