"""Async database access for SQLite (embedded default) and PostgreSQL (clinic LAN).

One :class:`Database` per process wraps the SQLAlchemy engines and hands out
transactions. On SQLite a write transaction takes the write lock up front
(``BEGIN IMMEDIATE``) so that claims such as *call next* are atomic; read-only
transactions use a second engine with deferred ``BEGIN`` so displays and
consoles keep reading while someone writes (WAL mode). SQLite statements run
on the calling thread (:mod:`iqms.core.sqlite_driver`); waiting for another
process's write lock never blocks the event loop.

PostgreSQL connections are not pinged before every transaction: only one
that sat unused in the pool for :data:`PG_IDLE_PING_SECONDS` is checked (and
replaced if the server went away meanwhile).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from iqms.core import sqlite_driver
from iqms.core.config import Settings, normalise_database_url
from iqms.core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000  # default; IQMS_DB_LOCK_TIMEOUT sets it
#: a pooled PostgreSQL connection unused for this long is pinged before it is handed out
PG_IDLE_PING_SECONDS = 10.0


def describe_url(url: URL) -> str:
    """Where the database is, for messages (never the password)."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database or ':memory:'}"
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    return f"PostgreSQL at {host}{port}/{url.database}"


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not be reached (not a data error)."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    if not isinstance(exc, DBAPIError):
        return isinstance(exc, (ConnectionError, OSError)) and not isinstance(
            exc, FileNotFoundError
        )
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    module = type(orig).__module__ if orig is not None else ""
    if module.startswith("psycopg"):
        if sqlstate is None:
            return isinstance(exc, (OperationalError, InterfaceError))
        return sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}
    if isinstance(exc, OperationalError):
        message = str(orig).lower()
        return "unable to open" in message or "disk i/o" in message
    return False


def sqlite_problem(exc: BaseException, where: str, lock_timeout: float) -> str | None:
    """What is wrong with an SQLite file, in words, from the error it gave (None: not that)."""
    if not isinstance(exc, DBAPIError) or exc.orig is None:
        return None
    if not type(exc.orig).__module__.startswith(("sqlite3", "aiosqlite")):
        return None
    text = str(exc.orig).lower()
    if "readonly" in text or "read-only" in text:
        return (
            f"{where} is read-only: IQMS needs to write to the file and to its folder "
            "(check their permissions)"
        )
    if "locked" in text or "busy" in text:
        return (
            f"{where} is locked by another program (waited {lock_timeout:g} s); "
            "try again, or close the program that holds it"
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (
            f"{where} is damaged or is not an SQLite database; restore it from a backup, "
            "or check IQMS_DATABASE_URL"
        )
    if "unable to open" in text:
        return f"cannot open {where}: check that its folder exists and that IQMS may write there"
    if "disk i/o" in text or "is full" in text:
        return f"cannot write {where}: {str(exc.orig).strip().splitlines()[0]}"
    return None


def missing_file_message(path: str | Path) -> str:
    return (
        f"cannot reach the database: there is no SQLite file at {path} "
        "(check IQMS_DATABASE_URL, or create it with 'iqms db upgrade')"
    )


def _install_sqlite_hooks(
    engine: AsyncEngine,
    *,
    immediate: bool,
    path: str | None,
    busy_timeout: float,
) -> None:
    """Connection set-up of one SQLite engine."""
    sync_engine = engine.sync_engine
    wait_ms = round(busy_timeout * 1000)

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A pooled connection keeps working on a file that has gone (unmounted share,
        # removed directory); treat that as a lost database, as a new connection would.
        if path and path != ":memory:" and not os.path.exists(path):
            raise DisconnectionError(f"database file {path} is gone")

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver leaves transactions to us (isolation_level=None, see sqlite_driver).
        cursor = dbapi_connection.cursor()
        # Writers wait for the write lock in begin_immediate, off the event loop.
        cursor.execute(f"PRAGMA busy_timeout = {0 if immediate else wait_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if immediate:
            sqlite_driver.begin_immediate(conn, wait_ms=wait_ms)
        else:
            conn.exec_driver_sql("BEGIN")


def _sqlite_connector(path: str | None, *, create: bool, busy_timeout_ms: int) -> Any:
    """The engine's ``async_creator``. Opening a missing SQLite file creates it, which only
    'iqms db upgrade' (and the demo and the simulator) may do; anything else at a mistyped
    path says so instead."""
    connect = sqlite_driver.connector(path or "", busy_timeout_ms=busy_timeout_ms)

    async def checked_connect() -> Any:
        if not create and path and path != ":memory:" and not os.path.exists(path):
            raise DatabaseUnavailable(missing_file_message(path))
        return await connect()

    return checked_connect


def _install_idle_ping(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection before use only if it sat idle (the server may have gone)."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["iqms_idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("iqms_idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except Exception as exc:  # the pool retries with a new connection
            raise DisconnectionError(f"pooled connection lost: {exc}") from exc


class Database:
    """Engines and transactions for one database URL."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        connect_timeout: int = 5,
        lock_timeout: float = SQLITE_BUSY_TIMEOUT_MS / 1000,
        create: bool = True,
        echo: bool = False,
    ) -> None:
        """``create=False``: a missing SQLite file is an error, not a new empty database."""
        self.url: URL = make_url(normalise_database_url(url))
        self.backend: str = self.url.get_backend_name()
        self.where = describe_url(self.url)
        self.lock_timeout = lock_timeout
        if self.is_sqlite:
            path = self.url.database
            if create and path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Pooled: opening a connection runs the PRAGMAs, which costs more than a
            # whole small transaction.
            self.engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                echo=echo,
                async_creator=_sqlite_connector(path, create=create, busy_timeout_ms=0),
            )
            self.read_engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                echo=echo,
                async_creator=_sqlite_connector(
                    path, create=create, busy_timeout_ms=round(lock_timeout * 1000)
                ),
            )
            for engine, immediate in ((self.engine, True), (self.read_engine, False)):
                _install_sqlite_hooks(
                    engine,
                    immediate=immediate,
                    path=path,
                    busy_timeout=lock_timeout,
                )
        else:
            self.engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size * 2,
                echo=echo,
                connect_args={"connect_timeout": connect_timeout},
            )
            _install_idle_ping(self.engine, PG_IDLE_PING_SECONDS)
            self.read_engine = self.engine
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self._read_sessions = async_sessionmaker(
            self.read_engine, expire_on_commit=False, autoflush=True
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool = False) -> Database:
        """The configured database; a missing SQLite file is an error unless ``create``."""
        return cls(
            settings.effective_database_url,
            pool_size=settings.db_pool_size,
            connect_timeout=settings.db_connect_timeout,
            lock_timeout=settings.db_lock_timeout,
            create=create,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgresql"

    def explain(self, exc: BaseException) -> DatabaseUnavailable | None:
        """The database error behind ``exc`` as one plain sentence (None: not such an error)."""
        if isinstance(exc, DatabaseUnavailable):
            return exc
        problem = sqlite_problem(exc, self.where, self.lock_timeout) if self.is_sqlite else None
        if problem is not None:
            return DatabaseUnavailable(problem)
        if is_connection_error(exc):
            return self.unavailable(exc)
        return None

    def unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        reason = getattr(exc, "orig", None) or exc
        first_line = (
            str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
        )
        return DatabaseUnavailable(f"cannot reach the database ({self.where}): {first_line}")

    @contextlib.asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        maker = self._read_sessions if readonly else self._sessions
        try:
            async with maker() as session, session.begin():
                yield session
        except (DBAPIError, OSError) as exc:
            problem = self.explain(exc)
            if problem is not None:
                raise problem from exc
            raise

    @contextlib.contextmanager
    def in_worker_thread(self) -> Iterator[None]:
        """Long reads (reports, exports): on SQLite their statements run on a worker thread."""
        with sqlite_driver.in_worker_thread():
            yield

    async def check(self) -> None:
        """Raise :class:`DatabaseUnavailable` if the database cannot be reached."""
        try:
            async with self.read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (DBAPIError, OSError) as exc:
            raise (self.explain(exc) or self.unavailable(exc)) from exc

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
