"""Apply, revert and inspect Alembic migrations from code (used by ``iqms db`` and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from iqms.core.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _with_connection(fn: Any, *args: Any) -> Any:
    def run(sync_conn: Connection) -> Any:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        return fn(cfg, *args)

    return run


async def upgrade(db: Database, revision: str = "head") -> None:
    """Upgrade the database schema to ``revision``."""
    async with db.engine.begin() as conn:
        await conn.run_sync(_with_connection(command.upgrade, revision))


async def downgrade(db: Database, revision: str) -> None:
    """Downgrade the database schema to ``revision`` (e.g. ``-1`` or ``base``)."""
    async with db.engine.begin() as conn:
        await conn.run_sync(_with_connection(command.downgrade, revision))


async def current(db: Database) -> str | None:
    """The revision the database is at (None: no IQMS schema yet)."""

    def read(sync_conn: Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with db.read_engine.connect() as conn:
        return await conn.run_sync(read)


async def is_up_to_date(db: Database) -> bool:
    return await current(db) == head_revision()
