"""What the doctor console looks like: idle, a patient called, a patient in the room.

SVG snapshots (pytest-textual-snapshot) at 80x24 and 120x40 on a real SQLite
database with a frozen clock; ``pytest --snapshot-update`` accepts a new look.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.pilot import Pilot

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import queue
from tests.tui.doctor_clinic import doctor_app, doctor_clinic, issue, on_doctor_screen, shows, until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def _morning(settings: Settings, clock: FrozenClock) -> Principal:
    """Six patients waiting for Dr Smith's department, one with a note from reception."""
    db = Database.from_settings(settings)
    core = Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
    try:
        c = await doctor_clinic(core)
        first = await issue(core, c.patients["Amelia Hughes"], category=2)
        await queue.set_note(core, ticket=first.id, note="Needs an interpreter (Polish)")
        clock.advance(minutes=6)
        await issue(core, c.patients["Oliver Brown"])
        await issue(core, None, category=3)
        clock.advance(minutes=9)
        await issue(core, c.patients["Mia Wilson"], doctor="drsmith")
        await issue(core, None, category=5)
        await issue(core, None)
        clock.advance(minutes=31)
        return c.smith
    finally:
        await db.dispose()


def _console(settings: Settings, clock: FrozenClock) -> Any:
    smith = asyncio.run(_morning(settings, clock))
    return doctor_app(settings, smith, clock, live_events=False)


def _steps(clock: FrozenClock, *steps: tuple[str, str]) -> Any:
    """Press each key once the screen shows what the previous one did (as a person would)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await pilot.pause()
        await until(pilot, lambda: on_doctor_screen(app))  # type: ignore[arg-type]
        for key, expected in steps:
            if key:
                await pilot.press(key)
            await pilot.pause()
            if key == "s":
                clock.advance(minutes=7, seconds=30)  # seven and a half minutes in the room
            await until(pilot, lambda e=expected: shows(app, e))  # type: ignore[arg-type,misc]
        await until(pilot, lambda: not app.screen.busy)  # type: ignore[attr-defined]
        app.clear_notifications()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_idle(snap_compare: Any, tui_settings: Settings, clock: FrozenClock, size: Any) -> None:
    app = _console(tui_settings, clock)
    before = _steps(clock, ("", "No patient with you."), ("", "My queue · 6 waiting"))
    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_called(snap_compare: Any, tui_settings: Settings, clock: FrozenClock, size: Any) -> None:
    app = _console(tui_settings, clock)
    before = _steps(clock, ("n", "Amelia Hughes, 75 y"), ("", "My queue · 5 waiting"))
    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_in_service(
    snap_compare: Any, tui_settings: Settings, clock: FrozenClock, size: Any
) -> None:
    app = _console(tui_settings, clock)
    before = _steps(
        clock, ("n", "Amelia Hughes, 75 y"), ("s", "IN SERVICE 07:30"), ("", "My queue · 5 waiting")
    )
    assert snap_compare(app, terminal_size=size, run_before=before)
