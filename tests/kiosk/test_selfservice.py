"""What a patient does alone at a kiosk, through the core (both backends): the waits of the
services on offer, asking for an SMS (matched or registered, consent audited), and checking in
for an appointment by booking code or by phone and date of birth."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from iqms.core.enums import AppointmentStatus, NotifyChannel, TicketSource
from iqms.core.errors import InvalidTransition, NotFound, ValidationError
from iqms.core.service import Context
from iqms.core.services import audit, clinic, patients, queue, selfservice
from tests.kiosk.support import kiosk
from tests.test_queue_fixtures import small_clinic

BIRTH = date(1984, 2, 11)
CONSENT = "I agree to get SMS from the clinic about my place in the queue."


async def test_waits_of_the_open_departments_grow_with_the_queue(ctx: Context) -> None:
    c = await small_clinic(ctx)
    at = await kiosk(ctx)
    before = {w.code: w for w in await selfservice.department_waits(at)}
    assert set(before) == {"GEN", "PED"}
    assert before["GEN"].waiting == 0 and before["GEN"].doctors_available == 2
    for _ in range(6):
        await queue.issue(ctx, department="GEN")
    after = {w.code: w for w in await selfservice.department_waits(at)}
    assert after["GEN"].waiting == 6
    assert after["GEN"].estimate.p50_minutes > before["GEN"].estimate.p50_minutes
    assert after["GEN"].estimate.p90_minutes >= after["GEN"].estimate.p50_minutes
    # The wait shown is the wait of the ticket the next press would get.
    ticket = await queue.issue(at, department="GEN")
    assert ticket.estimate is not None
    assert ticket.estimate.p50_minutes == pytest.approx(after["GEN"].estimate.p50_minutes, 0.05)

    await clinic.deactivate_department(ctx, department="PED")
    assert [w.code for w in await selfservice.department_waits(at)] == ["GEN"]
    limited = await selfservice.department_waits(at, departments=["GEN", "PED"])
    assert [w.name for w in limited] == [c.gen.name]  # a closed one is not offered
    with pytest.raises(NotFound):
        await selfservice.department_waits(at, departments=["XRAY"])


async def test_asking_for_an_sms_registers_a_new_patient_with_consent(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    at = await kiosk(ctx)
    patient_id = await selfservice.register_for_messages(
        at, full_name="Lucía Pérez", phone="07911 123456", date_of_birth=BIRTH,
        consent_text=CONSENT, language="es",
    )  # fmt: skip
    record = await patients.get(ctx, patient=patient_id)
    assert (record.full_name, record.phone, record.date_of_birth) == (
        "Lucía Pérez",
        "+447911123456",
        BIRTH,
    )
    assert (record.notify_channel, record.language) == (NotifyChannel.SMS, "es")
    [consent] = await audit.show(ctx, action="patient.consent_given")
    assert consent.actor == "entrance" and consent.target_id == str(patient_id)
    assert consent.details["consent_text"] == CONSENT and consent.details["channel"] == "sms"

    # Their ticket gets its SMS (in the outbox, with the ticket's number).
    ticket = await queue.issue(at, department="GEN", patient=patient_id)
    from sqlalchemy import select

    from iqms.core.models import Notification

    async with ctx.db.transaction(readonly=True) as s:
        bodies = (await s.execute(select(Notification.body))).scalars().all()
    assert len(bodies) == 1 and ticket.ticket_number in bodies[0]


async def test_a_known_patient_is_matched_not_registered_again(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    known = await patients.register(
        ctx, full_name="Lucia Perez", phone="+447911123456", date_of_birth=BIRTH
    )
    at = await kiosk(ctx)
    # Accents, case and word order aside, the same person.
    same = await selfservice.register_for_messages(
        at, full_name="PÉREZ lucía", phone="07911123456", date_of_birth=BIRTH,
        consent_text=CONSENT,
    )  # fmt: skip
    assert same == known.id
    record = await patients.get(ctx, patient=known.id)
    assert record.notify_channel == NotifyChannel.SMS and record.full_name == "Lucia Perez"
    # Same phone and birthday, another name (a twin): a record of their own.
    twin = await selfservice.register_for_messages(
        at, full_name="Marta Perez", phone="07911123456", date_of_birth=BIRTH,
        consent_text=CONSENT,
    )  # fmt: skip
    assert twin != known.id
    matched = [r.details["matched"] for r in await audit.show(ctx, action="patient.consent_given")]
    assert matched == [True, False]


async def test_no_sms_without_consent_or_a_valid_phone(ctx: Context) -> None:
    at = await kiosk(ctx)
    with pytest.raises(ValidationError, match="consent"):
        await selfservice.register_for_messages(
            at, full_name="A B", phone="07911123456", date_of_birth=BIRTH, consent_text=" "
        )
    with pytest.raises(ValidationError) as caught:
        await selfservice.register_for_messages(
            at, full_name="A B", phone="12", date_of_birth=BIRTH, consent_text=CONSENT
        )
    assert caught.value.field == "phone"


async def appointment_in(ctx: Context, minutes: int, *, doctor: str | None = None):  # type: ignore[no-untyped-def]
    patient = await patients.register(
        ctx, full_name="Omar Haddad", phone="+447911223344", date_of_birth=BIRTH
    )
    return await clinic.book_appointment(
        ctx,
        patient=patient.id,
        department="GEN",
        scheduled_at=ctx.now() + timedelta(minutes=minutes),
        doctor=doctor,
    )


async def test_check_in_by_booking_code_gives_the_ticket_to_print(ctx: Context) -> None:
    c = await small_clinic(ctx)
    at = await kiosk(ctx)
    appt = await appointment_in(ctx, 30, doctor="drsmith")
    assert appt.booking_code is not None and len(appt.booking_code) == 8
    code = f"{appt.booking_code[:4]} {appt.booking_code[4:]}"  # typed with a space
    done = await selfservice.check_in(at, booking_code=code)
    ticket = done.ticket
    assert ticket.source == TicketSource.APPOINTMENT and ticket.position == 1
    assert ticket.estimate is not None and ticket.status_code
    assert (done.department_name, done.room) == (c.gen.name, "Room 1")
    assert done.scheduled_at == appt.scheduled_at
    listed = await clinic.list_appointments(ctx)
    assert [(a.status, a.ticket) for a in listed] == [
        (AppointmentStatus.CHECKED_IN, ticket.ticket_number)
    ]
    [record] = await audit.show(ctx, action="appointment.checked_in")
    assert record.actor == "entrance" and record.details["found_by"] == "booking_code"

    with pytest.raises(InvalidTransition) as again:
        await selfservice.check_in(at, booking_code=appt.booking_code)
    assert again.value.details["reason"] == "checked_in"


async def test_check_in_by_phone_and_date_of_birth(ctx: Context) -> None:
    await small_clinic(ctx)
    at = await kiosk(ctx)
    await appointment_in(ctx, -10)
    done = await selfservice.check_in(at, phone="07911 223344", date_of_birth="1984-02-11")
    assert done.ticket.ticket_number == "A-001" and done.room is None
    with pytest.raises(NotFound) as missing:
        await selfservice.check_in(at, phone="07911 223344", date_of_birth="1984-02-12")
    assert missing.value.details["reason"] == "not_found"


async def test_check_in_refusals_say_why(ctx: Context) -> None:
    await small_clinic(ctx)
    at = await kiosk(ctx)
    later = await appointment_in(ctx, 5 * 60)
    with pytest.raises(InvalidTransition) as early:
        await selfservice.check_in(at, booking_code=later.booking_code)
    assert early.value.details["reason"] == "too_early"
    with pytest.raises(NotFound) as unknown:
        await selfservice.check_in(at, booking_code="00000000" if later.booking_code != "00000000"
                                   else "00000001")  # fmt: skip
    assert unknown.value.details["reason"] == "not_found"
    with pytest.raises(ValidationError) as short:
        await selfservice.check_in(at, booking_code="1234")
    assert short.value.details["reason"] == "format"
    with pytest.raises(ValidationError):
        await selfservice.check_in(at)
