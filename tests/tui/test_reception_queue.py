"""The reception queue, driven from the keyboard on a real SQLite database.

Each move is made with the keys a receptionist presses; each test then checks
what the screen shows and what the core holds.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from iqms.core.clock import FrozenClock
from iqms.core.enums import TicketStatus
from iqms.core.service import Context
from iqms.core.services import queue
from iqms.tui.auth import PasswordLogin
from iqms.tui.reception.app import ReceptionApp
from iqms.tui.reception.dialogs import IssueDialog
from iqms.tui.screens import LoginScreen
from tests.tui.desk import Desk, open_queue, queue_open, queue_screen, row_of
from tests.tui.support import PASSWORD, console_settings, screen_text, showing, wait_until


async def ticket(core: Context, number: str):  # type: ignore[no-untyped-def]
    return await queue.get_ticket(core, ticket=number)


async def test_reception_login_wrong_password_locked_account_and_right_password(
    tmp_path: Path, desk_url: str, clock: FrozenClock, desk: Desk
) -> None:
    settings = console_settings(tmp_path, desk_url, lockout_threshold=2)
    app = ReceptionApp(settings, PasswordLogin(), clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(
            pilot, lambda: showing(app, LoginScreen) and "Password" in screen_text(app)
        )
        await pilot.press(*"drsmith", "enter", *PASSWORD, "enter")  # a doctor: not this console
        await wait_until(pilot, lambda: "is for admin or staff accounts" in screen_text(app))
        await pilot.press("shift+tab", "ctrl+a", "ctrl+k", *"rita", "tab", *"wrong", "enter")
        await wait_until(pilot, lambda: "wrong username or password" in screen_text(app))
        await pilot.press(*"wrong again", "enter")
        await wait_until(pilot, lambda: "locked for 15 minutes" in screen_text(app)
                         and app.screen.query_one("#password").value == "")  # type: ignore[attr-defined]  # fmt: skip
        await pilot.press(*PASSWORD, "enter")  # right password, locked account
        await pilot.pause(0.5)
        assert not app.signed_in
    clock.advance(minutes=16)  # the lock expires
    app = ReceptionApp(settings, PasswordLogin(), clock=clock, heartbeat_seconds=0.5)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(
            pilot, lambda: showing(app, LoginScreen) and "Password" in screen_text(app)
        )
        await pilot.press(*"rita", "enter", *PASSWORD, "enter")
        await open_queue(pilot)
        assert "Rita Reception (staff)" in screen_text(app).splitlines()[0]
        assert "A-001" in screen_text(app)


async def test_the_queue_in_calling_order_with_search_and_filter(desk_app: ReceptionApp) -> None:
    app = desk_app
    async with queue_open(app, (80, 24)) as pilot:
        lines = screen_text(app).splitlines()
        numbers = [w for line in lines for w in line.split() if w[:2] in ("A-", "P-")][:4]
        assert numbers == ["A-002", "A-001", "P-001", "A-003"]  # urgent first; called last
        assert "walk-in" in row_of(app, "A-002") and "in 10m" in row_of(app, "A-002")
        assert "Amelia Hughes" in row_of(app, "A-001") and "30m" in row_of(app, "A-001")
        assert "called" in row_of(app, "A-003") and "Room 1" in row_of(app, "A-003")

        await pilot.press("slash", *"amel")  # incremental search by name
        await wait_until(pilot, lambda: "1 of 4 tickets" in screen_text(app))
        assert "A-001" in screen_text(app) and "A-002" not in screen_text(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: "4 tickets" in screen_text(app))

        await pilot.press("f")  # filter: only PED
        await wait_until(pilot, lambda: "Show in the queue" in screen_text(app))
        await pilot.press("space")  # GEN off
        await pilot.press("f")
        await wait_until(pilot, lambda: "1 of 4 tickets · PED" in screen_text(app))
        assert "P-001" in screen_text(app) and "A-001" not in screen_text(app)


async def test_the_selection_follows_keys_and_the_mouse_and_the_details_say_which(
    desk_app: ReceptionApp,
) -> None:
    app = desk_app

    def details() -> str:
        return str(queue_screen(app).query_one("#details", Static).content)

    async with queue_open(app, (100, 30)) as pilot:
        assert details().startswith("A-002")  # the first in calling order
        for key, number in (("down", "A-001"), ("end", "A-003"), ("up", "P-001"),
                            ("home", "A-002")):  # fmt: skip
            await pilot.press(key)
            await wait_until(pilot, lambda n=number: details().startswith(n))
            selected = queue_screen(app).selected()
            assert selected is not None and selected.ticket_number == number
        await pilot.click("#tickets", offset=(3, 1))  # the second row: A-001
        await wait_until(pilot, lambda: details().startswith("A-001"))
        await pilot.press("t")  # the key acts on the row chosen with the mouse
        await wait_until(pilot, lambda: "Triage category of A-001" in screen_text(app))


async def test_issue_for_a_patient_found_by_name_and_for_a_walk_in(
    desk_core: Context, desk_app: ReceptionApp, desk: Desk
) -> None:
    core, app = desk_core, desk_app
    async with queue_open(app) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: showing(app, IssueDialog))
        await pilot.press(*"30/06/2019")  # found by date of birth
        await wait_until(pilot, lambda: "Oliver Brown · MRN000002" in screen_text(app))
        await pilot.press("enter")  # the first match
        await wait_until(pilot, lambda: "Patient: Oliver Brown (MRN000002)" in screen_text(app))
        await pilot.press("ctrl+s")  # GEN, standard, any doctor
        await wait_until(
            pilot, lambda: any("Ticket A-004 for Oliver Brown" in n[2] for n in app.notices)
        )
        await wait_until(pilot, lambda: "Oliver Brown" in row_of(app, "A-004"))

        await pilot.press("n")
        await wait_until(pilot, lambda: showing(app, IssueDialog))
        await pilot.press(*"amel")  # Amelia already waits in GEN: the core refuses
        await wait_until(pilot, lambda: "Amelia Hughes · MRN000001" in screen_text(app))
        await pilot.press("enter", "ctrl+s")
        await wait_until(pilot, lambda: app.notices[-1][1] == "Conflict")
        assert "already has ticket A-001 in GEN today" in app.notices[-1][2]

        await pilot.press("n")
        await wait_until(pilot, lambda: showing(app, IssueDialog))
        await pilot.press("enter")  # empty search: a walk-in, standard, any doctor
        await wait_until(pilot, lambda: queue_screen(app).selected() is not None
                         and queue_screen(app).selected().ticket_number == "A-005")  # type: ignore[union-attr]  # fmt: skip
    oliver = await ticket(core, "A-004")
    assert (oliver.patient_id, oliver.department_code) == (desk.oliver.id, "GEN")
    walk_in = await ticket(core, "A-005")
    assert (walk_in.patient_id, walk_in.triage_category) == (None, 4)
    assert walk_in.status == TicketStatus.WAITING
    assert len(await queue.queue_list(core, department="GEN")) == 5  # nothing else was issued
