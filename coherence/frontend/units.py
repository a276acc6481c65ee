"""Units and dimensions: exact conversion of quantities to canonical (SI-like) values.

A dimension is a product of base dimensions with rational exponents (``req/s`` is
``{req: 1, s: -1}``). A unit is a scale and a dimension; every quantity is stored in the
canonical unit of its dimension (seconds, requests, watts, dollars, ...), so ``900 $/h`` is
``0.25 $/s`` inside the engine and is shown back in the unit the spec declared.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from coherence.frontend.limits import MAX_UNIT_EXPONENT

DimMap = tuple[tuple[str, Fraction], ...]


@dataclass(frozen=True, slots=True)
class Dim:
    """A physical dimension: sorted (base, exponent) pairs with non-zero exponents."""

    exps: DimMap = ()

    @staticmethod
    def of(**exps: int | Fraction) -> Dim:
        return Dim(tuple(sorted((k, Fraction(v)) for k, v in exps.items() if v)))

    @staticmethod
    def base(name: str) -> Dim:
        return Dim(((name, Fraction(1)),))

    def __mul__(self, other: Dim) -> Dim:
        acc = dict(self.exps)
        for k, v in other.exps:
            acc[k] = acc.get(k, Fraction(0)) + v
        return Dim(tuple(sorted((k, v) for k, v in acc.items() if v)))

    def __truediv__(self, other: Dim) -> Dim:
        return self * other**-1

    def __pow__(self, p: int | Fraction) -> Dim:
        return Dim(tuple((k, v * Fraction(p)) for k, v in self.exps if v * Fraction(p)))

    @property
    def dimensionless(self) -> bool:
        return not self.exps

    def __str__(self) -> str:
        if not self.exps:
            return "1"
        num = [_fmt(k, v) for k, v in self.exps if v > 0]
        den = [_fmt(k, -v) for k, v in self.exps if v < 0]
        text = "*".join(num) if num else "1"
        if den:
            text += "/" + "/".join(den)
        return text


def _fmt(name: str, exp: Fraction) -> str:
    return name if exp == 1 else f"{name}^{exp}"


DIMENSIONLESS = Dim()
TIME = Dim.base("s")


@dataclass(frozen=True, slots=True)
class Unit:
    scale: float
    dim: Dim
    ticks: bool = False  # the `ticks` unit: scaled by the system tick at resolution


# Built-in units. Bases: s (time), req (requests), tok (tokens), W (power), $ (money),
# GPU (devices), replica (serving replicas), B (bytes), flop (floating-point operations).
_BUILTIN: dict[str, Unit] = {
    "s": Unit(1.0, TIME),
    "ms": Unit(1e-3, TIME),
    "us": Unit(1e-6, TIME),
    "min": Unit(60.0, TIME),
    "h": Unit(3600.0, TIME),
    "d": Unit(86400.0, TIME),
    "req": Unit(1.0, Dim.base("req")),
    "tok": Unit(1.0, Dim.base("tok")),
    "W": Unit(1.0, Dim.base("W")),
    "kW": Unit(1e3, Dim.base("W")),
    "MW": Unit(1e6, Dim.base("W")),
    "J": Unit(1.0, Dim.base("W") * TIME),
    "kWh": Unit(3.6e6, Dim.base("W") * TIME),
    "$": Unit(1.0, Dim.base("$")),
    "GPU": Unit(1.0, Dim.base("GPU")),
    "replica": Unit(1.0, Dim.base("replica")),
    "B": Unit(1.0, Dim.base("B")),
    "KB": Unit(1e3, Dim.base("B")),
    "MB": Unit(1e6, Dim.base("B")),
    "GB": Unit(1e9, Dim.base("B")),
    "TB": Unit(1e12, Dim.base("B")),
    "KiB": Unit(1024.0, Dim.base("B")),
    "MiB": Unit(1024.0**2, Dim.base("B")),
    "GiB": Unit(1024.0**3, Dim.base("B")),
    "flop": Unit(1.0, Dim.base("flop")),
    "Gflop": Unit(1e9, Dim.base("flop")),
    "Tflop": Unit(1e12, Dim.base("flop")),
    "%": Unit(0.01, DIMENSIONLESS),
    "ticks": Unit(1.0, TIME, ticks=True),
    "tick": Unit(1.0, TIME, ticks=True),
}

BUILTIN_UNIT_NAMES = tuple(sorted(_BUILTIN))

_PART = re.compile(r"^(\$|%|[A-Za-z_][A-Za-z_0-9]*)(?:\^(-?[0-9]+))?$")


class UnitError(Exception):
    def __init__(self, message: str, hint: str = "", code: str = "COH208") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


@dataclass(slots=True)
class UnitTable:
    """Built-in units plus the ones a system declares (``unit euro``, ``unit kreq = 1000 req``)."""

    declared: dict[str, Unit]

    @staticmethod
    def new() -> UnitTable:
        return UnitTable({})

    def lookup(self, name: str) -> Unit | None:
        return self.declared.get(name) or _BUILTIN.get(name)

    def known_names(self) -> list[str]:
        return sorted(set(_BUILTIN) | set(self.declared))

    def parse(self, text: str) -> Unit:
        """Resolve a unit expression such as ``req/s``, ``$/h`` or ``tok/s^2``."""
        if text == "1":
            return Unit(1.0, DIMENSIONLESS)
        parts = text.split("/")
        scale = 1.0
        dim = DIMENSIONLESS
        ticks = False
        for i, part in enumerate(parts):
            m = _PART.match(part)
            if not m:
                raise UnitError(f"malformed unit `{text}`")
            name, exp_text = m.group(1), m.group(2)
            exp = int(exp_text) if exp_text else 1
            if abs(exp) > MAX_UNIT_EXPONENT:
                raise UnitError(
                    f"the power of `{name}` in `{text}` is beyond the limit of {MAX_UNIT_EXPONENT}",
                    "write the unit with a smaller power",
                    "COH223",
                )
            unit = self.lookup(name)
            if unit is None:
                import difflib

                close = difflib.get_close_matches(name, self.known_names(), n=1)
                hint = f"did you mean `{close[0]}`?" if close else f"declare it: `unit {name}`"
                raise UnitError(f"unknown unit `{name}`", hint)
            if unit.ticks:
                if len(parts) > 1 or exp != 1:
                    raise UnitError("`ticks` cannot be combined with other units")
                ticks = True
            sign = 1 if i == 0 else -1
            scale *= unit.scale ** (sign * exp)
            dim = dim * unit.dim ** (sign * exp)
        if not math.isfinite(scale) or scale == 0.0:
            raise UnitError(
                f"the unit `{text}` is too large or too small to represent",
                "write the quantity in a unit closer to its size",
                "COH223",
            )
        return Unit(scale, dim, ticks)
