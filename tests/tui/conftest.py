"""Fixtures of the console tests: a real SQLite database (PostgreSQL where the backend matters).

Most reception tests start from the same clinic morning (:func:`tests.tui.desk.seed_desk`):
it is built once per run through the services and copied for each test.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.service import Context
from iqms.tui.reception.app import ReceptionApp
from tests.system import run_as_system, system_context
from tests.tui.desk import MORNING, Desk, reception, seed_desk
from tests.tui.support import console_settings


@pytest.fixture
def tui_settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """Console settings on a fresh SQLite file (the consoles' own data dir and config dir)."""
    return console_settings(tmp_path, sqlite_url)


@pytest.fixture
async def core(tui_settings: Settings, clock: FrozenClock) -> AsyncIterator[Context]:
    """The system's own context on the console's database, to set up and to check outcomes."""
    async with system_context(tui_settings, clock) as ctx:
        yield ctx


@pytest.fixture(scope="session")
def desk_template(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Desk]:
    """The seeded clinic morning in an SQLite file, built once."""
    path = tmp_path_factory.mktemp("desk") / "desk.db"
    shutil.copyfile(sqlite_template, path)
    settings = console_settings(path.parent, f"sqlite+aiosqlite:///{path}")

    clock = FrozenClock()
    return path, run_as_system(settings, lambda core: seed_desk(core, clock), clock)


@pytest.fixture
def desk_url(desk_template: tuple[Path, Desk], tmp_path: Path) -> str:
    path = tmp_path / "iqms.db"
    shutil.copyfile(desk_template[0], path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def desk(desk_template: tuple[Path, Desk], clock: FrozenClock) -> Desk:
    """The seeded clinic's people and departments; the clock stands at 09:30 that morning."""
    clock.set(MORNING)
    return desk_template[1]


@pytest.fixture
def desk_settings(tmp_path: Path, desk_url: str) -> Settings:
    return console_settings(tmp_path, desk_url)


@pytest.fixture
def desk_app(desk_settings: Settings, desk: Desk, clock: FrozenClock) -> ReceptionApp:
    """Rita's reception console on the seeded clinic, without live events (the test moves)."""
    return reception(desk_settings, desk.rita, clock, live_events=False)


@pytest.fixture
async def desk_core(
    desk_settings: Settings, desk: Desk, clock: FrozenClock
) -> AsyncIterator[Context]:
    """The system's context on the seeded clinic (to change things and check outcomes)."""
    async with system_context(desk_settings, clock) as ctx:
        yield ctx
