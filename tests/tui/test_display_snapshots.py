"""How the board looks on a small monitor, on a large television, and in high contrast."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import display, queue
from iqms.tui.display import BoardApp
from iqms.tui.themes import HIGH_CONTRAST
from tests.tui.display_support import board_key, call, named_clinic, signs_in_with
from tests.tui.support import console_settings


def a_busy_morning(settings: Settings, clock: FrozenClock) -> str:
    """Calls in three rooms, people waiting in both departments, a message; the board's key."""

    async def seed() -> str:
        db = Database.from_settings(settings)
        try:
            ctx = Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
            clinic = await named_clinic(ctx, waiting=6)
            await queue.issue(ctx, department="PED")
            await queue.issue(ctx, department="PED")
            for doctor in ("drjones", "drpatel", "drsmith"):
                await call(ctx, clinic, doctor)
                clock.advance(minutes=2)
            await display.set_message(ctx, text="Dr Patel is running 20 minutes late")
            return await board_key(ctx)
        finally:
            await db.dispose()

    return asyncio.run(seed())


def board(tmp_path: Path, sqlite_url: str, clock: FrozenClock, **settings: Any) -> BoardApp:
    config = console_settings(tmp_path, sqlite_url, **settings)
    key = a_busy_morning(config, clock)
    return BoardApp(config, signs_in_with(key), clock=clock, live_events=False)


async def loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, BoardApp)
    await pilot.pause()
    for _ in range(200):
        if app.board.view is not None:
            break
        await pilot.pause(0.02)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["monitor-80x24", "tv-200x50"])
def test_the_board_at_both_ends_of_the_size_range(
    snap_compare: Any, tmp_path: Path, sqlite_url: str, size: tuple[int, int]
) -> None:
    app = board(tmp_path, sqlite_url, FrozenClock())
    assert snap_compare(app, terminal_size=size, run_before=loaded)


def test_the_board_in_high_contrast(snap_compare: Any, tmp_path: Path, sqlite_url: str) -> None:
    app = board(tmp_path, sqlite_url, FrozenClock(), tui_theme=HIGH_CONTRAST)
    assert snap_compare(app, terminal_size=(120, 40), run_before=loaded)
