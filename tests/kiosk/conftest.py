"""Fixtures of the kiosk tests: the kiosk computer's settings on a real database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.service import Context
from tests.kiosk.support import kiosk_settings
from tests.system import system_context


@pytest.fixture(scope="session", autouse=True)
def escpos_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # python-escpos caches its printer data; keep that cache out of the home directory.
    os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(tmp_path_factory.mktemp("escpos")))


@pytest.fixture
def kiosk_env(tmp_path: Path, sqlite_url: str) -> Settings:
    """The kiosk computer's settings on a fresh SQLite database."""
    return kiosk_settings(tmp_path, sqlite_url)


@pytest.fixture
async def core(kiosk_env: Settings, clock: FrozenClock) -> AsyncIterator[Context]:
    """The system's own context on the kiosk's database, to set up and to check outcomes."""
    async with system_context(kiosk_env, clock) as ctx:
        yield ctx
