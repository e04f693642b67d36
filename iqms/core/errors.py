"""The exceptions the core raises, each with a message a receptionist can read."""

from __future__ import annotations

from typing import Any


class IQMSError(Exception):
    """Base of every error the core raises on purpose."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class ConfigError(IQMSError):
    """A setting is missing or wrong."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting} {problem}", setting=setting)
        self.setting = setting
        self.problem = problem


class DatabaseUnavailable(IQMSError):
    """The database cannot be reached."""


class SchemaOutOfDate(IQMSError):
    """The database has no IQMS schema, an older one, or one this version does not know."""


class NotFound(IQMSError):
    """The thing asked for does not exist."""


class PermissionDenied(IQMSError):
    """The caller may not do this."""


class AuthenticationFailed(IQMSError):
    """Login failed or the token is no longer valid."""


class InvalidTransition(IQMSError):
    """A ticket cannot move from its current state to the one asked for."""


class ValidationError(IQMSError):
    """Input was rejected; ``field`` names what was wrong."""

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class Conflict(IQMSError):
    """The change clashes with the current state (duplicate, stale version, ...)."""


class NotificationError(IQMSError):
    """A notification provider refused or failed."""


class RateLimited(IQMSError):
    """Too many attempts in a short time; ``retry_after`` says how many seconds to wait."""

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = max(1, int(retry_after))
