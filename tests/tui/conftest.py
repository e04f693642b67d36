"""Fixtures of the console tests: a real SQLite database (PostgreSQL where the backend matters)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from tests.tui.support import console_settings


@pytest.fixture
def tui_settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """Console settings on a fresh SQLite file (the consoles' own data dir and config dir)."""
    return console_settings(tmp_path, sqlite_url)


@pytest.fixture
async def core(tui_settings: Settings, clock: FrozenClock) -> AsyncIterator[Context]:
    """The system's own context on the console's database, to set up and to check outcomes."""
    db = Database.from_settings(tui_settings)
    try:
        yield Context(db=db, principal=Principal.system("test"), settings=tui_settings, clock=clock)
    finally:
        await db.dispose()
