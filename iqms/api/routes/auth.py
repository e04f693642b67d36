"""``/api/auth``: logging in with a username and password, and the caller's own session."""

from __future__ import annotations

from fastapi import APIRouter, Request

from iqms.api.deps import AnonymousContext, LoginLimit, UserContext, log_name
from iqms.api.schemas import PasswordChange, TokenOut, TokenRequest
from iqms.core.schemas.users import LoginResult, UserOut
from iqms.core.services import auth, users

router = APIRouter(prefix="/api/auth", tags=["auth"])


def token_out(result: LoginResult) -> TokenOut:
    return TokenOut(access_token=result.token, expires_at=result.expires_at, user=result.user)


@router.post("/token", response_model=TokenOut, dependencies=[LoginLimit])
async def log_in(body: TokenRequest, ctx: AnonymousContext, request: Request) -> TokenOut:
    """Log in with a username and password; returns a bearer token.

    Failed logins count towards the account's lockout (as in the terminal), and
    each client address may try only so often per minute.
    """
    result = await auth.login(ctx, username=body.username, password=body.password)
    request.state.principal_name = log_name(result.principal)
    return token_out(result)


@router.get("/me", response_model=UserOut)
async def who_am_i(ctx: UserContext) -> UserOut:
    """The caller's own account."""
    return await auth.whoami(ctx)


@router.post("/logout-everywhere", status_code=204)
async def log_out_everywhere(ctx: UserContext) -> None:
    """End every login of the caller's account, this token included."""
    await auth.logout_everywhere(ctx)


@router.post("/password", response_model=TokenOut)
async def change_password(body: PasswordChange, ctx: UserContext) -> TokenOut:
    """Change the caller's own password; other logins end and a fresh token is returned."""
    result = await users.change_own_password(
        ctx, current_password=body.current_password, new_password=body.new_password
    )
    return token_out(result)
