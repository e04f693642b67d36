"""The database cut while the kiosk is open (both backends): it keeps issuing and printing from
its reserved numbers, and once the database is back each ticket is in the central queue exactly
once, in arrival order, with the status link printed on it. Also: two kiosks pressed at the
same moment get consecutive, distinct numbers."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.service import Context
from iqms.core.services import queue
from iqms.kiosk.desk import KioskDepartment, TicketDesk
from iqms.kiosk.printer import PrintWorker
from iqms.kiosk.screens import (
    CheckInFormScreen,
    CheckInOfflineScreen,
    CheckInScreen,
    ResultScreen,
    ServiceScreen,
    SmsOfferScreen,
    StartScreen,
)
from tests.kiosk.escpos_decode import decode
from tests.kiosk.fake_printer import FakePrinter
from tests.kiosk.support import (
    SIZE,
    kiosk,
    kiosk_app,
    kiosk_key,
    kiosk_settings,
    press_through,
    printed_or_failed,
    started,
    take_a_ticket,
    until_screen,
)
from tests.system import system_context
from tests.test_connectivity import terminal_link
from tests.test_queue_fixtures import small_clinic
from tests.tui.support import screen_text, status_line, wait_until

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def press_for_a_ticket(pilot, app) -> str:  # type: ignore[no-untyped-def]
    count = len(app.issued)
    await take_a_ticket(pilot)
    await wait_until(pilot, lambda: len(app.issued) > count and printed_or_failed(app))
    await wait_until(pilot, lambda: "Please take your ticket." in screen_text(app))
    number = app.issued[-1].number
    await pilot.press("0")
    await until_screen(pilot, StartScreen)
    return number


async def test_a_database_cut_while_the_kiosk_is_open(
    ctx: Context, clock: FrozenClock, db_url: str, tmp_path: Path
) -> None:
    clock.set(T0)
    await small_clinic(ctx, doctors=False)
    key = await kiosk_key(ctx)
    with FakePrinter() as fake:
        async with terminal_link(db_url, tmp_path, "kiosk") as link:
            settings = kiosk_settings(tmp_path / "kiosk", link.url, db_connect_timeout=2,
                                      public_url="https://queue.example.org")  # fmt: skip
            app = kiosk_app(settings, key, clock, printer=fake.spec, heartbeat_seconds=0.2)
            async with app.run_test(size=SIZE) as pilot:
                await started(pilot)
                online = await press_for_a_ticket(pilot, app)

                await link.cut()
                clock.advance(minutes=1)
                first = await press_for_a_ticket(pilot, app)
                assert app.issued[-1].offline
                await wait_until(pilot, lambda: "▲ OFFLINE" in status_line(app))
                clock.advance(minutes=1)
                await press_through(pilot, ("1", ServiceScreen), ("9", CheckInScreen),
                                    ("1", CheckInFormScreen))  # an appointment, by booking code  # fmt: skip
                await pilot.press(*"12345678", "enter")
                await until_screen(pilot, CheckInOfflineScreen)
                await wait_until(
                    pilot, lambda: "Check-in needs the clinic's system" in screen_text(app)
                )
                await pilot.press("1")  # a normal ticket instead
                await until_screen(pilot, ServiceScreen)
                await press_through(pilot, ("1", SmsOfferScreen), ("1", ResultScreen))
                await wait_until(pilot, lambda: printed_or_failed(app) and len(app.issued) == 3)
                await wait_until(
                    pilot,
                    lambda: "Issued offline: the wait is not known right now." in screen_text(app),
                    what="the offline ticket's notice",
                )
                second = app.issued[-1].number
                await pilot.press("0")
                await until_screen(pilot, StartScreen)
                assert app.journal is not None and app.journal.pending_count() == 2
                assert app.journal.device_name == "entrance"

                await link.restore()
                await wait_until(pilot, lambda: "● online" in status_line(app), within=20)
                await wait_until(pilot, lambda: app.journal.pending_count() == 0, within=20)
        papers = fake.wait_for_tickets(3)
    assert [p.largest.text for p in papers] == [online, first, second]
    assert (first, second) == ("A-001", "A-002")  # the kiosk's reserved numbers
    assert ["ISSUED OFFLINE" in p.text for p in papers] == [False, True, True]
    assert "Estimated wait: unavailable" in papers[1].text

    waiting = await queue.queue_list(ctx, department="GEN")
    assert [(t.ticket_number, t.arrived_at) for t in waiting] == [
        (online, T0),
        (first, T0 + timedelta(minutes=1)),
        (second, T0 + timedelta(minutes=2)),
    ]
    # The link printed offline is the ticket's status page now that it is in the queue.
    for paper, ticket in zip(papers, waiting, strict=True):
        assert paper.qr == [f"https://queue.example.org/t/{ticket.status_code}"]


async def test_two_kiosks_pressed_at_the_same_moment_get_consecutive_numbers(
    ctx: Context, settings
) -> None:  # type: ignore[no-untyped-def]
    c = await small_clinic(ctx, doctors=False)
    department = KioskDepartment(c.gen.id, "GEN", c.gen.name)
    desks = []
    handles = []
    for name in ("entrance", "lift"):
        at = await kiosk(ctx, name)
        db = Database.from_settings(settings)  # each kiosk its own connection to the database
        handles.append(db)
        own = dataclasses.replace(at, db=db)
        desks.append(TicketDesk(settings, PrintWorker.for_settings(settings), ctx=lambda c=own: c))
    numbers: list[tuple[str, str]] = []
    try:
        for _ in range(5):
            a, b = await asyncio.gather(*(d.issue(department, language="en") for d in desks))
            numbers.append((a.number, b.number))
            for desk, issued in zip(desks, (a, b), strict=True):
                await desk.print(issued)  # no printer: the bytes a printer would get
                assert decode(desk.printer.printer.last_output).largest.text == issued.number
    finally:
        for db in handles:
            await db.dispose()
    for round_, pair in enumerate(numbers):
        assert sorted(pair) == [f"A-{2 * round_ + 1:03d}", f"A-{2 * round_ + 2:03d}"]
    assert len(await queue.queue_list(ctx, department="GEN")) == 10


async def test_a_kiosk_started_while_the_database_is_away_waits_for_it(
    clock: FrozenClock, pg_url: str, tmp_path: Path
) -> None:
    # The production shape: a PostgreSQL server on the network, not answering at first.
    async with system_context(kiosk_settings(tmp_path, pg_url), clock) as core:
        await small_clinic(core, doctors=False)
        key = await kiosk_key(core)
    async with terminal_link(pg_url, tmp_path, "kiosk") as link:
        settings = kiosk_settings(tmp_path / "kiosk", link.url, db_connect_timeout=1)
        await link.cut()
        app = kiosk_app(settings, key, clock)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "cannot reach the database" in screen_text(app))
            text = screen_text(app)
            assert "Starting. Waiting for the clinic's system..." in text
            assert "Iniciando." in text and app.is_running
            assert "▲ OFFLINE" in status_line(app)
            await link.restore()
            await started(pilot)
            assert "Welcome" in screen_text(app)
            await wait_until(pilot, lambda: "● online" in status_line(app))
