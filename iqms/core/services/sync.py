"""Offline sync: number blocks for kiosks, applying a terminal's journal, conflicts for review.

``push`` applies one device's batch in device order inside one transaction,
each operation in its own savepoint. Every operation gets a result:

* ``applied`` - done as recorded (tickets keep their original arrival time);
* ``duplicate`` - this operation id was applied before; nothing changes and
  the original outcome is reported again;
* ``merged`` - combined with what the server already had (a patient
  registered offline who already exists; a stale update resolved field by
  field, newer value winning, both values in the audit trail);
* ``conflict`` - kept for staff review with a reason (``iqms admin sync
  conflicts``); whatever could safely be done (e.g. queueing the patient) is
  done and said so.

A batch that is malformed is refused whole before anything is written. If the
connection drops mid-batch the transaction rolls back and the terminal keeps
its journal; pushing again applies everything exactly once.
"""

from __future__ import annotations

import difflib
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import DataError, IntegrityError

from iqms.core import queue_engine
from iqms.core.clock import service_date
from iqms.core.enums import (
    AppointmentStatus,
    ConflictStatus,
    DeviceKind,
    Role,
    SyncResult,
    TicketSource,
    TicketStatus,
)
from iqms.core.errors import (
    Conflict,
    DatabaseUnavailable,
    IQMSError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from iqms.core.models import (
    Appointment,
    Department,
    Device,
    Doctor,
    Patient,
    QueueEntry,
    SyncConflict,
    SyncOperation,
    TicketBlock,
)
from iqms.core.offline import NumberBlockInfo
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission, require
from iqms.core.service import Context, operation
from iqms.core.sync_format import (
    BatchRejected,
    CancelTicket,
    CheckInAppointment,
    IssueTicket,
    Operation,
    RegisterPatient,
    SetTriage,
    SyncBatch,
    UpdatePatient,
    parse_batch,
)

#: serialises pushes on PostgreSQL (SQLite write transactions are serial already), so two
#: kiosks registering the same patient at the same moment still end with one patient.
SYNC_LOCK_KEY = 0x51C0_0FF1
MAX_RESERVE = 100
IDENTITY_FIELDS = ("full_name", "date_of_birth", "national_id")
CONTACT_FIELDS = ("phone", "notify_channel", "language")
RESOLUTIONS = ("keep", "apply", "link")


@dataclass
class OpResult:
    """The outcome of one operation of a batch."""

    op_id: uuid.UUID
    device_seq: int
    kind: str
    result: SyncResult
    details: dict[str, Any] = field(default_factory=dict)
    conflict_id: uuid.UUID | None = None

    @property
    def reason(self) -> str | None:
        value = self.details.get("reason")
        return str(value) if value else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "op_id": str(self.op_id),
            "device_seq": self.device_seq,
            "kind": self.kind,
            "result": self.result.value,
            "details": self.details,
            "conflict_id": str(self.conflict_id) if self.conflict_id else None,
        }


@dataclass
class PushReport:
    """What ``push`` did with a batch: one result per operation, in device order."""

    device_id: uuid.UUID
    device_name: str
    results: list[OpResult]

    def counts(self) -> dict[str, int]:
        out = {r.value: 0 for r in SyncResult}
        for res in self.results:
            out[res.result.value] += 1
        return out


@dataclass
class ConflictView:
    """A conflict as staff see it."""

    id: uuid.UUID
    created_at: datetime
    device_name: str
    kind: str
    target: str | None
    reason: str
    status: ConflictStatus
    payload: dict[str, Any]
    resolution: str | None
    resolved_at: datetime | None


class _Outcome(Exception):
    """Raised inside an operation handler to end it as a conflict (savepoint rolled back)."""

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass
class _Done:
    result: SyncResult
    details: dict[str, Any]
    conflict_reason: str | None = None
    target: tuple[str, str] | None = None


@dataclass
class _BatchState:
    device: Device
    patient_by_op: dict[uuid.UUID, uuid.UUID | None] = field(default_factory=dict)


# ---- devices ------------------------------------------------------------------------------------
async def _lock_sync(ctx: Context) -> None:
    if ctx.db.is_postgres:
        await ctx.s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SYNC_LOCK_KEY})


async def _device_for(
    ctx: Context, device_id: uuid.UUID | None, device_name: str | None, *, touch: bool = True
) -> Device:
    """The calling terminal's device record; a device seen for the first time is enrolled."""
    principal = ctx.principal
    session = ctx.s
    if device_id is None:
        device_id = principal.device_id
    if device_id is None:
        raise ValidationError("name the device (its journal's device id)", field="device_id")
    if principal.device_id is not None and device_id != principal.device_id:
        raise PermissionDenied(
            f"{principal.username} is the account of another device; "
            "a kiosk may only sync its own journal"
        )
    device = await session.get(Device, device_id)
    if device is None:
        base = (device_name or principal.username or "terminal").strip()[:48] or "terminal"
        name = base
        taken = (await session.execute(select(Device.id).where(Device.name == name))).first()
        if taken:
            name = f"{base}-{str(device_id)[:8]}"
        device = Device(
            id=device_id,
            name=name,
            kind=DeviceKind.KIOSK if principal.role == Role.KIOSK else DeviceKind.TERMINAL,
            active=True,
            last_seen_at=ctx.now(),
        )
        session.add(device)
        await session.flush()
        await log_action(
            ctx,
            action="device.enrolled",
            target=("device", device.id),
            details={"name": device.name, "kind": device.kind.value},
        )
    elif not device.active:
        raise PermissionDenied(f"device {device.name} is disabled; ask an administrator")
    if touch:
        device.last_seen_at = ctx.now()
    return device


# ---- number blocks ------------------------------------------------------------------------------
@operation(Permission.NUMBERS_RESERVE)
async def reserve_numbers(
    ctx: Context,
    *,
    department_id: uuid.UUID,
    size: int = 20,
    device_id: uuid.UUID | None = None,
    device_name: str | None = None,
) -> NumberBlockInfo:
    """Reserve a block of today's ticket numbers of a department for a device's offline use."""
    if not 1 <= size <= MAX_RESERVE:
        raise ValidationError(f"block size must be 1-{MAX_RESERVE} numbers", field="size")
    department = await ctx.s.get(Department, department_id)
    if department is None:
        raise NotFound(f"no department with id {department_id}")
    if not department.active:
        raise ValidationError(f"department {department.code} is closed", field="department_id")
    device = await _device_for(ctx, device_id, device_name)
    day = ctx.today()
    first, last = await queue_engine.reserve_block(ctx.s, department.id, day, size)
    ctx.s.add(
        TicketBlock(
            device_id=device.id,
            department_id=department.id,
            service_date=day,
            first_number=first,
            last_number=last,
            reserved_at=ctx.now(),
        )
    )
    await log_action(
        ctx,
        action="numbers.reserved",
        target=("device", device.id),
        details={
            "department": department.code,
            "service_date": day.isoformat(),
            "first": queue_engine.format_ticket_number(department.ticket_prefix, first),
            "last": queue_engine.format_ticket_number(department.ticket_prefix, last),
        },
    )
    return NumberBlockInfo(
        department_id=department.id,
        department_code=department.code,
        department_name=department.name,
        ticket_prefix=department.ticket_prefix,
        service_date=day,
        first_number=first,
        last_number=last,
    )


async def _block_covers(
    ctx: Context, device: Device, department_id: uuid.UUID, day: date, number: int
) -> bool:
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


# ---- push ---------------------------------------------------------------------------------------
@operation(Permission.SYNC_PUSH)
async def push(ctx: Context, *, batch: SyncBatch | Mapping[str, Any] | str | bytes) -> PushReport:
    """Apply a device's offline batch in device order; every operation gets a result."""
    parsed = parse_batch(batch)
    await _lock_sync(ctx)
    session = ctx.s
    op_ids = [op.op_id for op in parsed.operations]
    seen = {
        row.op_id: row
        for row in (
            await session.execute(select(SyncOperation).where(SyncOperation.op_id.in_(op_ids)))
        ).scalars()
    }
    await _check_sequences(ctx, parsed, seen)
    fresh = any(op.op_id not in seen for op in parsed.operations)
    device = await _device_for(ctx, parsed.device_id, parsed.device_name, touch=fresh)
    for row in seen.values():
        if row.device_id != device.id:
            raise BatchRejected(
                [(f"operations[{op_ids.index(row.op_id)}].op_id", "was sent by another device")]
            )
    state = _BatchState(device=device)
    results: list[OpResult] = []
    for op in parsed.operations:
        previous = seen.get(op.op_id)
        if previous is not None:
            results.append(
                OpResult(
                    op.op_id,
                    op.device_seq,
                    op.kind,
                    SyncResult.DUPLICATE,
                    {"original_result": previous.result.value, **previous.result_details},
                )
            )
            continue
        results.append(await _apply_one(ctx, state, op))
    counts = {r.value: sum(1 for x in results if x.result == r) for r in SyncResult}
    if fresh:  # a pure replay changes nothing, not even the audit trail
        await log_action(
            ctx,
            action="sync.pushed",
            target=("device", device.id),
            details={"device": device.name, "operations": len(results), **counts},
        )
    return PushReport(device_id=device.id, device_name=device.name, results=results)


async def _check_sequences(
    ctx: Context, batch: SyncBatch, seen: Mapping[uuid.UUID, SyncOperation]
) -> None:
    """A device sequence number already used by a different operation means a broken journal."""
    seqs = [op.device_seq for op in batch.operations if op.op_id not in seen]
    if not seqs:
        return
    rows = (
        await ctx.s.execute(
            select(SyncOperation.device_seq, SyncOperation.op_id).where(
                SyncOperation.device_id == batch.device_id,
                SyncOperation.device_seq.in_(seqs),
            )
        )
    ).all()
    if rows:
        used = {r.device_seq: r.op_id for r in rows}
        problems = [
            (
                f"operations[{i}].device_seq",
                f"sequence {op.device_seq} of this device was already used by operation "
                f"{used[op.device_seq]}",
            )
            for i, op in enumerate(batch.operations)
            if op.device_seq in used and op.op_id not in seen
        ]
        raise BatchRejected(problems)


async def _apply_one(ctx: Context, state: _BatchState, op: Operation) -> OpResult:
    session = ctx.s
    handler = _HANDLERS[op.kind]
    try:
        async with session.begin_nested():
            done = await handler(ctx, state, op)
    except _Outcome as outcome:
        done = _Done(SyncResult.CONFLICT, dict(outcome.details), outcome.reason)
    except DatabaseUnavailable:
        raise
    except (PermissionDenied, NotFound, ValidationError) as exc:
        done = _Done(SyncResult.CONFLICT, {}, str(exc))
    except IQMSError as exc:
        done = _Done(SyncResult.CONFLICT, {}, str(exc))
    except (IntegrityError, DataError) as exc:
        if ctx.db.is_postgres or "database is locked" not in str(exc):
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            done = _Done(SyncResult.CONFLICT, {}, f"the database refused it: {first}")
        else:
            raise
    if op.kind == "patient.register":
        state.patient_by_op[op.op_id] = (
            uuid.UUID(done.details["patient_id"]) if done.details.get("patient_id") else None
        )
    conflict_id: uuid.UUID | None = None
    details = dict(done.details)
    if done.conflict_reason is not None:
        details["reason"] = done.conflict_reason
        conflict = SyncConflict(
            id=uuid.uuid4(),
            op_id=op.op_id,
            device_id=state.device.id,
            kind=op.kind,
            target_type=done.target[0] if done.target else None,
            target_id=done.target[1] if done.target else None,
            reason=done.conflict_reason[:500],
            payload={"operation": _op_json(op), "details": details},
            status=ConflictStatus.OPEN,
        )
        session.add(conflict)
        await session.flush()
        conflict_id = conflict.id
        details["conflict_id"] = str(conflict.id)
        await log_action(
            ctx,
            action="sync.conflict",
            target=("sync_conflict", conflict.id),
            details={
                "device": state.device.name,
                "op_id": str(op.op_id),
                "kind": op.kind,
                "reason": done.conflict_reason,
            },
        )
    session.add(
        SyncOperation(
            op_id=op.op_id,
            device_id=state.device.id,
            device_seq=op.device_seq,
            kind=op.kind,
            result=done.result,
            result_details=_jsonable(details),
            occurred_at=op.occurred_at,
            applied_at=ctx.now(),
        )
    )
    await session.flush()
    return OpResult(op.op_id, op.device_seq, op.kind, done.result, _jsonable(details), conflict_id)


def _op_json(op: Operation) -> dict[str, Any]:
    data = op.model_dump(mode="json", exclude_none=True)
    if isinstance(op, UpdatePatient):
        data["changes"] = op.changes.given()
        if op.base is not None:
            data["base"] = op.base.given()
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (uuid.UUID,)):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    return value


# ---- references ---------------------------------------------------------------------------------
async def _patient_from_op(ctx: Context, state: _BatchState, ref: uuid.UUID) -> uuid.UUID | None:
    """The server patient an offline registration became (None: it is awaiting review)."""
    if ref in state.patient_by_op:
        return state.patient_by_op[ref]
    row = (
        await ctx.s.execute(select(SyncOperation).where(SyncOperation.op_id == ref))
    ).scalar_one_or_none()
    if row is None:
        raise _Outcome(
            f"refers to patient registration {ref}, which the server never received",
            patient_op_id=str(ref),
        )
    if row.device_id != state.device.id:
        raise _Outcome(f"refers to a patient registration of another device ({ref})")
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
        raise _Outcome(
            "the ticket it refers to does not exist on the server",
            ticket_id=str(ticket_id) if ticket_id else None,
            ticket_op_id=str(ticket_op_id) if ticket_op_id else None,
        )
    return entry


# ---- tickets ------------------------------------------------------------------------------------
async def _issue_ticket(ctx: Context, state: _BatchState, op: Operation) -> _Done:
    assert isinstance(op, IssueTicket)
    require(ctx.principal, Permission.QUEUE_ISSUE)
    department = await ctx.s.get(Department, op.department_id)
    if department is None:
        raise _Outcome(f"unknown department {op.department_id}")
    notes: list[str] = []
    problems: list[str] = []
    patient_id: uuid.UUID | None = op.patient_id
    if patient_id is not None and await ctx.s.get(Patient, patient_id) is None:
        problems.append(
            f"patient {patient_id} is unknown, so the ticket is not linked to a patient"
        )
        patient_id = None
    if op.patient_op_id is not None:
        patient_id = await _patient_from_op(ctx, state, op.patient_op_id)
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
            return _Done(SyncResult.MERGED, details)
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
        triage_category=op.triage_category,
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
    state: _BatchState,
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
) -> _Done:
    """Queue a ticket issued offline with its original arrival time and printed number."""
    now = ctx.now()
    tz = ctx.settings.tz
    arrived = min(op.occurred_at, now)
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
        raise _Outcome(
            f"ticket {printed or ''} of {department.code} is from an earlier service day "
            f"({day.isoformat()}); not queued today".replace("ticket  ", "ticket "),
            department=department.code,
            printed_number=printed,
            service_date=day.isoformat(),
            arrived_at=arrived.isoformat(),
        )
    use_sequence = sequence
    if sequence is not None:
        if not await _block_covers(ctx, state.device, department.id, day, sequence):
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
    entry = await queue_engine.create_entry(
        ctx,
        department=department,
        source=TicketSource.SYNC,
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
        return _Done(
            SyncResult.CONFLICT, details, "; ".join(problems), ("queue_entry", str(entry.id))
        )
    return _Done(SyncResult.APPLIED, details)


async def _check_in(ctx: Context, state: _BatchState, op: Operation) -> _Done:
    assert isinstance(op, CheckInAppointment)
    require(ctx.principal, Permission.APPOINTMENTS_CHECK_IN)
    appointment = await ctx.s.get(Appointment, op.appointment_id)
    if appointment is None:
        raise _Outcome(f"unknown appointment {op.appointment_id}")
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
            action="sync.merged",
            target=("appointment", appointment.id),
            details={**details, "op_id": str(op.op_id), "device": state.device.name},
        )
        return _Done(SyncResult.MERGED, details)
    if appointment.status != AppointmentStatus.BOOKED:
        raise _Outcome(
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


async def _cancel(ctx: Context, state: _BatchState, op: Operation) -> _Done:
    assert isinstance(op, CancelTicket)
    from iqms.core.services import queue as queue_service

    entry = await _ticket_for(ctx, op.ticket_id, op.ticket_op_id)
    if entry.status == TicketStatus.CANCELLED:
        return _Done(
            SyncResult.MERGED,
            {
                "ticket_id": str(entry.id),
                "ticket_number": entry.ticket_number,
                "note": "already cancelled",
            },
        )
    await queue_service.cancel(ctx, ticket=entry.id, reason=op.reason or "left (offline)")
    return _Done(
        SyncResult.APPLIED, {"ticket_id": str(entry.id), "ticket_number": entry.ticket_number}
    )


async def _set_triage(ctx: Context, state: _BatchState, op: Operation) -> _Done:
    assert isinstance(op, SetTriage)
    from iqms.core.services import queue as queue_service

    entry = await _ticket_for(ctx, op.ticket_id, op.ticket_op_id)
    if entry.triage_category == op.triage_category:
        return _Done(
            SyncResult.MERGED,
            {
                "ticket_id": str(entry.id),
                "ticket_number": entry.ticket_number,
                "note": "same category already",
            },
        )
    await queue_service.change_category(ctx, ticket=entry.id, triage_category=op.triage_category)
    return _Done(
        SyncResult.APPLIED,
        {
            "ticket_id": str(entry.id),
            "ticket_number": entry.ticket_number,
            "triage_category": op.triage_category,
        },
    )


# ---- patients -----------------------------------------------------------------------------------
def _name_key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    return " ".join(sorted(folded.replace("-", " ").replace(".", " ").split()))


def same_person_name(a: str, b: str) -> bool:
    """Loose match of two spellings of one person's name (case, accents, order, small typos)."""
    ka, kb = _name_key(a), _name_key(b)
    if ka == kb:
        return True
    ta, tb = set(ka.split()), set(kb.split())
    if ta and tb and (ta <= tb or tb <= ta):
        return True
    return difflib.SequenceMatcher(None, ka, kb).ratio() >= 0.85


async def _register_patient(ctx: Context, state: _BatchState, op: Operation) -> _Done:
    assert isinstance(op, RegisterPatient)
    from iqms.core.services import patients

    require(ctx.principal, Permission.PATIENTS_CREATE)
    offline = op.patient
    by_national_id: Patient | None = None
    if offline.national_id:
        by_national_id = (
            await ctx.s.execute(select(Patient).where(Patient.national_id == offline.national_id))
        ).scalar_one_or_none()
    by_phone: list[Patient] = []
    if offline.phone and offline.date_of_birth:
        by_phone = list(
            (
                await ctx.s.execute(
                    select(Patient)
                    .where(
                        Patient.phone == offline.phone,
                        Patient.date_of_birth == offline.date_of_birth,
                    )
                    .order_by(Patient.mrn)
                )
            ).scalars()
        )
    match: Patient | None = None
    if by_national_id is not None:
        others = [p for p in by_phone if p.id != by_national_id.id]
        if others and by_national_id not in by_phone:
            raise _Outcome(
                f"the national id belongs to patient {by_national_id.mrn} but the phone and "
                f"date of birth to {others[0].mrn}; the patient was not merged",
                candidates=[by_national_id.mrn, *(p.mrn for p in others)],
            )
        match = by_national_id
    elif by_phone:
        candidates = [
            p
            for p in by_phone
            if same_person_name(p.full_name, offline.full_name)
            and not (p.national_id and offline.national_id and p.national_id != offline.national_id)
        ]
        if len(candidates) > 1:
            raise _Outcome(
                "the phone and date of birth match several patients "
                f"({', '.join(p.mrn for p in candidates)}); pick the right one",
                candidates=[p.mrn for p in candidates],
            )
        if not candidates:
            first = by_phone[0]
            raise _Outcome(
                f"patient {first.mrn} has the same phone and date of birth but another name "
                f"({first.full_name!r}, offline {offline.full_name!r}); "
                "is this the same person or, say, a twin?",
                candidates=[p.mrn for p in by_phone],
            )
        match = candidates[0]
    if match is None:
        created = await patients.register(
            ctx,
            full_name=offline.full_name,
            phone=offline.phone,
            date_of_birth=offline.date_of_birth,
            national_id=offline.national_id,
            notify_channel=offline.notify_channel.value,
            language=offline.language,
        )
        return _Done(
            SyncResult.APPLIED,
            {"patient_id": str(created.id), "mrn": created.mrn},
            target=("patient", str(created.id)),
        )
    return await _merge_into(ctx, state, op, match)


async def _merge_into(
    ctx: Context, state: _BatchState, op: RegisterPatient, patient: Patient
) -> _Done:
    """Merge an offline registration into the existing record: fill blanks, keep the rest."""
    offline = op.patient
    filled: list[str] = []
    differing: dict[str, dict[str, Any]] = {}
    for name in ("phone", "date_of_birth", "national_id"):
        value = getattr(offline, name)
        if value is None:
            continue
        current = getattr(patient, name)
        if current is None:
            setattr(patient, name, value)
            filled.append(name)
        elif current != value:
            differing[name] = {"central": current, "offline": value}
    if _name_key(patient.full_name) != _name_key(offline.full_name):
        differing["full_name"] = {"central": patient.full_name, "offline": offline.full_name}
    if patient.notify_channel.value == "none" and offline.notify_channel.value != "none":
        if offline.notify_channel.value != "sms" or patient.phone:
            patient.notify_channel = offline.notify_channel
            filled.append("notify_channel")
    if filled:
        patient.updated_at = ctx.now()
        await ctx.s.flush()
    details = {
        "patient_id": str(patient.id),
        "mrn": patient.mrn,
        "filled": filled,
        "kept_central": _jsonable(differing),
    }
    await log_action(
        ctx,
        action="sync.patient_merged",
        target=("patient", patient.id),
        details={**details, "op_id": str(op.op_id), "device": state.device.name},
    )
    return _Done(SyncResult.MERGED, details, target=("patient", str(patient.id)))


async def _central_change_times(ctx: Context, patient: Patient) -> dict[str, datetime]:
    """When each field of a patient was last changed centrally (from the audit trail)."""
    from iqms.core.models import AuditRecord

    rows = (
        await ctx.s.execute(
            select(AuditRecord.at, AuditRecord.action, AuditRecord.details)
            .where(
                AuditRecord.target_type == "patient",
                AuditRecord.target_id == str(patient.id),
                AuditRecord.action.in_(
                    ["patient.registered", "patient.updated", "sync.patient_updated"]
                ),
            )
            .order_by(AuditRecord.seq.desc())
            .limit(500)
        )
    ).all()
    times: dict[str, datetime] = {}
    created_at: datetime | None = None
    for at, action, details in rows:
        if action == "patient.registered":
            created_at = at if created_at is None else min(created_at, at)
            continue
        changed = (details or {}).get("changed") or []
        if action == "sync.patient_updated":
            changed = list(((details or {}).get("applied") or {}).keys())
        for name in changed:
            times.setdefault(name, at)
    if created_at is not None:
        for name in (*IDENTITY_FIELDS, *CONTACT_FIELDS):
            times.setdefault(name, created_at)
    return times


def _comparable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    return value


async def _update_patient(ctx: Context, state: _BatchState, op: Operation) -> _Done:
    assert isinstance(op, UpdatePatient)
    from iqms.core.services import patients

    require(ctx.principal, Permission.PATIENTS_UPDATE)
    if op.patient_op_id is not None:
        patient_id = await _patient_from_op(ctx, state, op.patient_op_id)
        if patient_id is None:
            raise _Outcome(
                "the patient's offline registration awaits staff review; "
                "this change was kept with it",
                patient_op_id=str(op.patient_op_id),
            )
    else:
        assert op.patient_id is not None
        patient_id = op.patient_id
    patient = await ctx.s.get(Patient, patient_id)
    if patient is None:
        raise _Outcome(f"patient {patient_id} does not exist on the server")
    changes = op.changes.given()
    base = op.base.given() if op.base is not None else {}
    stale = op.base_version is not None and op.base_version != patient.version
    if op.base_version is None and op.patient_op_id is not None:
        stale = False  # based on the device's own registration: nothing central to lose
    times = await _central_change_times(ctx, patient) if stale else {}
    apply: dict[str, Any] = {}
    kept: dict[str, dict[str, Any]] = {}
    unresolved: dict[str, dict[str, Any]] = {}
    for name, offline_value in changes.items():
        central_value = _comparable(getattr(patient, name))
        if central_value == offline_value:
            continue
        if not stale:
            apply[name] = offline_value
            continue
        if name in base and base[name] == central_value:
            apply[name] = offline_value  # only the terminal changed this field
            continue
        changed_at = times.get(name)
        both = {"central": central_value, "offline": offline_value}
        if name in IDENTITY_FIELDS:
            unresolved[name] = both
        elif changed_at is None or op.occurred_at >= changed_at:
            apply[name] = offline_value
            kept[name] = {**both, "kept": "offline"}
        else:
            kept[name] = {**both, "kept": "central"}
    if apply:
        await patients.update(
            ctx,
            patient=patient.id,
            version=patient.version,
            **{k: ("" if v is None else v) for k, v in apply.items()},
        )
    details: dict[str, Any] = {
        "patient_id": str(patient.id),
        "mrn": patient.mrn,
        "applied": {k: v for k, v in apply.items()},
    }
    if kept:
        details["newer_wins"] = kept
    if unresolved:
        details["unresolved"] = unresolved
    await log_action(
        ctx,
        action="sync.patient_updated",
        target=("patient", patient.id),
        details={
            **details,
            "op_id": str(op.op_id),
            "device": state.device.name,
            "based_on_version": op.base_version,
            "offline_at": op.occurred_at.isoformat(),
        },
    )
    if unresolved:
        fields = ", ".join(name.replace("_", " ") for name in unresolved)
        return _Done(
            SyncResult.CONFLICT,
            details,
            f"{fields} of patient {patient.mrn} changed both centrally and offline; "
            "choose which to keep",
            ("patient", str(patient.id)),
        )
    return _Done(SyncResult.MERGED if stale else SyncResult.APPLIED, details)


_HANDLERS = {
    "patient.register": _register_patient,
    "patient.update": _update_patient,
    "ticket.issue": _issue_ticket,
    "appointment.check_in": _check_in,
    "ticket.cancel": _cancel,
    "ticket.triage": _set_triage,
}


# ---- conflicts ----------------------------------------------------------------------------------
@operation(Permission.SYNC_CONFLICTS, readonly=True)
async def list_conflicts(
    ctx: Context, *, status: ConflictStatus | None = ConflictStatus.OPEN, limit: int = 200
) -> list[ConflictView]:
    """Offline operations kept for staff review, oldest first."""
    stmt = (
        select(SyncConflict, Device.name)
        .join(Device, Device.id == SyncConflict.device_id)
        .order_by(SyncConflict.created_at, SyncConflict.id)
        .limit(max(1, min(limit, 5000)))
    )
    if status is not None:
        stmt = stmt.where(SyncConflict.status == status)
    rows = (await ctx.s.execute(stmt)).all()
    await log_action(
        ctx,
        action="sync.conflicts_viewed",
        details={"status": status.value if status else "all", "count": len(rows)},
    )
    return [_view(conflict, name) for conflict, name in rows]


def _view(conflict: SyncConflict, device_name: str) -> ConflictView:
    target = (
        f"{conflict.target_type} {conflict.target_id}"
        if conflict.target_type and conflict.target_id
        else None
    )
    return ConflictView(
        id=conflict.id,
        created_at=conflict.created_at,
        device_name=device_name,
        kind=conflict.kind,
        target=target,
        reason=conflict.reason,
        status=conflict.status,
        payload=conflict.payload,
        resolution=conflict.resolution,
        resolved_at=conflict.resolved_at,
    )


@operation(Permission.SYNC_CONFLICTS)
async def resolve_conflict(
    ctx: Context,
    *,
    conflict_id: uuid.UUID | str,
    action: str = "keep",
    note: str | None = None,
    patient: uuid.UUID | str | None = None,
) -> ConflictView:
    """Close a conflict: ``keep`` the central data, ``apply`` the offline values, or ``link``."""
    from iqms.core.services import patients

    if action not in RESOLUTIONS:
        raise ValidationError(
            f"resolution must be one of {', '.join(RESOLUTIONS)}, not {action!r}", field="action"
        )
    note = (note or "").strip() or None
    if note is not None and (len(note) > 300 or any(ord(c) < 32 for c in note)):
        raise ValidationError("the note must be one line of at most 300 characters", field="note")
    conflict = await _find_conflict(ctx, conflict_id)
    if conflict.status == ConflictStatus.RESOLVED:
        raise Conflict(
            f"conflict {conflict_id} was already resolved ({conflict.resolution})",
            field="conflict_id",
        )
    operation_data = (conflict.payload or {}).get("operation") or {}
    details = (conflict.payload or {}).get("details") or {}
    outcome: str
    if action == "keep":
        outcome = "kept the central data"
    elif action == "link":
        if conflict.kind != "patient.register":
            raise ValidationError("link is only for a patient registered offline", field="action")
        if patient is None:
            raise ValidationError("name the patient to link to (id or MRN)", field="patient")
        target = await queue_engine.find_patient(ctx.s, patient)
        linked = await _link_registration(ctx, conflict, target.id)
        outcome = f"linked to patient {target.mrn} ({linked} tickets)"
    elif conflict.kind == "patient.register":
        offline = operation_data.get("patient") or {}
        created = await patients.register(
            ctx,
            full_name=offline["full_name"],
            phone=offline.get("phone"),
            date_of_birth=offline.get("date_of_birth"),
            national_id=offline.get("national_id"),
            notify_channel=offline.get("notify_channel"),
            language=offline.get("language", "en"),
            allow_duplicate=True,
        )
        linked = await _link_registration(ctx, conflict, created.id)
        outcome = f"registered as new patient {created.mrn} ({linked} tickets linked)"
    elif conflict.kind == "patient.update" and details.get("unresolved"):
        found = await queue_engine.find_patient(ctx.s, details["patient_id"])
        values = {k: v["offline"] for k, v in details["unresolved"].items()}
        await patients.update(
            ctx,
            patient=found.id,
            version=found.version,
            **{k: ("" if v is None else v) for k, v in values.items()},
        )
        outcome = f"applied the offline {', '.join(sorted(values))} to patient {found.mrn}"
    else:
        raise ValidationError(
            f"there is nothing to apply for a {conflict.kind} conflict; resolve it with keep",
            field="action",
        )
    conflict.status = ConflictStatus.RESOLVED
    conflict.resolution = (outcome + (f": {note}" if note else ""))[:500]
    conflict.resolved_by_id = ctx.principal.user_id
    conflict.resolved_at = ctx.now()
    await ctx.s.flush()
    await log_action(
        ctx,
        action="sync.conflict_resolved",
        target=("sync_conflict", conflict.id),
        details={"action": action, "kind": conflict.kind, "resolution": conflict.resolution},
    )
    device = await ctx.s.get(Device, conflict.device_id)
    return _view(conflict, device.name if device else "?")


async def _find_conflict(ctx: Context, ref: uuid.UUID | str) -> SyncConflict:
    """A conflict by id or by the first characters of its id (as listed, at least 6)."""
    if isinstance(ref, uuid.UUID):
        found = await ctx.s.get(SyncConflict, ref)
        if found is None:
            raise NotFound(f"no sync conflict {ref}", field="conflict_id")
        return found
    text_ = ref.strip().lower()
    try:
        return await _find_conflict(ctx, uuid.UUID(text_))
    except ValueError:
        pass
    if len(text_) < 6 or any(ch not in "0123456789abcdef-" for ch in text_):
        raise ValidationError(
            f"{ref!r} is not a conflict id (give at least its first 6 characters)",
            field="conflict_id",
        )
    ids = (await ctx.s.execute(select(SyncConflict.id))).scalars()
    matches = [i for i in ids if str(i).startswith(text_)]
    if not matches:
        raise NotFound(f"no sync conflict {ref}", field="conflict_id")
    if len(matches) > 1:
        raise ValidationError(
            f"{ref!r} matches {len(matches)} conflicts; give more of the id", field="conflict_id"
        )
    found = await ctx.s.get(SyncConflict, matches[0])
    assert found is not None
    return found


async def _link_registration(ctx: Context, conflict: SyncConflict, patient_id: uuid.UUID) -> int:
    """Point an offline registration (and the tickets issued for it) at a server patient."""
    registration = (
        await ctx.s.execute(select(SyncOperation).where(SyncOperation.op_id == conflict.op_id))
    ).scalar_one_or_none()
    if registration is not None:
        registration.result_details = {
            **(registration.result_details or {}),
            "patient_id": str(patient_id),
        }
    tickets = (
        await ctx.s.execute(
            select(SyncOperation.result_details).where(
                SyncOperation.device_id == conflict.device_id,
                SyncOperation.kind == "ticket.issue",
            )
        )
    ).scalars()
    linked = 0
    for result in tickets:
        if (result or {}).get("patient_op_id") != str(conflict.op_id):
            continue
        entry = await ctx.s.get(QueueEntry, uuid.UUID(result["ticket_id"]))
        if entry is not None and entry.patient_id is None:
            entry.patient_id = patient_id
            linked += 1
            await log_action(
                ctx,
                action="ticket.patient_linked",
                target=("queue_entry", entry.id),
                details={"patient_id": str(patient_id), "ticket": entry.ticket_number},
            )
    await ctx.s.flush()
    return linked
