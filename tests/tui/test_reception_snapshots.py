"""What the reception console looks like: the queue, the registration form with its messages and
the triage dialog, on an 80x24 terminal and on a 120x40 one (SVG snapshots, pytest-textual-snapshot).

Review a changed look with ``pytest tests/tui/test_reception_snapshots.py --snapshot-update``
and the report it writes; the SVGs live in ``tests/tui/__snapshots__/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.tui.dialogs import TriageDialog
from iqms.tui.reception.patients import PatientForm
from tests.tui.desk import Desk, open_queue, reception
from tests.tui.support import showing, wait_until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def steady(pilot: Pilot[Any]) -> None:
    """No blinking cursor in a picture."""
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    await pilot.pause()


def snap(
    snap_compare: Any,
    settings: Settings,
    clock: FrozenClock,
    desk: Desk,
    size: tuple[int, int],
    then: Callable[[Pilot[Any]], Awaitable[None]] | None = None,
) -> bool:
    app = reception(settings, desk.rita, clock, live_events=False)

    async def run_before(pilot: Pilot[Any]) -> None:
        await open_queue(pilot)
        if then is not None:
            await then(pilot)
        await steady(pilot)

    return bool(snap_compare(app, terminal_size=size, run_before=run_before))


@pytest.mark.parametrize("size", SIZES)
def test_the_queue(
    snap_compare: Any, desk_settings: Settings, clock: FrozenClock, desk: Desk, size: Any
) -> None:
    assert snap(snap_compare, desk_settings, clock, desk, size)


@pytest.mark.parametrize("size", SIZES)
def test_the_registration_form_with_errors(
    snap_compare: Any, desk_settings: Settings, clock: FrozenClock, desk: Desk, size: Any
) -> None:
    async def form_with_errors(pilot: Pilot[Any]) -> None:
        await pilot.press("f2", "ctrl+n")
        await wait_until(pilot, lambda: showing(pilot.app, PatientForm))
        await pilot.press("tab", *"12345", "tab", *"31/02/1990", "tab")
        await wait_until(
            pilot, lambda: "no date" in str(pilot.app.screen.query_one("#e-date_of_birth").render())
        )

    assert snap(snap_compare, desk_settings, clock, desk, size, form_with_errors)


@pytest.mark.parametrize("size", SIZES)
def test_the_triage_dialog(
    snap_compare: Any, desk_settings: Settings, clock: FrozenClock, desk: Desk, size: Any
) -> None:
    async def triage(pilot: Pilot[Any]) -> None:
        await pilot.press("down", "t")  # A-001, Amelia Hughes, standard
        await wait_until(pilot, lambda: showing(pilot.app, TriageDialog))

    assert snap(snap_compare, desk_settings, clock, desk, size, triage)
