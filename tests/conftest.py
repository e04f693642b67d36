"""Shared fixtures: a real SQLite file and a real PostgreSQL, a fresh database per test.

PostgreSQL comes from ``IQMS_TEST_DATABASE_URL`` (a server where the user may
create databases) or from a throwaway cluster started with the installed
server binaries. Each test gets its own database cloned from a migrated
template (``CREATE DATABASE ... TEMPLATE``), so tests are isolated and cheap.
Without PostgreSQL the PostgreSQL tests are skipped with the reason, unless
``IQMS_REQUIRE_POSTGRES=1``, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from iqms.core import migrate
from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from tests.pgcluster import PostgresServer, find_or_start_postgres

REQUIRE_POSTGRES = os.environ.get("IQMS_REQUIRE_POSTGRES") == "1"
TEMPLATE_DB = "iqms_test_template"


@dataclass
class PgState:
    server: PostgresServer | None
    reason: str = ""


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgState]:
    """A PostgreSQL server for the whole run, with a migrated template database."""
    try:
        server = find_or_start_postgres()
    except RuntimeError as exc:
        yield PgState(None, str(exc))
        return
    try:
        server.recreate_database(TEMPLATE_DB)
        db = Database(server.url(TEMPLATE_DB))

        async def prepare() -> None:
            await migrate.upgrade(db)
            await db.dispose()

        asyncio.run(prepare())
        yield PgState(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with every migration applied, copied for each test."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    db = Database(f"sqlite+aiosqlite:///{path}")

    async def prepare() -> None:
        await migrate.upgrade(db)
        await db.dispose()

    asyncio.run(prepare())
    return path


def require_pg(state: PgState) -> PostgresServer:
    if state.server is None:
        if REQUIRE_POSTGRES:
            pytest.fail(
                f"PostgreSQL is required (IQMS_REQUIRE_POSTGRES=1) but unavailable: {state.reason}"
            )
        pytest.skip(f"PostgreSQL not available: {state.reason}")
    return state.server


@pytest.fixture
def pg_url(pg_server: PgState) -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for one test."""
    server = require_pg(pg_server)
    name = f"t_{uuid.uuid4().hex[:16]}"
    server.create_database(name, template=TEMPLATE_DB)
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """URL of a fresh, migrated SQLite file for one test."""
    path = tmp_path / "iqms.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database on each backend in turn."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings for a test: its own data dir, cheap password hashing, fixed secret."""
    return make_settings(tmp_path, db_url)


def make_settings(tmp_path: Path, db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db_url,
        "data_dir": tmp_path / "data",
        "secret_key": "test-signing-secret-0123456789abcdef",
        "bcrypt_rounds": 4,
        "clinic_name": "Riverside Clinic",
        "timezone": "Europe/London",
        "sms_provider": "console",
        "push_provider": "none",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(settings)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def ctx(db: Database, settings: Settings, clock: FrozenClock) -> Context:
    """A system-principal context on the test database with a frozen clock."""
    return Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
