"""``/api/staff``: reception: register and find patients, issue tickets, triage, manage the queue.

Kiosks use ``POST /api/staff/tickets`` too (online issuing). Which role may do
what is the core's permission matrix; a refused call answers 403.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from iqms.api.deps import UserContext
from iqms.api.schemas import (
    CategoryChange,
    IssueTicket,
    PatientChange,
    PatientCreateRequest,
    Reason,
    Transfer,
)
from iqms.core.enums import TicketStatus
from iqms.core.schemas.patients import PatientMatch, PatientOut
from iqms.core.schemas.queue import TicketOut
from iqms.core.security.rbac import Permission, require
from iqms.core.services import patients, queue

router = APIRouter(prefix="/api/staff", tags=["staff"])


@router.get("/patients", response_model=list[PatientMatch])
async def search_patients(
    ctx: UserContext,
    q: Annotated[str, Query(min_length=2, max_length=120, description="Name, MRN or phone")],
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[PatientMatch]:
    """Patients whose name, MRN or phone matches (the search is audited)."""
    return await patients.search(ctx, query=q, limit=limit)


@router.post("/patients", response_model=PatientOut, status_code=201)
async def register_patient(body: PatientCreateRequest, ctx: UserContext) -> PatientOut:
    """Register a patient at the desk; a likely duplicate is refused unless allowed (409)."""
    return await patients.register(
        ctx,
        full_name=body.full_name,
        phone=body.phone,
        date_of_birth=body.date_of_birth,
        national_id=body.national_id,
        notify_channel=body.notify_channel.value if body.notify_channel else None,
        language=body.language,
        allow_duplicate=body.allow_duplicate,
    )


@router.get("/patients/{patient}", response_model=PatientOut)
async def get_patient(patient: str, ctx: UserContext) -> PatientOut:
    """One patient's record by id or MRN (the read is audited)."""
    return await patients.get(ctx, patient=patient)


@router.patch("/patients/{patient}", response_model=PatientOut)
async def change_patient(patient: str, body: PatientChange, ctx: UserContext) -> PatientOut:
    """Change a patient's record (``version`` must match, else 409)."""
    return await patients.update(ctx, patient=patient, version=body.version, **body.changes())


@router.post("/tickets", response_model=TicketOut, status_code=201)
async def issue_ticket(body: IssueTicket, ctx: UserContext) -> TicketOut:
    """Issue a ticket; a category other than standard needs triage rights."""
    return await queue.issue(
        ctx,
        department=body.department,
        patient=body.patient,
        triage_category=body.triage_category,
        doctor=body.doctor,
        client_op_id=body.client_op_id,
    )


@router.get("/queue", response_model=list[TicketOut])
async def list_queue(
    ctx: UserContext,
    department: Annotated[str | None, Query(max_length=64, examples=["GEN"])] = None,
    status: Annotated[
        list[TicketStatus] | None, Query(description="Default: the open tickets")
    ] = None,
    day: Annotated[date | None, Query(description="Default: today")] = None,
    names: Annotated[bool, Query(description="Include patients' names (audited)")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[TicketOut]:
    """Tickets of a day: waiting ones in calling order with position and estimate, then the rest."""
    return await queue.queue_list(
        ctx, department=department, statuses=status, day=day, include_names=names, limit=limit
    )


@router.get("/tickets/{ticket}", response_model=TicketOut)
async def get_ticket(ticket: str, ctx: UserContext) -> TicketOut:
    """One ticket by id or today's number (``A-042``), with its position and estimate."""
    return await queue.get_ticket(ctx, ticket=ticket)


@router.post("/tickets/{ticket}/category", response_model=TicketOut)
async def assign_urgency(ticket: str, body: CategoryChange, ctx: UserContext) -> TicketOut:
    """Set the triage category (1 immediate ... 5 non-urgent); the due time is recomputed."""
    return await queue.change_category(ctx, ticket=ticket, triage_category=body.triage_category)


@router.post("/tickets/{ticket}/cancel", response_model=TicketOut)
async def cancel_ticket(ticket: str, body: Reason, ctx: UserContext) -> TicketOut:
    """Cancel a waiting or held ticket (the patient left)."""
    return await queue.cancel(ctx, ticket=ticket, reason=body.reason)


#: These moves are reception's (any ticket); doctors move the patients they called under
#: /api/doctor/tickets/... (as from their console).
_RECEPTION_MOVES = Permission.QUEUE_MANAGE


@router.post("/tickets/{ticket}/hold", response_model=TicketOut)
async def hold_ticket(ticket: str, body: Reason, ctx: UserContext) -> TicketOut:
    """Take a ticket out of the calling order for now (it keeps its place)."""
    require(ctx.principal, _RECEPTION_MOVES)
    return await queue.hold(ctx, ticket=ticket, reason=body.reason)


@router.post("/tickets/{ticket}/return", response_model=TicketOut)
async def return_ticket(ticket: str, ctx: UserContext) -> TicketOut:
    """Put a held ticket back in the queue with its original due time."""
    require(ctx.principal, _RECEPTION_MOVES)
    return await queue.return_to_queue(ctx, ticket=ticket)


@router.post("/tickets/{ticket}/transfer", response_model=TicketOut)
async def transfer_ticket(ticket: str, body: Transfer, ctx: UserContext) -> TicketOut:
    """Move a ticket to another department or doctor; returns the new ticket."""
    require(ctx.principal, _RECEPTION_MOVES)
    return await queue.transfer(
        ctx, ticket=ticket, department=body.department, doctor=body.doctor, reason=body.reason
    )
