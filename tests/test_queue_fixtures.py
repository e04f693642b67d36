"""Helpers for the clinic, patient and queue tests: a small clinic built through the services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from iqms.core.enums import DoctorStatus, Role
from iqms.core.models import User
from iqms.core.schemas.clinic import DepartmentOut, DoctorOut
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic


@dataclass
class Clinic:
    gen: DepartmentOut
    ped: DepartmentOut
    doctors: dict[str, DoctorOut] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)


async def add_user(ctx: Context, username: str, role: Role, full_name: str | None = None) -> User:
    """An account created straight in the database (login is not what these tests are about)."""
    async with ctx.db.transaction() as s:
        user = User(
            id=uuid.uuid4(),
            username=username,
            full_name=full_name or username.title(),
            role=role,
            password_hash="not-a-login",
        )
        s.add(user)
    return user


async def add_doctor(
    ctx: Context,
    username: str,
    department: str,
    room: str,
    *,
    status: DoctorStatus = DoctorStatus.AVAILABLE,
) -> DoctorOut:
    await add_user(ctx, username, Role.DOCTOR, f"Dr {username.title()}")
    doc = await clinic.create_doctor(ctx, user=username, department=department, room=room)
    if status != DoctorStatus.OFF:
        doc = await clinic.set_doctor_status(ctx, doctor=doc.id, status=status)
    return doc


async def small_clinic(ctx: Context, *, doctors: bool = True) -> Clinic:
    """GEN (prefix A, category 3 target 30 min) and PED (prefix P); drsmith and drjones in GEN."""
    gen = await clinic.create_department(
        ctx, code="GEN", name="General Practice", ticket_prefix="A", triage_targets={"3": 30}
    )
    ped = await clinic.create_department(ctx, code="PED", name="Paediatrics", ticket_prefix="P")
    c = Clinic(gen=gen, ped=ped)
    if doctors:
        c.doctors["drsmith"] = await add_doctor(ctx, "drsmith", "GEN", "Room 1")
        c.doctors["drjones"] = await add_doctor(ctx, "drjones", "GEN", "Room 2")
        c.doctors["drpatel"] = await add_doctor(ctx, "drpatel", "PED", "Room 5")
    return c


def as_doctor(ctx: Context, doctor: DoctorOut) -> Context:
    return ctx.as_principal(
        Principal(
            user_id=doctor.user_id, username=doctor.username, role="doctor", doctor_id=doctor.id
        )
    )


def as_role(ctx: Context, role: str, *, username: str | None = None, **links: object) -> Context:
    return ctx.as_principal(
        Principal(user_id=uuid.uuid4(), username=username or role, role=role, **links)  # type: ignore[arg-type]
    )


async def as_user(ctx: Context, username: str, role: Role, **links: object) -> Context:
    """A context acting as a new account of ``role`` (the account exists in the database)."""
    user = await add_user(ctx, username, role)
    return ctx.as_principal(
        Principal(user_id=user.id, username=username, role=role.value, **links)  # type: ignore[arg-type]
    )
