"""The system's own context on a test's database: to set things up and to check outcomes.

Opened and closed around the work (closing the last connection folds SQLite's WAL
into the file), from async tests and fixtures or, for CLI tests, from plain code;
and the environment and login token of a computer whose ``iqms`` uses that database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from iqms.core.clock import Clock, SystemClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import Role
from iqms.core.security.rbac import Principal
from iqms.core.security.tokens import issue_token
from iqms.core.service import Context

T = TypeVar("T")


@asynccontextmanager
async def system_context(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Context]:
    """A context acting as the system on ``settings``' database; the database closed after."""
    db = Database.from_settings(settings)
    try:
        yield Context(db=db, principal=Principal.system("test"), settings=settings,
                      clock=clock or SystemClock())  # fmt: skip
    finally:
        await db.dispose()


def run_as_system(
    settings: Settings, work: Callable[[Context], Awaitable[T]], clock: Clock | None = None
) -> T:
    """``work(ctx)`` run to the end as the system, from code outside an event loop (CLI tests)."""

    async def run() -> T:
        async with system_context(settings, clock) as ctx:
            return await work(ctx)

    return asyncio.run(run())


# ---- the command line of a computer pointed at the test database ---------------------------------
def cli_environment(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    db_url: str,
    *,
    unset: Iterable[str] = (),
    **extra: str,
) -> dict[str, str]:
    """Set the ``IQMS_*`` variables of a computer using ``db_url`` (plus ``extra``), with the
    variables in ``unset`` removed; returns what was set (for a subprocess's environment)."""
    env = {
        "IQMS_DATABASE_URL": db_url,
        "IQMS_DATA_DIR": str(tmp_path / "data"),
        "IQMS_CONFIG_DIR": str(tmp_path / "config"),
        "IQMS_SECRET_KEY": "test-signing-secret-0123456789abcdef",  # as make_settings has it
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    return env


def login_token(settings: Settings, user_id: uuid.UUID, username: str, role: Role) -> str:
    """The token ``iqms login`` would save for this account (for ``IQMS_TOKEN``)."""
    return issue_token(settings, user_id=user_id, username=username, role=role.value,
                       token_version=1, now=SystemClock().now())  # fmt: skip
