"""The doctor console through the Pilot on a real SQLite database, as a doctor uses it.

Each test presses the keys a doctor would, asserts what the screen shows and
then what the core holds. (PostgreSQL, where the backend matters, is in
``test_doctor_postgres.py``.)
"""

from __future__ import annotations

from pathlib import Path

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.enums import DoctorStatus, Role, TicketStatus
from iqms.core.schemas.queue import TicketOut
from iqms.core.service import Context
from iqms.core.services import audit, clinic, queue
from iqms.tui.auth import PasswordLogin
from iqms.tui.dialogs import ConfirmDialog, ListDialog, TextDialog
from iqms.tui.doctor import DoctorConsole
from iqms.tui.doctor.screen import DoctorScreen
from iqms.tui.doctor.widgets import QueueList
from tests.system import system_context
from tests.tui.doctor_clinic import (
    call_next,
    doctor_app,
    doctor_clinic,
    doctor_screen,
    issue,
    noticed,
    on_doctor_screen,
    shows,
    start,
    until,
)
from tests.tui.support import PASSWORD, add_account, screen_text, showing


async def test_call_next_start_and_done_show_each_step_and_the_core_agrees(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(core)
    first = await issue(core, c.patients["Amelia Hughes"], category=3)
    await queue.set_note(core, ticket=first.id, note="Needs an interpreter (Polish)")
    clock.advance(minutes=5)
    await issue(core, c.patients["Oliver Brown"])
    clock.advance(minutes=40)
    app = doctor_app(tui_settings, c.smith, clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: on_doctor_screen(app), what="the doctor console")
        assert shows(app, "Dr Sam Smith", "Room 1", "AVAILABLE", "GEN General Practice")
        assert shows(app, "No patient with you.", "to call the next patient: A-001")
        assert shows(app, "My queue · 2 waiting", "Waiting for you: 2")

        await call_next(pilot, "A-001", "Amelia Hughes, 75 y")
        assert shows(app, "3 Urgent", "seen within 30 min", "waited 45 min (15 min over)")
        assert shows(app, "Note: Needs an interpreter (Polish)")
        await until(pilot, lambda: shows(app, "My queue · 1 waiting"))

        await start(pilot, "IN SERVICE 00:00")
        clock.advance(minutes=12, seconds=5)
        await until(pilot, lambda: shows(app, "IN SERVICE 12:05"), what="the clock running")

        await pilot.press("d")
        await until(pilot, lambda: shows(app, "No patient with you."))
        await until(pilot, lambda: shows(app, "Today: 1 seen · mean consultation 12 min"))
    done = await queue.get_ticket(core, ticket=first.id)
    assert done.status == TicketStatus.SERVED and done.called_room == "Room 1"
    assert done.finished_at is not None and done.started_at is not None
    assert (done.finished_at - done.started_at).total_seconds() == 12 * 60 + 5
    viewed = await audit.show(core, action="patient.viewed")
    assert [r.actor for r in viewed] == ["drsmith"]  # the record was read once, and audited


async def test_done_straight_from_called_serves_with_the_start_at_the_same_moment(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(core)
    ticket = await issue(core, c.patients["Oliver Brown"])
    app = doctor_app(tui_settings, c.smith, clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: on_doctor_screen(app))
        await call_next(pilot, "Oliver Brown")
        clock.advance(minutes=9)
        await pilot.press("d")
        await until(pilot, lambda: shows(app, "No patient with you."))
        await until(pilot, lambda: shows(app, "Today: 1 seen · mean consultation —"))
    served = await queue.get_ticket(core, ticket=ticket.id)
    assert served.status == TicketStatus.SERVED
    assert served.started_at == served.finished_at == clock.now()
    record = (await audit.show(core, action="ticket.served"))[-1]
    assert "shortcut" in record.details


async def test_recall_twice_then_no_show(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(core)
    ticket = await issue(core, c.patients["Mia Wilson"])
    app = doctor_app(tui_settings, c.smith, clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: on_doctor_screen(app))
        await call_next(pilot, "Mia Wilson, 15 mo")
        await pilot.press("r")
        await until(pilot, lambda: shows(app, "recalled once"))
        await pilot.press("r")
        await until(pilot, lambda: shows(app, "recalled 2×"))
        await pilot.press("x")
        await until(pilot, lambda: shows(app, "No patient with you."))
        await until(pilot, lambda: shows(app, "0 seen", "1 no-show"))
    gone = await queue.get_ticket(core, ticket=ticket.id)
    assert gone.status == TicketStatus.NO_SHOW and gone.recall_count == 2


async def test_transfer_the_patient_in_the_room_to_another_department(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(core)
    ticket = await issue(core, c.patients["Mia Wilson"], category=3)
    await queue.set_note(core, ticket=ticket.id, note="Allergic to penicillin")
    clock.advance(minutes=30)
    app = doctor_app(tui_settings, c.smith, clock)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await until(pilot, lambda: on_doctor_screen(app))
        await call_next(pilot)
        await start(pilot)
        await pilot.press("t")
        await until(pilot, lambda: showing(app, ListDialog))
        assert shows(app, "Transfer A-001 to", "Paediatrics", "Dr Jo Jones · Room 2")
        await pilot.press("down", "enter")  # GEN, then PED
        await until(pilot, lambda: shows(app, "No patient with you."))
        assert noticed(app, "A-001 transferred: now P-001 in PED")
    old = await queue.get_ticket(core, ticket=ticket.id)
    new = await queue.get_ticket(core, ticket="P-001")
    assert old.status == TicketStatus.TRANSFERRED
    assert new.status == TicketStatus.WAITING and new.department_code == "PED"
    assert new.arrived_at == ticket.arrived_at and new.note == "Allergic to penicillin"


async def ticket_seen_from_another_terminal(
    settings: Settings, clock: FrozenClock, ticket: object
) -> TicketOut:
    """The ticket as a terminal that has read nothing yet sees it (no estimate inputs cached)."""
    async with system_context(settings, clock) as other:
        return await queue.get_ticket(other, ticket=ticket)  # type: ignore[arg-type]


async def test_pausing_takes_the_doctor_out_of_the_estimates_and_back(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(core)
    for _ in range(6):
        await issue(core)
    last = await issue(core)
    both = await queue.get_ticket(core, ticket=last.id)
    assert both.estimate is not None and both.estimate.servers == 2
    app = doctor_app(tui_settings, c.smith, clock)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await until(pilot, lambda: on_doctor_screen(app))
        await pilot.press("p")
        await until(pilot, lambda: shows(app, "PAUSED", "p Available"))
        paused = await ticket_seen_from_another_terminal(tui_settings, clock, last.id)
        assert (await clinic.get_doctor(core, doctor="drsmith")).status == DoctorStatus.PAUSED
        assert paused.estimate is not None and paused.estimate.servers == 1
        assert paused.estimate.p50_minutes > both.estimate.p50_minutes  # one doctor fewer
        await pilot.press("n")  # a paused doctor calls nobody; the core says why
        await until(pilot, lambda: noticed(app, "is paused; set the status to available"))
        await pilot.press("p")
        await until(pilot, lambda: shows(app, "AVAILABLE", "p Pause"))
    assert (await clinic.get_doctor(core, doctor="drsmith")).status == DoctorStatus.AVAILABLE
    assert (await queue.get_ticket(core, ticket=last.id)).status == TicketStatus.WAITING


async def test_one_patient_at_a_time_says_why_or_offers_to_finish_the_one_in_the_room(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(core)
    first = await issue(core, c.patients["Amelia Hughes"])
    second = await issue(core, c.patients["Oliver Brown"])
    app = doctor_app(tui_settings, c.smith, clock)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await until(pilot, lambda: on_doctor_screen(app))
        await call_next(pilot, "Amelia Hughes")
        await pilot.press("n")  # still called: refused, with the reason
        await until(pilot, lambda: noticed(app, "Not calling anyone: A-001 is called"))
        assert (await queue.get_ticket(core, ticket=second.id)).status == TicketStatus.WAITING

        await start(pilot)
        await pilot.press("n")  # in the room: offered to finish first
        await until(pilot, lambda: showing(app, ConfirmDialog))
        assert shows(app, "A-001 is still in the room", "Finish A-001 (done) and call")
        await pilot.press("n")  # no: nothing changes
        await until(pilot, lambda: showing(app, DoctorScreen))
        assert (await queue.get_ticket(core, ticket=first.id)).status == TicketStatus.IN_SERVICE

        await pilot.press("n")
        await until(pilot, lambda: showing(app, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: shows(app, "Oliver Brown", "CALLED"))
    assert (await queue.get_ticket(core, ticket=first.id)).status == TicketStatus.SERVED
    assert (await queue.get_ticket(core, ticket=second.id)).status == TicketStatus.CALLED


async def test_hold_a_patient_and_send_them_back_to_the_queue(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(core)
    ticket = await issue(core, c.patients["Amelia Hughes"])
    await issue(core, c.patients["Oliver Brown"])
    app = doctor_app(tui_settings, c.smith, clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: on_doctor_screen(app))
        await call_next(pilot)
        await start(pilot)
        await pilot.press("h")  # sent for a blood test
        await until(pilot, lambda: shows(app, "No patient with you.", "on hold"))
        assert (await queue.get_ticket(core, ticket=ticket.id)).status == TicketStatus.HELD
        rows = doctor_screen(app).query_one(QueueList)
        assert rows.cursor == 1 and "A-002" in rows.rows[1][1].plain  # still on A-002
        await pilot.press("up", "b")  # back from the test: in the queue with its place kept
        await until(pilot, lambda: not shows(app, "on hold"))
    back = await queue.get_ticket(core, ticket=ticket.id)
    assert back.status == TicketStatus.WAITING and back.position == 1


async def test_call_a_chosen_ticket_from_the_list_out_of_turn(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(core)
    await issue(core, c.patients["Amelia Hughes"])
    await issue(core, c.patients["Oliver Brown"])
    chosen = await issue(core, c.patients["Mia Wilson"])
    app = doctor_app(tui_settings, c.smith, clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: on_doctor_screen(app))
        await pilot.press("down", "down", "c")
        await until(pilot, lambda: shows(app, "A-003", "Mia Wilson", "CALLED"))
    assert (await queue.get_ticket(core, ticket=chosen.id)).status == TicketStatus.CALLED
    assert (await queue.get_ticket(core, ticket="A-001")).status == TicketStatus.WAITING


async def test_changing_room_from_the_console_and_from_the_command_line(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(core)
    app = doctor_app(tui_settings, c.smith, clock, room="Room 4")  # iqms doctor --room "Room 4"
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: on_doctor_screen(app) and shows(app, "Room 4"))
        await pilot.press("m")
        await until(pilot, lambda: showing(app, TextDialog))
        await pilot.press(*["backspace"] * 6, "enter")  # no room at all
        await until(pilot, lambda: "This cannot be empty." in screen_text(app))
        assert isinstance(app.screen, TextDialog)  # still asking
        assert (await clinic.get_doctor(core, doctor="drsmith")).room == "Room 4"
        await pilot.press(*"Room 9", "enter")
        await until(pilot, lambda: shows(app, "Room 9", "AVAILABLE"))
    assert (await clinic.get_doctor(core, doctor="drsmith")).room == "Room 9"


async def test_a_doctor_account_without_a_room_is_told_what_to_ask_for(
    core: Context, tmp_path: Path, tui_settings: Settings, clock: FrozenClock
) -> None:
    await add_account(core, "drnew", Role.DOCTOR, "Dr New")
    app = DoctorConsole(tui_settings, PasswordLogin(), clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "Password" in screen_text(app))
        await pilot.press(*"drnew", "enter", *PASSWORD, "enter")
        await until(pilot, lambda: shows(app, "drnew is not set up as a doctor with a room"))
        assert not app.signed_in
