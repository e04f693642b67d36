"""Account helpers shared by the user and login services (no permission checks here).

The public operations live in :mod:`iqms.core.services.users` and
:mod:`iqms.core.services.auth`; these helpers run inside their transactions.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from iqms.core.config import Settings
from iqms.core.enums import DEVICE_ONLY_ROLES, Role
from iqms.core.errors import Conflict, NotFound, ValidationError
from iqms.core.models import Device, Doctor, Patient, User
from iqms.core.schemas.users import UserCreate, UserOut, normalise_username
from iqms.core.security.passwords import check_password_rules, hash_password


async def find_user(
    session: AsyncSession, user: uuid.UUID | str, *, for_update: bool = False
) -> User:
    """The account with this id or username; :class:`NotFound` otherwise."""
    if isinstance(user, uuid.UUID):
        stmt = select(User).where(User.id == user)
        label = str(user)
    else:
        name = str(user).strip().lower()
        stmt = select(User).where(User.username == name)
        label = name
    if for_update:
        stmt = stmt.with_for_update()
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no account named {label!r}")
    return found


async def patient_by_mrn(session: AsyncSession, mrn: str) -> Patient:
    patient = (
        await session.execute(select(Patient).where(Patient.mrn == mrn.strip()))
    ).scalar_one_or_none()
    if patient is None:
        raise NotFound(f"no patient with MRN {mrn.strip()!r}")
    return patient


async def link_patient(session: AsyncSession, user: User, mrn: str | None) -> None:
    """Point a patient account at its patient record (one account per patient)."""
    if mrn is None:
        return
    if user.role is not Role.PATIENT:
        raise ValidationError(
            "only patient accounts can be linked to a patient record", field="patient_mrn"
        )
    patient = await patient_by_mrn(session, mrn)
    holder = (
        await session.execute(
            select(User.username).where(User.patient_id == patient.id, User.id != user.id)
        )
    ).scalar_one_or_none()
    if holder is not None:
        raise Conflict(f"patient {patient.mrn} already has an account ({holder})")
    user.patient_id = patient.id


async def hash_in_thread(settings: Settings, password: str) -> str:
    """Hash off the event loop (a hash takes a noticeable fraction of a second)."""
    return await asyncio.to_thread(hash_password, settings, password)


def refuse_device_role(role: Role) -> None:
    """A display board signs in with a device key, never as a person's account."""
    if role in DEVICE_ONLY_ROLES:
        raise ValidationError(
            f"{role.value} is a device role, not an account role: add the device with "
            f"'iqms admin devices add NAME --role {role.value}'",
            field="role",
        )


async def new_user(
    session: AsyncSession, settings: Settings, data: UserCreate, password: str
) -> User:
    """Insert an account after checking the password rules and that the name is free."""
    check_password_rules(password, username=data.username)
    refuse_device_role(data.role)
    if data.role is Role.PATIENT and data.patient_mrn is None:
        raise ValidationError(
            "a patient account needs the MRN of the patient's record", field="patient_mrn"
        )
    taken = (
        await session.execute(select(User.id).where(User.username == data.username))
    ).scalar_one_or_none()
    if taken is not None:
        raise Conflict(f"username {data.username!r} is already taken")
    user = User(
        id=uuid.uuid4(),
        username=data.username,
        full_name=data.full_name,
        role=data.role,
        password_hash=await hash_in_thread(settings, password),
        active=True,
        failed_logins=0,
        token_version=1,
    )
    await link_patient(session, user, data.patient_mrn)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent insert won the race; the transaction rolls back
        raise Conflict(
            f"account {data.username!r} clashes with one created at the same moment; try again"
        ) from None
    return user


async def count_active_admins(session: AsyncSession, *, excluding: uuid.UUID | None = None) -> int:
    stmt = select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.active)
    if excluding is not None:
        stmt = stmt.where(User.id != excluding)
    return int((await session.execute(stmt)).scalar_one())


def is_locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


async def _links(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, uuid.UUID], dict[uuid.UUID, uuid.UUID]]:
    if not user_ids:
        return {}, {}
    doctor_rows = await session.execute(
        select(Doctor.user_id, Doctor.id).where(Doctor.user_id.in_(user_ids))
    )
    doctors = {user_id: doctor_id for user_id, doctor_id in doctor_rows}
    devices: dict[uuid.UUID, uuid.UUID] = {}
    rows = await session.execute(
        select(Device.user_id, Device.id).where(Device.user_id.in_(user_ids)).order_by(Device.name)
    )
    for user_id, device_id in rows:
        if user_id is not None:
            devices.setdefault(user_id, device_id)
    return doctors, devices


def _out(
    user: User, now: datetime, doctor_id: uuid.UUID | None, device_id: uuid.UUID | None
) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        active=user.active,
        locked=is_locked(user, now),
        locked_until=user.locked_until if is_locked(user, now) else None,
        failed_logins=user.failed_logins,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
        patient_id=user.patient_id,
        doctor_id=doctor_id,
        device_id=device_id,
    )


async def users_out(session: AsyncSession, users: Sequence[User], now: datetime) -> list[UserOut]:
    """Accounts as output, with their doctor and device links."""
    doctors, devices = await _links(session, [u.id for u in users])
    return [_out(u, now, doctors.get(u.id), devices.get(u.id)) for u in users]


async def user_out(session: AsyncSession, user: User, now: datetime) -> UserOut:
    return (await users_out(session, [user], now))[0]


__all__ = [
    "count_active_admins",
    "find_user",
    "hash_in_thread",
    "is_locked",
    "link_patient",
    "new_user",
    "normalise_username",
    "patient_by_mrn",
    "user_out",
    "users_out",
]
