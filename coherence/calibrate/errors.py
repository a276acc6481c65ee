"""Errors raised by the calibration stage.

Every failure a user can cause (a backend that is not there, a profile that is malformed) is one
of these classes, with a message that says what is wrong and, where it helps, what to do. Bad
input never surfaces as a bare ``KeyError`` or ``TypeError`` traceback.
"""

from __future__ import annotations

__all__ = ["BackendUnavailableError", "CalibrationError", "ProfileError"]


class CalibrationError(Exception):
    """Base class: the calibration could not be run as asked."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BackendUnavailableError(CalibrationError):
    """The requested array backend (for example CuPy on a CUDA GPU) cannot be used here."""


class ProfileError(Exception):
    """A calibration profile is malformed or cannot be used.

    ``str(error)`` reads ``<path>: <field>: <what is wrong>``, naming the file and the field
    (a dotted path such as ``points[3].median_s``) whenever they are known.
    """

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None) -> None:
        self.message = message
        self.path = path
        self.field = field
        parts = [p for p in (path, field) if p]
        super().__init__(": ".join([*parts, message]))
