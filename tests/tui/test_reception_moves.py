"""Moves on the selected ticket, from the keyboard: each checked on screen and in the core."""

from __future__ import annotations

from iqms.core.clock import FrozenClock
from iqms.core.enums import AppointmentStatus, DoctorStatus, TicketStatus
from iqms.core.service import Context
from iqms.core.services import clinic, queue
from iqms.tui.dialogs import ListDialog, TextDialog, TriageDialog
from iqms.tui.reception.app import ReceptionApp
from iqms.tui.reception.dialogs import TransferDialog
from iqms.tui.reception.doctors import DoctorsScreen
from tests.tui.desk import (
    Desk,
    book,
    open_queue,
    queue_open,
    queue_screen,
    row_of,
    select,
)
from tests.tui.support import screen_text, showing, wait_until


async def test_change_category_transfer_hold_and_return(
    desk_core: Context, desk_app: ReceptionApp, desk: Desk
) -> None:
    core, app = desk_core, desk_app
    async with queue_open(app) as pilot:
        await select(pilot, "A-001")
        await pilot.press("t")
        await wait_until(pilot, lambda: showing(app, TriageDialog))

        def dialog_lines() -> list[str]:
            return [" ".join(line.split()) for line in screen_text(app).splitlines()]

        await wait_until(pilot, lambda: any("2 Very urgent seen within 10 min" in line
                                            for line in dialog_lines()), what="the categories")  # fmt: skip
        lines = dialog_lines()
        assert any("3 Urgent seen within 30 min" in line for line in lines)  # GEN's own target
        assert any("4 Standard seen within 2 h 00 (now)" in line for line in lines)
        await pilot.press("2")
        await wait_until(
            pilot, lambda: " 2 " in row_of(app, "A-001") and "in 0m" not in row_of(app, "A-001")
        )
        assert (await queue.get_ticket(core, ticket="A-001")).triage_category == 2
        assert queue_screen(app).selected().ticket_number == "A-001"  # type: ignore[union-attr]

        await pilot.press("h")  # hold
        await wait_until(pilot, lambda: "on hold" in row_of(app, "A-001"))
        assert (await queue.get_ticket(core, ticket="A-001")).status == TicketStatus.HELD
        await pilot.press("h")  # and back
        await wait_until(pilot, lambda: "waiting" in row_of(app, "A-001"))
        assert (await queue.get_ticket(core, ticket="A-001")).status == TicketStatus.WAITING

        await pilot.press("m")
        await wait_until(pilot, lambda: showing(app, TransferDialog))
        await pilot.press("enter", "down", "enter")  # department: GEN -> PED
        await wait_until(pilot, lambda: "PED · Paediatrics" in screen_text(app))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any("now P-002 in PED" in n[2] for n in app.notices))
        await wait_until(
            pilot, lambda: "A-001" not in screen_text(app) and "P-002" in screen_text(app)
        )
        assert queue_screen(app).selected().ticket_number == "P-002"  # type: ignore[union-attr]
    old = await queue.get_ticket(core, ticket="A-001")
    new = await queue.get_ticket(core, ticket="P-002")
    assert old.status == TicketStatus.TRANSFERRED
    assert (new.status, new.patient_id, new.arrived_at) == (
        TicketStatus.WAITING,
        desk.amelia.id,
        old.arrived_at,
    )


async def test_cancel_with_a_reason_and_undo(
    desk_core: Context, desk_app: ReceptionApp, desk: Desk
) -> None:
    core, app = desk_core, desk_app
    async with queue_open(app) as pilot:
        await select(pilot, "A-002")
        await pilot.press("c")
        await wait_until(pilot, lambda: showing(app, TextDialog))
        await pilot.press("escape")  # changed their mind: nothing happens
        await pilot.pause(0.2)
        assert (await queue.get_ticket(core, ticket="A-002")).status == TicketStatus.WAITING
        await pilot.press("c")
        await wait_until(pilot, lambda: showing(app, TextDialog))
        await pilot.press(*"left before being seen", "enter")
        await wait_until(pilot, lambda: "A-002" not in screen_text(app))
        assert (await queue.get_ticket(core, ticket="A-002")).status == TicketStatus.CANCELLED
        assert app.notices[-1][2] == "A-002 cancelled (u: undo)"

        await select(pilot, "A-001")
        await pilot.press("h")  # something to undo on a ticket still shown
        await wait_until(pilot, lambda: "on hold" in row_of(app, "A-001"))
        await pilot.press("u")
        await wait_until(pilot, lambda: "waiting" in row_of(app, "A-001"))
        assert app.notices[-1][2] == "A-001: last move undone"
        await pilot.press("u")  # twice: the core says why not, nothing changes
        await wait_until(pilot, lambda: app.notices[-1][1] == "Not possible now")
        assert app.notices[-1][2] == "the last move of A-001 was already undone"
    assert (await queue.get_ticket(core, ticket="A-001")).status == TicketStatus.WAITING
    # the cancelled ticket comes back with undo too (from the command line or another desk)
    assert (await queue.undo_last(core, ticket="A-002")).status == TicketStatus.WAITING


async def test_illegal_moves_are_dimmed_and_a_stale_view_is_refused_by_the_core(
    desk_core: Context, desk_app: ReceptionApp, desk: Desk
) -> None:
    core, app = desk_core, desk_app
    async with queue_open(app) as pilot:
        await select(pilot, "A-003")  # called by Dr Smith: no cancel, no triage
        screen = queue_screen(app)
        assert screen.check_action("cancel_ticket", ()) is None
        assert screen.check_action("recall", ()) is True
        await pilot.press("c", "t")
        await pilot.pause(0.2)
        assert app.screen is screen  # no dialog opened
        await pilot.press("r")  # recall is fine
        await wait_until(pilot, lambda: "called ×2" in row_of(app, "A-003"))

        await select(pilot, "A-001")
        await queue.cancel(core, ticket="A-001")  # another desk, no live events here
        await pilot.press("h")
        await wait_until(pilot, lambda: app.notices[-1][1] == "Not possible now")
        assert "cannot put A-001 on hold: it is cancelled" in app.notices[-1][2]
    assert (await queue.get_ticket(core, ticket="A-001")).status == TicketStatus.CANCELLED
    assert (await queue.get_ticket(core, ticket="A-003")).recall_count == 1


async def test_check_in_from_todays_appointments(
    desk_core: Context, desk_app: ReceptionApp, clock: FrozenClock, desk: Desk
) -> None:
    core, app = desk_core, desk_app
    await queue.cancel(core, ticket="A-001")  # Amelia left and comes back for her appointment
    appointment = await book(core, desk.amelia, 20)
    async with queue_open(app) as pilot:
        await pilot.press("a")
        await wait_until(pilot, lambda: showing(app, ListDialog) and "09:50" in screen_text(app))
        assert "Amelia Hughes (MRN000001)" in screen_text(app)
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: any("Amelia Hughes checked in: ticket A-004" in n[2] for n in app.notices),
        )
        await wait_until(pilot, lambda: "Amelia Hughes" in row_of(app, "A-004"))
    booked = await clinic.list_appointments(core)
    assert [(a.id, a.status, a.ticket) for a in booked] == [
        (appointment, AppointmentStatus.CHECKED_IN, "A-004")
    ]
    checked_in = await queue.get_ticket(core, ticket="A-004")
    assert checked_in.due_at == clock.now().replace(minute=50)  # due at the appointment time


async def test_the_doctors_panel_shows_rooms_status_and_patients_and_sets_a_status(
    desk_core: Context, desk_app: ReceptionApp
) -> None:
    core, app = desk_core, desk_app
    async with queue_open(app, (120, 30)) as pilot:
        await pilot.press("f3")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, DoctorsScreen) and "Dr Sam Smith" in screen_text(app),
        )
        smith = next(line for line in screen_text(app).splitlines() if "Dr Sam Smith" in line)
        assert "Room 1" in smith and "available" in smith
        assert "A-003 called · George Wright" in smith
        assert "3 of 3 doctors available" in screen_text(app)
        await pilot.press("down", "s")  # Dr Ada Jones goes on a break
        await wait_until(pilot, lambda: showing(app, ListDialog))
        await pilot.press("enter")  # the first other status: paused
        await wait_until(pilot, lambda: "2 of 3 doctors available" in screen_text(app))
        jones = next(line for line in screen_text(app).splitlines() if "Dr Ada Jones" in line)
        assert "paused" in jones
        await pilot.press("f1")
        await open_queue(pilot)
    assert (await clinic.get_doctor(core, doctor="drjones")).status == DoctorStatus.PAUSED
