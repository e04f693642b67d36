"""The doctor console on PostgreSQL, where the backend matters.

Two doctors pressing "call next" at the same moment, a ticket issued at
reception reaching the console through LISTEN/NOTIFY, and the database going
away (a loopback TCP proxy that the test cuts) and coming back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.enums import TicketStatus
from iqms.core.service import Context
from iqms.core.services import queue
from iqms.tui.doctor.widgets import QueueList
from tests.system import system_context
from tests.test_connectivity import terminal_link
from tests.tui.doctor_clinic import (
    call_next,
    doctor_app,
    doctor_clinic,
    doctor_screen,
    issue,
    noticed,
    on_doctor_screen,
    shows,
    until,
)
from tests.tui.support import console_settings, listening, status_line

pytestmark = pytest.mark.postgresql


@pytest.fixture
def pg_settings(tmp_path: Path, pg_url: str) -> Settings:
    return console_settings(tmp_path, pg_url, db_connect_timeout=2)


@pytest.fixture
async def pg_core(pg_settings: Settings, clock: FrozenClock) -> AsyncIterator[Context]:
    async with system_context(pg_settings, clock) as ctx:
        yield ctx


async def test_two_doctors_pressing_call_next_at_the_same_moment_get_different_patients(
    pg_core: Context, pg_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(pg_core)
    first = await issue(pg_core, c.patients["Amelia Hughes"])
    second = await issue(pg_core, c.patients["Oliver Brown"])
    await issue(pg_core, c.patients["Mia Wilson"])
    smith = doctor_app(pg_settings, c.smith, clock, live_events=False)
    jones = doctor_app(pg_settings, c.jones, clock, live_events=False)
    async with (
        smith.run_test(size=(100, 30)) as at_smith,
        jones.run_test(size=(100, 30)) as at_jones,
    ):
        await until(at_smith, lambda: on_doctor_screen(smith))
        await until(at_jones, lambda: on_doctor_screen(jones))
        await asyncio.gather(at_smith.press("n"), at_jones.press("n"))
        await until(at_smith, lambda: doctor_screen(smith).current is not None)
        await until(at_jones, lambda: doctor_screen(jones).current is not None)
        smith_has = doctor_screen(smith).current
        jones_has = doctor_screen(jones).current
        assert smith_has is not None and jones_has is not None
        assert smith_has.id != jones_has.id
        assert {smith_has.id, jones_has.id} == {first.id, second.id}  # the first two in order
        assert shows(smith, smith_has.ticket_number, "CALLED")
        assert shows(jones, jones_has.ticket_number, "CALLED")
    rooms = {
        t.ticket_number: t.called_room for t in await queue.queue_list(pg_core, statuses=["called"])
    }
    assert rooms == {smith_has.ticket_number: "Room 1", jones_has.ticket_number: "Room 2"}


async def test_a_ticket_issued_at_reception_appears_in_the_doctors_queue_live(
    pg_core: Context, pg_settings: Settings, clock: FrozenClock
) -> None:
    c = await doctor_clinic(pg_core)
    app = doctor_app(pg_settings, c.smith, clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: on_doctor_screen(app))
        await listening(pilot)
        for category, number in ((4, "A-001"), (2, "A-002")):
            await issue(pg_core, category=category)  # reception, another terminal
            # No key pressed: the row arrives by LISTEN/NOTIFY. How fast is measured, not
            # asserted here: benchmarks/bench_doctor.py (doctor.issued_to_row_shown).
            await until(pilot, lambda n=number: shows(app, n), what=number)
        assert shows(app, "My queue · 2 waiting")
        first_row = doctor_screen(app).query_one(QueueList).rows[0][1].plain
        assert "A-002" in first_row and "Very urgent" in first_row  # the urgent one comes first


async def test_the_console_refuses_actions_offline_and_recovers_by_itself(
    pg_core: Context, pg_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    c = await doctor_clinic(pg_core)
    waiting = await issue(pg_core, c.patients["Amelia Hughes"])
    async with terminal_link(pg_url, tmp_path, "room-1") as link:
        settings = console_settings(tmp_path, link.url, db_connect_timeout=2)
        app = doctor_app(settings, c.smith, clock, heartbeat_seconds=0.2)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await until(pilot, lambda: on_doctor_screen(app) and shows(app, "A-001"))
            await link.cut()
            await until(pilot, lambda: "▲ OFFLINE" in status_line(app))
            await until(pilot, lambda: shows(app, "Reconnecting to the database"))
            assert shows(app, "Actions wait until it is back; nothing was changed.")
            await pilot.press("n")
            await until(pilot, lambda: noticed(app, "reconnecting. Call next was not done"))
            await pilot.press("p")
            await until(pilot, lambda: noticed(app, "reconnecting. Pause was not done"))
            assert (await queue.get_ticket(pg_core, ticket=waiting.id)).status == (
                TicketStatus.WAITING
            )  # nothing half-done
            await link.restore()
            await until(pilot, lambda: "● online" in status_line(app))
            await until(pilot, lambda: not shows(app, "Reconnecting to the database"))
            await call_next(pilot, "Amelia Hughes")
    called = await queue.get_ticket(pg_core, ticket=waiting.id)
    assert called.status == TicketStatus.CALLED and called.called_room == "Room 1"
