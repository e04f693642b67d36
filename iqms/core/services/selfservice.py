"""Self-service: what a patient does alone at a kiosk (or on the clinic's pages).

* :func:`department_waits` - the open departments and how long a ticket taken
  now would wait (the kiosk's service choice);
* :func:`register_for_messages` - a patient asks for an SMS when it is their
  turn: matched to their record by phone, date of birth and name (as offline
  sync matches them) or registered, with their consent in the audit trail;
* :func:`check_in` - an appointment found by its booking code, or by phone
  and date of birth, checked in, and the ticket to print.

None of them hands a patient's details back: a kiosk shows numbers, rooms and
waits, and whoever stands at it next must not learn anything about the last
person.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from iqms.core.enums import AppointmentStatus, NotifyChannel, TriageCategory
from iqms.core.errors import NotFound, ValidationError
from iqms.core.models import Appointment, Department, Doctor, Patient, QueueEntry
from iqms.core.queue import engine as queue_engine
from iqms.core.queue import eta
from iqms.core.queue import policy as queue_policy
from iqms.core.schemas.clinic import parse
from iqms.core.schemas.common import normalise_phone
from iqms.core.schemas.patients import PatientCreate
from iqms.core.schemas.queue import Estimate
from iqms.core.schemas.selfservice import CheckedIn, DepartmentWait
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission
from iqms.core.service import Context, operation
from iqms.core.services import clinic as clinic_service
from iqms.core.services import patients as patient_service
from iqms.core.services.queue import _ticket_out
from iqms.core.sync.patients import same_person_name

#: longest consent sentence kept in the audit trail
MAX_CONSENT_TEXT = 300


# ---- waits ---------------------------------------------------------------------------------------
@operation(Permission.QUEUE_BOARD, readonly=True)
async def department_waits(
    ctx: Context, *, departments: Sequence[uuid.UUID | str] | None = None
) -> list[DepartmentWait]:
    """Open departments (all, or those named) with the wait of a standard ticket taken now."""
    if departments is None:
        rows = list(
            (
                await ctx.s.execute(
                    select(Department).where(Department.active).order_by(Department.code)
                )
            ).scalars()
        )
    else:
        found = [await queue_engine.find_department(ctx.s, ref) for ref in departments]
        rows = [d for d in found if d.active]
    now = ctx.now()
    out = []
    for dept in rows:
        state = await eta.department_state(ctx, dept.id, department=dept)
        category = TriageCategory.STANDARD
        due = queue_policy.due_time(now, category, dept.triage_targets)
        newcomer = QueueEntry(  # never added to the session: where a ticket taken now would go
            id=uuid.uuid4(),
            department_id=dept.id,
            queue_band=queue_policy.queue_band(category),
            due_at=due,
            arrived_at=now,
            sequence=2**31 - 1,
        )
        ahead = await eta.count_ahead(ctx.s, newcomer)
        wait = eta.estimate_wait(
            state,
            ahead,
            doctor_id=None,
            due_in_minutes=(due - now).total_seconds() / 60,
            band=newcomer.queue_band,
        )
        waiting = await queue_engine.waiting_count(ctx.s, department_id=dept.id)
        out.append(
            DepartmentWait(
                department_id=dept.id,
                code=dept.code,
                name=dept.name,
                ticket_prefix=dept.ticket_prefix,
                waiting=int(waiting),
                doctors_available=len(state.servers),
                estimate=Estimate(
                    p50_minutes=wait.p50_minutes,
                    p90_minutes=wait.p90_minutes,
                    servers=wait.servers,
                ),
            )
        )
    return out


# ---- messages ------------------------------------------------------------------------------------
@operation(Permission.PATIENTS_CREATE)
async def register_for_messages(
    ctx: Context,
    *,
    full_name: str,
    phone: str,
    date_of_birth: date | str,
    consent_text: str,
    language: str = "en",
) -> uuid.UUID:
    """A patient asks for an SMS when it is their turn: their record (matched or new), by id.

    The patient's record is the one with this phone, date of birth and a matching name
    (as offline sync matches them); otherwise a new one is registered. Either way the
    record is set to get SMS in ``language``, and the consent (the sentence the patient
    agreed to) goes to the audit trail.
    """
    consent = " ".join((consent_text or "").split())
    if not consent or len(consent) > MAX_CONSENT_TEXT:
        raise ValidationError(
            f"the consent sentence the patient agreed to is needed (at most {MAX_CONSENT_TEXT} "
            "characters)",
            field="consent_text",
        )
    data = parse(
        PatientCreate,
        full_name=full_name,
        phone=phone,
        date_of_birth=date_of_birth,
        notify_channel=NotifyChannel.SMS,
        language=language,
    )
    if data.phone is None:
        raise ValidationError("a phone number is needed for SMS", field="phone")
    if data.date_of_birth is None:
        raise ValidationError("the date of birth is needed", field="date_of_birth")
    same = list(
        (
            await ctx.s.execute(
                select(Patient)
                .where(Patient.phone == data.phone, Patient.date_of_birth == data.date_of_birth)
                .order_by(Patient.mrn)
            )
        ).scalars()
    )
    match = next((p for p in same if same_person_name(p.full_name, data.full_name)), None)
    if match is not None:
        changed = {}
        if match.notify_channel != NotifyChannel.SMS:
            changed["notify_channel"] = NotifyChannel.SMS.value
            match.notify_channel = NotifyChannel.SMS
        if match.language != data.language:
            changed["language"] = data.language
            match.language = data.language
        await ctx.s.flush()
        patient_id = match.id
        if changed:
            await log_action(
                ctx, action="patient.updated", target=("patient", match.id), details=changed
            )
    else:
        created = await patient_service.register(
            ctx,
            full_name=data.full_name,
            phone=data.phone,
            date_of_birth=data.date_of_birth,
            notify_channel=NotifyChannel.SMS.value,
            language=data.language,
            allow_duplicate=True,  # same phone and birth date, another name: e.g. a twin
        )
        patient_id = created.id
    await log_action(
        ctx,
        action="patient.consent_given",
        target=("patient", patient_id),
        details={
            "channel": NotifyChannel.SMS.value,
            "consent_text": consent,
            "language": data.language,
            "matched": match is not None,
        },
    )
    return patient_id


# ---- appointments --------------------------------------------------------------------------------
def _booking_code(value: str) -> str:
    code = re.sub(r"[\s.-]+", "", value or "")
    if not re.fullmatch(rf"\d{{{clinic_service.BOOKING_CODE_DIGITS}}}", code):
        raise ValidationError(
            f"a booking code has {clinic_service.BOOKING_CODE_DIGITS} digits",
            field="booking_code",
            reason="format",
        )
    return code


async def _by_phone(ctx: Context, phone: str, date_of_birth: date | str) -> Appointment | None:
    """Today's booked appointment of the patient with this phone and date of birth."""
    try:
        number = normalise_phone(phone)
    except ValueError:
        raise ValidationError("that is not a phone number", field="phone", reason="phone") from None
    try:
        born = (
            date_of_birth
            if isinstance(date_of_birth, date)
            else date.fromisoformat(str(date_of_birth))
        )
    except ValueError:
        raise ValidationError(
            "that is not a date of birth", field="date_of_birth", reason="date_of_birth"
        ) from None
    tz = ctx.settings.tz
    start = datetime.combine(ctx.today(), datetime.min.time(), tz)
    booked = list(
        (
            await ctx.s.execute(
                select(Appointment)
                .join(Patient, Patient.id == Appointment.patient_id)
                .where(
                    Patient.phone == number,
                    Patient.date_of_birth == born,
                    Appointment.status == AppointmentStatus.BOOKED,
                    Appointment.scheduled_at >= start,
                    Appointment.scheduled_at < start + timedelta(days=1),
                )
                .order_by(Appointment.scheduled_at)
            )
        ).scalars()
    )
    now = ctx.now()
    early = timedelta(minutes=clinic_service.CHECK_IN_EARLY_MINUTES)
    late = timedelta(minutes=clinic_service.CHECK_IN_LATE_MINUTES)
    open_now = [a for a in booked if a.scheduled_at - early <= now <= a.scheduled_at + late]
    # The next one that can be checked in now; else the first, which says why it cannot.
    candidates = open_now or booked
    return candidates[0] if candidates else None


@operation(Permission.APPOINTMENTS_CHECK_IN)
async def check_in(
    ctx: Context,
    *,
    booking_code: str | None = None,
    phone: str | None = None,
    date_of_birth: date | str | None = None,
) -> CheckedIn:
    """Check in today's appointment found by booking code, or by phone and date of birth.

    Refusals carry a ``reason`` detail a kiosk can say in the patient's language:
    ``format``/``phone``/``date_of_birth`` (input), ``not_found``, and the check-in
    refusals (``too_early``, ``too_late``, ``checked_in``, ``cancelled``, ``closed``).
    """
    appointment: Appointment | None
    details: dict[str, Any]
    if booking_code is not None:
        if phone is not None or date_of_birth is not None:
            raise ValidationError("give a booking code, or a phone and date of birth, not both")
        code = _booking_code(booking_code)
        appointment = (
            await ctx.s.execute(
                select(Appointment)
                .where(Appointment.booking_code == code)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        details = {"found_by": "booking_code"}
    elif phone is not None and date_of_birth is not None:
        appointment = await _by_phone(ctx, phone, date_of_birth)
        details = {"found_by": "phone_and_date_of_birth"}
    else:
        raise ValidationError("give a booking code, or a phone and date of birth")
    if appointment is None:
        raise NotFound("no appointment found for these details", reason="not_found")
    entry = await clinic_service._check_in_appointment(ctx, appointment, audit_details=details)
    dept = await ctx.s.get(Department, entry.department_id)
    assert dept is not None
    estimate = await eta.estimate_for_entry(ctx.s, entry, now=ctx.now(), settings=ctx.settings)
    entry.estimate_at_issue_minutes = estimate.p50_minutes
    await ctx.s.flush()
    room = None
    if appointment.doctor_id is not None:
        doctor = await ctx.s.get(Doctor, appointment.doctor_id)
        room = doctor.room if doctor is not None else None
    return CheckedIn(
        ticket=await _ticket_out(ctx, entry, dept=dept, estimate=estimate),
        department_name=dept.name,
        scheduled_at=appointment.scheduled_at,
        room=room,
    )


__all__ = ["check_in", "department_waits", "register_for_messages"]
