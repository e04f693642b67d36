"""Clinic setup: departments with triage overrides, doctors and their status, appointments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from iqms.core.clock import FrozenClock
from iqms.core.enums import AppointmentStatus, DoctorStatus, Role, TicketSource
from iqms.core.errors import Conflict, InvalidTransition, PermissionDenied, ValidationError
from iqms.core.models import AuditRecord
from iqms.core.service import Context
from iqms.core.services import clinic, patients, queue
from tests.test_queue_fixtures import add_user, as_doctor, as_role, small_clinic


async def _last_audit(ctx: Context) -> AuditRecord:
    async with ctx.db.transaction(readonly=True) as s:
        return (
            await s.execute(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1))
        ).scalar_one()


async def test_departments_with_target_overrides(ctx: Context) -> None:
    gen = await clinic.create_department(
        ctx, code="gen", name="General  Practice", ticket_prefix="a", triage_targets={"3": 45}
    )
    assert (gen.code, gen.name, gen.ticket_prefix) == ("GEN", "General Practice", "A")
    assert gen.targets == {1: 0, 2: 10, 3: 45, 4: 120, 5: 240}
    assert (await _last_audit(ctx)).action == "department.created"
    updated = await clinic.update_department(ctx, department="GEN", triage_targets={"4": 90})
    assert updated.target_overrides == {"3": 45, "4": 90}
    cleared = await clinic.update_department(ctx, department=gen.id, clear_targets=True)
    assert cleared.targets[3] == 60 and cleared.target_overrides == {}
    await clinic.create_department(ctx, code="PED", name="Paediatrics", ticket_prefix="P")
    closed = await clinic.deactivate_department(ctx, department="PED")
    assert not closed.active
    assert [d.code for d in await clinic.list_departments(ctx)] == ["GEN"]
    everything = await clinic.list_departments(ctx, include_inactive=True)
    assert [d.code for d in everything] == ["GEN", "PED"]
    reopened = await clinic.update_department(ctx, department="PED", active=True)
    assert reopened.active


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"code": "no spaces!"}, "code"),
        ({"ticket_prefix": "A1"}, "ticket_prefix"),
        ({"name": "  "}, "name"),
        ({"triage_targets": {"6": 10}}, "triage_targets"),
        ({"triage_targets": {"2": 5000}}, "triage_targets"),
        ({"default_service_minutes": 0}, "default_service_minutes"),
    ],
)
async def test_department_validation_names_the_field(
    ctx: Context, fields: dict[str, object], bad_field: str
) -> None:
    values: dict[str, object] = {"code": "GEN", "name": "General", "ticket_prefix": "A"}
    values.update(fields)
    with pytest.raises(ValidationError) as err:
        await clinic.create_department(ctx, **values)  # type: ignore[arg-type]
    assert err.value.field == bad_field
    assert await clinic.list_departments(ctx, include_inactive=True) == []


async def test_duplicate_code_or_prefix_is_a_conflict(ctx: Context) -> None:
    await clinic.create_department(ctx, code="GEN", name="General", ticket_prefix="A")
    with pytest.raises(Conflict, match="already uses code GEN"):
        await clinic.create_department(ctx, code="GEN", name="Other", ticket_prefix="B")
    with pytest.raises(Conflict, match="already uses ticket prefix A"):
        await clinic.create_department(ctx, code="ORT", name="Ortho", ticket_prefix="a")
    await clinic.create_department(ctx, code="ORT", name="Ortho", ticket_prefix="O")
    with pytest.raises(Conflict):
        await clinic.update_department(ctx, department="ORT", ticket_prefix="A")


async def test_doctors_from_doctor_accounts_only(ctx: Context) -> None:
    await clinic.create_department(ctx, code="GEN", name="General", ticket_prefix="A")
    await add_user(ctx, "rita", Role.STAFF)
    with pytest.raises(ValidationError, match="staff account, not a doctor") as err:
        await clinic.create_doctor(ctx, user="rita", department="GEN", room="Room 1")
    assert err.value.field == "user"
    with pytest.raises(ValidationError):
        await clinic.create_doctor(ctx, user="nobody", department="GEN", room="Room 1")
    await add_user(ctx, "drsmith", Role.DOCTOR, "Dr Sam Smith")
    doc = await clinic.create_doctor(ctx, user="DrSmith", department="gen", room=" Room  1 ")
    assert (doc.full_name, doc.room, doc.status) == ("Dr Sam Smith", "Room 1", DoctorStatus.OFF)
    with pytest.raises(Conflict):
        await clinic.create_doctor(ctx, user="drsmith", department="GEN", room="Room 2")
    assert [d.username for d in await clinic.list_doctors(ctx, department="GEN")] == ["drsmith"]


async def test_doctors_set_only_their_own_status(ctx: Context) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    paused = await clinic.set_doctor_status(smith, status="paused")
    assert paused.status == DoctorStatus.PAUSED and paused.username == "drsmith"
    with pytest.raises(PermissionDenied):
        await clinic.set_doctor_status(smith, doctor="drjones", status="off")
    staff = as_role(ctx, "staff")
    assert (await clinic.set_doctor_status(staff, doctor="drjones", status="off")).status == "off"
    with pytest.raises(ValidationError) as bad:
        await clinic.set_doctor_status(staff, doctor="drjones", status="asleep")
    assert bad.value.field == "status"
    available = await clinic.list_doctors(ctx, status="available")
    assert [d.username for d in available] == ["drpatel"]


async def test_moving_a_doctor_with_a_patient_in_the_room_is_refused(ctx: Context) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    await queue.issue(ctx, department="GEN")
    await queue.call_next(smith)
    moved = await clinic.assign_room(ctx, doctor="drsmith", room="Room 9")
    assert moved.room == "Room 9"
    with pytest.raises(Conflict, match="A-001"):
        await clinic.assign_room(ctx, doctor="drsmith", room="Room 5", department="PED")
    await queue.start(smith, ticket="A-001")
    await queue.serve(smith, ticket="A-001")
    elsewhere = await clinic.assign_room(ctx, doctor="drsmith", room="Room 5", department="PED")
    assert elsewhere.department_code == "PED"


async def test_appointment_check_in_issues_a_ticket_due_at_the_appointment(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    p = await patients.register(ctx, full_name="Harry Walker")
    at = clock.now() + timedelta(minutes=30)
    appt = await clinic.book_appointment(
        ctx, patient=p.mrn, department="GEN", doctor="drjones", scheduled_at=at
    )
    assert appt.status == AppointmentStatus.BOOKED and appt.ticket is None
    walk_in = await queue.issue(ctx, department="GEN")  # due in 120 minutes
    clock.advance(minutes=10)
    kiosk = as_role(ctx, "kiosk")
    checked = await clinic.check_in(kiosk, appointment=appt.id)
    assert checked.status == AppointmentStatus.CHECKED_IN and checked.ticket == "A-002"
    ticket = await queue.get_ticket(ctx, ticket="A-002")
    assert ticket.source == TicketSource.APPOINTMENT and ticket.due_at == at
    assert ticket.doctor_id == c.doctors["drjones"].id
    jones = as_doctor(ctx, c.doctors["drjones"])
    first = await queue.call_next(jones)
    assert first is not None and first.ticket_number == "A-002"  # due before the walk-in
    assert walk_in.ticket_number == "A-001"
    with pytest.raises(InvalidTransition):
        await clinic.check_in(kiosk, appointment=appt.id)


async def test_appointment_rules(ctx: Context, clock: FrozenClock) -> None:
    await small_clinic(ctx)
    p = await patients.register(ctx, full_name="Noah Taylor")
    other = await patients.register(ctx, full_name="Isla Wilson")
    later = await clinic.book_appointment(
        ctx, patient=p.id, department="PED", scheduled_at=clock.now() + timedelta(hours=5)
    )
    with pytest.raises(InvalidTransition, match="too early"):
        await clinic.check_in(ctx, appointment=later.id)
    with pytest.raises(PermissionDenied):
        await clinic.check_in(as_role(ctx, "patient", patient_id=other.id), appointment=later.id)
    with pytest.raises(ValidationError) as wrong_doctor:
        await clinic.book_appointment(
            ctx, patient=p.id, department="PED", doctor="drsmith", scheduled_at=later.scheduled_at
        )
    assert wrong_doctor.value.field == "doctor"
    with pytest.raises(ValidationError):
        await clinic.book_appointment(
            ctx, patient=p.id, department="PED", scheduled_at=clock.now() - timedelta(days=1)
        )
    cancelled = await clinic.cancel_appointment(ctx, appointment=later.id)
    assert cancelled.status == AppointmentStatus.CANCELLED
    with pytest.raises(InvalidTransition):
        await clinic.check_in(ctx, appointment=later.id)
    today = await clinic.list_appointments(ctx, department="PED")
    assert [a.status for a in today] == [AppointmentStatus.CANCELLED]


async def test_doctor_changes_are_published_for_boards(ctx: Context, db_url: str) -> None:
    from iqms.core.db import Database
    from iqms.core.queue.events import DoctorChanged, subscribe

    c = await small_clinic(ctx)
    listener = Database(db_url)
    try:
        async with subscribe(listener, department_id=c.ped.id, poll_interval=0.02) as events:
            await clinic.set_doctor_status(ctx, doctor="drsmith", status="paused")  # GEN
            await clinic.set_doctor_status(ctx, doctor="drpatel", status="off")
            got = await events.next(within=5)
            assert isinstance(got, DoctorChanged)
            assert (got.room, got.status) == ("Room 5", "off")
            await clinic.assign_room(ctx, doctor="drsmith", room="Room 6", department="PED")
            moved = await events.next(within=5)
            assert isinstance(moved, DoctorChanged) and moved.room == "Room 6"
            assert moved.previous_department_id == c.gen.id
    finally:
        await listener.dispose()
