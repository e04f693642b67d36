"""ASGI middleware: a request body limit, request logging without bodies or secrets, headers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iqms.api.problems import PROBLEM_JSON, BodyTooLarge

access_log = logging.getLogger("iqms.api.access")


class BodyLimit:
    """Refuse request bodies over a size limit (413), by Content-Length or while reading.

    ``limits`` gives larger (or smaller) limits for path prefixes, e.g. offline
    sync batches; anything else gets ``default``.
    """

    def __init__(
        self, app: ASGIApp, *, default: int, limits: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.default = default
        self.limits = list(limits)

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_too_large(scope, send, limit)
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


async def _send_too_large(scope: Scope, send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "type": "urn:iqms:problem:body-too-large",
            "title": "Content Too Large",
            "status": 413,
            "detail": f"the request body is larger than {limit} bytes",
            "instance": scope.get("path", ""),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AccessLog:
    """One log line per request: method, path (never the query), status, time, client, user.

    Bodies, query strings and headers are left out: they carry passwords, login
    codes, device keys and patient details.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                state: dict[str, Any] = scope.get("state") or {}
                access_log.info(
                    '%s "%s %s" %s %.1fms %s',
                    client[0],
                    scope.get("method", "?"),
                    scope.get("root_path", "") + scope.get("path", ""),
                    status or "-",
                    (time.perf_counter() - started) * 1000,
                    state.get("principal_name", "-"),
                )


class SecurityHeaders:
    """Headers every response gets: no MIME sniffing, no referrer (status links are secrets)."""

    HEADERS = (
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def adding(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, adding)


__all__ = ["AccessLog", "BodyLimit", "SecurityHeaders", "access_log"]
