"""What the reception console looks like: the queue, the registration form with its messages and
the triage dialog, on an 80x24 terminal and on a 120x40 one (SVG snapshots, pytest-textual-snapshot).

Review a changed look with ``pytest tests/tui/test_reception_snapshots.py --snapshot-update``
and the report it writes; the SVGs live in ``tests/tui/__snapshots__/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.tui.dialogs import TriageDialog
from iqms.tui.reception.patients import PatientForm
from tests.tui.desk import Desk, open_queue, reception, seed_desk
from tests.tui.support import wait_until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


def seeded(settings: Settings, clock: FrozenClock) -> Desk:
    async def go() -> Desk:
        db = Database.from_settings(settings)
        core = Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
        try:
            return await seed_desk(core, clock)
        finally:
            await db.dispose()

    return asyncio.run(go())


async def steady(pilot: Pilot[Any]) -> None:
    """No blinking cursor in a picture."""
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    await pilot.pause()


def snap(
    snap_compare: Any,
    settings: Settings,
    clock: FrozenClock,
    size: tuple[int, int],
    then: Callable[[Pilot[Any]], Awaitable[None]] | None = None,
) -> bool:
    desk = seeded(settings, clock)
    app = reception(settings, desk.rita, clock, live_events=False)

    async def run_before(pilot: Pilot[Any]) -> None:
        await open_queue(pilot)
        if then is not None:
            await then(pilot)
        await steady(pilot)

    return bool(snap_compare(app, terminal_size=size, run_before=run_before))


@pytest.mark.parametrize("size", SIZES)
def test_the_queue(
    snap_compare: Any, tui_settings: Settings, clock: FrozenClock, size: Any
) -> None:
    assert snap(snap_compare, tui_settings, clock, size)


@pytest.mark.parametrize("size", SIZES)
def test_the_registration_form_with_errors(
    snap_compare: Any, tui_settings: Settings, clock: FrozenClock, size: Any
) -> None:
    async def form_with_errors(pilot: Pilot[Any]) -> None:
        await pilot.press("f2", "ctrl+n")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, PatientForm))
        await pilot.press("tab", *"12345", "tab", *"31/02/1990", "tab")
        await wait_until(
            pilot, lambda: "no date" in str(pilot.app.screen.query_one("#e-date_of_birth").render())
        )

    assert snap(snap_compare, tui_settings, clock, size, form_with_errors)


@pytest.mark.parametrize("size", SIZES)
def test_the_triage_dialog(
    snap_compare: Any, tui_settings: Settings, clock: FrozenClock, size: Any
) -> None:
    async def triage(pilot: Pilot[Any]) -> None:
        await pilot.press("down", "t")  # A-001, Amelia Hughes, standard
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, TriageDialog))

    assert snap(snap_compare, tui_settings, clock, size, triage)
