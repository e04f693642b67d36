"""The queue: issue tickets, call patients, move tickets through their states, and view queues.

Tickets are named by id or by number (``A-042``, looked up on today's service
day). Every change is permission-checked, then made with the queue engine and
followed by :mod:`iqms.core.pipeline`'s steps (patient messages, live event,
audit record), in one transaction; a move the state machine does not allow
raises :class:`~iqms.core.errors.InvalidTransition` and changes nothing.
"""

from __future__ import annotations

import re
import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, case, func, or_, select

from iqms.core import pipeline
from iqms.core.enums import DoctorStatus, Role, TicketSource, TicketStatus, TriageCategory
from iqms.core.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from iqms.core.models import Appointment, Department, Doctor, Patient, QueueEntry, User
from iqms.core.notify import triggers
from iqms.core.queue import engine as queue_engine
from iqms.core.queue import eta
from iqms.core.queue import policy as queue_policy
from iqms.core.queue.events import (
    Subscription,
    TicketCalled,
    TicketCancelled,
    TicketCategoryChanged,
    TicketEvent,
    TicketHeld,
    TicketNoShow,
    TicketRecalled,
    TicketReturned,
    TicketServed,
    TicketStarted,
    TicketTransferred,
    TicketUndone,
    subscribe,
)
from iqms.core.schemas.queue import (
    BoardTicket,
    BoardView,
    DoctorDay,
    DoctorQueueView,
    Estimate,
    RecentCall,
    ServingRoom,
    TicketOut,
    TicketStatusView,
)
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission, has_permission, require, require_own_doctor
from iqms.core.service import Context, operation

ACTIVE_STATUSES = (
    TicketStatus.WAITING,
    TicketStatus.HELD,
    TicketStatus.CALLED,
    TicketStatus.IN_SERVICE,
)
BOARD_NEXT_DEFAULT = 8
BOARD_RECENT = 5
LIST_LIMIT_MAX = 1000


# ---- helpers ------------------------------------------------------------------------------------
def _estimate(value: eta.WaitEstimate | None) -> Estimate | None:
    if value is None:
        return None
    return Estimate(
        p50_minutes=value.p50_minutes, p90_minutes=value.p90_minutes, servers=value.servers
    )


async def _department_of(ctx: Context, entry: QueueEntry) -> Department:
    dept = await ctx.s.get(Department, entry.department_id)
    assert dept is not None
    return dept


# A department's code never changes (services offer no way to): keep it per database.
_CODES: weakref.WeakKeyDictionary[Any, dict[uuid.UUID, str]] = weakref.WeakKeyDictionary()


async def _department_code(ctx: Context, department_id: uuid.UUID) -> str:
    codes = _CODES.setdefault(ctx.db, {})
    code = codes.get(department_id)
    if code is None:
        dept = await ctx.s.get(Department, department_id)
        assert dept is not None
        code = codes[department_id] = dept.code
    return code


async def _ticket_out(
    ctx: Context,
    entry: QueueEntry | Row[Any],
    *,
    dept: Department | None = None,
    department_code: str | None = None,
    patient_name: str | None = None,
    estimate: eta.WaitEstimate | None = None,
) -> TicketOut:
    if department_code is None:
        department_code = dept.code if dept else await _department_code(ctx, entry.department_id)
    waiting = entry.status == TicketStatus.WAITING
    return TicketOut(
        id=entry.id,
        ticket_number=entry.ticket_number,
        service_date=entry.service_date,
        department_id=entry.department_id,
        department_code=department_code,
        status=entry.status,
        triage_category=entry.triage_category,
        queue_band=entry.queue_band,
        source=entry.source,
        patient_id=entry.patient_id,
        patient_name=patient_name,
        doctor_id=entry.doctor_id,
        appointment_id=entry.appointment_id,
        arrived_at=entry.arrived_at,
        due_at=entry.due_at,
        called_at=entry.called_at,
        started_at=entry.started_at,
        finished_at=entry.finished_at,
        called_doctor_id=entry.called_doctor_id,
        called_room=entry.called_room,
        recall_count=entry.recall_count,
        transferred_from_id=entry.transferred_from_id,
        estimate_at_issue_minutes=entry.estimate_at_issue_minutes,
        status_code=entry.status_code,
        status_url=ctx.settings.ticket_status_url(entry.status_code),
        position=(estimate.position + 1) if (estimate is not None and waiting) else None,
        estimate=_estimate(estimate) if waiting else None,
        note=entry.note,
    )


async def _names(ctx: Context, patient_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    ids = {p for p in patient_ids if p is not None}
    if not ids:
        return {}
    rows = await ctx.s.execute(select(Patient.id, Patient.full_name).where(Patient.id.in_(ids)))
    return {pid: name for pid, name in rows}


async def _audit_names_shown(ctx: Context, names: dict[uuid.UUID, str], view: str) -> None:
    if names:
        await log_action(
            ctx,
            action="queue.names_viewed",
            details={"view": view, "patients": sorted(str(p) for p in names)},
        )


async def _ticket(ctx: Context, ref: uuid.UUID | str) -> QueueEntry:
    return await queue_engine.find_ticket(ctx.s, ref, service_day=ctx.today(), for_update=True)


async def _changed(
    ctx: Context,
    entry: QueueEntry,
    event: TicketEvent,
    action: str,
    details: dict[str, Any] | None = None,
    *,
    approaching: bool = True,
) -> None:
    """The steps after a change to ``entry``: messages, live event, audit record ``action``."""
    info: dict[str, Any] = {"ticket": entry.ticket_number, "status": entry.status.value}
    info.update(details or {})
    await pipeline.ticket_changed(
        ctx, event, audit=pipeline.Audit(action, info), entry=entry, approaching=approaching
    )


def _history(entry: QueueEntry, what: str, **values: Any) -> None:
    """Keep a note of a step that overwrites fields (e.g. a requeue) in ``extra``."""
    extra = dict(entry.extra or {})
    steps = list(extra.get("history", []))
    steps.append({"step": what, **{k: _plain(v) for k, v in values.items()}})
    extra["history"] = steps
    entry.extra = extra


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


@dataclass(frozen=True)
class _Caller:
    """The calling doctor, as far as a call needs: room, department, availability."""

    id: uuid.UUID
    user_id: uuid.UUID | None
    department_id: uuid.UUID
    room: str
    status: DoctorStatus
    department_code: str
    # read with the doctor: someone in the department still waits to be told their turn is near
    anyone_to_tell: bool


_DOCTORS = cast(Table, Doctor.__table__)
_DEPARTMENTS = cast(Table, Department.__table__)
_CALLER = select(
    _DOCTORS.c.id,
    _DOCTORS.c.user_id,
    _DOCTORS.c.department_id,
    _DOCTORS.c.room,
    _DOCTORS.c.status,
    _DEPARTMENTS.c.code,
    triggers.anyone_to_tell(_DOCTORS.c.department_id),
).join(_DEPARTMENTS, _DEPARTMENTS.c.id == _DOCTORS.c.department_id)
_CALLER_BY_ID = _CALLER.where(_DOCTORS.c.id == bindparam("p_doctor"))


async def _caller(ctx: Context, ref: uuid.UUID | str, *, by_doctor_id: bool = False) -> _Caller:
    """A doctor by doctor id, user id or username, with their department's code (one query)."""
    ref_id = queue_engine.as_uuid(ref)
    stmt = _CALLER
    if by_doctor_id:
        stmt = _CALLER_BY_ID
    elif ref_id is not None:
        stmt = stmt.where(or_(_DOCTORS.c.id == ref_id, _DOCTORS.c.user_id == ref_id))
    else:
        users = cast(Table, User.__table__)
        stmt = stmt.join(users, users.c.id == _DOCTORS.c.user_id).where(
            users.c.username == str(ref).strip().lower()
        )
    params = {"p_doctor": ref_id} if by_doctor_id else None
    row = (await queue_engine.run(ctx.s, stmt, params)).first()
    if row is None:
        raise NotFound(f"no doctor {ref!s}", field="doctor")
    return _Caller(*row)


async def _calling_doctor(ctx: Context, doctor: uuid.UUID | str | None) -> _Caller:
    """The doctor on whose behalf a call is made: the caller, or the one staff names."""
    principal = ctx.principal
    if principal.role == Role.DOCTOR:
        if principal.doctor_id is None:
            raise ValidationError(
                "your account is not set up as a doctor with a room; ask an administrator",
                field="doctor",
            )
        found = await _caller(ctx, principal.doctor_id, by_doctor_id=True)
        if doctor is not None:
            named = await queue_engine.find_doctor(ctx.s, doctor)
            require_own_doctor(principal, named.id)
    else:
        if doctor is None:
            raise ValidationError("name the doctor who is calling", field="doctor")
        found = await _caller(ctx, doctor)
    if found.status != DoctorStatus.AVAILABLE:
        user = await ctx.s.get(User, found.user_id) if found.user_id else None
        who = user.full_name if user else "the doctor"
        raise InvalidTransition(
            f"{who} is {found.status.value}; set the status to available to call patients"
        )
    return found


def _check_own_call(ctx: Context, entry: QueueEntry) -> None:
    """Doctors act only on the tickets they called."""
    if ctx.principal.role == Role.DOCTOR and entry.called_doctor_id != ctx.principal.doctor_id:
        raise PermissionDenied(
            f"ticket {entry.ticket_number} was called by another doctor; "
            "doctors may only act on their own patients"
        )


def _check_may_move(ctx: Context, entry: QueueEntry) -> None:
    """Reception moves any ticket; a doctor only the patients they called (to hold, transfer)."""
    if has_permission(ctx.principal, Permission.QUEUE_MANAGE):
        return
    if entry.called_doctor_id is None or entry.called_doctor_id != ctx.principal.doctor_id:
        raise PermissionDenied(
            f"ticket {entry.ticket_number} is not a patient you called; "
            "doctors may only move their own patients"
        )


async def _active_ticket_of(
    ctx: Context, patient_id: uuid.UUID, department_id: uuid.UUID
) -> str | None:
    return (
        await ctx.s.execute(
            select(QueueEntry.ticket_number)
            .where(
                QueueEntry.patient_id == patient_id,
                QueueEntry.department_id == department_id,
                QueueEntry.service_date == ctx.today(),
                QueueEntry.status.in_(ACTIVE_STATUSES),
            )
            .limit(1)
        )
    ).scalar_one_or_none()


# ---- issuing ------------------------------------------------------------------------------------
def _issue_source(ctx: Context, source: TicketSource | str | None) -> TicketSource:
    if source is None:
        return TicketSource.KIOSK if ctx.principal.role == Role.KIOSK else TicketSource.RECEPTION
    value = str(source).strip().lower()
    if value not in (TicketSource.KIOSK.value, TicketSource.RECEPTION.value):
        raise ValidationError(
            "source must be kiosk or reception (appointments use check-in)", field="source"
        )
    return TicketSource(value)


@operation(Permission.QUEUE_ISSUE)
async def issue(
    ctx: Context,
    *,
    department: uuid.UUID | str,
    patient: uuid.UUID | str | None = None,
    triage_category: int | str | None = None,
    doctor: uuid.UUID | str | None = None,
    source: TicketSource | str | None = None,
    device_id: uuid.UUID | None = None,
    client_op_id: uuid.UUID | None = None,
) -> TicketOut:
    """Issue a ticket (kiosk or reception); a category other than standard needs triage rights."""
    if client_op_id is not None:
        # A terminal retrying after a lost reply gets the ticket it already has, not a second one.
        done = (
            await ctx.s.execute(select(QueueEntry).where(QueueEntry.client_op_id == client_op_id))
        ).scalar_one_or_none()
        if done is not None:
            return await _ticket_out(ctx, done)
    dept = await queue_engine.find_department(ctx.s, department)
    if not dept.active:
        raise ValidationError(
            f"{dept.name} ({dept.code}) is closed to new tickets", field="department"
        )
    category = (
        TriageCategory.STANDARD
        if triage_category is None
        else queue_policy.parse_category(triage_category)
    )
    if category != TriageCategory.STANDARD:
        require(ctx.principal, Permission.QUEUE_TRIAGE)
    kind = _issue_source(ctx, source)
    patient_id = None
    if patient is not None:
        found = await queue_engine.find_patient(ctx.s, patient)
        patient_id = found.id
        existing = await _active_ticket_of(ctx, found.id, dept.id)
        if existing:
            raise Conflict(
                f"patient {found.mrn} already has ticket {existing} in {dept.code} today",
                ticket=existing,
            )
    doctor_id = None
    if doctor is not None:
        doc = await queue_engine.find_doctor(ctx.s, doctor)
        if doc.department_id != dept.id:
            raise ValidationError(
                f"that doctor works in another department, not {dept.code}", field="doctor"
            )
        doctor_id = doc.id
    issued = await pipeline.issue_ticket(
        ctx,
        department=dept,
        source=kind,
        patient_id=patient_id,
        doctor_id=doctor_id,
        triage_category=category,
        origin_device_id=device_id or ctx.principal.device_id,
        client_op_id=client_op_id,
        keep_estimate=True,
    )
    return await _ticket_out(ctx, issued.entry, dept=dept, estimate=issued.estimate)


# ---- calling ------------------------------------------------------------------------------------
async def _after_call(
    ctx: Context, entry: QueueEntry, doctor: _Caller, *, how: str, include_name: bool
) -> TicketOut:
    names = await _names(ctx, [entry.patient_id]) if include_name else {}
    out = await _ticket_out(
        ctx,
        entry,
        department_code=doctor.department_code,  # the ticket's department
        patient_name=names.get(entry.patient_id) if entry.patient_id else None,
    )
    await _changed(
        ctx,
        entry,
        TicketCalled.of(entry, occurred_at=ctx.now()),
        "ticket.called",
        {"doctor_id": str(doctor.id), "room": doctor.room, "how": how,
         "wait_minutes": round((ctx.now() - entry.arrived_at).total_seconds() / 60, 1),
         "name_shown": include_name and entry.patient_id is not None},
        approaching=doctor.anyone_to_tell,
    )  # fmt: skip
    return out


#: read with a claim: does the called ticket's department still have someone to tell?
_ANYONE_TO_TELL = (triggers.anyone_to_tell(queue_engine.QUEUE_TABLE.c.department_id),)


@operation(Permission.QUEUE_CALL)
async def call_next(
    ctx: Context, *, doctor: uuid.UUID | str | None = None, include_name: bool = False
) -> TicketOut | None:
    """Call the best-ranked waiting ticket for a doctor (their own and the pool); None if none."""
    principal = ctx.principal
    if (
        ctx.db.is_postgres
        and principal.role == Role.DOCTOR
        and doctor is None
        and principal.doctor_id is not None
    ):
        # A doctor calling for themselves: the claim reads their room and availability (one
        # round trip fewer; SQLite, with no network in between, keeps the two statements).
        claimed = await queue_engine.claim_for_doctor(
            ctx,
            doctor_id=principal.doctor_id,
            called_by_id=principal.user_id,
            also=_ANYONE_TO_TELL,
        )
        if claimed is not None:
            entry = claimed.entry
            caller = _Caller(
                id=principal.doctor_id,
                user_id=principal.user_id,
                department_id=entry.department_id,
                room=claimed.room,
                status=DoctorStatus.AVAILABLE,
                department_code=claimed.department_code,
                anyone_to_tell=bool(claimed.extra[0]),
            )
            return await _after_call(ctx, entry, caller, how="next", include_name=include_name)
        await _calling_doctor(ctx, doctor)  # says why: unknown or not available doctor
        return None
    doc = await _calling_doctor(ctx, doctor)
    found = await queue_engine.claim_next(
        ctx,
        department_id=doc.department_id,
        doctor_id=doc.id,
        room=doc.room,
        called_by_id=ctx.principal.user_id,
    )
    if found is None:
        return None
    return await _after_call(ctx, found, doc, how="next", include_name=include_name)


@operation(Permission.QUEUE_CALL)
async def call(
    ctx: Context,
    *,
    ticket: uuid.UUID | str,
    doctor: uuid.UUID | str | None = None,
    include_name: bool = False,
) -> TicketOut:
    """Call one specific waiting ticket (out of turn) to a doctor's room."""
    doc = await _calling_doctor(ctx, doctor)
    entry = await _ticket(ctx, ticket)
    queue_policy.check_transition("call", entry.status, entry.ticket_number)
    if entry.department_id != doc.department_id:
        raise Conflict(f"ticket {entry.ticket_number} waits for another department")
    if entry.doctor_id is not None and entry.doctor_id != doc.id:
        raise Conflict(f"ticket {entry.ticket_number} is reserved for another doctor")
    now = ctx.now()
    entry.status = TicketStatus.CALLED
    entry.called_at = now
    entry.called_by_id = ctx.principal.user_id
    entry.called_doctor_id = doc.id
    entry.called_room = doc.room
    await ctx.s.flush()
    return await _after_call(ctx, entry, doc, how="specific", include_name=include_name)


async def _mark_no_show(ctx: Context, entry: QueueEntry, *, requeue: bool, reason: str) -> None:
    now = ctx.now()
    if requeue:
        queue_policy.check_transition("requeue", entry.status, entry.ticket_number)
        _history(
            entry,
            "requeued",
            at=now,
            called_at=entry.called_at,
            room=entry.called_room,
            recalls=entry.recall_count,
            doctor=entry.called_doctor_id,
            by=entry.called_by_id,
            due=entry.due_at,
        )
        entry.status = TicketStatus.WAITING
        # Back in line behind everyone already overdue, keeping the original arrival time.
        entry.due_at = max(entry.due_at, now)
        event = TicketNoShow.of(entry, occurred_at=now, requeued=True)
        entry.called_at = None
        entry.called_room = None
        entry.called_doctor_id = None
        entry.called_by_id = None
    else:
        queue_policy.check_transition("no_show", entry.status, entry.ticket_number)
        entry.status = TicketStatus.NO_SHOW
        entry.finished_at = now
        _history(entry, "no_show", at=now)
        event = TicketNoShow.of(entry, occurred_at=now, requeued=False)
    await ctx.s.flush()
    await _changed(ctx, entry, event, "ticket.no_show", {"requeued": requeue, "reason": reason,
                                                          "recalls": entry.recall_count})  # fmt: skip


@operation(Permission.QUEUE_CALL)
async def recall(
    ctx: Context,
    *,
    ticket: uuid.UUID | str,
    no_show_after: int | None = None,
    requeue_no_show: bool = False,
) -> TicketOut:
    """Call again; a ticket already recalled ``no_show_after`` times becomes a no-show."""
    if no_show_after is not None and no_show_after < 0:
        raise ValidationError("no_show_after must be 0 or more", field="no_show_after")
    entry = await _ticket(ctx, ticket)
    queue_policy.check_transition("recall", entry.status, entry.ticket_number)
    _check_own_call(ctx, entry)
    if no_show_after is not None and entry.recall_count >= no_show_after:
        await _mark_no_show(
            ctx,
            entry,
            requeue=requeue_no_show,
            reason=f"no answer after {entry.recall_count} recalls",
        )
        return await _ticket_out(ctx, entry)
    entry.recall_count += 1
    _history(entry, "recalled", at=ctx.now())
    await ctx.s.flush()
    await _changed(
        ctx,
        entry,
        TicketRecalled.of(entry, occurred_at=ctx.now(), recall_count=entry.recall_count),
        "ticket.recalled",
        {"recalls": entry.recall_count},
    )
    return await _ticket_out(ctx, entry)


@operation(Permission.QUEUE_CALL)
async def start(ctx: Context, *, ticket: uuid.UUID | str) -> TicketOut:
    """The called patient is in the room: service starts."""
    entry = await _ticket(ctx, ticket)
    entry.status = queue_policy.check_transition("start", entry.status, entry.ticket_number)
    _check_own_call(ctx, entry)
    entry.started_at = ctx.now()
    await ctx.s.flush()
    await _changed(ctx, entry, TicketStarted.of(entry, occurred_at=ctx.now()), "ticket.started")
    return await _ticket_out(ctx, entry)


@operation(Permission.QUEUE_CALL)
async def serve(ctx: Context, *, ticket: uuid.UUID | str) -> TicketOut:
    """Service finished: the ticket is served (from called, the start is recorded now too)."""
    entry = await _ticket(ctx, ticket)
    was = entry.status
    entry.status = queue_policy.check_transition("serve", entry.status, entry.ticket_number)
    _check_own_call(ctx, entry)
    entry.finished_at = ctx.now()
    details: dict[str, Any] = {}
    if was == TicketStatus.CALLED:
        # "Done" without "start": the doctor forgot to press start. The start is recorded at
        # the same moment (so the consultation length is unknown, not made up).
        entry.started_at = entry.finished_at
        details["shortcut"] = "served from called; start recorded at the same moment"
    await ctx.s.flush()
    minutes = (entry.finished_at - (entry.started_at or entry.finished_at)).total_seconds() / 60
    details["service_minutes"] = None if was == TicketStatus.CALLED else round(minutes, 1)
    await _changed(
        ctx, entry, TicketServed.of(entry, occurred_at=ctx.now()), "ticket.served", details
    )
    return await _ticket_out(ctx, entry)


@operation(Permission.QUEUE_CALL)
async def no_show(ctx: Context, *, ticket: uuid.UUID | str, requeue: bool = False) -> TicketOut:
    """The called patient did not come: mark a no-show, or put the ticket back in the queue."""
    entry = await _ticket(ctx, ticket)
    queue_policy.check_transition(
        "requeue" if requeue else "no_show", entry.status, entry.ticket_number
    )
    _check_own_call(ctx, entry)
    await _mark_no_show(ctx, entry, requeue=requeue, reason="marked by staff")
    return await _ticket_out(ctx, entry)


# ---- managing -----------------------------------------------------------------------------------
@operation(Permission.QUEUE_MANAGE)
async def cancel(ctx: Context, *, ticket: uuid.UUID | str, reason: str | None = None) -> TicketOut:
    """Cancel a waiting or held ticket (the patient left)."""
    entry = await _ticket(ctx, ticket)
    was = entry.status
    entry.status = queue_policy.check_transition("cancel", entry.status, entry.ticket_number)
    entry.finished_at = ctx.now()
    _history(entry, "cancelled", at=ctx.now(), was=was.value)
    await ctx.s.flush()
    await _changed(
        ctx,
        entry,
        TicketCancelled.of(entry, occurred_at=ctx.now()),
        "ticket.cancelled",
        {"reason": (reason or "")[:200] or None},
    )
    return await _ticket_out(ctx, entry)


@operation(Permission.QUEUE_CALL)
async def transfer(
    ctx: Context,
    *,
    ticket: uuid.UUID | str,
    department: uuid.UUID | str | None = None,
    doctor: uuid.UUID | str | None = None,
    reason: str | None = None,
) -> TicketOut:
    """Move a ticket to another department or doctor; the new ticket keeps the arrival time.

    Doctors may transfer the patients they called; reception any ticket.
    """
    if department is None and doctor is None:
        raise ValidationError("name the department or doctor to transfer to", field="department")
    entry = await _ticket(ctx, ticket)
    queue_policy.check_transition("transfer", entry.status, entry.ticket_number)
    _check_may_move(ctx, entry)
    target_doctor = await queue_engine.find_doctor(ctx.s, doctor) if doctor is not None else None
    if department is not None:
        target = await queue_engine.find_department(ctx.s, department)
        if target_doctor is not None and target_doctor.department_id != target.id:
            raise ValidationError(
                f"that doctor works in another department, not {target.code}", field="doctor"
            )
    else:
        assert target_doctor is not None
        target = await queue_engine.find_department(ctx.s, target_doctor.department_id)
    if not target.active:
        raise ValidationError(f"{target.name} ({target.code}) is closed", field="department")
    target_doctor_id = target_doctor.id if target_doctor else None
    if target.id == entry.department_id and target_doctor_id == entry.doctor_id:
        raise ValidationError(
            f"ticket {entry.ticket_number} already waits in that queue", field="department"
        )
    now = ctx.now()
    was = entry.status
    entry.status = TicketStatus.TRANSFERRED
    entry.finished_at = now
    await ctx.s.flush()
    source_dept = await _department_of(ctx, entry)
    issued = await pipeline.issue_ticket(
        ctx,
        department=target,
        source=TicketSource.TRANSFER,
        patient_id=entry.patient_id,
        doctor_id=target_doctor_id,
        triage_category=entry.triage_category,
        arrived_at=entry.arrived_at,
        service_day=ctx.today(),
        transferred_from_id=entry.id,
        origin_device_id=entry.origin_device_id,
        note=entry.note,  # reception's note follows the patient
        audit_details={
            "transferred_from": entry.ticket_number,
            "from_department": source_dept.code,
        },
    )
    new = issued.entry
    _history(entry, "transferred", at=now, was=was.value, to=new.id)
    await _changed(
        ctx,
        entry,
        TicketTransferred.of(
            entry,
            occurred_at=now,
            new_entry_id=new.id,
            new_ticket_number=new.ticket_number,
            target_department_id=target.id,
            target_doctor_id=target_doctor_id,
        ),
        "ticket.transferred",
        {"to_ticket": new.ticket_number, "to_department": target.code,
         "to_doctor_id": str(target_doctor_id) if target_doctor_id else None,
         "reason": (reason or "")[:200] or None},
    )  # fmt: skip
    estimate = issued.estimate or await eta.estimate_ticket(ctx, new)
    return await _ticket_out(ctx, new, dept=target, estimate=estimate)


@operation(Permission.QUEUE_CALL)
async def hold(ctx: Context, *, ticket: uuid.UUID | str, reason: str | None = None) -> TicketOut:
    """Take a ticket out of the calling order for now (it keeps its place when returned).

    Doctors may hold the patients they called (e.g. sent for a test); reception any ticket.
    """
    entry = await _ticket(ctx, ticket)
    _check_may_move(ctx, entry)
    was = entry.status
    entry.status = queue_policy.check_transition("hold", entry.status, entry.ticket_number)
    _history(entry, "held", at=ctx.now(), was=was.value, room=entry.called_room)
    await ctx.s.flush()
    await _changed(ctx, entry, TicketHeld.of(entry, occurred_at=ctx.now()), "ticket.held",
                   {"was": was.value, "reason": (reason or "")[:200] or None})  # fmt: skip
    return await _ticket_out(ctx, entry)


@operation(Permission.QUEUE_CALL)
async def return_to_queue(ctx: Context, *, ticket: uuid.UUID | str) -> TicketOut:
    """Put a held ticket back in the queue with its original due time (doctors: their own)."""
    entry = await _ticket(ctx, ticket)
    _check_may_move(ctx, entry)
    entry.status = queue_policy.check_transition("return", entry.status, entry.ticket_number)
    entry.called_at = None
    entry.called_room = None
    entry.called_doctor_id = None
    entry.called_by_id = None
    _history(entry, "returned", at=ctx.now())
    await ctx.s.flush()
    await _changed(ctx, entry, TicketReturned.of(entry, occurred_at=ctx.now()), "ticket.returned")
    estimate = await eta.estimate_ticket(ctx, entry)
    return await _ticket_out(ctx, entry, estimate=estimate)


@operation(Permission.QUEUE_TRIAGE)
async def change_category(
    ctx: Context, *, ticket: uuid.UUID | str, triage_category: int | str
) -> TicketOut:
    """Set a ticket's triage category; its due time is recomputed from its arrival."""
    category = queue_policy.parse_category(triage_category)
    entry = await _ticket(ctx, ticket)
    queue_policy.check_transition("change_category", entry.status, entry.ticket_number)
    old = entry.triage_category
    if int(category) == old:
        return await _ticket_out(ctx, entry)
    dept = await _department_of(ctx, entry)
    appointment_at = None
    if entry.appointment_id is not None:
        appt = await ctx.s.get(Appointment, entry.appointment_id)
        appointment_at = appt.scheduled_at if appt else None
    old_due = entry.due_at
    _history(entry, "category_changed", at=ctx.now(), category=old, due=old_due,
             band=entry.queue_band, to=int(category))  # fmt: skip
    entry.triage_category = int(category)
    entry.queue_band = queue_policy.queue_band(category)
    entry.due_at = queue_policy.due_time(
        entry.arrived_at, category, dept.triage_targets, appointment_at=appointment_at
    )
    await ctx.s.flush()
    await _changed(
        ctx,
        entry,
        TicketCategoryChanged.of(
            entry, occurred_at=ctx.now(), old_category=old, due_at=entry.due_at
        ),
        "ticket.category_changed",
        {"from": old, "to": int(category), "due_from": old_due.isoformat(),
         "due_to": entry.due_at.isoformat()},
    )  # fmt: skip
    estimate = await eta.estimate_ticket(ctx, entry)
    return await _ticket_out(ctx, entry, dept=dept, estimate=estimate)


# ---- views --------------------------------------------------------------------------------------
async def _status_view(ctx: Context, entry: QueueEntry) -> TicketStatusView:
    dept = await _department_of(ctx, entry)
    position = ahead = None
    estimate = None
    if entry.status == TicketStatus.WAITING:
        found = await eta.estimate_ticket(ctx, entry)  # counts the tickets ahead once
        ahead = found.position
        position = ahead + 1
        estimate = _estimate(found)
    moved_to = moved_to_department = None
    if entry.status == TicketStatus.TRANSFERRED:  # the patient now waits under a new number
        moved = (
            await ctx.s.execute(
                select(QueueEntry.ticket_number, Department.name)
                .join(Department, Department.id == QueueEntry.department_id)
                .where(QueueEntry.transferred_from_id == entry.id)
                .limit(1)
            )
        ).first()
        if moved is not None:
            moved_to, moved_to_department = moved
    return TicketStatusView(
        ticket_number=entry.ticket_number,
        department_id=dept.id,
        department_code=dept.code,
        department_name=dept.name,
        transferred_to=moved_to,
        transferred_to_department=moved_to_department,
        status=entry.status,
        triage_category=entry.triage_category,
        position=position,
        ahead=ahead,
        estimate=estimate,
        room=entry.called_room
        if entry.status in (TicketStatus.CALLED, TicketStatus.IN_SERVICE)
        else None,
        arrived_at=entry.arrived_at,
        called_at=entry.called_at,
    )


@operation(Permission.QUEUE_BOARD, readonly=True)
async def ticket_status(ctx: Context, *, ticket: uuid.UUID | str) -> TicketStatusView:
    """Where a ticket stands: status, tickets ahead, estimated wait, room once called."""
    entry = await queue_engine.find_ticket(ctx.s, ticket, service_day=ctx.today())
    return await _status_view(ctx, entry)


STATUS_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{16,32}$")
MAX_TRANSFERS_FOLLOWED = 10


@operation(None, public=True, readonly=True)
async def ticket_status_by_code(ctx: Context, *, code: str) -> TicketStatusView:
    """A ticket's status by the unguessable code printed on it (its public page; no names).

    Holding the code is the permission: it is 128 random bits, printed only on
    the ticket (as its QR code). A ticket moved to another queue shows where it
    waits now.
    """
    text_ = code.strip() if isinstance(code, str) else ""
    if not STATUS_CODE_RE.fullmatch(text_):
        raise NotFound("no ticket with this code", field="code")
    entry = (
        await ctx.s.execute(select(QueueEntry).where(QueueEntry.status_code == text_))
    ).scalar_one_or_none()
    if entry is None:
        raise NotFound("no ticket with this code", field="code")
    printed = entry.ticket_number
    for _ in range(MAX_TRANSFERS_FOLLOWED):
        if entry.status != TicketStatus.TRANSFERRED:
            break
        moved = (
            await ctx.s.execute(
                select(QueueEntry).where(QueueEntry.transferred_from_id == entry.id).limit(1)
            )
        ).scalar_one_or_none()
        if moved is None:
            break
        entry = moved
    view = await _status_view(ctx, entry)
    if entry.ticket_number != printed or entry.status_code != text_:
        view.transferred_from = printed
    return view


@operation(Permission.QUEUE_OWN_TICKET, readonly=True)
async def my_tickets(ctx: Context) -> list[TicketStatusView]:
    """The signed-in patient's tickets still open today."""
    if ctx.principal.patient_id is None:
        return []
    rows = (
        await ctx.s.execute(
            select(QueueEntry)
            .where(
                QueueEntry.patient_id == ctx.principal.patient_id,
                QueueEntry.service_date == ctx.today(),
                QueueEntry.status.in_(ACTIVE_STATUSES),
            )
            .order_by(QueueEntry.arrived_at)
        )
    ).scalars()
    return [await _status_view(ctx, e) for e in rows]


@operation(Permission.QUEUE_BOARD, readonly=True)
async def board(
    ctx: Context, *, department: uuid.UUID | str, next_count: int = BOARD_NEXT_DEFAULT
) -> BoardView:
    """The waiting-room board of a department: rooms now serving and the next numbers."""
    if not 0 <= next_count <= 50:
        raise ValidationError("next_count must be 0-50", field="next_count")
    dept = await queue_engine.find_department(ctx.s, department)
    now = ctx.now()
    doctors = (
        await ctx.s.execute(
            select(Doctor)
            .where(Doctor.department_id == dept.id, Doctor.status != DoctorStatus.OFF)
            .order_by(Doctor.room)
        )
    ).scalars()
    serving: list[ServingRoom] = []
    for doc in doctors:
        current = (
            await ctx.s.execute(
                select(QueueEntry)
                .where(
                    QueueEntry.called_doctor_id == doc.id,
                    QueueEntry.status.in_([TicketStatus.CALLED, TicketStatus.IN_SERVICE]),
                )
                .order_by(QueueEntry.called_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        serving.append(
            ServingRoom(
                room=doc.room,
                doctor_status=doc.status,
                ticket_number=current.ticket_number if current else None,
                ticket_status=current.status if current else None,
                called_at=current.called_at if current else None,
            )
        )
    recent = (
        await ctx.s.execute(
            select(QueueEntry)
            .where(
                QueueEntry.department_id == dept.id,
                QueueEntry.status.in_([TicketStatus.CALLED, TicketStatus.IN_SERVICE]),
            )
            .order_by(QueueEntry.called_at.desc())
            .limit(BOARD_RECENT)
        )
    ).scalars()
    waiting = (
        await queue_engine.waiting_in_order(ctx.s, department_id=dept.id, limit=next_count)
        if next_count
        else []
    )
    # the first of the department's queue, in order: their waits follow from these rows
    state = await eta.department_state(ctx, dept.id, department=dept)
    estimates = eta.estimates_in_order(state, waiting, now=now)
    count = await queue_engine.waiting_count(ctx.s, department_id=dept.id)
    return BoardView(
        department_id=dept.id,
        department_code=dept.code,
        department_name=dept.name,
        now_serving=serving,
        recent_calls=[
            RecentCall(
                ticket_number=e.ticket_number,
                room=e.called_room,
                called_at=e.called_at,
                recall_count=e.recall_count,
            )
            for e in recent
        ],
        next_up=[
            BoardTicket(
                ticket_number=e.ticket_number,
                triage_category=e.triage_category,
                estimate=_estimate(estimates.get(e.id)),
            )
            for e in waiting
        ],
        waiting_count=int(count),
        generated_at=now,
    )


@operation(Permission.QUEUE_VIEW)
async def doctor_queue(
    ctx: Context,
    *,
    doctor: uuid.UUID | str | None = None,
    limit: int = 20,
    include_names: bool = False,
) -> DoctorQueueView:
    """A doctor's console: their called / in-service tickets and the ones they would call next."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValidationError(f"limit must be 1-{LIST_LIMIT_MAX}", field="limit")
    doc = await queue_engine.acting_doctor(ctx, doctor, missing="name the doctor")
    if include_names:
        require(ctx.principal, Permission.PATIENTS_READ)
    user = await ctx.s.get(User, doc.user_id)
    dept = await ctx.s.get(Department, doc.department_id)
    assert user is not None and dept is not None
    current = list(
        (
            await ctx.s.execute(
                select(QueueEntry)
                .where(
                    QueueEntry.called_doctor_id == doc.id,
                    QueueEntry.status.in_([TicketStatus.CALLED, TicketStatus.IN_SERVICE]),
                )
                .order_by(QueueEntry.called_at)
            )
        ).scalars()
    )
    held = list(
        (
            await ctx.s.execute(
                select(QueueEntry)
                .where(
                    QueueEntry.called_doctor_id == doc.id,
                    QueueEntry.status == TicketStatus.HELD,
                    QueueEntry.service_date == ctx.today(),
                )
                .order_by(QueueEntry.updated_at)
            )
        ).scalars()
    )
    waiting = await queue_engine.waiting_in_order(
        ctx.s, department_id=doc.department_id, doctor_id=doc.id, limit=limit
    )
    per_category = {
        int(category): int(n)
        for category, n in (
            await ctx.s.execute(
                select(QueueEntry.triage_category, func.count())
                .where(
                    QueueEntry.department_id == doc.department_id,
                    queue_engine.IS_WAITING,
                    (QueueEntry.doctor_id == doc.id) | QueueEntry.doctor_id.is_(None),
                )
                .group_by(QueueEntry.triage_category)
            )
        ).all()
    }
    estimates: dict[uuid.UUID, eta.WaitEstimate] = {}
    if waiting:
        # The department's queue up to the last listed ticket (tickets reserved for other
        # doctors in between count too).
        lanes = await queue_engine.lanes_ahead(
            ctx.s, department_id=doc.department_id, key=queue_engine.rank_key(waiting[-1])
        )
        estimates = await eta.estimates_for_department(
            ctx.s,
            doc.department_id,
            now=ctx.now(),
            settings=ctx.settings,
            limit=sum(lanes.values()) + 1,
            state=await eta.department_state(ctx, doc.department_id, department=dept),
        )
    shown = [*current, *held, *waiting]
    names = await _names(ctx, [e.patient_id for e in shown]) if include_names else {}
    await _audit_names_shown(ctx, names, "doctor_queue")

    async def out(entries: Sequence[QueueEntry]) -> list[TicketOut]:
        return [
            await _ticket_out(
                ctx,
                e,
                dept=dept,
                patient_name=names.get(e.patient_id) if e.patient_id else None,
                estimate=estimates.get(e.id),
            )
            for e in entries
        ]

    return DoctorQueueView(
        doctor_id=doc.id,
        doctor_name=user.full_name,
        department_id=dept.id,
        department_code=dept.code,
        room=doc.room,
        status=doc.status,
        current=await out(current),
        waiting=await out(waiting),
        waiting_count=sum(per_category.values()),
        department_name=dept.name,
        waiting_by_category=per_category,
        held=await out(held),
    )


def _statuses(values: Iterable[TicketStatus | str] | None) -> list[TicketStatus]:
    if values is None:
        return list(ACTIVE_STATUSES)
    out = []
    for v in values:
        try:
            out.append(TicketStatus(str(v).strip().lower().replace("-", "_")))
        except ValueError:
            raise ValidationError(
                f"unknown ticket status {v!r} (one of {', '.join(s.value for s in TicketStatus)})",
                field="status",
            ) from None
    return out


@operation(Permission.QUEUE_VIEW)
async def queue_list(
    ctx: Context,
    *,
    department: uuid.UUID | str | None = None,
    statuses: Iterable[TicketStatus | str] | None = None,
    day: date | None = None,
    include_names: bool = False,
    limit: int = 500,
) -> list[TicketOut]:
    """Tickets of a day (default today; open ones unless statuses are given).

    Waiting tickets come in calling order with their position and estimate;
    then held, called and in-service ones; then finished ones, latest first.
    """
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValidationError(f"limit must be 1-{LIST_LIMIT_MAX}", field="limit")
    if include_names:
        require(ctx.principal, Permission.PATIENTS_READ)
    wanted = _statuses(statuses)
    day = day or ctx.today()
    qe = queue_engine.QUEUE_TABLE.c
    # Plain rows (a console reloads up to 1,000 of these on every change): the ticket's
    # columns and its department's code, no ORM objects.
    stmt = select(*queue_engine.QUEUE_TABLE.columns, Department.code.label("department_code"))
    stmt = stmt.where(qe.service_date == day, qe.status.in_(wanted))
    if department is not None:
        dept = await queue_engine.find_department(ctx.s, department)
        stmt = stmt.where(qe.department_id == dept.id)
    group = case(
        (qe.status == TicketStatus.WAITING, 0),
        (qe.status == TicketStatus.HELD, 1),
        (qe.status == TicketStatus.CALLED, 2),
        (qe.status == TicketStatus.IN_SERVICE, 3),
        else_=4,
    )
    stmt = (
        stmt.join(Department, Department.id == qe.department_id)
        .order_by(
            group,
            Department.code,
            *queue_engine.QUEUE_ORDER[:-1],
            qe.finished_at.desc(),
            qe.sequence,
        )
        .limit(limit)
    )
    rows = (await queue_engine.run(ctx.s, stmt)).all()
    estimates: dict[uuid.UUID, eta.WaitEstimate] = {}
    if TicketStatus.WAITING in wanted:
        # Each department's waiting tickets as listed: the start of its queue, in order.
        listed: dict[uuid.UUID, list[Any]] = {}
        for row in rows:
            if row.status == TicketStatus.WAITING:
                listed.setdefault(row.department_id, []).append(row)
        for dept_id, waiting in listed.items():
            state = await eta.department_state(ctx, dept_id)
            lanes = await queue_engine.lanes_ahead(
                ctx.s, department_id=dept_id, key=queue_engine.rank_key(waiting[-1])
            )
            ahead = sum(lanes.values())
            if ahead + 1 == len(waiting):  # nobody waits among them unlisted (another day's)
                estimates.update(eta.estimates_in_order(state, waiting, now=ctx.now()))
            else:
                read = await eta.estimates_for_department(
                    ctx.s, dept_id, now=ctx.now(), settings=ctx.settings, limit=ahead + 1,
                    state=state,
                )  # fmt: skip
                estimates.update(read)
    names = await _names(ctx, [r.patient_id for r in rows]) if include_names else {}
    await _audit_names_shown(ctx, names, "queue_list")
    return [
        await _ticket_out(
            ctx,
            row,
            department_code=row.department_code,
            patient_name=names.get(row.patient_id) if row.patient_id else None,
            estimate=estimates.get(row.id),
        )
        for row in rows
    ]


@operation(Permission.QUEUE_VIEW, readonly=True)
async def get_ticket(ctx: Context, *, ticket: uuid.UUID | str) -> TicketOut:
    """One ticket with its position and estimate (no patient name)."""
    entry = await queue_engine.find_ticket(ctx.s, ticket, service_day=ctx.today())
    estimate = None
    if entry.status == TicketStatus.WAITING:
        estimate = await eta.estimate_ticket(ctx, entry)
    return await _ticket_out(ctx, entry, estimate=estimate)


@operation(Permission.QUEUE_VIEW, readonly=True)
async def slip_language(ctx: Context, *, ticket: uuid.UUID | str) -> str | None:
    """The language of the ticket's patient, to print their slip in it (None: a walk-in).

    Only the language code is read, so printing a slip is not a view of the
    patient's record (it leaves no ``patient.viewed`` record).
    """
    entry = await queue_engine.find_ticket(ctx.s, ticket, service_day=ctx.today())
    if entry.patient_id is None:
        return None
    return (
        await ctx.s.execute(select(Patient.language).where(Patient.id == entry.patient_id))
    ).scalar_one_or_none()


@operation(Permission.EVENTS_SUBSCRIBE, readonly=True)
async def watch(ctx: Context, *, department: uuid.UUID | str | None = None) -> Subscription:
    """A live subscription to committed queue events (optionally one department's)."""
    department_id = None
    if department is not None:
        department_id = (await queue_engine.find_department(ctx.s, department)).id
    return subscribe(ctx.db, department_id=department_id)


# ---- undo ---------------------------------------------------------------------------------------
_UNDO_WORDS = {
    "held": "putting it on hold",
    "returned": "returning it to the queue",
    "cancelled": "cancelling it",
    "no_show": "marking it a no-show",
    "requeued": "putting it back in the queue",
    "category_changed": "changing its triage category",
    "transferred": "transferring it",
}
#: the state a ticket is in right after each reversible step (else it moved on since)
_STATE_AFTER = {
    "held": {TicketStatus.HELD},
    "returned": {TicketStatus.WAITING},
    "cancelled": {TicketStatus.CANCELLED},
    "no_show": {TicketStatus.NO_SHOW},
    "requeued": {TicketStatus.WAITING},
    "category_changed": {TicketStatus.WAITING, TicketStatus.HELD},
    "transferred": {TicketStatus.TRANSFERRED},
}


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _uuid(value: Any) -> uuid.UUID | None:
    return uuid.UUID(value) if isinstance(value, str) else None


async def _no_other_active(ctx: Context, entry: QueueEntry) -> None:
    """Bringing a ticket back must not give the patient two open tickets in one queue."""
    if entry.patient_id is None:
        return
    other = (
        await ctx.s.execute(
            select(QueueEntry.ticket_number)
            .where(
                QueueEntry.patient_id == entry.patient_id,
                QueueEntry.department_id == entry.department_id,
                QueueEntry.service_date == entry.service_date,
                QueueEntry.status.in_(ACTIVE_STATUSES),
                QueueEntry.id != entry.id,
            )
            .limit(1)
        )
    ).scalar_one_or_none()
    if other is not None:
        raise Conflict(
            f"cannot undo: the patient of {entry.ticket_number} has ticket {other} "
            "in that queue now",
            ticket=other,
        )


@operation(Permission.QUEUE_MANAGE)
async def undo_last(ctx: Context, *, ticket: uuid.UUID | str) -> TicketOut:
    """Undo a ticket's last move: hold, return, cancel, no-show, requeue, category, transfer."""
    entry = await _ticket(ctx, ticket)
    number = entry.ticket_number
    steps = list((entry.extra or {}).get("history", []))
    if not steps:
        raise InvalidTransition(f"nothing to undo: {number} has not been moved since it was issued")
    last = steps[-1]
    step = str(last.get("step"))
    if step == "undone":
        raise InvalidTransition(f"the last move of {number} was already undone")
    if step not in _UNDO_WORDS:
        raise InvalidTransition(
            f"cannot undo the last move of {number} ({step.replace('_', ' ')}); "
            "only a hold, return, cancel, no-show, category change or transfer can be undone"
        )
    if entry.status not in _STATE_AFTER[step]:
        raise InvalidTransition(
            f"cannot undo {_UNDO_WORDS[step]}: {number} is "
            f"{queue_policy.describe_status(entry.status)} now"
        )
    now = ctx.now()
    details: dict[str, Any] = {"undid": step}
    other: QueueEntry | None = None
    if step == "held":
        entry.status = TicketStatus(last.get("was", TicketStatus.WAITING.value))
    elif step == "returned":
        entry.status = TicketStatus.HELD
    elif step == "cancelled":
        await _no_other_active(ctx, entry)
        entry.status = TicketStatus(last.get("was", TicketStatus.WAITING.value))
        entry.finished_at = None
    elif step == "no_show":
        await _no_other_active(ctx, entry)
        entry.status = TicketStatus.CALLED
        entry.finished_at = None
    elif step == "requeued":
        entry.status = TicketStatus.CALLED
        entry.called_at = _when(last.get("called_at")) or now
        entry.called_room = last.get("room")
        entry.called_doctor_id = _uuid(last.get("doctor"))
        entry.called_by_id = _uuid(last.get("by"))
        entry.due_at = _when(last.get("due")) or entry.due_at
    elif step == "category_changed":
        if entry.triage_category != last.get("to", entry.triage_category):
            raise InvalidTransition(f"cannot undo: the category of {number} changed again since")
        details["from"], details["to"] = entry.triage_category, int(last["category"])
        entry.triage_category = int(last["category"])
        entry.queue_band = int(last.get("band", queue_policy.queue_band(entry.triage_category)))
        entry.due_at = _when(last.get("due")) or entry.due_at
    elif step == "transferred":
        other = await queue_engine.find_ticket(ctx.s, str(last.get("to")), for_update=True)
        if other.status not in (TicketStatus.WAITING, TicketStatus.HELD):
            raise InvalidTransition(
                f"cannot undo the transfer: the new ticket {other.ticket_number} is "
                f"{queue_policy.describe_status(other.status)} now"
            )
        await _no_other_active(ctx, entry)
        other.status = TicketStatus.CANCELLED
        other.finished_at = now
        _history(other, "transfer_undone", at=now, back_to=entry.id)
        entry.status = TicketStatus(last.get("was", TicketStatus.WAITING.value))
        entry.finished_at = None
        details["cancelled_ticket"] = other.ticket_number
    _history(entry, "undone", at=now, undid=step)
    await ctx.s.flush()
    if other is not None:
        await _changed(
            ctx,
            other,
            TicketCancelled.of(other, occurred_at=now),
            "ticket.cancelled",
            {"reason": f"transfer of {number} undone"},
        )
    await _changed(
        ctx,
        entry,
        TicketUndone.of(entry, occurred_at=now, undid=step, status=entry.status.value),
        "ticket.undone",
        details,
    )
    estimate = None
    if entry.status == TicketStatus.WAITING:
        estimate = await eta.estimate_ticket(ctx, entry)
    return await _ticket_out(ctx, entry, estimate=estimate)


# ---- notes and the doctor's day -----------------------------------------------------------------
NOTE_MAX = 300


@operation(Permission.QUEUE_MANAGE)
async def set_note(ctx: Context, *, ticket: uuid.UUID | str, note: str | None) -> TicketOut:
    """Leave a short note on an open ticket for the doctor (empty clears it); it follows transfers."""
    text_ = " ".join((note or "").split())
    if any(ord(c) < 32 or ord(c) == 127 for c in text_):
        raise ValidationError("the note must be plain text on one line", field="note")
    if len(text_) > NOTE_MAX:
        raise ValidationError(f"the note must be at most {NOTE_MAX} characters", field="note")
    entry = await _ticket(ctx, ticket)
    if entry.status not in ACTIVE_STATUSES:
        raise InvalidTransition(
            f"ticket {entry.ticket_number} is {queue_policy.describe_status(entry.status)}; "
            "notes are for open tickets",
            ticket=entry.ticket_number,
        )
    new = text_ or None
    if new != entry.note:
        before = entry.note
        entry.note = new
        await ctx.s.flush()
        # The audit trail keeps that a note changed, not its text (it may be about health).
        await log_action(
            ctx,
            action="ticket.note_set",
            target=("queue_entry", entry.id),
            details={"ticket": entry.ticket_number, "status": entry.status.value,
                     "had_note": before is not None, "has_note": new is not None},
        )  # fmt: skip
    return await _ticket_out(ctx, entry)


@operation(Permission.QUEUE_VIEW, readonly=True)
async def doctor_day(ctx: Context, *, doctor: uuid.UUID | str | None = None) -> DoctorDay:
    """A doctor's day so far: patients seen, mean consultation length, no-shows (doctors: own)."""
    doc = await queue_engine.acting_doctor(ctx, doctor, missing="name the doctor")
    day = ctx.today()
    rows = (
        await ctx.s.execute(
            select(QueueEntry.status, QueueEntry.started_at, QueueEntry.finished_at).where(
                QueueEntry.called_doctor_id == doc.id,
                QueueEntry.service_date == day,
                QueueEntry.status.in_(
                    [TicketStatus.SERVED, TicketStatus.NO_SHOW, TicketStatus.TRANSFERRED]
                ),
            )
        )
    ).all()
    seen = no_shows = transferred = 0
    lengths: list[float] = []
    for status, started, finished in rows:
        if status == TicketStatus.SERVED:
            seen += 1
            # A "done" straight from called has its start at the finish: its length is unknown.
            if started is not None and finished is not None and finished > started:
                lengths.append((finished - started).total_seconds() / 60)
        elif status == TicketStatus.NO_SHOW:
            no_shows += 1
        else:
            transferred += 1
    return DoctorDay(
        doctor_id=doc.id,
        service_date=day,
        seen=seen,
        timed=len(lengths),
        mean_consultation_minutes=round(sum(lengths) / len(lengths), 1) if lengths else None,
        no_shows=no_shows,
        transferred=transferred,
    )
