"""Logging in and out, checking a login token, and creating the first administrator.

Login checks the password outside any write lock (a hash takes a noticeable
fraction of a second, and the kiosk should not wait on it) and records the
outcome in its own short write transaction, so a failed attempt is counted and
committed even though the call then raises. Every failure gives the same
message, whether or not the username exists, and an unknown username costs
as long to check as a known one.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select, text

from iqms.core.enums import Role
from iqms.core.errors import AuthenticationFailed, Conflict, NotFound
from iqms.core.models import User
from iqms.core.schemas.users import LoginResult, UserCreate, UserOut, parse
from iqms.core.security import accounts
from iqms.core.security.audit import log_action
from iqms.core.security.passwords import verify_dummy, verify_password
from iqms.core.security.rbac import Permission, Principal
from iqms.core.security.sessions import principal_for_user, resolve_principal
from iqms.core.security.tokens import issue_token, token_expiry
from iqms.core.service import Context, operation

BOOTSTRAP_LOCK_KEY = 0x1A4D18  # pg_advisory_xact_lock key: one bootstrap at a time


def _failure_message(ctx: Context) -> str:
    s = ctx.settings
    return (
        "login failed: wrong username or password (after "
        f"{s.lockout_threshold} failed attempts an account is locked for "
        f"{s.lockout_minutes} minutes)"
    )


async def _record_failure(ctx: Context, user: User | None, now: datetime) -> None:
    """Count a failed attempt (locking the account at the threshold) and commit it."""
    async with ctx.db.transaction() as session:
        wctx = ctx.bind(session).as_principal(Principal.anonymous())
        if user is None:
            await log_action(
                wctx, action="auth.login_failed", details={"reason": "unknown account"}
            )
            return
        row = await accounts.find_user(session, user.id, for_update=True)
        if accounts.is_locked(row, now):
            await log_action(
                wctx,
                action="auth.login_refused",
                target=("user", row.id),
                details={"username": row.username, "reason": "locked"},
            )
            return
        row.failed_logins += 1
        details: dict[str, object] = {"username": row.username, "failed_logins": row.failed_logins}
        await log_action(wctx, action="auth.login_failed", target=("user", row.id), details=details)
        if row.failed_logins >= ctx.settings.lockout_threshold:
            row.locked_until = now + timedelta(minutes=ctx.settings.lockout_minutes)
            row.failed_logins = 0
            await log_action(
                wctx,
                action="auth.locked",
                target=("user", row.id),
                details={"username": row.username, "until": row.locked_until.isoformat()},
            )


@operation(None, public=True, readonly=True)
async def login(ctx: Context, *, username: str, password: str) -> LoginResult:
    """Check a username and password; return a signed login token."""
    settings = ctx.settings
    now = ctx.now()
    name = username.strip().lower()
    user = (await ctx.s.execute(select(User).where(User.username == name))).scalar_one_or_none()
    if user is None:
        await asyncio.to_thread(verify_dummy, settings, password)
        await _record_failure(ctx, None, now)
        raise AuthenticationFailed(_failure_message(ctx))
    ok, upgraded_hash = await asyncio.to_thread(
        verify_password, settings, password, user.password_hash
    )
    if not ok or accounts.is_locked(user, now):
        await _record_failure(ctx, user, now)
        raise AuthenticationFailed(_failure_message(ctx))
    if not user.active:
        raise AuthenticationFailed("this account is disabled; ask an administrator")

    async with ctx.db.transaction() as session:
        row = await accounts.find_user(session, user.id, for_update=True)
        if accounts.is_locked(row, now) or row.password_hash != user.password_hash:
            # Locked, or the password changed, while we were checking.
            raise AuthenticationFailed(_failure_message(ctx))
        if not row.active:
            raise AuthenticationFailed("this account is disabled; ask an administrator")
        row.failed_logins = 0
        row.locked_until = None
        row.last_login_at = now
        if upgraded_hash is not None:
            row.password_hash = upgraded_hash
        principal = await principal_for_user(session, row)
        await log_action(
            ctx.bind(session).as_principal(principal),
            action="auth.login",
            target=("user", row.id),
            details={"username": row.username, "rehashed": upgraded_hash is not None},
        )
        out = await accounts.user_out(session, row, now)
    token = issue_token(
        settings,
        user_id=row.id,
        username=row.username,
        role=row.role.value,
        token_version=row.token_version,
        now=now,
    )
    return LoginResult(
        token=token, principal=principal, expires_at=token_expiry(settings, now), user=out
    )


@operation(None, public=True, readonly=True)
async def authenticate(ctx: Context, *, token: str) -> Principal:
    """The principal a login token stands for, if it is valid, unexpired and not revoked."""
    return await resolve_principal(ctx.s, ctx.settings, token, now=ctx.now())


@operation(Permission.OWN_SESSION, readonly=True)
async def whoami(ctx: Context) -> UserOut:
    """The caller's own account."""
    if ctx.principal.user_id is None:
        raise NotFound(f"{ctx.principal.username} is an internal principal, not an account")
    user = await accounts.find_user(ctx.s, ctx.principal.user_id)
    return await accounts.user_out(ctx.s, user, ctx.now())


@operation(Permission.OWN_SESSION)
async def logout_everywhere(ctx: Context) -> None:
    """End every login of the caller's account, on every terminal."""
    if ctx.principal.user_id is None:
        raise NotFound(f"{ctx.principal.username} is an internal principal, not an account")
    user = await accounts.find_user(ctx.s, ctx.principal.user_id, for_update=True)
    user.token_version += 1
    await log_action(
        ctx,
        action="auth.sessions_revoked",
        target=("user", user.id),
        details={"username": user.username},
    )


@operation(None, public=True)
async def bootstrap(ctx: Context, *, username: str, full_name: str, password: str) -> UserOut:
    """Create the first administrator; refused once any administrator exists."""
    data = parse(UserCreate, username=username, full_name=full_name, role=Role.ADMIN)
    if ctx.db.is_postgres:
        await ctx.s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": BOOTSTRAP_LOCK_KEY})
    existing = (
        await ctx.s.execute(select(User.username).where(User.role == Role.ADMIN).limit(1))
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            "an administrator already exists; log in as an administrator to add accounts"
        )
    user = await accounts.new_user(ctx.s, ctx.settings, data, password)
    await log_action(
        ctx,
        action="user.bootstrap",
        target=("user", user.id),
        details={"username": user.username, "role": user.role.value},
    )
    return await accounts.user_out(ctx.s, user, ctx.now())
