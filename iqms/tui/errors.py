"""The one way a console tells people something went wrong: a short notice, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from iqms.core import errors
from iqms.core.db import is_connection_error

Severity = Literal["information", "warning", "error"]

_TITLES: list[tuple[type[errors.IQMSError], str, Severity]] = [
    (errors.DatabaseUnavailable, "Database unavailable", "error"),
    (errors.AuthenticationFailed, "Not signed in", "error"),
    (errors.PermissionDenied, "Not allowed", "error"),
    (errors.InvalidTransition, "Not possible now", "warning"),
    (errors.ValidationError, "Check the input", "warning"),
    (errors.Conflict, "Conflict", "warning"),
    (errors.NotFound, "Not found", "warning"),
    (errors.ConfigError, "Setting", "error"),
]


@dataclass(frozen=True)
class Notice:
    """What to show: a title, one short message and how serious it is."""

    title: str
    message: str
    severity: Severity
    expected: bool  # a refusal of the rules, not a bug


def first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def notice_for(exc: BaseException) -> Notice:
    """The notice for an exception raised by a core call (or by a bug)."""
    if isinstance(exc, errors.IQMSError):
        for cls, title, severity in _TITLES:
            if isinstance(exc, cls):
                return Notice(title, str(exc), severity, True)
        return Notice("Error", str(exc), "error", True)
    if is_connection_error(exc):
        return Notice("Database unavailable", first_line(exc), "error", True)
    return Notice(
        "Unexpected error",
        f"{type(exc).__name__}: {first_line(exc)} (details are in the console log)",
        "error",
        False,
    )


__all__ = ["Notice", "first_line", "notice_for"]
