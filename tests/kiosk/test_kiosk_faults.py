"""A kiosk with a printer in trouble: the ticket is issued exactly once, its number is on the
screen, the start screen says the printer is out of order, and reception gets the fault live.

The printer is a real TCP server on 127.0.0.1 (``FakePrinter``) that refuses, runs out of
paper, drops the connection in the middle of a ticket, or answers too slowly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.enums import PrinterState
from iqms.core.models import QueueEntry
from iqms.core.queue.events import PrinterFault, subscribe
from iqms.core.service import Context
from iqms.core.services import devices
from iqms.kiosk.screens import StartScreen
from tests.kiosk.fake_printer import FakePrinter, closed_port
from tests.kiosk.support import (
    SIZE,
    kiosk_app,
    kiosk_key,
    printed_or_failed,
    started,
    take_a_ticket,
    until_screen,
)
from tests.test_queue_fixtures import small_clinic
from tests.tui.support import screen_text, wait_until

TIMEOUT = 0.8

FAULTS: dict[str, tuple[Callable[[FakePrinter], str], PrinterState]] = {
    # name: (break the printer, returning the --printer spec; the state reception must see)
    "connection refused": (lambda fake: f"network:127.0.0.1:{closed_port()}",
                           PrinterState.UNREACHABLE),
    "paper out": (lambda fake: (setattr(fake, "paper", "out"), fake.spec)[1],
                  PrinterState.PAPER_OUT),
    "dropped mid-ticket": (lambda fake: (setattr(fake, "drop_after", 40), fake.spec)[1],
                           PrinterState.DISCONNECTED),
    "too slow": (lambda fake: (setattr(fake, "stall_seconds", 3.0), fake.spec)[1],
                 PrinterState.TIMEOUT),
}  # fmt: skip


class Reception:
    """What a reception console hears: the committed live events."""

    def __init__(self) -> None:
        self.faults: list[PrinterFault] = []


@asynccontextmanager
async def reception(core: Context) -> AsyncIterator[Reception]:
    heard = Reception()
    async with subscribe(core.db, department_id=None, poll_interval=0.05) as feed:

        async def listen() -> None:
            async for event in feed:
                if isinstance(event, PrinterFault):
                    heard.faults.append(event)

        task = asyncio.create_task(listen())
        try:
            yield heard
        finally:
            task.cancel()


async def ticket_count(core: Context) -> int:
    async with core.db.transaction(readonly=True) as s:
        return int((await s.execute(select(func.count()).select_from(QueueEntry))).scalar_one())


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_printer_fault_costs_no_ticket_and_reception_sees_it(
    fault: str, core: Context, kiosk_env: Settings, clock: FrozenClock
) -> None:
    await small_clinic(core, doctors=False)
    key = await kiosk_key(core)
    breaks, state = FAULTS[fault]
    with FakePrinter() as fake:
        spec = breaks(fake)
        async with reception(core) as desk:
            app = kiosk_app(kiosk_env, key, clock, printer=spec, printer_timeout=TIMEOUT)
            async with app.run_test(size=SIZE) as pilot:
                await started(pilot)
                await take_a_ticket(pilot)
                number = app.issued[0].number
                await wait_until(pilot, lambda: printed_or_failed(app), within=10)
                await wait_until(pilot, lambda: "Please note your number: the printer is out of "
                                 "order." in screen_text(app))  # drawn just after the result  # fmt: skip
                text = screen_text(app)
                assert "Your number" in text and "Print again" in text
                await pilot.press("0")  # done
                await until_screen(pilot, StartScreen)
                await wait_until(
                    pilot, lambda: "The ticket printer is out of order" in screen_text(app)
                )
                await wait_until(pilot, lambda: any(f.state == state for f in desk.faults))
        if fault == "dropped mid-ticket":
            # what reached the printer is a torn-off start: no finished, cut ticket
            assert fake.tickets and all(paper.cuts == 0 for paper in fake.tickets)
            assert all(job.dropped for job in fake.jobs if job.ticket_bytes)
        else:
            assert fake.tickets == []
    assert await ticket_count(core) == 1
    [result] = app.issued[0].results
    assert not result.printed and result.status.state == state
    fault_event = next(f for f in desk.faults if f.state == state)
    assert fault_event.device_name == "entrance" and fault_event.severity == "fault"
    assert number not in fault_event.message  # nothing about the patient's ticket
    [listed] = await devices.list_devices(core)
    assert listed.fault_state == state.value


async def test_the_printer_fixed_clears_the_fault_and_the_ticket_prints_again(
    core: Context, kiosk_env: Settings, clock: FrozenClock
) -> None:
    await small_clinic(core, doctors=False)
    key = await kiosk_key(core)
    with FakePrinter() as fake:
        fake.paper = "out"
        async with reception(core) as desk:
            app = kiosk_app(kiosk_env, key, clock, printer=fake.spec, printer_timeout=TIMEOUT,
                            printer_check_seconds=0.3)  # fmt: skip
            async with app.run_test(size=SIZE) as pilot:
                await started(pilot)
                await wait_until(
                    pilot, lambda: "The ticket printer is out of order" in screen_text(app)
                )
                await take_a_ticket(pilot)
                await wait_until(pilot, lambda: printed_or_failed(app))
                assert "Please note your number" in screen_text(app)
                fake.paper = "ok"  # a new roll
                await pilot.press("1")  # print again
                await wait_until(pilot, lambda: "Please take your ticket." in screen_text(app))
                await pilot.press("0")
                await until_screen(pilot, StartScreen)
                assert "out of order" not in screen_text(app)
                fake.paper = "low"  # the near-end sensor: told before it runs out
                await wait_until(pilot, lambda: any(f.state == "paper_low" for f in desk.faults))
                assert "out of order" not in screen_text(app)
        [paper] = fake.wait_for_tickets(1)
    assert paper.largest.text == app.issued[0].number
    assert await ticket_count(core) == 1
    states = [(f.state, f.severity) for f in desk.faults]
    assert states == [("paper_out", "fault"), ("ready", "ok"), ("paper_low", "warning")]
