"""``/api/admin``: accounts and the clinic's numbers (administrators)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from iqms.api.deps import UserContext
from iqms.api.schemas import AuditVerifyOut, PasswordReset, RoleChange, UserCreateRequest
from iqms.core.enums import Role
from iqms.core.schemas.users import UserOut
from iqms.core.services import audit, reports, users
from iqms.core.services.reports import ClinicReport

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/users", response_model=list[UserOut])
async def list_users(
    ctx: UserContext,
    role: Annotated[Role | None, Query()] = None,
    include_disabled: Annotated[bool, Query()] = True,
) -> list[UserOut]:
    """All accounts, by username."""
    return await users.list_users(ctx, role=role, include_disabled=include_disabled)


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(body: UserCreateRequest, ctx: UserContext) -> UserOut:
    """Create an account (the password must follow the password rules)."""
    return await users.create(
        ctx,
        username=body.username,
        full_name=body.full_name,
        role=body.role,
        password=body.password,
        patient_mrn=body.patient_mrn,
    )


@router.get("/users/{user}", response_model=UserOut)
async def get_user(user: str, ctx: UserContext) -> UserOut:
    """One account by username or id."""
    return await users.get(ctx, user=user)


@router.post("/users/{user}/disable", response_model=UserOut)
async def disable_user(user: str, ctx: UserContext) -> UserOut:
    """Disable an account: it can no longer log in and its tokens stop working."""
    return await users.disable(ctx, user=user)


@router.post("/users/{user}/enable", response_model=UserOut)
async def enable_user(user: str, ctx: UserContext) -> UserOut:
    """Re-enable an account and clear a lock left by failed logins."""
    return await users.enable(ctx, user=user)


@router.post("/users/{user}/password", response_model=UserOut)
async def reset_password(user: str, body: PasswordReset, ctx: UserContext) -> UserOut:
    """Set a new password for someone; their logins end."""
    return await users.reset_password(ctx, user=user, new_password=body.new_password)


@router.post("/users/{user}/role", response_model=UserOut)
async def set_role(user: str, body: RoleChange, ctx: UserContext) -> UserOut:
    """Change an account's role; its logins end so the new role applies at once."""
    return await users.set_role(ctx, user=user, role=body.role, patient_mrn=body.patient_mrn)


@router.get("/reports", response_model=ClinicReport)
async def clinic_report(
    ctx: UserContext,
    date_from: Annotated[date, Query(alias="from", examples=["2026-01-01"])],
    date_to: Annotated[date, Query(alias="to", examples=["2026-01-31"])],
    department: Annotated[str | None, Query(max_length=64)] = None,
    doctor: Annotated[str | None, Query(max_length=64, description="Doctor's username")] = None,
) -> ClinicReport:
    """Volumes, waits, service times, no-shows and triage targets for a date range."""
    return await reports.clinic_report(
        ctx, date_from=date_from, date_to=date_to, department=department, doctor=doctor
    )


@router.get("/audit/verify", response_model=AuditVerifyOut)
async def verify_audit(ctx: UserContext) -> AuditVerifyOut:
    """Walk the hash-chained audit trail; report the first record that does not hold."""
    result = await audit.verify(ctx)
    brk = result.first_break
    return AuditVerifyOut(
        intact=result.intact,
        checked=result.checked,
        first_break_seq=brk.seq if brk else None,
        first_break_reason=brk.reason if brk else None,
    )
