"""The database goes away while the console is open: it says so, keeps issuing tickets with its
reserved numbers and registering patients, and sends it all when the database is back."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from iqms.core.clock import FrozenClock
from iqms.core.service import Context
from iqms.core.services import patients, queue
from iqms.core.sync.connectivity import Backoff
from iqms.tui.reception.app import ReceptionApp
from iqms.tui.reception.dialogs import IssueDialog
from iqms.tui.reception.patients import PatientForm, PatientsScreen
from tests.system import system_context
from tests.test_connectivity import Link, terminal_link
from tests.tui.desk import open_queue, reception, row_of, seed_desk
from tests.tui.support import (
    console_settings,
    screen_text,
    showing,
    status_line,
    synced_when_back,
    wait_until,
)


@contextlib.asynccontextmanager
async def desk_behind_a_link(
    db_url: str, tmp_path: Path, *, offline: bool
) -> AsyncIterator[tuple[Context, FrozenClock, Link, ReceptionApp]]:
    """09:30 at the seeded desk: the system's context, the clock, the route from the console to
    the database (which a test can cut) and the console, with or without its offline journal."""
    clock = FrozenClock(datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
    async with system_context(console_settings(tmp_path, db_url), clock) as core:
        desk = await seed_desk(core, clock)
        async with terminal_link(db_url, tmp_path, "desk") as link:
            desk_settings = console_settings(tmp_path / "desk", link.url, device_name="desk 1")
            backoff = Backoff(base=0.1, maximum=0.3, jitter=0)
            app = reception(desk_settings, desk.rita, clock, offline=offline,
                            heartbeat_seconds=0.2, backoff=backoff)  # fmt: skip
            yield core, clock, link, app


async def test_offline_tickets_and_registrations_reach_the_central_queue_once(
    db_url: str, tmp_path: Path
) -> None:
    async with desk_behind_a_link(db_url, tmp_path, offline=True) as (core, clock, link, app):
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await open_queue(pilot)
            await link.cut()
            await wait_until(pilot, lambda: "▲ OFFLINE since 09:30" in status_line(app))
            clock.advance(minutes=2)

            await pilot.press("n")  # a walk-in, from the numbers reserved while online
            await wait_until(pilot, lambda: showing(app, IssueDialog))
            await wait_until(pilot, lambda: "Issue a ticket (offline)" in screen_text(app))
            await pilot.press("enter")
            await wait_until(pilot, lambda: "A-004" in screen_text(app))
            assert "not synced" in row_of(app, "A-004")
            assert "· 1 to sync" in status_line(app)

            await pilot.press("f2")
            await wait_until(pilot, lambda: showing(app, PatientsScreen))
            await pilot.press("ctrl+n")
            await wait_until(pilot, lambda: showing(app, PatientForm))
            await pilot.press(*"Hannah Clarke", "tab", *"07911 123456")
            await pilot.press("ctrl+s")  # registered in the journal
            await wait_until(pilot, lambda: showing(app, PatientsScreen)
                             and app.screen.query_one("#patients").row_count == 1)  # fmt: skip
            await wait_until(pilot, lambda: "Hannah Clarke" in screen_text(app))
            await pilot.press("enter", "enter")  # to the result and open it: no MRN yet
            await wait_until(pilot, lambda: showing(app, IssueDialog))
            await wait_until(
                pilot, lambda: "Hannah Clarke (registered offline)" in screen_text(app)
            )
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: "· 3 to sync" in status_line(app))
            await pilot.press("f1")
            await wait_until(pilot, lambda: "A-005" in screen_text(app))
            assert "Hannah Clarke" in row_of(app, "A-005")

            await synced_when_back(pilot, link, 3, within=15)
            await wait_until(pilot, lambda: "not synced" not in screen_text(app))
            assert "Hannah Clarke" in row_of(app, "A-005")
            assert not isinstance(app.screen, PatientForm)
        tickets = await queue.queue_list(core, department="GEN")
        numbers = Counter(t.ticket_number for t in tickets)
        assert numbers["A-004"] == 1 and numbers["A-005"] == 1
        assert len(tickets) == 5  # A-001..A-005: nothing twice
        [hannah] = await patients.search(core, query="Hannah Clarke")
        a005 = next(t for t in tickets if t.ticket_number == "A-005")
        assert a005.patient_id == hannah.id and a005.arrived_at == clock.now()


async def test_without_the_offline_journal_a_lost_database_refuses_changes_until_it_is_back(
    db_url: str, tmp_path: Path
) -> None:
    # A console set up without the journal: it keeps showing the queue it has, says the
    # database is away, and opens no form it could not send; once back, it works as before.
    async with desk_behind_a_link(db_url, tmp_path, offline=False) as (core, _, link, app):
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await open_queue(pilot)
            await link.cut()
            await wait_until(pilot, lambda: "▲ OFFLINE" in status_line(app))
            assert "to sync" not in status_line(app)  # nothing is kept here
            offline = ("warning", "Offline", "The central database cannot be reached. "
                       "Changes are not possible until it is back.")  # fmt: skip
            assert list(app.notices) == [offline]

            await pilot.press("n")  # no ticket form: it could not be sent
            await wait_until(pilot, lambda: len(app.notices) == 2)
            assert list(app.notices) == [offline, offline]
            assert not showing(app, IssueDialog)
            await pilot.press("f2")
            await wait_until(pilot, lambda: showing(app, PatientsScreen))
            await pilot.press("ctrl+n")  # nor a registration form
            await wait_until(pilot, lambda: len(app.notices) == 3)
            assert showing(app, PatientsScreen) and not showing(app, PatientForm)
            await pilot.press("f1")
            for number in ("A-001", "A-002", "A-003", "P-001"):  # the queue it had
                await wait_until(pilot, lambda n=number: n in screen_text(app))

            await link.restore()
            await wait_until(pilot, lambda: "online" in status_line(app), within=15)
            await pilot.press("n")
            await wait_until(pilot, lambda: showing(app, IssueDialog))
            await wait_until(pilot, lambda: "Issue a ticket" in screen_text(app))
            assert "(offline)" not in screen_text(app)
            await pilot.press("enter")
            await wait_until(pilot, lambda: "A-004" in screen_text(app))
        tickets = await queue.queue_list(core, department="GEN")
        assert sorted(t.ticket_number for t in tickets) == ["A-001", "A-002", "A-003", "A-004"]
