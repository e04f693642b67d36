"""Accounts: create, look up, change, disable and enable users; passwords and roles.

Everything here is for administrators, except changing one's own password.
Accounts are named by id or username (``user=``). Disabling an account,
changing its role or its password revokes its existing logins (token version).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from iqms.core.enums import Role
from iqms.core.errors import AuthenticationFailed, Conflict, ValidationError
from iqms.core.models import User
from iqms.core.schemas.users import LoginResult, UserCreate, UserOut, UserUpdate, parse
from iqms.core.security import accounts
from iqms.core.security.audit import log_action
from iqms.core.security.passwords import check_password_rules, verify_password
from iqms.core.security.rbac import Permission
from iqms.core.security.sessions import principal_for_user
from iqms.core.security.tokens import issue_token, token_expiry
from iqms.core.service import Context, operation


def _target(user: User) -> tuple[str, uuid.UUID]:
    return ("user", user.id)


async def _guard_last_admin(ctx: Context, user: User, what: str) -> None:
    if user.role is Role.ADMIN and user.active:
        if await accounts.count_active_admins(ctx.s, excluding=user.id) == 0:
            raise Conflict(
                f"{user.username} is the last active administrator; {what} would leave "
                "nobody able to manage accounts"
            )


def _revoke(user: User) -> None:
    user.token_version += 1


@operation(Permission.USERS_MANAGE)
async def create(
    ctx: Context,
    *,
    username: str,
    full_name: str,
    role: Role | str,
    password: str,
    patient_mrn: str | None = None,
) -> UserOut:
    """Create an account; the password must follow the password rules."""
    data = parse(
        UserCreate, username=username, full_name=full_name, role=role, patient_mrn=patient_mrn
    )
    user = await accounts.new_user(ctx.s, ctx.settings, data, password)
    await log_action(
        ctx,
        action="user.created",
        target=_target(user),
        details={"username": user.username, "role": user.role.value},
    )
    return await accounts.user_out(ctx.s, user, ctx.now())


@operation(Permission.USERS_VIEW, readonly=True)
async def get(ctx: Context, *, user: uuid.UUID | str) -> UserOut:
    """One account by id or username."""
    found = await accounts.find_user(ctx.s, user)
    return await accounts.user_out(ctx.s, found, ctx.now())


@operation(Permission.USERS_VIEW, readonly=True)
async def list_users(
    ctx: Context, *, role: Role | str | None = None, include_disabled: bool = True
) -> list[UserOut]:
    """All accounts, by username; optionally only one role or only active accounts."""
    stmt = select(User).order_by(User.username)
    if role is not None:
        try:
            stmt = stmt.where(User.role == Role(role))
        except ValueError:
            raise ValidationError(
                f"unknown role {role!r} (one of {', '.join(r.value for r in Role)})", field="role"
            ) from None
    if not include_disabled:
        stmt = stmt.where(User.active)
    found = (await ctx.s.execute(stmt)).scalars().all()
    return await accounts.users_out(ctx.s, found, ctx.now())


@operation(Permission.USERS_MANAGE)
async def update(
    ctx: Context,
    *,
    user: uuid.UUID | str,
    full_name: str | None = None,
    patient_mrn: str | None = None,
) -> UserOut:
    """Change an account's full name or (patient accounts) its patient record."""
    data = parse(UserUpdate, full_name=full_name, patient_mrn=patient_mrn)
    found = await accounts.find_user(ctx.s, user, for_update=True)
    changed: dict[str, Any] = {}
    if data.full_name is not None and data.full_name != found.full_name:
        found.full_name = data.full_name
        changed["full_name"] = data.full_name
    if data.patient_mrn is not None:
        before = found.patient_id
        await accounts.link_patient(ctx.s, found, data.patient_mrn)
        if found.patient_id != before:
            changed["patient_mrn"] = data.patient_mrn
    if changed:
        await log_action(
            ctx,
            action="user.updated",
            target=_target(found),
            details={"username": found.username, "changed": sorted(changed)},
        )
    return await accounts.user_out(ctx.s, found, ctx.now())


@operation(Permission.USERS_MANAGE)
async def disable(ctx: Context, *, user: uuid.UUID | str) -> UserOut:
    """Disable an account: it can no longer log in and its current logins stop working."""
    found = await accounts.find_user(ctx.s, user, for_update=True)
    if found.id == ctx.principal.user_id:
        raise Conflict("you cannot disable your own account")
    if found.active:
        await _guard_last_admin(ctx, found, "disabling it")
        found.active = False
        _revoke(found)
        await log_action(
            ctx, action="user.disabled", target=_target(found), details={"username": found.username}
        )
    return await accounts.user_out(ctx.s, found, ctx.now())


@operation(Permission.USERS_MANAGE)
async def enable(ctx: Context, *, user: uuid.UUID | str) -> UserOut:
    """Re-enable an account and clear any lock left by failed logins."""
    found = await accounts.find_user(ctx.s, user, for_update=True)
    was_locked = accounts.is_locked(found, ctx.now())
    if not found.active or was_locked or found.failed_logins:
        found.active = True
        found.failed_logins = 0
        found.locked_until = None
        await log_action(
            ctx,
            action="user.enabled",
            target=_target(found),
            details={"username": found.username, "was_locked": was_locked},
        )
    return await accounts.user_out(ctx.s, found, ctx.now())


@operation(Permission.OWN_PASSWORD)
async def change_own_password(
    ctx: Context, *, current_password: str, new_password: str
) -> LoginResult:
    """Change the caller's own password; other logins end, a fresh token is returned."""
    if ctx.principal.user_id is None:
        raise ValidationError("only a user account has a password to change")
    found = await accounts.find_user(ctx.s, ctx.principal.user_id, for_update=True)
    ok, _ = await asyncio.to_thread(
        verify_password, ctx.settings, current_password, found.password_hash
    )
    if not ok:
        raise AuthenticationFailed("the current password is not correct; nothing was changed")
    check_password_rules(new_password, username=found.username)
    if current_password == new_password:
        raise ValidationError("the new password must differ from the current one", field="password")
    found.password_hash = await accounts.hash_in_thread(ctx.settings, new_password)
    _revoke(found)
    await log_action(
        ctx,
        action="user.password_changed",
        target=_target(found),
        details={"username": found.username},
    )
    now = ctx.now()
    principal = await principal_for_user(ctx.s, found)
    token = issue_token(
        ctx.settings,
        user_id=found.id,
        username=found.username,
        role=found.role.value,
        token_version=found.token_version,
        now=now,
    )
    return LoginResult(
        token=token,
        principal=principal,
        expires_at=token_expiry(ctx.settings, now),
        user=await accounts.user_out(ctx.s, found, now),
    )


@operation(Permission.USERS_MANAGE)
async def reset_password(ctx: Context, *, user: uuid.UUID | str, new_password: str) -> UserOut:
    """Set a new password for someone; their logins end and any lock is cleared."""
    found = await accounts.find_user(ctx.s, user, for_update=True)
    check_password_rules(new_password, username=found.username)
    found.password_hash = await accounts.hash_in_thread(ctx.settings, new_password)
    found.failed_logins = 0
    found.locked_until = None
    _revoke(found)
    await log_action(
        ctx,
        action="user.password_reset",
        target=_target(found),
        details={"username": found.username},
    )
    return await accounts.user_out(ctx.s, found, ctx.now())


@operation(Permission.USERS_MANAGE)
async def set_role(
    ctx: Context, *, user: uuid.UUID | str, role: Role | str, patient_mrn: str | None = None
) -> UserOut:
    """Change an account's role; its logins end so the new role applies at once."""
    try:
        new_role = Role(role)
    except ValueError:
        raise ValidationError(
            f"unknown role {role!r} (one of {', '.join(r.value for r in Role)})", field="role"
        ) from None
    accounts.refuse_device_role(new_role)
    found = await accounts.find_user(ctx.s, user, for_update=True)
    if found.role is new_role and patient_mrn is None:
        return await accounts.user_out(ctx.s, found, ctx.now())
    if new_role is not Role.ADMIN:
        await _guard_last_admin(ctx, found, f"making it {new_role.value}")
    if new_role is Role.PATIENT and patient_mrn is None:
        raise ValidationError(
            "a patient account needs the MRN of the patient's record", field="patient_mrn"
        )
    old = found.role
    found.role = new_role
    if new_role is Role.PATIENT:
        await accounts.link_patient(ctx.s, found, patient_mrn)
    elif patient_mrn is not None:
        raise ValidationError(
            "only patient accounts can be linked to a patient record", field="patient_mrn"
        )
    else:
        found.patient_id = None
    _revoke(found)
    await log_action(
        ctx,
        action="user.role_changed",
        target=_target(found),
        details={"username": found.username, "from": old.value, "to": new_role.value},
    )
    return await accounts.user_out(ctx.s, found, ctx.now())
