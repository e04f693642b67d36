"""Turning a token into a :class:`Principal`: the account must still be active and current."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from iqms.core.config import Settings
from iqms.core.errors import AuthenticationFailed
from iqms.core.models import Device, Doctor, User
from iqms.core.security.rbac import Principal
from iqms.core.security.tokens import decode_token


async def principal_for_user(session: AsyncSession, user: User) -> Principal:
    """The principal of an account, with its doctor / patient / device links."""
    doctor_id = (
        await session.execute(select(Doctor.id).where(Doctor.user_id == user.id))
    ).scalar_one_or_none()
    device_id = (
        await session.execute(select(Device.id).where(Device.user_id == user.id))
    ).scalar_one_or_none()
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role.value,
        token_version=user.token_version,
        patient_id=user.patient_id,
        doctor_id=doctor_id,
        device_id=device_id,
    )


async def resolve_principal(
    session: AsyncSession, settings: Settings, token: str, *, now: datetime
) -> Principal:
    """Decode ``token`` and check the account: active, same token version (else revoked)."""
    claims = decode_token(settings, token, now=now)
    user = await session.get(User, claims.user_id)
    if user is None or not user.active:
        raise AuthenticationFailed(
            "your account is disabled or no longer exists; ask an administrator"
        )
    if user.token_version != claims.token_version:
        raise AuthenticationFailed(
            "your login was revoked (password or account changed); log in again"
        )
    return await principal_for_user(session, user)
