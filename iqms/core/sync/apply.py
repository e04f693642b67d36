"""Applying one offline operation: tickets, appointment check-ins, cancellations, triage.

Internal to :mod:`iqms.core.services.sync` (which runs each operation of a
batch in a savepoint and records its result); patients are in
:mod:`iqms.core.sync.patients`. A handler returns an :class:`Outcome` or
raises :class:`OpConflict` to keep the operation for staff review with nothing
of it applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from iqms.core import pipeline
from iqms.core.clock import service_date
from iqms.core.enums import (
    AppointmentStatus,
    SyncResult,
    TicketSource,
    TicketStatus,
    TriageCategory,
)
from iqms.core.models import (
    Appointment,
    Department,
    Device,
    Doctor,
    Patient,
    QueueEntry,
    SyncOperation,
    TicketBlock,
)
from iqms.core.queue import engine as queue_engine
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission, has_permission, require
from iqms.core.service import Context
from iqms.core.sync.batch import (
    CancelTicket,
    CheckInAppointment,
    IssueTicket,
    Operation,
    SetTriage,
    UpdatePatient,
)


class OpConflict(Exception):
    """Raised inside an operation handler to end it as a conflict (savepoint rolled back)."""

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass
class Outcome:
    """What a handler did: the result, details for the terminal, and a reason if kept."""

    result: SyncResult
    details: dict[str, Any]
    conflict_reason: str | None = None
    target: tuple[str, str] | None = None


@dataclass
class BatchState:
    """What the operations of one batch learn about each other while it is applied."""

    device: Device
    patient_by_op: dict[uuid.UUID, uuid.UUID | None] = field(default_factory=dict)
    #: offline registrations that turned out to be patients the server already had
    existing_patient_ops: set[uuid.UUID] = field(default_factory=set)


# ---- helpers ------------------------------------------------------------------------------------
async def block_covers(
    ctx: Context, device: Device, department_id: uuid.UUID, day: date, number: int
) -> bool:
    """True when ``number`` lies in a block of that day's numbers reserved by ``device``."""
    row = (
        await ctx.s.execute(
            select(TicketBlock.id).where(
                TicketBlock.device_id == device.id,
                TicketBlock.department_id == department_id,
                TicketBlock.service_date == day,
                TicketBlock.first_number <= number,
                TicketBlock.last_number >= number,
            )
        )
    ).first()
    return row is not None


def op_json(op: Operation) -> dict[str, Any]:
    """An operation as JSON, as the terminal sent it (explicit nulls of changes kept)."""
    data = op.model_dump(mode="json", exclude_none=True)
    if isinstance(op, UpdatePatient):
        data["changes"] = op.changes.given()
        if op.base is not None:
            data["base"] = op.base.given()
    return data


def jsonable(value: Any) -> Any:
    """Details made JSON-plain (UUIDs, dates and enums as text)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (uuid.UUID,)):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    return value


# ---- references ---------------------------------------------------------------------------------
async def patient_from_op(ctx: Context, state: BatchState, ref: uuid.UUID) -> uuid.UUID | None:
    """The server patient an offline registration became (None: it is awaiting review)."""
    if ref in state.patient_by_op:
        return state.patient_by_op[ref]
    row = (
        await ctx.s.execute(select(SyncOperation).where(SyncOperation.op_id == ref))
    ).scalar_one_or_none()
    if row is None:
        raise OpConflict(
            f"refers to patient registration {ref}, which the server never received",
            patient_op_id=str(ref),
        )
    if row.device_id != state.device.id:
        raise OpConflict(f"refers to a patient registration of another device ({ref})")
    if row.result != SyncResult.APPLIED:
        state.existing_patient_ops.add(ref)
    value = (row.result_details or {}).get("patient_id")
    return uuid.UUID(value) if value else None


async def _ticket_for(
    ctx: Context, ticket_id: uuid.UUID | None, ticket_op_id: uuid.UUID | None
) -> QueueEntry:
    if ticket_id is not None:
        entry = await ctx.s.get(QueueEntry, ticket_id)
    else:
        entry = (
            await ctx.s.execute(select(QueueEntry).where(QueueEntry.client_op_id == ticket_op_id))
        ).scalar_one_or_none()
        if entry is None:
            # an offline ticket merged into the patient's existing one: act on that one
            issued = (
                await ctx.s.execute(
                    select(SyncOperation.result_details).where(SyncOperation.op_id == ticket_op_id)
                )
            ).scalar_one_or_none()
            merged_into = (issued or {}).get("ticket_id")
            if merged_into:
                entry = await ctx.s.get(QueueEntry, uuid.UUID(merged_into))
    if entry is None:
        raise OpConflict(
            "the ticket it refers to does not exist on the server",
            ticket_id=str(ticket_id) if ticket_id else None,
            ticket_op_id=str(ticket_op_id) if ticket_op_id else None,
        )
    return entry


# ---- tickets ------------------------------------------------------------------------------------
async def issue_ticket(ctx: Context, state: BatchState, op: Operation) -> Outcome:
    assert isinstance(op, IssueTicket)
    require(ctx.principal, Permission.QUEUE_ISSUE)
    department = await ctx.s.get(Department, op.department_id)
    if department is None:
        raise OpConflict(f"unknown department {op.department_id}")
    twin = (
        await ctx.s.execute(select(QueueEntry).where(QueueEntry.client_op_id == op.op_id))
    ).scalar_one_or_none()
    if twin is not None:
        # The terminal asked online first and lost the reply, so it issued this one offline.
        return await _online_twin(ctx, state, op, department, twin)
    notes: list[str] = []
    problems: list[str] = []
    patient_id: uuid.UUID | None = op.patient_id
    if patient_id is not None and await ctx.s.get(Patient, patient_id) is None:
        problems.append(
            f"patient {patient_id} is unknown, so the ticket is not linked to a patient"
        )
        patient_id = None
    if op.patient_op_id is not None:
        patient_id = await patient_from_op(ctx, state, op.patient_op_id)
        if patient_id is None:
            notes.append(
                "the patient registered offline awaits staff review; "
                "resolving that conflict links this ticket"
            )
    duplicate_of: QueueEntry | None = None
    if patient_id is not None:
        duplicate_of = await _active_ticket(ctx, patient_id, department.id, op)
        if duplicate_of is not None and (
            duplicate_of.status != TicketStatus.WAITING
            or duplicate_of.arrived_at <= min(op.occurred_at, ctx.now())
        ):
            # The same patient already waits (or is being seen) here: one place in the queue.
            details = {
                "ticket_id": str(duplicate_of.id),
                "ticket_number": duplicate_of.ticket_number,
                "patient_id": str(patient_id),
                "printed_number": (
                    queue_engine.format_ticket_number(department.ticket_prefix, op.sequence)
                    if op.sequence is not None
                    else None
                ),
                "note": f"the patient already has ticket {duplicate_of.ticket_number}",
            }
            if op.patient_op_id:
                details["patient_op_id"] = str(op.patient_op_id)
            await log_action(
                ctx,
                action="sync.ticket_merged",
                target=("queue_entry", duplicate_of.id),
                details={**details, "op_id": str(op.op_id), "device": state.device.name},
            )
            return Outcome(SyncResult.MERGED, details)
    category = op.triage_category
    if category != TriageCategory.STANDARD and not has_permission(
        ctx.principal, Permission.QUEUE_TRIAGE
    ):
        problems.append(
            f"{ctx.principal.username} may not set the urgency (category {category}); "
            "queued as standard for staff to triage"
        )
        category = TriageCategory.STANDARD
    doctor_id = op.doctor_id
    if doctor_id is not None:
        doctor = await ctx.s.get(Doctor, doctor_id)
        if doctor is None or doctor.department_id != department.id:
            problems.append(
                "the chosen doctor is not in this department, so the patient was queued "
                "for the whole department"
            )
            doctor_id = None
    done = await _queue_offline_ticket(
        ctx,
        state,
        op,
        department=department,
        patient_id=patient_id,
        doctor_id=doctor_id,
        triage_category=category,
        sequence=op.sequence,
        notes=notes,
        problems=problems,
        extra={"patient_op_id": str(op.patient_op_id)} if op.patient_op_id else {},
    )
    if duplicate_of is not None:
        # This offline ticket is the earlier one: it keeps the patient's place; the later
        # ticket of the same patient is withdrawn.
        from iqms.core.security.rbac import Principal
        from iqms.core.services import queue as queue_service

        await queue_service.cancel(
            ctx.as_principal(Principal.system("sync")),
            ticket=duplicate_of.id,
            reason=f"same patient as the earlier offline ticket {done.details['ticket_number']}",
        )
        done.details["replaced"] = duplicate_of.ticket_number
        if done.result == SyncResult.APPLIED:
            done.result = SyncResult.MERGED
    return done


async def _online_twin(
    ctx: Context, state: BatchState, op: IssueTicket, department: Department, twin: QueueEntry
) -> Outcome:
    """One press, two tickets: the online one whose reply was lost, and the one printed offline.

    The patient holds the printed number, so that one is queued (at the earlier arrival
    time) and the online twin is withdrawn. If the twin was called already, it stays and
    the printed number is only reported.
    """
    if twin.origin_device_id != state.device.id:
        raise OpConflict(
            f"operation id {op.op_id} is already the ticket {twin.ticket_number} of another device"
        )
    printed = (
        queue_engine.format_ticket_number(department.ticket_prefix, op.sequence)
        if op.sequence is not None
        else None
    )
    if twin.status != TicketStatus.WAITING or printed is None:
        details = {
            "ticket_id": str(twin.id),
            "ticket_number": twin.ticket_number,
            "printed_number": printed,
            "note": f"issued online as {twin.ticket_number} before the connection dropped",
        }
        await log_action(
            ctx,
            action="sync.ticket_merged",
            target=("queue_entry", twin.id),
            details={**details, "op_id": str(op.op_id), "device": state.device.name},
        )
        return Outcome(SyncResult.MERGED, details)
    twin.client_op_id = None  # the operation id goes to the ticket the patient holds
    await ctx.s.flush()
    from iqms.core.security.rbac import Principal
    from iqms.core.services import queue as queue_service

    await queue_service.cancel(
        ctx.as_principal(Principal.system("sync")),
        ticket=twin.id,
        reason=f"issued twice (reply lost); the patient holds the offline ticket {printed}",
    )
    done = await _queue_offline_ticket(
        ctx,
        state,
        op,
        department=department,
        patient_id=twin.patient_id,
        doctor_id=twin.doctor_id,
        triage_category=twin.triage_category,
        sequence=op.sequence,
        notes=[],
        problems=[],
        extra={},
        earliest=twin.arrived_at,
    )
    done.details["replaced"] = twin.ticket_number
    if done.result == SyncResult.APPLIED:
        done.result = SyncResult.MERGED
    return done


async def _active_ticket(
    ctx: Context, patient_id: uuid.UUID, department_id: uuid.UUID, op: IssueTicket
) -> QueueEntry | None:
    day = service_date(min(op.occurred_at, ctx.now()), ctx.settings.tz)
    return (
        await ctx.s.execute(
            select(QueueEntry)
            .where(
                QueueEntry.patient_id == patient_id,
                QueueEntry.department_id == department_id,
                QueueEntry.service_date == day,
                QueueEntry.status.in_(
                    [
                        TicketStatus.WAITING,
                        TicketStatus.HELD,
                        TicketStatus.CALLED,
                        TicketStatus.IN_SERVICE,
                    ]
                ),
            )
            .order_by(QueueEntry.arrived_at)
            .limit(1)
        )
    ).scalar_one_or_none()


async def _queue_offline_ticket(
    ctx: Context,
    state: BatchState,
    op: IssueTicket | CheckInAppointment,
    *,
    department: Department,
    patient_id: uuid.UUID | None,
    doctor_id: uuid.UUID | None,
    triage_category: int,
    sequence: int | None,
    notes: list[str],
    problems: list[str],
    extra: dict[str, Any],
    appointment: Appointment | None = None,
    earliest: datetime | None = None,
) -> Outcome:
    """Queue a ticket issued offline with its original arrival time and printed number."""
    now = ctx.now()
    tz = ctx.settings.tz
    arrived = min(op.occurred_at, now, *([earliest] if earliest is not None else []))
    if op.occurred_at > now:
        notes.append("the device clock was ahead; arrival set to the time of sync")
    day = service_date(arrived, tz)
    today = service_date(now, tz)
    printed = (
        queue_engine.format_ticket_number(department.ticket_prefix, sequence)
        if sequence is not None
        else None
    )
    if day < today:
        what = f"ticket {printed}" if printed else "a ticket"
        raise OpConflict(
            f"{what} of {department.code} is from an earlier service day "
            f"({day.isoformat()}); not queued today",
            department=department.code,
            printed_number=printed,
            service_date=day.isoformat(),
            arrived_at=arrived.isoformat(),
        )
    use_sequence = sequence
    if sequence is not None:
        if not await block_covers(ctx, state.device, department.id, day, sequence):
            problems.insert(
                0,
                f"number {printed} was not reserved by {state.device.name}; "
                "the patient was queued under a new number",
            )
            use_sequence = None
        else:
            taken = (
                await ctx.s.execute(
                    select(QueueEntry.id).where(
                        QueueEntry.department_id == department.id,
                        QueueEntry.service_date == day,
                        QueueEntry.sequence == sequence,
                    )
                )
            ).first()
            if taken is not None:
                problems.insert(
                    0,
                    f"number {printed} was already used; the patient was queued under a new number",
                )
                use_sequence = None
    status_code = getattr(op, "status_code", None)
    if status_code is not None:
        taken = (
            await ctx.s.execute(select(QueueEntry.id).where(QueueEntry.status_code == status_code))
        ).first()
        if taken is not None:
            problems.append("its status code was already in use, so its printed link will not work")
            status_code = None
    issued = await pipeline.issue_ticket(
        ctx,
        department=department,
        source=TicketSource.SYNC,
        status_code=status_code,
        patient_id=patient_id,
        doctor_id=doctor_id,
        triage_category=triage_category,
        arrived_at=arrived,
        appointment_id=appointment.id if appointment else None,
        appointment_at=appointment.scheduled_at if appointment else None,
        sequence=use_sequence,
        service_day=day,
        client_op_id=op.op_id,
        origin_device_id=state.device.id,
        extra={"offline": True, "device": state.device.name, **extra},
        audit_details={
            "op_id": str(op.op_id),
            "device": state.device.name,
            "offline_at": op.occurred_at.isoformat(),
            "printed_number": printed,
        },
    )
    entry = issued.entry
    details: dict[str, Any] = {
        "ticket_id": str(entry.id),
        "ticket_number": entry.ticket_number,
        "department": department.code,
        "arrived_at": entry.arrived_at.isoformat(),
        "patient_id": str(patient_id) if patient_id else None,
        **({"patient_op_id": extra["patient_op_id"]} if extra.get("patient_op_id") else {}),
    }
    if printed and printed != entry.ticket_number:
        details["printed_number"] = printed
    if notes:
        details["notes"] = notes
    if problems:
        return Outcome(
            SyncResult.CONFLICT, details, "; ".join(problems), ("queue_entry", str(entry.id))
        )
    return Outcome(SyncResult.APPLIED, details)


async def check_in(ctx: Context, state: BatchState, op: Operation) -> Outcome:
    assert isinstance(op, CheckInAppointment)
    require(ctx.principal, Permission.APPOINTMENTS_CHECK_IN)
    appointment = await ctx.s.get(Appointment, op.appointment_id)
    if appointment is None:
        raise OpConflict(f"unknown appointment {op.appointment_id}")
    department = await ctx.s.get(Department, appointment.department_id)
    assert department is not None
    printed = (
        queue_engine.format_ticket_number(department.ticket_prefix, op.sequence)
        if op.sequence is not None
        else None
    )
    if appointment.status == AppointmentStatus.CHECKED_IN:
        existing = (
            await ctx.s.execute(
                select(QueueEntry)
                .where(QueueEntry.appointment_id == appointment.id)
                .order_by(QueueEntry.created_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        details = {
            "appointment_id": str(appointment.id),
            "ticket_id": str(existing.id) if existing else None,
            "ticket_number": existing.ticket_number if existing else None,
            "printed_number": printed,
        }
        await log_action(
            ctx,
            action="sync.check_in_merged",
            target=("appointment", appointment.id),
            details={**details, "op_id": str(op.op_id), "device": state.device.name},
        )
        return Outcome(SyncResult.MERGED, details)
    if appointment.status != AppointmentStatus.BOOKED:
        raise OpConflict(
            f"the appointment is {appointment.status.value}; the offline check-in "
            f"({printed or 'no number'}) was not queued",
            appointment_id=str(appointment.id),
            printed_number=printed,
        )
    done = await _queue_offline_ticket(
        ctx,
        state,
        op,
        department=department,
        patient_id=appointment.patient_id,
        doctor_id=appointment.doctor_id,
        triage_category=4,
        sequence=op.sequence,
        notes=[],
        problems=[],
        extra={},
        appointment=appointment,
    )
    appointment.status = AppointmentStatus.CHECKED_IN
    appointment.checked_in_at = min(op.occurred_at, ctx.now())
    await ctx.s.flush()
    await log_action(
        ctx,
        action="appointment.checked_in",
        target=("appointment", appointment.id),
        details={
            "patient_id": str(appointment.patient_id),
            "department": department.code,
            "offline_at": op.occurred_at.isoformat(),
            "device": state.device.name,
        },
    )
    return done


async def cancel_ticket(ctx: Context, state: BatchState, op: Operation) -> Outcome:
    assert isinstance(op, CancelTicket)
    from iqms.core.services import queue as queue_service

    entry = await _ticket_for(ctx, op.ticket_id, op.ticket_op_id)
    if entry.status == TicketStatus.CANCELLED:
        return Outcome(
            SyncResult.MERGED,
            {
                "ticket_id": str(entry.id),
                "ticket_number": entry.ticket_number,
                "note": "already cancelled",
            },
        )
    await queue_service.cancel(ctx, ticket=entry.id, reason=op.reason or "left (offline)")
    return Outcome(
        SyncResult.APPLIED, {"ticket_id": str(entry.id), "ticket_number": entry.ticket_number}
    )


async def set_triage(ctx: Context, state: BatchState, op: Operation) -> Outcome:
    assert isinstance(op, SetTriage)
    from iqms.core.services import queue as queue_service

    entry = await _ticket_for(ctx, op.ticket_id, op.ticket_op_id)
    if entry.triage_category == op.triage_category:
        return Outcome(
            SyncResult.MERGED,
            {
                "ticket_id": str(entry.id),
                "ticket_number": entry.ticket_number,
                "note": "same category already",
            },
        )
    await queue_service.change_category(ctx, ticket=entry.id, triage_category=op.triage_category)
    return Outcome(
        SyncResult.APPLIED,
        {
            "ticket_id": str(entry.id),
            "ticket_number": entry.ticket_number,
            "triage_category": op.triage_category,
        },
    )
