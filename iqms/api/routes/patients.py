"""``/api/patients``: patients on their phones: register, log in, their profile and tickets.

Registration and login are open (rate-limited); everything else needs a
patient's token, and a patient reaches only their own record and tickets (the
core refuses anything else with 403).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from iqms.api.deps import AnonymousContext, LoginLimit, UserContext, log_name
from iqms.api.routes.auth import token_out
from iqms.api.schemas import (
    BirthDateLogin,
    CodeLogin,
    CodeRequest,
    PatientChange,
    PatientRegistration,
    TokenOut,
)
from iqms.core.schemas.access import LoginCodeSent, SelfRegistrationResult
from iqms.core.schemas.patients import PatientOut
from iqms.core.schemas.queue import TicketStatusView
from iqms.core.services import patient_access, patients, queue

router = APIRouter(prefix="/api/patients", tags=["patients"])


@router.post(
    "/register",
    response_model=SelfRegistrationResult,
    status_code=201,
    dependencies=[LoginLimit],
)
async def register(body: PatientRegistration, ctx: AnonymousContext) -> SelfRegistrationResult:
    """Register yourself; then log in with the code sent by SMS (or with the new MRN)."""
    return await patient_access.self_register(
        ctx,
        full_name=body.full_name,
        phone=body.phone,
        date_of_birth=body.date_of_birth,
        national_id=body.national_id,
        notify_channel=body.notify_channel.value if body.notify_channel else None,
        language=body.language,
    )


@router.post(
    "/login/code", response_model=LoginCodeSent, status_code=202, dependencies=[LoginLimit]
)
async def send_login_code(body: CodeRequest, ctx: AnonymousContext) -> LoginCodeSent:
    """Send a one-time login code by SMS to a registered patient's phone.

    The answer is the same whether or not the number is registered.
    """
    return await patient_access.request_login_code(
        ctx, phone=body.phone, date_of_birth=body.date_of_birth
    )


@router.post("/login/verify", response_model=TokenOut, dependencies=[LoginLimit])
async def log_in_with_code(body: CodeLogin, ctx: AnonymousContext, request: Request) -> TokenOut:
    """Log in with the code from the SMS; returns a bearer token for the patient."""
    result = await patient_access.login_with_code(
        ctx, phone=body.phone, code=body.code, date_of_birth=body.date_of_birth
    )
    request.state.principal_name = log_name(result.principal)
    return token_out(result)


@router.post("/login/birth-date", response_model=TokenOut, dependencies=[LoginLimit])
async def log_in_with_birth_date(
    body: BirthDateLogin, ctx: AnonymousContext, request: Request
) -> TokenOut:
    """Log in with the record number (MRN) and date of birth, where the clinic sends no SMS."""
    result = await patient_access.login_with_birth_date(
        ctx, mrn=body.mrn, date_of_birth=body.date_of_birth
    )
    request.state.principal_name = log_name(result.principal)
    return token_out(result)


@router.get("/me", response_model=PatientOut)
async def my_record(ctx: UserContext) -> PatientOut:
    """The logged-in patient's own record."""
    return await patients.get(ctx, patient=ctx.principal.patient_id or "me")


@router.patch("/me", response_model=PatientOut)
async def change_my_record(body: PatientChange, ctx: UserContext) -> PatientOut:
    """Change your own contact details and message preferences."""
    return await patients.update(
        ctx, patient=ctx.principal.patient_id or "me", version=body.version, **body.changes()
    )


@router.get("/me/tickets", response_model=list[TicketStatusView])
async def my_tickets(ctx: UserContext) -> list[TicketStatusView]:
    """Your tickets still open today: position in the queue, estimated wait, room once called."""
    return await queue.my_tickets(ctx)


@router.get("/{patient}", response_model=PatientOut)
async def get_patient(patient: str, ctx: UserContext) -> PatientOut:
    """A patient record by id or MRN (patients: only their own)."""
    return await patients.get(ctx, patient=patient)
