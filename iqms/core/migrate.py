"""Apply, revert and inspect Alembic migrations from code (used by ``iqms db`` and tests)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from iqms import __version__
from iqms.core.db import Database
from iqms.core.errors import SchemaOutOfDate, ValidationError

T = TypeVar("T")
_RELATIVE = re.compile(r"[+-]\d+")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str | None:
    return _scripts().get_current_head()


def known_revisions() -> list[str]:
    """Every revision this version of IQMS has, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def check_target(revision: str) -> None:
    """Refuse an unknown target revision before anything is asked or changed."""
    if revision in ("head", "heads", "base") or _RELATIVE.fullmatch(revision):
        return  # relative steps are checked against the database when they run
    try:
        _scripts().get_revision(revision)
    except CommandError:
        known = ", ".join(known_revisions())
        raise ValidationError(
            f"unknown schema revision {revision!r} (this IQMS has {known}; or use head, base, -1)",
            field="revision",
        ) from None


async def _guard(db: Database, step: Callable[[], Awaitable[T]]) -> T:
    """Run a migration step; database and Alembic errors become one plain error."""
    try:
        return await step()
    except CommandError as exc:
        raise ValidationError(f"cannot migrate: {exc}", field="revision") from None
    except (DBAPIError, OSError) as exc:
        problem = db.explain(exc)
        if problem is None:
            raise
        raise problem from exc


def _with_connection(fn: Any, *args: Any) -> Any:
    def run(sync_conn: Connection) -> Any:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        return fn(cfg, *args)

    return run


async def upgrade(db: Database, revision: str = "head") -> None:
    """Upgrade the database schema to ``revision``."""
    check_target(revision)

    async def step() -> None:
        async with db.engine.begin() as conn:
            await conn.run_sync(_with_connection(command.upgrade, revision))

    await _guard(db, step)


async def downgrade(db: Database, revision: str) -> None:
    """Downgrade the database schema to ``revision`` (e.g. ``-1`` or ``base``)."""
    check_target(revision)

    async def step() -> None:
        async with db.engine.begin() as conn:
            await conn.run_sync(_with_connection(command.downgrade, revision))

    await _guard(db, step)


async def current(db: Database) -> str | None:
    """The revision the database is at (None: no IQMS schema yet)."""

    def read(sync_conn: Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async def step() -> str | None:
        async with db.read_engine.connect() as conn:
            return await conn.run_sync(read)

    return await _guard(db, step)


async def is_up_to_date(db: Database) -> bool:
    return await current(db) == head_revision()


async def require_current(db: Database) -> None:
    """Refuse to work on a database whose schema is not the one this IQMS was built for."""
    revision = await current(db)
    head = head_revision()
    if revision == head:
        return
    if revision is None:
        raise SchemaOutOfDate(f"{db.where} has no IQMS schema yet; run 'iqms db upgrade'")
    if revision not in known_revisions():
        raise SchemaOutOfDate(
            f"{db.where} has schema revision {revision}, newer than this IQMS {__version__} "
            f"knows (it has up to {head}); use the IQMS version that upgraded it"
        )
    raise SchemaOutOfDate(
        f"{db.where} has an older schema (revision {revision}; this IQMS needs {head}); "
        "run 'iqms db upgrade'"
    )
