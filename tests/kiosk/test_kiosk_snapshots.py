"""How the kiosk looks: the start, service and result screens (SVG snapshots, 100x34).

Update after an intended change with ``pytest tests/kiosk/test_kiosk_snapshots.py
--snapshot-update`` and look at the new SVGs before committing them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import queue
from iqms.kiosk.app import KioskApp
from iqms.kiosk.screens import ResultScreen, ServiceScreen, SmsOfferScreen, StartScreen
from tests.kiosk.fake_printer import FakePrinter
from tests.kiosk.support import kiosk_app, kiosk_key, kiosk_settings, printed_or_failed
from tests.test_queue_fixtures import small_clinic
from tests.tui.support import showing, status_line, wait_until

SIZE = (100, 34)


def prepared_kiosk(tmp_path: Path, sqlite_url: str, printer: str | None = None) -> KioskApp:
    """A kiosk on a clinic with a few patients waiting, at 08:00 on a Monday."""
    settings = kiosk_settings(tmp_path, sqlite_url, clinic_name="Riverside Clinic")
    clock = FrozenClock()

    async def setup() -> str:
        db = Database.from_settings(settings)
        ctx = Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
        try:
            await small_clinic(ctx)
            for _ in range(5):
                await queue.issue(ctx, department="GEN")
            await queue.issue(ctx, department="PED")
            return await kiosk_key(ctx)
        finally:
            await db.dispose()

    key = asyncio.run(setup())
    return kiosk_app(settings, key, clock, printer=printer, live_events=False)


async def on_screen(pilot: Pilot[Any], screen: type) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: showing(app, screen), within=10)
    await wait_until(pilot, lambda: "● online" in status_line(app), within=10)  # type: ignore[arg-type]
    await pilot.pause(0.1)


@pytest.mark.sqlite
def test_start_screen(snap_compare, tmp_path: Path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    app = prepared_kiosk(tmp_path, sqlite_url)

    async def ready(pilot: Pilot[Any]) -> None:
        await on_screen(pilot, StartScreen)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


@pytest.mark.sqlite
def test_service_screen_with_the_waits(snap_compare, tmp_path: Path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    app = prepared_kiosk(tmp_path, sqlite_url)

    async def services(pilot: Pilot[Any]) -> None:
        await on_screen(pilot, StartScreen)
        await pilot.press("1")
        await on_screen(pilot, ServiceScreen)

    assert snap_compare(app, terminal_size=SIZE, run_before=services)


@pytest.mark.sqlite
def test_result_screen_with_the_number(snap_compare, tmp_path: Path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    with FakePrinter() as fake:
        app = prepared_kiosk(tmp_path, sqlite_url, printer=fake.spec)

        async def ticket(pilot: Pilot[Any]) -> None:
            await on_screen(pilot, StartScreen)
            await pilot.press("2")  # Español
            await on_screen(pilot, ServiceScreen)
            await pilot.press("1")  # General Practice
            await wait_until(pilot, lambda: showing(app, SmsOfferScreen), within=10)
            await pilot.press("1")  # no SMS
            await on_screen(pilot, ResultScreen)
            await wait_until(pilot, lambda: printed_or_failed(app), within=10)
            await pilot.pause(0.1)

        assert snap_compare(app, terminal_size=SIZE, run_before=ticket)
