"""Pooled connections: no ping before every transaction, yet a stale one is replaced."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import iqms.core.db as db_module
from iqms.core.db import Database


@pytest.mark.postgresql
async def test_an_idle_connection_the_server_dropped_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A terminal left alone while the server restarted: its pooled connection is dead.
    monkeypatch.setattr(db_module, "PG_IDLE_PING_SECONDS", 0.0)
    db, admin = Database(pg_url), Database(pg_url)
    try:
        async with db.transaction() as s:
            pid = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with admin.transaction() as s:
            await s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with db.transaction() as s:
            again = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again != pid
    finally:
        await db.dispose()
        await admin.dispose()


@pytest.mark.sqlite
async def test_sqlite_writers_wait_for_each_other_without_blocking_the_loop(
    sqlite_url: str,
) -> None:
    import asyncio

    db = Database(sqlite_url)
    other = Database(sqlite_url)  # another process's handle, as far as SQLite is concerned
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        async with other.transaction() as s:  # holds the write lock ...
            await s.execute(text("CREATE TABLE IF NOT EXISTS t_wait (n INTEGER)"))

            async def writer() -> None:
                async with db.transaction() as s2:
                    await s2.execute(text("INSERT INTO t_wait VALUES (1)"))

            waiting = asyncio.create_task(writer())
            await asyncio.sleep(0.3)  # ... while the event loop keeps running
            assert not waiting.done()
            before = ticks
        await asyncio.wait_for(waiting, 5)
        assert before >= 20
    finally:
        ticker.cancel()
        await db.dispose()
        await other.dispose()
