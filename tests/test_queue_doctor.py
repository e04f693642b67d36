"""What the doctor console needs from the core: done from called, the day, notes, rooms, moves.

Each on SQLite and PostgreSQL, through the services as a doctor's console calls them.
"""

from __future__ import annotations

import pytest

from iqms.core.clock import FrozenClock
from iqms.core.enums import Role, TicketStatus
from iqms.core.errors import Conflict, InvalidTransition, PermissionDenied, ValidationError
from iqms.core.service import Context
from iqms.core.services import audit, clinic, patients, queue
from tests.test_queue_fixtures import as_doctor, as_user, small_clinic


async def test_done_straight_from_called_records_the_start_and_is_audited_as_a_shortcut(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    await queue.issue(ctx, department="GEN")
    called = await queue.call_next(smith)
    assert called is not None
    clock.advance(minutes=7)
    done = await queue.serve(smith, ticket=called.id)
    assert done.status == TicketStatus.SERVED
    assert done.started_at == done.finished_at == clock.now()
    record = (await audit.show(ctx, action="ticket.served"))[-1]
    assert record.actor == "drsmith"
    assert record.details["shortcut"] == "served from called; start recorded at the same moment"
    assert record.details["service_minutes"] is None  # unknown, not zero
    day = await queue.doctor_day(smith)
    assert (day.seen, day.timed, day.mean_consultation_minutes) == (1, 0, None)


async def test_the_day_summary_counts_own_patients_lengths_and_no_shows(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    jones = as_doctor(ctx, c.doctors["drjones"])
    for _ in range(5):
        await queue.issue(ctx, department="GEN")
    for minutes in (10, 20):
        t = await queue.call_next(smith)
        assert t is not None
        await queue.start(smith, ticket=t.id)
        clock.advance(minutes=minutes)
        await queue.serve(smith, ticket=t.id)
    gone = await queue.call_next(smith)
    assert gone is not None
    await queue.no_show(smith, ticket=gone.id)
    moved = await queue.call_next(smith)
    assert moved is not None
    await queue.transfer(smith, ticket=moved.id, department="PED")
    colleague = await queue.call_next(jones)  # a colleague's patient is not in smith's day
    assert colleague is not None
    await queue.serve(jones, ticket=colleague.id)

    day = await queue.doctor_day(smith)
    assert (day.seen, day.timed, day.no_shows, day.transferred) == (2, 2, 1, 1)
    assert day.mean_consultation_minutes == 15.0
    with pytest.raises(PermissionDenied):
        await queue.doctor_day(smith, doctor=c.doctors["drjones"].id)
    assert (await queue.doctor_day(ctx, doctor="drjones")).seen == 1  # reception may look

    clock.advance(days=1)  # a new day starts at zero
    fresh = await queue.doctor_day(smith)
    assert (fresh.seen, fresh.no_shows, fresh.mean_consultation_minutes) == (0, 0, None)


async def test_doctors_hold_return_and_transfer_only_the_patients_they_called(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    jones = as_doctor(ctx, c.doctors["drjones"])
    first = await queue.issue(ctx, department="GEN")
    pool = await queue.issue(ctx, department="GEN")
    called = await queue.call_next(smith)
    assert called is not None and called.id == first.id
    await queue.start(smith, ticket=called.id)

    for move in (
        lambda: queue.hold(jones, ticket=called.id),
        lambda: queue.transfer(jones, ticket=called.id, department="PED"),
        lambda: queue.hold(smith, ticket=pool.id),  # waiting, not called by anyone
    ):
        with pytest.raises(PermissionDenied, match="doctors may only move their own patients"):
            await move()

    held = await queue.hold(smith, ticket=called.id, reason="sent for a blood test")
    assert held.status == TicketStatus.HELD  # from in service: seen again on return
    view = await queue.doctor_queue(smith)
    assert [t.ticket_number for t in view.held] == [first.ticket_number]
    assert view.current == []
    with pytest.raises(PermissionDenied):
        await queue.return_to_queue(jones, ticket=called.id)
    back = await queue.return_to_queue(smith, ticket=called.id)
    assert back.status == TicketStatus.WAITING and back.position == 1  # its place kept

    again = await queue.call_next(smith)
    assert again is not None and again.id == first.id
    await queue.start(smith, ticket=first.id)
    await queue.set_note(ctx, ticket=first.id, note="Needs an interpreter (Polish)")
    clock.advance(minutes=5)
    # Seen, then referred: a patient in the room can be transferred.
    moved = await queue.transfer(smith, ticket=first.id, department="PED")
    assert moved.department_code == "PED" and moved.status == TicketStatus.WAITING
    assert moved.arrived_at == first.arrived_at  # keeps the arrival time
    assert moved.note == "Needs an interpreter (Polish)"  # the note follows the patient
    old = await queue.get_ticket(ctx, ticket=first.id)
    assert old.status == TicketStatus.TRANSFERRED


async def test_reception_notes_are_one_short_line_on_open_tickets(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    staff = await as_user(ctx, "rita", Role.STAFF)
    t = await queue.issue(staff, department="GEN")
    noted = await queue.set_note(
        staff, ticket=t.ticket_number, note="  wheelchair,\n  hard of hearing "
    )
    assert noted.note == "wheelchair, hard of hearing"
    assert (await queue.queue_list(staff))[0].note == "wheelchair, hard of hearing"
    with pytest.raises(ValidationError, match="at most 300"):
        await queue.set_note(staff, ticket=t.id, note="x" * 301)
    with pytest.raises(ValidationError, match="plain text"):
        await queue.set_note(staff, ticket=t.id, note="bell\x07")
    record = (await audit.show(ctx, action="ticket.note_set"))[-1]
    assert record.details == {
        "ticket": t.ticket_number, "status": "waiting", "had_note": False, "has_note": True,
    }  # fmt: skip
    assert "wheelchair" not in str(record.details)  # the text itself stays out of the trail
    cleared = await queue.set_note(staff, ticket=t.id, note="")
    assert cleared.note is None
    await queue.cancel(staff, ticket=t.id)
    with pytest.raises(InvalidTransition, match="notes are for open tickets"):
        await queue.set_note(staff, ticket=t.id, note="too late")


async def test_a_doctor_changes_their_own_room_but_not_with_a_patient_called(
    ctx: Context,
) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    moved = await clinic.change_room(smith, room="Room 7")
    assert moved.room == "Room 7"
    with pytest.raises(PermissionDenied):
        await clinic.change_room(smith, room="Room 8", doctor="drjones")
    await queue.issue(ctx, department="GEN")
    called = await queue.call_next(smith)
    assert called is not None and called.called_room == "Room 7"
    with pytest.raises(Conflict, match="was called to Room 7; finish it before changing room"):
        await clinic.change_room(smith, room="Room 9")
    assert (await clinic.get_doctor(ctx, doctor="drsmith")).room == "Room 7"
    with pytest.raises(ValidationError):
        await clinic.change_room(smith, room="")
    updated = await audit.show(ctx, action="doctor.updated")
    assert updated[-1].details == {"room": ["Room 1", "Room 7"]}


async def test_the_doctors_queue_counts_by_category_and_estimates_every_shown_ticket(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    for _ in range(4):  # reserved for a colleague, ahead of everything smith may call
        await queue.issue(ctx, department="GEN", doctor="drjones", triage_category=2)
    clock.advance(minutes=1)
    await queue.issue(ctx, department="GEN", triage_category=3)
    await queue.issue(ctx, department="GEN")
    await queue.issue(ctx, department="GEN", doctor="drsmith")
    patient = await patients.register(ctx, full_name="Amelia Hughes", date_of_birth="1950-02-01")
    await queue.issue(ctx, department="GEN", patient=patient.id, triage_category=5)

    view = await queue.doctor_queue(smith, limit=3)
    assert view.department_name == "General Practice"
    assert view.waiting_by_category == {3: 1, 4: 2, 5: 1}  # colleague's tickets left out
    assert view.waiting_count == 4
    assert [t.triage_category for t in view.waiting] == [3, 4, 4]
    # The department's first tickets are the colleague's: the shown ones still get estimates.
    assert all(t.estimate is not None for t in view.waiting)
    assert view.waiting[0].position == 5  # behind the colleague's four very urgent patients
