"""What the database stack costs before IQMS does anything: transactions of trivial statements.

    python -m benchmarks.bench_stack                      # throwaway PostgreSQL + SQLite
    python -m benchmarks.bench_stack --backends sqlite --ops 2000

The queue benchmark compares IQMS operations with a floor of raw-driver SQL.
Part of the gap is not IQMS's own work but the layers every operation runs
through. This measures them with the same trivial statement (``SELECT 1``),
in transactions of 1 and 6 statements, one caller:

* ``raw``: the bare driver (psycopg, sqlite3), what the queue floor uses;
* ``sqlalchemy``: SQLAlchemy's asyncio engine (``engine.begin()`` and
  ``conn.execute``), with the IQMS engine settings;
* ``iqms``: :meth:`iqms.core.db.Database.transaction` and
  ``session.execute``, the session every IQMS operation runs in.

Each line gives the cost of each statement (``per_statement_ms``) and of a
transaction around them (``per_transaction_ms``: begin, commit and the
connection's trip through the pool), worked out from the two transaction
sizes, and ``ops_per_s`` of the 6-statement transaction. ``ratio_to_raw`` is
``ops_per_s`` divided by the raw driver's.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.engine import make_url

from benchmarks._support import (
    Timing,
    add_backend_options,
    bench_settings,
    emit,
    fresh_database,
    progress,
    run_with_backends,
)
from iqms.core.db import Database

DEFAULT_OPS = 1000
STATEMENTS = 5
_SELECT_ONE = select(literal(1))


def _raw_transaction(url: str, statements: int) -> Callable[[], None]:
    """One transaction of ``statements`` × ``SELECT 1`` on a raw driver connection."""
    if make_url(url).get_backend_name() == "postgresql":
        import psycopg

        pg = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))

        def run_pg() -> None:
            with pg.transaction():
                for _ in range(statements):
                    pg.execute("SELECT 1").fetchone()

        run_pg.close = pg.close  # type: ignore[attr-defined]
        return run_pg
    lite = sqlite3.connect(make_url(url).database or "", isolation_level=None)
    lite.execute("PRAGMA journal_mode = WAL")

    def run_sqlite() -> None:
        lite.execute("BEGIN IMMEDIATE")
        for _ in range(statements):
            lite.execute("SELECT 1").fetchone()
        lite.execute("COMMIT")

    run_sqlite.close = lite.close  # type: ignore[attr-defined]
    return run_sqlite


async def _time(op: Callable[[], Awaitable[Any]], ops: int) -> Timing:
    for _ in range(min(50, ops)):  # warm: pool, prepared statements, compiled cache
        await op()
    latencies = []
    started = time.perf_counter()
    for _ in range(ops):
        t = time.perf_counter()
        await op()
        latencies.append(time.perf_counter() - t)
    return Timing(latencies, time.perf_counter() - started)


def _time_sync(op: Callable[[], None], ops: int) -> Timing:
    for _ in range(min(50, ops)):
        op()
    latencies = []
    started = time.perf_counter()
    for _ in range(ops):
        t = time.perf_counter()
        op()
        latencies.append(time.perf_counter() - t)
    return Timing(latencies, time.perf_counter() - started)


async def _layers(db: Database, url: str, statements: int, ops: int) -> dict[str, Timing]:
    async def through_sqlalchemy() -> None:
        async with db.engine.begin() as conn:
            for _ in range(statements):
                (await conn.execute(_SELECT_ONE)).scalar_one()

    async def through_iqms() -> None:
        async with db.transaction() as session:
            for _ in range(statements):
                (await session.execute(_SELECT_ONE)).scalar_one()

    def raw() -> Timing:
        op = _raw_transaction(url, statements)
        try:
            return _time_sync(op, ops)
        finally:
            op.close()  # type: ignore[attr-defined]

    return {
        "raw": await asyncio.to_thread(raw),
        "sqlalchemy": await _time(through_sqlalchemy, ops),
        "iqms": await _time(through_iqms, ops),
    }


async def bench_database(url: str, *, ops: int) -> list[dict[str, Any]]:
    """The three layers on one database; returns the result lines."""
    db = Database.from_settings(bench_settings(url), create=True)
    results: list[dict[str, Any]] = []
    try:
        short = await _layers(db, url, 1, ops)
        full = await _layers(db, url, 1 + STATEMENTS, ops)
    finally:
        await db.dispose()
    raw_rate = full["raw"].ops_per_s
    for layer in ("raw", "sqlalchemy", "iqms"):
        per_statement = (1 / full[layer].ops_per_s - 1 / short[layer].ops_per_s) / STATEMENTS
        per_statement = max(per_statement, 0.0)
        per_tx = max(1 / short[layer].ops_per_s - per_statement, 0.0)
        line = {
            "name": f"stack.{layer}",
            "backend": make_url(url).get_backend_name(),
            "callers": 1,
            "waiting": 0,
            "ops": ops,
            "statements": 1 + STATEMENTS,
            **full[layer].figures(),
            "per_transaction_ms": round(per_tx * 1000, 3),
            "per_statement_ms": round(per_statement * 1000, 3),
            "ratio_to_raw": round(full[layer].ops_per_s / raw_rate, 3),
        }
        results.append(line)
        emit(line)
    return results


async def run(server_url: str | None, *, backends: Sequence[str], ops: int) -> list[dict[str, Any]]:
    results = []
    for backend in backends:
        progress(f"stack benchmark: {backend}")
        async with fresh_database(backend, server_url) as url:
            results += await bench_database(url, ops=ops)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="The database stack's own cost: raw driver, SQLAlchemy asyncio, IQMS session."
    )
    add_backend_options(parser)
    parser.add_argument("--ops", type=int, default=DEFAULT_OPS, help="transactions per layer")
    args = parser.parse_args(argv)
    run_with_backends(parser, args, run, ops=args.ops)


if __name__ == "__main__":
    main()
