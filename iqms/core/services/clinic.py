"""Clinic setup: departments, doctors and their rooms and status, appointments.

Departments are named by id or code (``GEN``), doctors by id or their
account's username, patients by id or MRN.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from iqms.core import pipeline
from iqms.core.enums import AppointmentStatus, DoctorStatus, Role, TicketSource, TicketStatus
from iqms.core.errors import Conflict, InvalidTransition, NotFound, ValidationError
from iqms.core.models import Appointment, Department, Doctor, Patient, QueueEntry, User
from iqms.core.queue import engine as queue_engine
from iqms.core.queue import eta
from iqms.core.queue import policy as queue_policy
from iqms.core.queue.events import DoctorChanged, publish
from iqms.core.schemas.clinic import (
    AppointmentBook,
    AppointmentOut,
    DepartmentCreate,
    DepartmentOut,
    DepartmentUpdate,
    DoctorCreate,
    DoctorOut,
    parse,
)
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission, require_own_patient
from iqms.core.service import Context, operation

#: how early / late (minutes) a patient may check in for an appointment
CHECK_IN_EARLY_MINUTES = 120
CHECK_IN_LATE_MINUTES = 60
#: digits of an appointment's booking code (typed at a kiosk to check in)
BOOKING_CODE_DIGITS = 8


# ---- departments --------------------------------------------------------------------------------
def _department_out(dept: Department) -> DepartmentOut:
    overrides = {str(k): int(v) for k, v in (dept.triage_targets or {}).items()}
    return DepartmentOut(
        id=dept.id,
        code=dept.code,
        name=dept.name,
        ticket_prefix=dept.ticket_prefix,
        active=dept.active,
        default_service_minutes=dept.default_service_minutes,
        target_overrides=overrides,
        targets={int(c): m for c, m in queue_policy.targets(dept.triage_targets).items()},
    )


async def _check_unique_department(
    ctx: Context, *, code: str | None, prefix: str | None, excluding: uuid.UUID | None = None
) -> None:
    for column, value, what in (
        (Department.code, code, "code"),
        (Department.ticket_prefix, prefix, "ticket prefix"),
    ):
        if value is None:
            continue
        stmt = select(Department.code).where(column == value)
        if excluding is not None:
            stmt = stmt.where(Department.id != excluding)
        other = (await ctx.s.execute(stmt)).scalar_one_or_none()
        if other is not None:
            field = "code" if what == "code" else "ticket_prefix"
            raise Conflict(f"department {other} already uses {what} {value}", field=field)


@operation(Permission.DEPARTMENTS_MANAGE)
async def create_department(
    ctx: Context,
    *,
    code: str,
    name: str,
    ticket_prefix: str,
    triage_targets: dict[Any, Any] | None = None,
    default_service_minutes: int = 12,
) -> DepartmentOut:
    """Create a department with its ticket prefix and optional triage target overrides."""
    data = parse(
        DepartmentCreate,
        code=code,
        name=name,
        ticket_prefix=ticket_prefix,
        triage_targets=triage_targets,
        default_service_minutes=default_service_minutes,
    )
    await _check_unique_department(ctx, code=data.code, prefix=data.ticket_prefix)
    dept = Department(
        id=uuid.uuid4(),
        code=data.code,
        name=data.name,
        ticket_prefix=data.ticket_prefix,
        active=True,
        triage_targets=data.triage_targets or None,
        default_service_minutes=data.default_service_minutes,
    )
    ctx.s.add(dept)
    await ctx.s.flush()
    await log_action(
        ctx,
        action="department.created",
        target=("department", dept.id),
        details={"code": dept.code, "prefix": dept.ticket_prefix, "targets": data.triage_targets},
    )
    return _department_out(dept)


@operation(Permission.DEPARTMENTS_VIEW, readonly=True)
async def list_departments(ctx: Context, *, include_inactive: bool = False) -> list[DepartmentOut]:
    """Departments by code (only active ones unless asked)."""
    stmt = select(Department).order_by(Department.code)
    if not include_inactive:
        stmt = stmt.where(Department.active)
    return [_department_out(d) for d in (await ctx.s.execute(stmt)).scalars()]


@operation(Permission.DEPARTMENTS_VIEW, readonly=True)
async def get_department(ctx: Context, *, department: uuid.UUID | str) -> DepartmentOut:
    """One department by id or code."""
    return _department_out(await queue_engine.find_department(ctx.s, department))


@operation(Permission.DEPARTMENTS_MANAGE)
async def update_department(
    ctx: Context,
    *,
    department: uuid.UUID | str,
    name: str | None = None,
    ticket_prefix: str | None = None,
    triage_targets: dict[Any, Any] | None = None,
    clear_targets: bool = False,
    default_service_minutes: int | None = None,
    active: bool | None = None,
) -> DepartmentOut:
    """Change a department; target overrides given are merged in (``clear_targets`` resets)."""
    data = parse(
        DepartmentUpdate,
        name=name,
        ticket_prefix=ticket_prefix,
        triage_targets=triage_targets,
        clear_targets=clear_targets,
        default_service_minutes=default_service_minutes,
        active=active,
    )
    dept = await queue_engine.find_department(ctx.s, department, for_update=True)
    changed: dict[str, Any] = {}
    if data.ticket_prefix is not None and data.ticket_prefix != dept.ticket_prefix:
        await _check_unique_department(ctx, code=None, prefix=data.ticket_prefix, excluding=dept.id)
        changed["ticket_prefix"] = [dept.ticket_prefix, data.ticket_prefix]
        dept.ticket_prefix = data.ticket_prefix
    if data.name is not None and data.name != dept.name:
        changed["name"] = [dept.name, data.name]
        dept.name = data.name
    if data.default_service_minutes is not None:
        if data.default_service_minutes != dept.default_service_minutes:
            changed["default_service_minutes"] = [
                dept.default_service_minutes,
                data.default_service_minutes,
            ]
            dept.default_service_minutes = data.default_service_minutes
    if data.active is not None and data.active != dept.active:
        changed["active"] = [dept.active, data.active]
        dept.active = data.active
    if data.clear_targets or data.triage_targets:
        before = dict(dept.triage_targets or {})
        after = {} if data.clear_targets else dict(before)
        after.update(data.triage_targets or {})
        if after != before:
            changed["triage_targets"] = [before, after]
            dept.triage_targets = after or None
    if changed:
        await ctx.s.flush()
        eta.note_change(ctx.db, dept.id)  # targets and service minutes feed the estimates
        await log_action(
            ctx,
            action="department.updated",
            target=("department", dept.id),
            details={"code": dept.code, "changed": changed},
        )
    return _department_out(dept)


@operation(Permission.DEPARTMENTS_MANAGE)
async def deactivate_department(ctx: Context, *, department: uuid.UUID | str) -> DepartmentOut:
    """Close a department to new tickets (tickets already waiting stay and can be served)."""
    dept = await queue_engine.find_department(ctx.s, department, for_update=True)
    if dept.active:
        dept.active = False
        await ctx.s.flush()
        await log_action(
            ctx,
            action="department.deactivated",
            target=("department", dept.id),
            details={"code": dept.code},
        )
    return _department_out(dept)


# ---- doctors ------------------------------------------------------------------------------------
async def _doctors_out(ctx: Context, doctors: Sequence[Doctor]) -> list[DoctorOut]:
    if not doctors:
        return []
    users = {
        u.id: u
        for u in (
            await ctx.s.execute(select(User).where(User.id.in_([d.user_id for d in doctors])))
        ).scalars()
    }
    depts = {
        d.id: d
        for d in (
            await ctx.s.execute(
                select(Department).where(Department.id.in_({d.department_id for d in doctors}))
            )
        ).scalars()
    }
    return [
        DoctorOut(
            id=d.id,
            user_id=d.user_id,
            username=users[d.user_id].username,
            full_name=users[d.user_id].full_name,
            department_id=d.department_id,
            department_code=depts[d.department_id].code,
            room=d.room,
            status=d.status,
            status_changed_at=d.status_changed_at,
        )
        for d in doctors
    ]


async def _doctor_out(ctx: Context, doctor: Doctor) -> DoctorOut:
    return (await _doctors_out(ctx, [doctor]))[0]


@operation(Permission.DOCTORS_MANAGE)
async def create_doctor(
    ctx: Context, *, user: uuid.UUID | str, department: uuid.UUID | str, room: str
) -> DoctorOut:
    """Make an existing doctor account a doctor of a department, in a room (status: off)."""
    data = parse(DoctorCreate, room=room)
    ref = str(user).strip()
    try:
        user_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        user_id = None
    stmt = select(User).where(User.id == user_id if user_id else User.username == ref.lower())
    account = (await ctx.s.execute(stmt)).scalar_one_or_none()
    if account is None:
        raise ValidationError(f"no account {ref}; create the user first", field="user")
    if account.role != Role.DOCTOR:
        raise ValidationError(
            f"{account.username} is a {account.role.value} account, not a doctor account",
            field="user",
        )
    dept = await queue_engine.find_department(ctx.s, department)
    if not dept.active:
        raise ValidationError(f"department {dept.code} is closed", field="department")
    existing = (
        await ctx.s.execute(select(Doctor).where(Doctor.user_id == account.id))
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(f"{account.username} is already set up as a doctor", field="user")
    doctor = Doctor(
        id=uuid.uuid4(),
        user_id=account.id,
        department_id=dept.id,
        room=data.room,
        status=DoctorStatus.OFF,
        status_changed_at=ctx.now(),
    )
    ctx.s.add(doctor)
    try:
        async with ctx.s.begin_nested():
            await ctx.s.flush()
    except IntegrityError:
        raise Conflict(f"{account.username} is already set up as a doctor", field="user") from None
    eta.note_change(ctx.db, dept.id)
    await log_action(
        ctx,
        action="doctor.created",
        target=("doctor", doctor.id),
        details={"username": account.username, "department": dept.code, "room": data.room},
    )
    return await _doctor_out(ctx, doctor)


@operation(Permission.DOCTORS_VIEW, readonly=True)
async def list_doctors(
    ctx: Context,
    *,
    department: uuid.UUID | str | None = None,
    status: DoctorStatus | str | None = None,
) -> list[DoctorOut]:
    """Doctors by department and room; optionally one department or one status."""
    stmt = (
        select(Doctor)
        .join(Department, Department.id == Doctor.department_id)
        .order_by(Department.code, Doctor.room)
    )
    if department is not None:
        dept = await queue_engine.find_department(ctx.s, department)
        stmt = stmt.where(Doctor.department_id == dept.id)
    if status is not None:
        stmt = stmt.where(Doctor.status == _doctor_status(status))
    return await _doctors_out(ctx, list((await ctx.s.execute(stmt)).scalars()))


@operation(Permission.DOCTORS_VIEW, readonly=True)
async def get_doctor(ctx: Context, *, doctor: uuid.UUID | str) -> DoctorOut:
    """One doctor by id or username."""
    return await _doctor_out(ctx, await queue_engine.find_doctor(ctx.s, doctor))


@operation(Permission.DOCTORS_MANAGE)
async def assign_room(
    ctx: Context,
    *,
    doctor: uuid.UUID | str,
    room: str,
    department: uuid.UUID | str | None = None,
) -> DoctorOut:
    """Move a doctor to another room (and optionally another department)."""
    data = parse(DoctorCreate, room=room)
    found = await queue_engine.find_doctor(ctx.s, doctor, for_update=True)
    previous_department = found.department_id
    changed: dict[str, Any] = {}
    if department is not None:
        dept = await queue_engine.find_department(ctx.s, department)
        if dept.id != found.department_id:
            if not dept.active:
                raise ValidationError(f"department {dept.code} is closed", field="department")
            busy = await _busy_with(ctx, found.id)
            if busy:
                raise Conflict(
                    f"the doctor still has ticket {busy} called or in service; finish it first"
                )
            changed["department"] = dept.code
            found.department_id = dept.id
    if data.room != found.room:
        changed["room"] = [found.room, data.room]
        found.room = data.room
    if changed:
        await ctx.s.flush()
        await log_action(ctx, action="doctor.updated", target=("doctor", found.id), details=changed)
        await _publish_doctor(ctx, found, previous_department_id=previous_department)
    return await _doctor_out(ctx, found)


@operation(Permission.DOCTOR_STATUS)
async def change_room(
    ctx: Context, *, room: str, doctor: uuid.UUID | str | None = None
) -> DoctorOut:
    """Move a doctor to another room for now; doctors may move only themselves.

    Refused while the doctor has a patient called or in service (that patient
    was told the old room).
    """
    data = parse(DoctorCreate, room=room)
    found = await queue_engine.acting_doctor(
        ctx, doctor, missing="name the doctor who changes room", for_update=True
    )
    if data.room == found.room:
        return await _doctor_out(ctx, found)
    busy = await _busy_with(ctx, found.id)
    if busy:
        raise Conflict(
            f"ticket {busy} was called to {found.room}; finish it before changing room",
            ticket=busy,
        )
    before = found.room
    found.room = data.room
    await ctx.s.flush()
    await log_action(
        ctx, action="doctor.updated", target=("doctor", found.id),
        details={"room": [before, data.room]},
    )  # fmt: skip
    await _publish_doctor(ctx, found)
    return await _doctor_out(ctx, found)


async def _publish_doctor(
    ctx: Context, doctor: Doctor, *, previous_department_id: uuid.UUID | None = None
) -> None:
    # Doctors on duty are the estimates' servers.
    eta.note_change(ctx.db, doctor.department_id)
    if previous_department_id is not None:
        eta.note_change(ctx.db, previous_department_id)
    await publish(
        ctx,
        DoctorChanged(
            doctor_id=doctor.id,
            department_id=doctor.department_id,
            room=doctor.room,
            status=doctor.status.value,
            occurred_at=ctx.now(),
            previous_department_id=(
                previous_department_id
                if previous_department_id not in (None, doctor.department_id)
                else None
            ),
        ),
    )


def _doctor_status(value: DoctorStatus | str) -> DoctorStatus:
    try:
        return DoctorStatus(str(value).strip().lower())
    except ValueError:
        raise ValidationError(
            f"status must be one of {', '.join(s.value for s in DoctorStatus)}, not {value!r}",
            field="status",
        ) from None


async def _busy_with(ctx: Context, doctor_id: uuid.UUID) -> str | None:
    return (
        await ctx.s.execute(
            select(QueueEntry.ticket_number)
            .where(
                QueueEntry.called_doctor_id == doctor_id,
                QueueEntry.status.in_([TicketStatus.CALLED, TicketStatus.IN_SERVICE]),
            )
            .limit(1)
        )
    ).scalar_one_or_none()


@operation(Permission.DOCTOR_STATUS)
async def set_doctor_status(
    ctx: Context, *, status: DoctorStatus | str, doctor: uuid.UUID | str | None = None
) -> DoctorOut:
    """Set a doctor available, paused or off; doctors may set only their own status."""
    new = _doctor_status(status)
    found = await queue_engine.acting_doctor(
        ctx, doctor, missing="name the doctor whose status to set", for_update=True
    )
    if new != found.status:
        before = found.status
        found.status = new
        found.status_changed_at = ctx.now()
        await ctx.s.flush()
        await log_action(
            ctx,
            action="doctor.status_changed",
            target=("doctor", found.id),
            details={"from": before.value, "to": new.value, "room": found.room},
        )
        await _publish_doctor(ctx, found)
    return await _doctor_out(ctx, found)


# ---- appointments -------------------------------------------------------------------------------
async def _appointment_out(ctx: Context, appt: Appointment) -> AppointmentOut:
    patient = await ctx.s.get(Patient, appt.patient_id)
    dept = await ctx.s.get(Department, appt.department_id)
    ticket = (
        await ctx.s.execute(
            select(QueueEntry.ticket_number)
            .where(QueueEntry.appointment_id == appt.id)
            .order_by(QueueEntry.arrived_at)
            .limit(1)
        )
    ).scalar_one_or_none()
    assert patient is not None and dept is not None
    return AppointmentOut(
        id=appt.id,
        patient_id=appt.patient_id,
        patient_mrn=patient.mrn,
        department_id=appt.department_id,
        department_code=dept.code,
        doctor_id=appt.doctor_id,
        scheduled_at=appt.scheduled_at,
        status=appt.status,
        checked_in_at=appt.checked_in_at,
        ticket=ticket,
        booking_code=appt.booking_code,
    )


async def _new_booking_code(ctx: Context) -> str:
    """A random booking code no appointment has (8 digits: easy on a kiosk's keypad)."""
    while True:
        code = f"{secrets.randbelow(10**BOOKING_CODE_DIGITS):0{BOOKING_CODE_DIGITS}d}"
        taken = (
            await ctx.s.execute(select(Appointment.id).where(Appointment.booking_code == code))
        ).first()
        if taken is None:
            return code


async def _find_appointment(ctx: Context, appointment: uuid.UUID | str) -> Appointment:
    try:
        appt_id = uuid.UUID(str(appointment))
    except ValueError:
        raise ValidationError(
            f"{appointment!s} is not an appointment id", field="appointment"
        ) from None
    appt = (
        await ctx.s.execute(
            select(Appointment)
            .where(Appointment.id == appt_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if appt is None:
        raise NotFound(f"no appointment {appointment!s}", field="appointment")
    return appt


@operation(Permission.APPOINTMENTS_MANAGE)
async def book_appointment(
    ctx: Context,
    *,
    patient: uuid.UUID | str,
    department: uuid.UUID | str,
    scheduled_at: datetime,
    doctor: uuid.UUID | str | None = None,
) -> AppointmentOut:
    """Book an appointment for a patient in a department (optionally with one doctor)."""
    data = parse(AppointmentBook, scheduled_at=scheduled_at)
    found_patient = await queue_engine.find_patient(ctx.s, patient)
    dept = await queue_engine.find_department(ctx.s, department)
    if not dept.active:
        raise ValidationError(f"department {dept.code} is closed", field="department")
    if data.scheduled_at < ctx.now() - timedelta(minutes=CHECK_IN_LATE_MINUTES):
        raise ValidationError("the appointment time is in the past", field="scheduled_at")
    doctor_id = None
    if doctor is not None:
        doc = await queue_engine.find_doctor(ctx.s, doctor)
        if doc.department_id != dept.id:
            raise ValidationError(
                f"that doctor works in another department, not {dept.code}", field="doctor"
            )
        doctor_id = doc.id
    appt = Appointment(
        id=uuid.uuid4(),
        patient_id=found_patient.id,
        department_id=dept.id,
        doctor_id=doctor_id,
        scheduled_at=data.scheduled_at,
        status=AppointmentStatus.BOOKED,
        booking_code=await _new_booking_code(ctx),
    )
    ctx.s.add(appt)
    await ctx.s.flush()
    await log_action(
        ctx,
        action="appointment.booked",
        target=("appointment", appt.id),
        details={
            "patient_id": str(found_patient.id),
            "department": dept.code,
            "scheduled_at": data.scheduled_at.isoformat(),
            "doctor_id": str(doctor_id) if doctor_id else None,
        },
    )
    return await _appointment_out(ctx, appt)


@operation(Permission.APPOINTMENTS_MANAGE)
async def cancel_appointment(ctx: Context, *, appointment: uuid.UUID | str) -> AppointmentOut:
    """Cancel a booked appointment (one already checked in is cancelled through its ticket)."""
    appt = await _find_appointment(ctx, appointment)
    if appt.status != AppointmentStatus.BOOKED:
        raise InvalidTransition(
            f"cannot cancel this appointment: it is {appt.status.value.replace('_', ' ')}"
        )
    appt.status = AppointmentStatus.CANCELLED
    await ctx.s.flush()
    await log_action(ctx, action="appointment.cancelled", target=("appointment", appt.id))
    return await _appointment_out(ctx, appt)


@operation(Permission.APPOINTMENTS_MANAGE, readonly=True)
async def list_appointments(
    ctx: Context,
    *,
    day: date | None = None,
    department: uuid.UUID | str | None = None,
    status: AppointmentStatus | str | None = None,
) -> list[AppointmentOut]:
    """Appointments of one clinic day (default today), by time."""
    day = day or ctx.today()
    tz = ctx.settings.tz
    start = datetime.combine(day, datetime.min.time(), tz)
    stmt = (
        select(Appointment)
        .where(
            Appointment.scheduled_at >= start,
            Appointment.scheduled_at < start + timedelta(days=1),
        )
        .order_by(Appointment.scheduled_at)
    )
    if department is not None:
        dept = await queue_engine.find_department(ctx.s, department)
        stmt = stmt.where(Appointment.department_id == dept.id)
    if status is not None:
        try:
            stmt = stmt.where(Appointment.status == AppointmentStatus(str(status)))
        except ValueError:
            raise ValidationError(
                f"unknown appointment status {status!r}", field="status"
            ) from None
    return [await _appointment_out(ctx, a) for a in (await ctx.s.execute(stmt)).scalars()]


@operation(Permission.APPOINTMENTS_CHECK_IN)
async def check_in(
    ctx: Context, *, appointment: uuid.UUID | str, device_id: uuid.UUID | None = None
) -> AppointmentOut:
    """Check a patient in for today's appointment: issues a ticket due at the appointment time."""
    appt = await _find_appointment(ctx, appointment)
    await _check_in_appointment(ctx, appt, device_id=device_id)
    return await _appointment_out(ctx, appt)


async def _check_in_appointment(
    ctx: Context,
    appt: Appointment,
    *,
    device_id: uuid.UUID | None = None,
    audit_details: dict[str, Any] | None = None,
) -> QueueEntry:
    """Check in a found appointment (inside an operation); returns the ticket it queued.

    Refusals are :class:`InvalidTransition` with a ``reason`` detail (``checked_in``,
    ``cancelled``, ``too_early``, ``too_late``, ``closed``) a kiosk can say in any language.
    """
    require_own_patient(ctx.principal, appt.patient_id)
    if appt.status != AppointmentStatus.BOOKED:
        raise InvalidTransition(
            f"cannot check in: the appointment is {appt.status.value.replace('_', ' ')}",
            reason=appt.status.value,
        )
    now = ctx.now()
    if now < appt.scheduled_at - timedelta(minutes=CHECK_IN_EARLY_MINUTES):
        raise InvalidTransition(
            "too early to check in: check-in opens "
            f"{CHECK_IN_EARLY_MINUTES // 60} hours before the appointment",
            reason="too_early",
        )
    if now > appt.scheduled_at + timedelta(minutes=CHECK_IN_LATE_MINUTES):
        raise InvalidTransition(
            "too late to check in for this appointment; please ask at reception",
            reason="too_late",
        )
    dept = await queue_engine.find_department(ctx.s, appt.department_id)
    if not dept.active:
        raise InvalidTransition(f"department {dept.code} is closed", reason="closed")
    appt.status = AppointmentStatus.CHECKED_IN
    appt.checked_in_at = now
    await ctx.s.flush()
    await log_action(
        ctx,
        action="appointment.checked_in",
        target=("appointment", appt.id),
        details={
            "patient_id": str(appt.patient_id),
            "department": dept.code,
            **(audit_details or {}),
        },
    )
    issued = await pipeline.issue_ticket(
        ctx,
        department=dept,
        source=TicketSource.APPOINTMENT,
        patient_id=appt.patient_id,
        doctor_id=appt.doctor_id,
        appointment_id=appt.id,
        appointment_at=appt.scheduled_at,
        origin_device_id=device_id or ctx.principal.device_id,
        audit_details={"appointment_id": str(appt.id)},
    )
    return issued.entry
