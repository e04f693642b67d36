"""Shared pieces of the queue and event benchmarks: databases, a clinic, bulk-loaded tickets."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.engine import make_url

from iqms.core import migrate
from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import DEFAULT_TRIAGE_TARGET_MINUTES, Role
from iqms.core.models import QueueEntry, TicketCounter
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, users

#: the benchmark's clinic day and the moment every operation happens
BENCH_NOW = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
BENCH_DAY = date(2026, 3, 2)
DEPARTMENT = "BEN"
PREFIX = "B"
CATEGORY_MIX = ((2, 0.1), (3, 0.3), (4, 0.45), (5, 0.15))


def emit(record: dict[str, Any]) -> None:
    """One JSON object per line on stdout."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def percentile_ms(values: Sequence[float], q: float, digits: int = 3) -> float:
    """The ``q``-th percentile of ``values`` (seconds) in milliseconds, rounded to ``digits``."""
    return round(1000 * percentile(values, q), digits)


@dataclass
class Timing:
    """Latencies (seconds) of individual operations and the wall time of the whole run."""

    latencies: list[float]
    wall: float

    @property
    def ops_per_s(self) -> float:
        return len(self.latencies) / self.wall if self.wall > 0 else math.nan

    def figures(self, prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}ops_per_s": round(self.ops_per_s, 1),
            f"{prefix}p50_ms": percentile_ms(self.latencies, 50),
            f"{prefix}p99_ms": percentile_ms(self.latencies, 99),
        }


async def wait_until(
    condition: Callable[..., object], what: str, *, within: float, poll: float = 0.001
) -> None:
    """Return as soon as ``condition()`` is true (checked every ``poll`` s); an error after
    ``within`` s. ``poll`` is a plain sleep: the app under test runs in the meantime."""
    deadline = time.perf_counter() + within
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(poll)


@contextlib.contextmanager
def commit_starts(db: Database) -> Iterator[list[float]]:
    """``time.perf_counter()`` at the start of each COMMIT on ``db`` while inside, in order:
    where a sample of "committed -> seen elsewhere" begins."""
    started: list[float] = []

    def on_commit(_conn: Any) -> None:
        started.append(time.perf_counter())

    event.listen(db.engine.sync_engine, "commit", on_commit)
    try:
        yield started
    finally:
        event.remove(db.engine.sync_engine, "commit", on_commit)


#: the signing secret of every benchmark's settings (and of the API benchmark's server)
BENCH_SECRET = "benchmark-signing-secret-0123456789"


def bench_settings(url: str, **overrides: Any) -> Settings:
    """Settings for a benchmark on ``url`` (no .env file, UTC, fast hashing), plus ``overrides``."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        timezone="UTC",
        secret_key=BENCH_SECRET,
        bcrypt_rounds=4,
        **overrides,
    )


@contextlib.asynccontextmanager
async def fresh_database(backend: str, server_url: str | None) -> AsyncIterator[str]:
    """A new, migrated database (PostgreSQL on ``server_url``, or an SQLite file); dropped after."""
    if backend == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="iqms-bench-"))
        url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        try:
            await _migrate(url)
            yield url
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    from tests.pgcluster import PostgresServer

    if server_url is None:
        raise RuntimeError("a PostgreSQL server URL is needed")
    server = PostgresServer(admin_url=server_url)
    name = f"iqms_bench_{uuid.uuid4().hex[:10]}"
    server.create_database(name)
    try:
        url = server.url(name)
        await _migrate(url)
        yield url
    finally:
        server.drop_database(name)


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


@dataclass
class BenchClinic:
    department_id: uuid.UUID
    doctors: list[tuple[uuid.UUID, uuid.UUID, str, str]]  # doctor id, user id, username, room

    def doctor_context(self, ctx: Context, index: int) -> Context:
        doctor_id, user_id, username, _room = self.doctors[index]
        return ctx.as_principal(
            Principal(
                user_id=user_id, username=username, role=Role.DOCTOR.value, doctor_id=doctor_id
            )
        )


def system_context(db: Database, settings: Settings) -> Context:
    return Context(
        db=db,
        principal=Principal.system("benchmark"),
        settings=settings,
        clock=FrozenClock(BENCH_NOW),
    )


async def make_clinic(ctx: Context, doctors: int) -> BenchClinic:
    """A department with ``doctors`` available doctors, made through the services."""
    dept = await clinic.create_department(
        ctx, code=DEPARTMENT, name="Benchmark clinic", ticket_prefix=PREFIX
    )
    found = []
    for i in range(doctors):
        username = f"bench-dr-{i + 1}"
        account = await users.create(
            ctx,
            username=username,
            full_name=f"Dr Bench {i + 1}",
            role=Role.DOCTOR,
            password=f"bench-password-{i + 1:04d}",
        )
        doc = await clinic.create_doctor(
            ctx, user=username, department=dept.id, room=f"Room {i + 1}"
        )
        await clinic.set_doctor_status(ctx, doctor=doc.id, status="available")
        found.append((doc.id, account.id, username, doc.room))
    return BenchClinic(dept.id, found)


def waiting_rows(department_id: uuid.UUID, count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` waiting tickets that arrived over the two hours before ``BENCH_NOW``."""
    rng = random.Random(seed)
    categories = [c for c, _ in CATEGORY_MIX]
    weights = [w for _, w in CATEGORY_MIX]
    start = BENCH_NOW - timedelta(hours=2)
    step = timedelta(hours=2) / max(count, 1)
    rows = []
    for i in range(count):
        arrived = start + step * i
        category = rng.choices(categories, weights)[0]
        target = DEFAULT_TRIAGE_TARGET_MINUTES[category]  # type: ignore[index]
        rows.append(
            {
                "id": uuid.uuid4(),
                "created_at": arrived,
                "updated_at": arrived,
                "service_date": BENCH_DAY,
                "department_id": department_id,
                "sequence": i + 1,
                "ticket_number": f"{PREFIX}-{i + 1:03d}",
                "triage_category": category,
                "queue_band": 1,
                "source": "kiosk",
                "status": "waiting",
                "arrived_at": arrived,
                "due_at": arrived + timedelta(minutes=target),
                "recall_count": 0,
            }
        )
    return rows


COPY_COLUMNS = (
    "id", "created_at", "updated_at", "service_date", "department_id", "sequence",
    "ticket_number", "triage_category", "queue_band", "source", "status", "arrived_at",
    "due_at", "recall_count",
)  # fmt: skip


async def bulk_load_waiting(url: str, department_id: uuid.UUID, count: int) -> float:
    """Insert ``count`` waiting tickets directly (COPY on PostgreSQL); returns the seconds taken."""
    started = time.perf_counter()
    rows = waiting_rows(department_id, count)
    if make_url(url).get_backend_name() == "postgresql":
        import psycopg

        conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        async with await psycopg.AsyncConnection.connect(conninfo) as conn:
            async with conn.cursor() as cur:
                async with cur.copy(
                    f"COPY queue_entries ({', '.join(COPY_COLUMNS)}) FROM STDIN"
                ) as copy:
                    for row in rows:
                        await copy.write_row([row[c] for c in COPY_COLUMNS])
                await cur.execute(
                    "INSERT INTO ticket_counters (id, department_id, service_date, last_number) "
                    "VALUES (%s, %s, %s, %s)",
                    (uuid.uuid4(), department_id, BENCH_DAY, count),
                )
        # What autovacuum soon does on a live server: statistics and the visibility map, and
        # the dead versions of the waiting counts the load's triggers bumped once per ticket.
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            await conn.execute("VACUUM (ANALYZE) queue_entries, waiting_counts, ticket_counters")
    else:
        db = Database(url)
        try:
            async with db.transaction() as s:
                for chunk in range(0, len(rows), 5000):
                    await s.execute(insert(QueueEntry), rows[chunk : chunk + 5000])
                await s.execute(
                    insert(TicketCounter),
                    [
                        {
                            "id": uuid.uuid4(),
                            "department_id": department_id,
                            "service_date": BENCH_DAY,
                            "last_number": count,
                        }
                    ],
                )
        finally:
            await db.dispose()
    return time.perf_counter() - started


# ---- the values SQLite holds for UUIDs and times (as SQLAlchemy writes them) ----------------
def sqlite_uuid(value: uuid.UUID) -> str:
    return value.hex


def sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


__all__ = [
    "BENCH_DAY",
    "BENCH_NOW",
    "BENCH_SECRET",
    "BenchClinic",
    "Timing",
    "bench_settings",
    "bulk_load_waiting",
    "commit_starts",
    "emit",
    "fresh_database",
    "make_clinic",
    "percentile",
    "percentile_ms",
    "progress",
    "run_with_backends",
    "sqlite_time",
    "sqlite_uuid",
    "system_context",
    "wait_until",
    "waiting_rows",
]


BACKENDS = ("postgresql", "sqlite")


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """``--url`` (an existing PostgreSQL server) and ``--backends`` for a benchmark's command."""
    parser.add_argument("--url", help="PostgreSQL server URL where databases may be created")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: postgresql,sqlite"
    )


def chosen_backends(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend {sorted(unknown)[0]!r}")
    return backends


@contextlib.contextmanager
def postgres_server(url: str | None, *, needed: bool = True) -> Iterator[Any]:
    """The PostgreSQL server at ``url``, or a throwaway one started (and stopped) here."""
    if not needed:
        yield None
        return
    from tests.pgcluster import find_or_start_postgres

    server = find_or_start_postgres(url)
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()


def run_with_backends(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    run: Callable[..., Awaitable[Any]],
    **options: Any,
) -> None:
    """A benchmark's command: ``run(server_url, backends=..., **options)`` on the chosen backends,
    with a PostgreSQL server (``--url`` or a throwaway one) when one of them needs it."""
    backends = chosen_backends(parser, args)
    with postgres_server(args.url, needed="postgresql" in backends) as server:
        asyncio.run(run(server.admin_url if server else None, backends=backends, **options))
