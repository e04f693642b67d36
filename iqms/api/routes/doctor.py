"""``/api/doctor``: a doctor's queue, calling the next patient, and marking them served.

Doctors act on their own queue and their own patients; staff may act for a
doctor by naming them (``doctor``). A doctor may also hold, return and
transfer the patients they called (as from the doctor console); reception
moves any ticket.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from iqms.api.deps import UserContext
from iqms.api.schemas import CallAs, DoctorStatusChange, NoShow, Reason, Recall, Transfer
from iqms.core.schemas.clinic import DoctorOut
from iqms.core.schemas.queue import DoctorQueueView, TicketOut
from iqms.core.services import clinic, queue

router = APIRouter(prefix="/api/doctor", tags=["doctor"])


@router.get("/queue", response_model=DoctorQueueView)
async def my_queue(
    ctx: UserContext,
    doctor: Annotated[str | None, Query(max_length=64, description="Staff: which doctor")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    names: Annotated[bool, Query(description="Include patients' names (audited)")] = False,
) -> DoctorQueueView:
    """The patients with the doctor now, and the tickets they would call next."""
    return await queue.doctor_queue(ctx, doctor=doctor, limit=limit, include_names=names)


@router.post("/status", response_model=DoctorOut)
async def set_status(body: DoctorStatusChange, ctx: UserContext) -> DoctorOut:
    """Set the doctor available, paused or off (boards show rooms of doctors on duty)."""
    return await clinic.set_doctor_status(ctx, status=body.status, doctor=body.doctor)


@router.post("/call-next", response_model=TicketOut | None)
async def call_next(body: CallAs, ctx: UserContext) -> TicketOut | None:
    """Call the best-ranked waiting ticket to the doctor's room; ``null`` when nobody waits."""
    return await queue.call_next(ctx, doctor=body.doctor, include_name=body.include_name)


@router.post("/tickets/{ticket}/call", response_model=TicketOut)
async def call_ticket(ticket: str, body: CallAs, ctx: UserContext) -> TicketOut:
    """Call one specific waiting ticket (out of turn)."""
    return await queue.call(ctx, ticket=ticket, doctor=body.doctor, include_name=body.include_name)


@router.post("/tickets/{ticket}/recall", response_model=TicketOut)
async def recall_ticket(ticket: str, body: Recall, ctx: UserContext) -> TicketOut:
    """Call again (a no-show after ``no_show_after`` recalls)."""
    return await queue.recall(
        ctx,
        ticket=ticket,
        no_show_after=body.no_show_after,
        requeue_no_show=body.requeue_no_show,
    )


@router.post("/tickets/{ticket}/start", response_model=TicketOut)
async def start_ticket(ticket: str, ctx: UserContext) -> TicketOut:
    """The called patient is in the room: the consultation starts."""
    return await queue.start(ctx, ticket=ticket)


@router.post("/tickets/{ticket}/serve", response_model=TicketOut)
async def serve_ticket(ticket: str, ctx: UserContext) -> TicketOut:
    """The consultation is over: mark the patient served."""
    return await queue.serve(ctx, ticket=ticket)


@router.post("/tickets/{ticket}/no-show", response_model=TicketOut)
async def no_show(ticket: str, body: NoShow, ctx: UserContext) -> TicketOut:
    """The called patient did not come: a no-show, or back in the queue."""
    return await queue.no_show(ctx, ticket=ticket, requeue=body.requeue)


@router.post("/tickets/{ticket}/hold", response_model=TicketOut)
async def hold_ticket(ticket: str, body: Reason, ctx: UserContext) -> TicketOut:
    """Hold a patient you called (e.g. sent for a test): out of the calling order for now."""
    return await queue.hold(ctx, ticket=ticket, reason=body.reason)


@router.post("/tickets/{ticket}/return", response_model=TicketOut)
async def return_ticket(ticket: str, ctx: UserContext) -> TicketOut:
    """Put a patient you held back in the queue with their original due time."""
    return await queue.return_to_queue(ctx, ticket=ticket)


@router.post("/tickets/{ticket}/transfer", response_model=TicketOut)
async def transfer_ticket(ticket: str, body: Transfer, ctx: UserContext) -> TicketOut:
    """Send a patient you called to another department or doctor; returns the new ticket."""
    return await queue.transfer(
        ctx, ticket=ticket, department=body.department, doctor=body.doctor, reason=body.reason
    )
