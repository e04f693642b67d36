"""SQLite statements run where they are awaited, not on a worker thread.

SQLAlchemy's async SQLite dialect talks to ``aiosqlite``, which runs every
call on a thread of its own and hands each result back through the event
loop: two thread hand-offs per statement, the larger part of a short
statement's cost (measured: a typical eight-statement transaction took about
four times as long as the same work on the loop's own thread). SQLite
statements on an indexed file are microseconds of work, so here they run
directly on the calling thread, through an object with the interface the
dialect expects of an ``aiosqlite`` connection (``create_async_engine(...,
async_creator=...)``).

Two things keep the event loop responsive all the same:

* nothing waits for another process's write lock on the loop's thread: write
  connections have no busy timeout, and :func:`begin_immediate` retries
  ``BEGIN IMMEDIATE`` with short asynchronous sleeps until the usual 30 s
  have passed;
* long reads (reports, exports) opt in to a worker thread with
  :func:`in_worker_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.util import await_only

_WORKER_THREAD: ContextVar[bool] = ContextVar("iqms_sqlite_worker_thread", default=False)

#: first and longest pause between attempts to take the write lock (seconds)
BUSY_FIRST_PAUSE = 0.001
BUSY_LONGEST_PAUSE = 0.05


@contextlib.contextmanager
def in_worker_thread() -> Iterator[None]:
    """Run the SQLite statements of this block on a worker thread (for long reads)."""
    token = _WORKER_THREAD.set(True)
    try:
        yield
    finally:
        _WORKER_THREAD.reset(token)


class InlineCursor:
    """An ``aiosqlite``-style cursor whose coroutines do the work before returning."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Any = ()) -> InlineCursor:
        if _WORKER_THREAD.get():
            await asyncio.to_thread(self._cursor.execute, operation, parameters)
        else:
            self._cursor.execute(operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Any) -> InlineCursor:
        if _WORKER_THREAD.get():
            await asyncio.to_thread(self._cursor.executemany, operation, parameters)
        else:
            self._cursor.executemany(operation, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        size = self._cursor.arraysize if size is None else size
        if _WORKER_THREAD.get():
            return await asyncio.to_thread(self._cursor.fetchmany, size)
        return self._cursor.fetchmany(size)

    async def fetchall(self) -> Sequence[Any]:
        if _WORKER_THREAD.get():
            return await asyncio.to_thread(self._cursor.fetchall)
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """An ``aiosqlite``-style connection around a plain :mod:`sqlite3` connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn

    @property
    def _connection(self) -> sqlite3.Connection | None:
        # SQLAlchemy checks this before commit / rollback (None once closed).
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._live().isolation_level

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._conn

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._live().cursor())

    async def execute(self, operation: str, parameters: Any = ()) -> InlineCursor:
        cursor = self.cursor()
        return await cursor.execute(operation, parameters)

    async def commit(self) -> None:
        self._live().commit()

    async def rollback(self) -> None:
        self._live().rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._live().create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def connector(path: str, *, busy_timeout_ms: int) -> Any:
    """The ``async_creator`` of an engine on the SQLite file ``path``."""

    async def connect() -> InlineConnection:
        # isolation_level=None: the driver never opens transactions by itself; IQMS emits
        # BEGIN (IMMEDIATE) when SQLAlchemy begins one.
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            check_same_thread=False,  # a worker thread may run a long read
            timeout=busy_timeout_ms / 1000,
        )
        return InlineConnection(conn)

    return connect


def _is_busy(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig).lower()


def begin_immediate(connection: Any, *, wait_ms: int) -> None:
    """``BEGIN IMMEDIATE``, waiting up to ``wait_ms`` for another writer without blocking the loop.

    Called from SQLAlchemy's ``begin`` event, inside its greenlet, so the
    pauses are asynchronous sleeps.
    """
    deadline = time.monotonic() + wait_ms / 1000
    pause = BUSY_FIRST_PAUSE
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        await_only(asyncio.sleep(pause))
        pause = min(pause * 2, BUSY_LONGEST_PAUSE)


__all__ = ["InlineConnection", "InlineCursor", "begin_immediate", "connector", "in_worker_thread"]
