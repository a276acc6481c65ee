"""Diagnostics: the registry of stable codes and the objects every stage reports with.

Every diagnostic and finding carries a code from :data:`REGISTRY` (``COH1xx`` syntax, ``COH2xx``
semantics and units, ``COH3xx`` stability, ``COH4xx`` coupling and conflicts, ``COH5xx``
bounded properties and equilibria, ``COH9xx`` inconclusive or internal), a severity, a message,
a source span, notes and a help line. The rule catalog (``coherence rules``, ``coherence explain``)
is generated from the registry, so a code is documented in exactly one place.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from coherence.source import SourceFile, Span


class Severity(enum.IntEnum):
    """Ordered so that ``severity >= fail_level`` selects what fails a run."""

    NOTE = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()

    @staticmethod
    def parse(text: str) -> Severity:
        return Severity[text.upper()]


@dataclass(frozen=True, slots=True)
class Rule:
    """What a code means: one entry of the rule catalog."""

    code: str
    name: str
    severity: Severity
    summary: str
    explanation: str
    example: str = ""
    fix: str = ""


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {r.code: r for r in rules}


E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE

REGISTRY: dict[str, Rule] = _rules(
    # --- COH1xx: syntax -------------------------------------------------------------------
    Rule(
        "COH100",
        "unreadable-file",
        E,
        "The spec file cannot be read.",
        "The path does not exist, is not a file, or is not valid UTF-8 text.",
        fix="Check the path; spec files are UTF-8 text with the `.coh` extension.",
    ),
    Rule(
        "COH101",
        "unexpected-token",
        E,
        "The parser met a token it did not expect.",
        "The spec does not follow the grammar at this point. The message lists what the "
        "grammar allows here.",
        example="state q : req in [0, 10 init 0   # missing `]`",
        fix="Write one of the expected tokens; see docs/language.md for each statement.",
    ),
    Rule(
        "COH102",
        "unexpected-character",
        E,
        "A character that no token of the language starts with.",
        "The lexer found a character that cannot begin any token (for example `@` or a "
        "stray quote).",
        example="let x = 3 @ 4",
    ),
    Rule(
        "COH103",
        "unexpected-end",
        E,
        "The file ends in the middle of a construct.",
        "A block or statement is not finished when the file ends; usually a missing `}`.",
        fix="Close every `{` with `}`.",
    ),
    Rule(
        "COH104",
        "nested-too-deeply",
        E,
        "An expression is nested more deeply than the stated limit.",
        "An expression may nest at most 50 levels of operators, calls and `if` (the spec "
        "library's deepest nests 8); deeper nesting would exhaust the analyses' stacks.",
        example="let y = min(min(min(...min(x, 1)..., 1), 1), 1)   # 100 levels",
        fix="Split the expression into `let` definitions.",
    ),
    Rule(
        "COH105",
        "number-too-large",
        E,
        "A number is too large to represent.",
        "Quantities are double-precision floating point: a literal beyond about 1.8e308 "
        "(`1e400`) would become infinity and reach the analyses.",
        example="param g = 1e400",
        fix="Write a finite number.",
    ),
    # --- COH2xx: semantics and units -----------------------------------------------------
    Rule(
        "COH201",
        "undefined-name",
        E,
        "A name is used but never declared.",
        "Every name in an expression must be a declared input, parameter, state or `let`, "
        "or `tick`. A loop may only sense expressions over declared names.",
        example="let latency = queue / capcity   # `capacity` is declared",
        fix="Declare the name or correct its spelling.",
    ),
    Rule(
        "COH202",
        "duplicate-name",
        E,
        "A name is declared twice.",
        "Inputs, parameters, states, `let`s, loops and objectives share one namespace per "
        "system; a second declaration would make references ambiguous.",
        example="param slo = 2s\nparam slo = 3s",
    ),
    Rule(
        "COH203",
        "cyclic-definition",
        E,
        "`let` definitions depend on each other in a cycle.",
        "`let`s are evaluated within one tick, in dependency order; a cycle has no order. "
        "A quantity that depends on its own past is a state with a `next` update.",
        example="let a = b + 1\nlet b = a * 2",
        fix="Make one of the quantities a state whose `next` value uses the other.",
    ),
    Rule(
        "COH204",
        "state-without-update",
        E,
        "A state has neither a `next` update nor a loop that actuates it.",
        "Every state needs a rule for its next value: a plant update (`next x = ...`) or one "
        "or more loops that actuate it. A constant belongs in a `param`.",
        fix="Add `next x = ...`, actuate it from a loop, or make it a `param`.",
    ),
    Rule(
        "COH205",
        "out-of-bounds",
        E,
        "An initial or nominal value lies outside its declared range.",
        "The initial value of a state and the nominal value of an input must lie within their "
        "declared ranges; otherwise the system starts in an inadmissible state.",
        example="state q : req in [0, 100] init 200",
    ),
    Rule(
        "COH206",
        "shared-actuator",
        W,
        "Two or more loops actuate the same state.",
        "Allowed: on a tick where several loops act, their changes add up and the sum is "
        "saturated to the state's bounds (`combine sum`, the default); `combine last`, "
        "`combine max` or `combine min` on the state make the loop declared last, or the "
        "largest or smallest value set, win instead. Reported because loops that share an "
        "actuator fight directly; the coupling analysis looks at them first.",
        example="loop hpa { actuates replicas ... }\nloop vpa { actuates replicas ... }",
    ),
    Rule(
        "COH207",
        "dimension-mismatch",
        E,
        "Quantities of different dimensions are added, compared or assigned.",
        "Every expression has a physical dimension, derived from the units of its operands. "
        "`+`, `-`, comparisons, `min`, `max`, `clamp` and both branches of `if` need the same "
        "dimension; a `next` update or a control law must have the dimension of its state; "
        "`exp`, `log` and non-integer powers need dimensionless arguments.",
        example="let latency = 0.5s + queue      # seconds plus requests",
        fix="Divide or multiply by a rate or a duration so that both sides agree.",
    ),
    Rule(
        "COH208",
        "unknown-unit",
        E,
        "A unit is not known.",
        "Units are the built-in ones (s, ms, min, h, req, tok, W, kW, $, GPU, B, KB, MB, GB, "
        "KiB, MiB, GiB, %, ticks) and those declared with `unit NAME`.",
        example="param budget = 900 euro/h",
        fix="Declare it: `unit euro`.",
    ),
    Rule(
        "COH209",
        "not-whole-ticks",
        E,
        "A period, phase, delay, window or cooldown is not a whole number of ticks.",
        "Time advances in ticks; a loop can act only on a tick. Durations that schedule "
        "behaviour must be whole multiples of the system's tick.",
        example="tick 1s ... every 1500ms",
        fix="Round the duration or choose a finer tick.",
    ),
    Rule(
        "COH210",
        "update-and-actuator",
        E,
        "A state has a `next` update and is also actuated by a loop.",
        "A plant update gives the next value of a state that no loop sets; an actuated state "
        "changes only by its loops' actions and otherwise holds.",
        fix="Remove the `next` update or stop actuating the state.",
    ),
    Rule(
        "COH211",
        "bad-call",
        E,
        "An unknown function or a wrong number of arguments.",
        "The functions are a closed set: min, max, abs, clamp, ceil, floor, round, sqrt, exp, "
        "log, pow. `min` and `max` take two or more arguments, `clamp(x, lo, hi)` three.",
        example="let y = sigmoid(x)",
    ),
    Rule(
        "COH212",
        "empty-range",
        E,
        "A range's lower bound is above its upper bound.",
        "Ranges are written `[lo, hi]` with lo <= hi.",
        example="input d : req/s in [140, 80]",
    ),
    Rule(
        "COH213",
        "bad-value",
        E,
        "A value is not allowed here.",
        "Periods and ticks are positive; delays, windows and cooldowns are non-negative; "
        "counts are whole numbers; tolerances are non-negative.",
    ),
    Rule(
        "COH214",
        "missing-tick",
        E,
        "The system does not declare its tick.",
        "Every system needs `tick DURATION`: the step of its discrete time.",
        example="system s { tick 1s ... }",
    ),
    Rule(
        "COH215",
        "bad-reference",
        E,
        "A name refers to the wrong kind of thing.",
        "A loop actuates states, `no flapping of` names a state, an objective's `keep` "
        "compares two expressions, and a condition must be boolean.",
        example="loop l { actuates demand to 3 }   # demand is an input",
    ),
    Rule(
        "COH216",
        "type-mismatch",
        E,
        "A boolean is used where a number is expected, or the reverse.",
        "Comparisons and `and`/`or`/`not` give booleans; conditions (`if`, `when`, `always`) "
        "need booleans; arithmetic needs numbers.",
    ),
    Rule(
        "COH217",
        "integer-bounds",
        W,
        "An integer state has bounds or an initial value that are not whole numbers.",
        "Integer states (replicas) take whole values. Fractional bounds are rounded inwards "
        "(a warning); a fractional initial value is an error.",
    ),
    Rule(
        "COH218",
        "unused",
        N,
        "A declaration is never used.",
        "A parameter, input or `let` that no update, law, objective or requirement reads.",
    ),
    Rule(
        "COH219",
        "inconsistent-declaration",
        E,
        "A construct is declared in a way that contradicts itself.",
        "For example two `every` clauses in one loop, a tick declared twice, or one `limit`, "
        "`rate` or `deadband` clause shaping actuators of different dimensions.",
    ),
    Rule(
        "COH220",
        "suppression-without-reason",
        E,
        "An inline suppression does not say why the finding is accepted.",
        "`# coherence: ignore[CODE] reason` silences a finding on its own line or on the line "
        "after it, and must name the codes it silences and give a reason, so that a reviewer "
        "can judge it. A suppression without a reason, or without codes, silences nothing.",
        example="queue_limit = 500  # coherence: ignore[COH505]",
        fix="Name the codes and add the reason: "
        "`# coherence: ignore[COH505] the bound models admission control`.",
    ),
    Rule(
        "COH221",
        "unused-suppression",
        W,
        "An inline suppression silences nothing.",
        "No finding with the named codes starts on the suppression's line (or, for a comment "
        "on a line of its own, on the next line of the spec). The finding was fixed or moved, "
        "or the code is wrong. Only judged for codes that the run could have reported.",
        example="# coherence: ignore[COH506] latency is allowed to exceed the SLO at start",
        fix="Remove the suppression, or move it next to the finding it is meant for.",
    ),
    Rule(
        "COH222",
        "bad-profile",
        E,
        "A calibration profile cannot be loaded.",
        '`profile NAME = "PATH"` names a JSON profile written by `coherence calibrate`; the '
        "file must exist (relative to the spec) and match the profile schema.",
        example='profile h100 = "profiles/h100.json"',
        fix="Measure one with `coherence calibrate --out PATH`, or correct the path.",
    ),
    Rule(
        "COH223",
        "beyond-limit",
        E,
        "A value is beyond a stated limit of the tool.",
        "A duration or unit power that the analyses cannot represent within seconds and a few "
        "hundred megabytes: a sensor's delay plus window and a stabilization window of at most "
        "3,600 ticks (each tick is one extra state), a horizon, response time, period, phase "
        "or cooldown of at most 1,000,000 ticks, unit powers up to 12, and values that stay "
        "finite once converted to canonical units. docs/language.md lists the limits.",
        example="senses x window 1000000h",
        fix="Use a shorter window or a longer tick.",
    ),
    Rule(
        "COH224",
        "reserved-name",
        E,
        "A name starts with `__`, which is reserved for the tool.",
        "Names that start with two underscores are the tool's own (the simulator keeps the "
        "tick number under `__t`); a spec name there could be mistaken for one of them.",
        example="let __t = 0",
        fix="Rename it without the leading underscores.",
    ),
    Rule(
        "COH230",
        "continuous-not-linear",
        E,
        "A `continuous` equation is not linear with constant coefficients.",
        "`der(x) = ...` is discretised exactly at the tick with the matrix exponential, which "
        "needs `x' = A x + w`: each state of the block multiplied by a constant (numbers and "
        "parameters with a fixed value), plus terms `w` that read no state of the block "
        "(inputs, actuators, other states, lets: held over each tick).",
        example="continuous { der(x) = -x * x / 10s }",
        fix="Write the nonlinear dynamics as a `next` update, or linearise them by hand.",
    ),
    # --- COH3xx: stability (linear analysis) ----------------------------------------------
    Rule(
        "COH301",
        "unstable",
        E,
        "The coupled system is unstable at its operating point.",
        "The spectral radius of the monodromy matrix (the linearized system lifted over one "
        "hyperperiod) is above 1: small deviations from the operating point grow.",
    ),
    Rule(
        "COH302",
        "coupling-induced-instability",
        E,
        "Every loop is stable alone, the coupled system is not.",
        "Each loop, with the other actuators held at the operating point, is stable; together "
        "they are not. The finding names the smallest failing sets of loops and what couples "
        "them.",
    ),
    Rule(
        "COH303",
        "marginal",
        W,
        "The coupled system is marginally stable.",
        "The spectral radius is within the tolerance of 1: deviations neither decay nor grow "
        "appreciably; integrators without feedback and undamped oscillations look like this.",
    ),
    Rule(
        "COH304",
        "loop-unstable-alone",
        E,
        "A loop is unstable on its own.",
        "With every other actuator held at the operating point, this loop's closed loop is "
        "unstable: its gain or delay is wrong regardless of the others.",
    ),
    Rule(
        "COH305",
        "no-operating-point",
        W,
        "No equilibrium was found at nominal input.",
        "Simulation from the initial state did not settle and the root solve did not converge; "
        "linear analysis needs an operating point.",
    ),
    Rule(
        "COH306",
        "multiple-equilibria",
        W,
        "Different starting points settle at different equilibria.",
        "The system has more than one operating point at nominal input; the linear verdict "
        "holds near the one analysed.",
    ),
    Rule(
        "COH307",
        "corner-operating-point",
        N,
        "The operating point sits on a saturation, deadband or cooldown corner.",
        "A nonlinearity switches at the operating point; the linear verdict is local only.",
    ),
    Rule(
        "COH308",
        "small-gain-margin",
        W,
        "A loop's gain margin is small.",
        "Scaling the loop's gain by a small factor makes the coupled system unstable.",
    ),
    Rule(
        "COH309",
        "small-delay-margin",
        W,
        "A loop's delay margin is small.",
        "A few extra ticks of measurement delay make the coupled system unstable.",
    ),
    Rule(
        "COH310",
        "pairing-problem",
        W,
        "The relative gain array advises against this pairing.",
        "A negative or very large relative gain means the loop's actuator works against, or "
        "is dominated by, the other loops at steady state.",
    ),
    Rule(
        "COH311",
        "niederlinski",
        W,
        "The Niederlinski index is negative.",
        "The pairing is unstable under integral control for any tuning of the loops "
        "(Niederlinski 1971).",
    ),
    Rule(
        "COH312",
        "timescale-overlap",
        W,
        "Loops sharing a resource run at comparable speeds.",
        "Loops that act on one resource should be separated in time scale (commonly 5-10x); "
        "comparable periods let them chase each other.",
    ),
    Rule(
        "COH313",
        "nominal-oscillation",
        W,
        "The nominal run does not settle: it oscillates.",
        "From its initial state at nominal input the system never comes to rest: in the last "
        "part of the run a state repeats a swing exactly (a limit cycle) or keeps reversing "
        "without dying out. The linear verdict is local to the operating point and cannot see "
        "this; where `require stable` is checked, this run falsifies it.",
    ),
    Rule(
        "COH314",
        "fragile-together",
        W,
        "Each loop is robust alone, the coupled system is fragile to a change of several "
        "gains at once.",
        "Every loop's own gain margin is comfortable, yet changing the gains of several loops "
        "together by a small fraction (some up, some down, found by a search over the sign "
        "patterns) makes the coupled system unstable: the interaction between the loops, not "
        "any one gain, is the weak point. Loop-at-a-time margins cannot see this (Skogestad & "
        "Postlethwaite, Multivariable Feedback Control, ch. 8).",
    ),
    # --- COH4xx: coupling and conflicts --------------------------------------------------
    Rule(
        "COH401",
        "objective-conflict",
        E,
        "One loop's action makes another loop's objective materially worse.",
        "A run from the spec's initial state, with inputs within their declared ranges, in "
        "which loop A acts and, compared with A holding its actuators for k ticks, one of loop "
        "B's objectives becomes worse by more than its threshold: its tolerance and its floor "
        "(the spec's `floor`, else 1% of the objective's typical value on the nominal run, or "
        "of its bound for keep). The trace is that run, replayed; one finding per acting "
        "loop, the other loops it works against in its notes.",
    ),
    Rule(
        "COH402",
        "regional-conflict",
        W,
        "Retired: two loops conflict only in part of the operating range.",
        "No longer reported. A conflict is now a run the system can live through, from its "
        "initial state (COH401); a witness that starts in a part of the declared range no run "
        "reaches is not a finding at all.",
    ),
    Rule(
        "COH403",
        "influence-cycle",
        N,
        "Loops influence each other in a cycle.",
        "A cycle of influence through shared states and signal paths; cycles are where "
        "coupling-induced instability and cascades live.",
    ),
    # --- COH5xx: bounded properties and equilibria ---------------------------------------
    Rule(
        "COH501",
        "always-violated",
        E,
        "A bounded safety requirement is violated.",
        "There is an admissible input sequence under which `always φ` fails within the "
        "horizon; the trace shows it.",
    ),
    Rule(
        "COH502",
        "response-violated",
        E,
        "A bounded response requirement is violated.",
        "After the trigger, the response does not happen within the stated time.",
    ),
    Rule(
        "COH503",
        "flapping",
        E,
        "An actuator reverses direction too often.",
        "Within the window, the actuator changes direction more times than the requirement "
        "allows: the loop flaps, commonly from measurement lag without stabilization.",
    ),
    Rule(
        "COH504",
        "bad-equilibrium",
        E,
        "A self-sustaining state violates an objective at nominal input.",
        "A fixed point at nominal input where an objective is violated (metastable failure); "
        "the finding gives the trigger that carries the system there.",
    ),
    Rule(
        "COH505",
        "bound-clipped",
        W,
        "A state reaches its declared bound in the nominal scenario.",
        "The state's next value falls outside its range and is saturated; the spec's bounds "
        "are doing work the model does not explain.",
    ),
    Rule(
        "COH506",
        "objective-violated",
        W,
        "An objective is violated in the nominal scenario.",
        "Simulating the nominal scenario, a `keep` objective fails beyond its tolerance.",
    ),
    Rule(
        "COH507",
        "non-finite",
        E,
        "Simulation produced a value that is not finite.",
        "A division by zero, a log of a non-positive number or an overflow; the model is "
        "undefined there.",
    ),
    # --- COH9xx: inconclusive and internal -----------------------------------------------
    Rule(
        "COH901",
        "solver-unknown",
        W,
        "The solver could not decide.",
        "Z3 returned unknown (resource limit, incompleteness of nonlinear arithmetic); the "
        "requirement is neither proved nor falsified. Unknown never counts as a pass.",
    ),
    Rule(
        "COH902",
        "spurious-trace",
        N,
        "A solver trace did not reproduce in simulation.",
        "A candidate counterexample from the over-approximation was replayed and did not "
        "violate the requirement; it is not a finding.",
    ),
    Rule(
        "COH903",
        "internal-error",
        E,
        "An internal error in an analysis.",
        "A bug in coherence; please report it with the spec.",
    ),
    Rule(
        "COH904",
        "analysis-skipped",
        N,
        "An analysis did not run.",
        "The analysis was not applicable or was disabled.",
    ),
    Rule(
        "COH905",
        "limit-reached",
        W,
        "An analysis stopped at a stated limit.",
        "The system or the run asked for is beyond one of the engine's stated limits (the "
        "hyperperiod, the values of one simulated run, the loop pairs the conflict analysis "
        "searches; docs/limits.md). The message names the limit; what the analysis could not "
        "decide is unknown, never a pass.",
    ),
)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One message about a spec, located at a span."""

    code: str
    message: str
    span: Span
    severity: Severity | None = None
    label: str = ""
    notes: tuple[str, ...] = ()
    help: str = ""

    @property
    def level(self) -> Severity:
        if self.severity is not None:
            return self.severity
        return REGISTRY[self.code].severity

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.span.path, self.span.line, self.span.column, self.code, self.message)


def sorted_diagnostics(items: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    return tuple(sorted(items, key=Diagnostic.sort_key))


def render(diag: Diagnostic, source: SourceFile | None) -> str:
    """Render rustc style: header, location, the source line with carets, notes, help."""
    head = f"{diag.level}[{diag.code}]: {diag.message}"
    sp = diag.span
    lines = [head, f"  --> {sp.path}:{sp.line}:{sp.column}"]
    if source is not None and 1 <= sp.line <= source.line_count:
        text = source.line(sp.line).replace("\t", " ")
        gutter = " " * len(str(sp.line))
        end_col = sp.end_column if sp.end_line == sp.line else len(text) + 1
        width = max(1, end_col - sp.column)
        caret = " " * (sp.column - 1) + "^" * width
        if diag.label:
            caret += " " + diag.label
        lines += [f"{gutter} |", f"{sp.line} | {text}", f"{gutter} | {caret}"]
        if diag.notes or diag.help:
            lines.append(f"{gutter} |")
        pad = gutter
    else:
        pad = "  "
    lines += [f"{pad} = note: {n}" for n in diag.notes]
    if diag.help:
        lines.append(f"{pad} = help: {diag.help}")
    return "\n".join(lines)


class CoherenceError(Exception):
    """A usage or configuration error: reported as ``error: ...`` with exit code 2."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
