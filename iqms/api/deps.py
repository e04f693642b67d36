"""Who is calling: credentials turned into a core :class:`Context` for each request.

API routes take ``Authorization: Bearer <credential>``: the signed login token
of ``POST /api/auth/token`` or a patient login, or the key of a kiosk or
display board (``iqmsdk_...``, also accepted as ``Authorization: Device <key>``).
The board pages, opened by a TV's browser, also take the credential from a
cookie set by ``?key=`` once. Permission checks are the core's: a route only
builds the context and calls a service, which refuses what the caller's role
may not do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from iqms.api.events import EventHub, StatusCache
from iqms.api.ratelimit import SlidingWindowLimiter
from iqms.core.clock import Clock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import Role
from iqms.core.errors import AuthenticationFailed
from iqms.core.security.device_keys import KEY_PREFIX
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import auth, devices

BOARD_COOKIE = "iqms_board_key"

bearer = HTTPBearer(
    auto_error=False,
    description="A login token (POST /api/auth/token, or a patient login), or the key of a "
    "kiosk or display board (iqmsdk_...; 'Authorization: Device <key>' works too).",
)
SCHEMES = ("bearer", "device")


@dataclass
class ApiState:
    """What every request shares: settings, the database, the clock, live events, limits."""

    settings: Settings
    db: Database
    clock: Clock
    hub: EventHub
    login_limiter: SlidingWindowLimiter
    status_cache: StatusCache


def state_of(request: Request) -> ApiState:
    return request.app.state.iqms  # type: ignore[no-any-return]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def anonymous_context(request: Request) -> Context:
    """A context for someone not logged in (named by address in the audit trail)."""
    state = state_of(request)
    principal = Principal.anonymous(f"web {client_address(request)}"[:64])
    return Context(db=state.db, principal=principal, settings=state.settings, clock=state.clock)


async def principal_for_credential(request: Request, credential: str) -> Principal:
    """The principal of a login token (valid, unexpired, account active) or a device key."""
    ctx = anonymous_context(request)
    if credential.startswith(KEY_PREFIX):
        principal = await devices.authenticate(ctx, key=credential)
    else:
        principal = await auth.authenticate(ctx, token=credential)
    request.state.principal_name = log_name(principal)
    return principal


def log_name(principal: Principal) -> str:
    """Who the request log names: the account or device, but only "patient" for a patient."""
    return "patient" if principal.role == Role.PATIENT else principal.username


def header_credential(request: Request) -> str | None:
    """The credential of the Authorization header (Bearer or Device), if there is one."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() not in SCHEMES or not value.strip():
        raise AuthenticationFailed(
            "the Authorization header must be 'Bearer <token>' (a token from "
            "POST /api/auth/token) or 'Device <device key>'"
        )
    return value.strip()


async def user_context(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Context:
    """The logged-in caller's context (401 without a valid credential)."""
    state = state_of(request)
    credential = header_credential(request)
    if credential is None:
        raise AuthenticationFailed(
            "log in first: send 'Authorization: Bearer <token>' (get one from POST /api/auth/token)"
        )
    principal = await principal_for_credential(request, credential)
    return Context(db=state.db, principal=principal, settings=state.settings, clock=state.clock)


async def board_context(request: Request) -> Context:
    """A board's caller: the Authorization header, or the key cookie of a TV's browser."""
    state = state_of(request)
    credential = header_credential(request) or (request.cookies.get(BOARD_COOKIE) or "").strip()
    if not credential:
        raise AuthenticationFailed(
            "this board needs a key: open the board's address once with ?key=KEY"
        )
    principal = await principal_for_credential(request, credential)
    return Context(db=state.db, principal=principal, settings=state.settings, clock=state.clock)


UserContext = Annotated[Context, Depends(user_context)]
AnonymousContext = Annotated[Context, Depends(anonymous_context)]
BoardContext = Annotated[Context, Depends(board_context)]


def limit_logins(request: Request) -> None:
    """Count a login attempt from the caller's address (429 when there were too many)."""
    state_of(request).login_limiter.hit(client_address(request))


LoginLimit = Depends(limit_logins)

__all__ = [
    "BOARD_COOKIE",
    "AnonymousContext",
    "ApiState",
    "BoardContext",
    "LoginLimit",
    "UserContext",
    "anonymous_context",
    "bearer",
    "board_context",
    "client_address",
    "header_credential",
    "principal_for_credential",
    "state_of",
    "user_context",
]
