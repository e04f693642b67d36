"""Errors as RFC 9457 problem details, mapped from the core's exceptions in one place.

Every error the API answers with is ``application/problem+json``::

    {"type": "urn:iqms:problem:not-found", "title": "Not found", "status": 404,
     "detail": "no patient MRN000999", "instance": "/api/staff/patients/MRN000999",
     "field": "patient"}

``detail`` is the core's one-line message (written for the person at the
desk); ``field`` names the input at fault when known; validation problems list
every field in ``errors``. Input values are never echoed back (they may be
passwords or codes), and an unexpected error says only that it happened (the
server log has the traceback).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from iqms.core import errors

log = logging.getLogger("iqms.api")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:iqms:problem:"

# (core exception, HTTP status, problem type, title); the first match wins, so subclasses first.
ERROR_STATUS: list[tuple[type[errors.IQMSError], int, str, str]] = [
    (errors.RateLimited, 429, "rate-limited", "Too many attempts"),
    (errors.ConfigError, 503, "not-configured", "Not configured on this server"),
    (errors.DatabaseUnavailable, 503, "database-unavailable", "Database unavailable"),
    (errors.NotFound, 404, "not-found", "Not found"),
    (errors.PermissionDenied, 403, "permission-denied", "Permission denied"),
    (errors.AuthenticationFailed, 401, "not-authenticated", "Not logged in"),
    (errors.Conflict, 409, "conflict", "Conflict"),
    (errors.InvalidTransition, 409, "invalid-transition", "Not possible in the ticket's state"),
    (errors.ValidationError, 422, "invalid-input", "Invalid input"),
    (errors.NotificationError, 502, "notification-failed", "Message provider failed"),
]


class BodyTooLarge(StarletteHTTPException):
    """The request body is larger than this route accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


def status_for(exc: errors.IQMSError) -> tuple[int, str, str]:
    for cls, status, kind, title in ERROR_STATUS:
        if isinstance(exc, cls):
            return status, kind, title
    return 500, "error", "Error"


def problem(
    status: int,
    *,
    detail: str,
    instance: str | None = None,
    kind: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem-details response."""
    body: dict[str, Any] = {
        "type": f"{TYPE_PREFIX}{kind}" if kind else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def core_error_response(exc: errors.IQMSError, instance: str | None) -> JSONResponse:
    status, kind, title = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, errors.AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, errors.DatabaseUnavailable):
        headers["Retry-After"] = "5"
    extra: dict[str, Any] = {"field": exc.details.get("field")}
    if isinstance(exc, errors.ConfigError):
        extra["setting"] = exc.setting
    problems = exc.details.get("problems")
    if problems:
        extra["errors"] = problems
    if isinstance(exc, errors.Conflict):
        for key in ("ticket", "mrn"):
            if exc.details.get(key):
                extra[key] = exc.details[key]
    if status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.message)
    return problem(
        status,
        detail=exc.message,
        instance=instance,
        kind=kind,
        title=title,
        headers=headers or None,
        **extra,
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        where, rest = parts[0], parts[1:]
        return ".".join(rest) if rest and where == "body" else ".".join([where, *rest])
    return ".".join(parts)


def _validation_response(exc: RequestValidationError, instance: str) -> JSONResponse:
    issues = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in issues):
        first = next(e for e in issues if e.get("type") == "json_invalid")
        reason = (first.get("ctx") or {}).get("error") or "not valid JSON"
        return problem(
            400,
            detail=f"the request body is not valid JSON ({reason})",
            instance=instance,
            kind="malformed-json",
            title="Malformed JSON",
        )
    listed = [
        {"field": _field_path(tuple(e.get("loc", ()))) or None, "problem": _message(e)}
        for e in issues
    ]
    first_issue = listed[0] if listed else {"field": None, "problem": "invalid input"}
    detail = (
        f"{first_issue['field']}: {first_issue['problem']}"
        if first_issue["field"]
        else first_issue["problem"]
    )
    return problem(
        422,
        detail=detail,
        instance=instance,
        kind="invalid-input",
        title="Invalid input",
        field=first_issue["field"],
        errors=listed,
    )


def _message(error: dict[str, Any]) -> str:
    text = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        return "is required"
    return text


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem details."""

    @app.exception_handler(errors.IQMSError)
    async def _core(request: Request, exc: errors.IQMSError) -> JSONResponse:
        return core_error_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"there is no {request.url.path} here; see /api/docs"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        kind = "body-too-large" if isinstance(exc, BodyTooLarge) else None
        return problem(
            exc.status_code,
            detail=detail,
            instance=request.url.path,
            kind=kind,
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(
            500,
            detail="something went wrong on the server; it has been logged",
            instance=request.url.path,
            kind="internal-error",
            title="Internal error",
        )


__all__ = [
    "ERROR_STATUS",
    "PROBLEM_JSON",
    "BodyTooLarge",
    "core_error_response",
    "install",
    "problem",
    "status_for",
]
