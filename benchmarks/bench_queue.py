"""Queue operations through the core service layer, next to the bare SQL floor.

    python -m benchmarks.bench_queue                      # throwaway PostgreSQL + SQLite
    python -m benchmarks.bench_queue --url postgresql://USER@HOST/postgres --ops 500
    python -m benchmarks.bench_queue --backends sqlite --waiting 1000

For each backend and each number of waiting tickets (bulk-loaded, not issued
through the services), with 1 and 8 concurrent callers:

* ``queue.issue``: ``queue.issue`` (numbering, due time, wait estimate, audit
  record, live event, notification triggers - everything a kiosk gets);
* ``queue.call_next``: ``queue.call_next`` by doctors (the atomic claim, audit,
  event);

and, in the same run on the same data, the floor: the same writes in plain SQL
with the raw drivers (psycopg, sqlite3), one transaction per operation, from
as many threads as callers:

* issue: bump the day's counter, insert the ticket, publish the event, append
  the audit record;
* call next: claim the best waiting ticket (the queue order with ``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), publish the
  event, append the audit record.

The event is ``pg_notify`` on PostgreSQL and a row of the events table on
SQLite; the audit record is a link of the hash chain (the chain's lock on
PostgreSQL, the last record read - in one call, ``iqms_audit_tail``, where
the schema has it - the new one hashed and inserted), so the floor leaves
data the application reads and verifies like its own.
``ratio_to_floor`` is IQMS throughput divided by the floor's (1.0 = no
overhead at all).

One JSON object per line on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url

from benchmarks._support import (
    BENCH_DAY,
    BENCH_NOW,
    BenchClinic,
    Timing,
    add_backend_options,
    bench_settings,
    bulk_load_waiting,
    emit,
    fresh_database,
    make_clinic,
    progress,
    run_with_backends,
    sqlite_time,
    sqlite_uuid,
    system_context,
)
from iqms.core.db import SQLITE_BUSY_TIMEOUT_MS, Database
from iqms.core.queue.events import CHANNEL
from iqms.core.security.audit import AUDIT_LOCK_KEY, GENESIS_HASH, compute_hash
from iqms.core.service import Context
from iqms.core.services import queue

DEFAULT_WAITING = (1_000, 100_000)
DEFAULT_CALLERS = (1, 8)
DEFAULT_OPS = 100


# ---- IQMS through the services ----------------------------------------------------------------
async def _concurrently(
    callers: int, ops: int, make_op: Callable[[int], Callable[[], Awaitable[Any]]]
) -> Timing:
    """Run ``ops`` operations split over ``callers`` tasks; time each and the whole."""
    latencies: list[float] = []
    share = [ops // callers + (1 if i < ops % callers else 0) for i in range(callers)]

    async def worker(index: int) -> None:
        op = make_op(index)
        for _ in range(share[index]):
            started = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(callers)))
    return Timing(latencies, time.perf_counter() - started)


async def iqms_issue(ctx: Context, bench: BenchClinic, callers: int, ops: int) -> Timing:
    def make_op(_index: int) -> Callable[[], Awaitable[Any]]:
        async def op() -> None:
            await queue.issue(ctx, department=bench.department_id, triage_category=4)

        return op

    return await _concurrently(callers, ops, make_op)


async def iqms_call_next(ctx: Context, bench: BenchClinic, callers: int, ops: int) -> Timing:
    def make_op(index: int) -> Callable[[], Awaitable[Any]]:
        doctor_ctx = bench.doctor_context(ctx, index % len(bench.doctors))

        async def op() -> None:
            ticket = await queue.call_next(doctor_ctx)
            if ticket is None:
                raise RuntimeError("the queue ran dry during the benchmark; use fewer --ops")

        return op

    return await _concurrently(callers, ops, make_op)


# ---- the floor: the same writes in plain SQL with the raw drivers -------------------------------
PG_ORDER = "queue_band, due_at, arrived_at, sequence"

PG_CLAIM = f"""
UPDATE queue_entries SET status = 'called', called_at = %(now)s, called_by_id = %(user)s,
       called_doctor_id = %(doctor)s, called_room = %(room)s, updated_at = %(now)s
 WHERE id = (SELECT id FROM queue_entries
              WHERE department_id = %(dept)s AND status = 'waiting'
                AND (doctor_id = %(doctor)s OR doctor_id IS NULL)
              ORDER BY {PG_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, ticket_number, patient_id, triage_category, arrived_at
"""

SQLITE_CLAIM = f"""
UPDATE queue_entries SET status = 'called', called_at = ?, called_by_id = ?, called_doctor_id = ?,
       called_room = ?, updated_at = ?
 WHERE id = (SELECT id FROM queue_entries
              WHERE department_id = ? AND status = 'waiting' AND (doctor_id = ? OR doctor_id IS NULL)
              ORDER BY {PG_ORDER} LIMIT 1)
RETURNING id, ticket_number, patient_id, triage_category, arrived_at
"""

BUMP = """
INSERT INTO ticket_counters (id, department_id, service_date, last_number)
VALUES ({p}, {p}, {p}, 1)
ON CONFLICT (department_id, service_date) DO UPDATE SET last_number = ticket_counters.last_number + 1
RETURNING last_number
"""

INSERT = """
INSERT INTO queue_entries (id, created_at, updated_at, service_date, department_id, sequence,
    ticket_number, triage_category, queue_band, source, status, arrived_at, due_at, recall_count,
    origin_device_id, status_code, estimate_at_issue_minutes)
VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, 4, 1, 'kiosk', 'waiting', {p}, {p}, 0, NULL, {p}, {p})
"""

PG_NOTIFY = "SELECT pg_notify(%s, %s)"

SQLITE_EVENT = """
INSERT INTO queue_events (id, seq, occurred_at, kind, department_id, payload)
SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? FROM queue_events
"""

AUDIT_LAST = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"

AUDIT_INSERT = """
INSERT INTO audit_log (id, seq, at, actor_id, actor_name, role, action, target_type, target_id,
    details, prev_hash, hash)
VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, 'queue_entry', {p}, {p}, {p}, {p})
"""


def _payload(kind: str, entry: dict[str, Any], **extra: Any) -> str:
    """The event as it travels (the shape of ``TicketEvent.to_payload``)."""
    body = {"kind": kind, **{k: _plain(v) for k, v in entry.items()}}
    body.update({k: _plain(v) for k, v in extra.items()})
    return json.dumps(body, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


class _Writer:
    """The event and audit writes of one floor operation, on one raw connection."""

    def __init__(self, conn: Any, backend: str, actor: tuple[uuid.UUID | None, str, str]) -> None:
        self.conn = conn
        self.pg = backend == "postgresql"
        self.actor_id, self.actor_name, self.role = actor
        self.audit_insert = AUDIT_INSERT.format(p="%s" if self.pg else "?")
        # PostgreSQL: the chain's lock and last record in one call where the schema has it.
        self.tail_function = self.pg and bool(
            conn.execute("SELECT to_regproc('iqms_audit_tail') IS NOT NULL").fetchone()[0]
        )

    def event(self, kind: str, department_id: uuid.UUID, payload: str) -> None:
        if self.pg:
            self.conn.execute(PG_NOTIFY, (CHANNEL, payload))
        else:
            self.conn.execute(
                SQLITE_EVENT,
                (uuid.uuid4().hex, sqlite_time(BENCH_NOW), kind, department_id.hex, payload),
            )

    def audit(self, action: str, target_id: uuid.UUID, details: dict[str, Any]) -> None:
        if self.tail_function:
            last = self.conn.execute(
                "SELECT seq, hash FROM iqms_audit_tail(%s)", (AUDIT_LOCK_KEY,)
            ).fetchone()
            last = last if last[0] is not None else None
        else:
            if self.pg:
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK_KEY,))
            last = self.conn.execute(AUDIT_LAST).fetchone()
        record = {
            "seq": (last[0] + 1) if last else 1,
            "at": BENCH_NOW,
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "role": self.role,
            "action": action,
            "target_type": "queue_entry",
            "target_id": str(target_id),
            "details": details,
            "prev_hash": last[1] if last else GENESIS_HASH,
        }
        digest = compute_hash(record)
        record_id = uuid.uuid4()
        if self.pg:
            from psycopg.types.json import Jsonb

            values: tuple[Any, ...] = (
                record_id, record["seq"], BENCH_NOW, self.actor_id, self.actor_name, self.role,
                action, str(target_id), Jsonb(details), record["prev_hash"], digest,
            )  # fmt: skip
        else:
            values = (
                record_id.hex, record["seq"], sqlite_time(BENCH_NOW),
                self.actor_id.hex if self.actor_id else None, self.actor_name, self.role,
                action, str(target_id), json.dumps(details), record["prev_hash"], digest,
            )  # fmt: skip
        self.conn.execute(self.audit_insert, values)


def _threads(callers: int, ops: int, make_op: Callable[[int], Callable[[], None]]) -> Timing:
    latencies: list[float] = []
    lock = threading.Lock()
    share = [ops // callers + (1 if i < ops % callers else 0) for i in range(callers)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(callers + 1)

    def worker(index: int) -> None:
        try:
            op = make_op(index)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
            return
        try:
            barrier.wait()
            mine = []
            for _ in range(share[index]):
                started = time.perf_counter()
                op()
                mine.append(time.perf_counter() - started)
            with lock:
                latencies.extend(mine)
        except BaseException as exc:
            errors.append(exc)
        finally:
            closer = getattr(op, "close", None)
            if closer is not None:
                closer()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return Timing(latencies, wall)


class _Op:
    """A floor operation holding its own connection (closed when the thread ends)."""

    def __init__(self, conn: Any, run: Callable[[Any], None]) -> None:
        self.conn = conn
        self.run = run

    def __call__(self) -> None:
        self.run(self.conn)

    def close(self) -> None:
        self.conn.close()


def _sqlite_connect(url: str) -> sqlite3.Connection:
    conn = sqlite3.connect(make_url(url).database or "", isolation_level=None, timeout=30)
    conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _pg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(False), autocommit=True
    )


def floor_issue(url: str, bench: BenchClinic, callers: int, ops: int) -> Timing:
    backend = make_url(url).get_backend_name()
    now = BENCH_NOW
    due = now + timedelta(minutes=120)
    dept = bench.department_id
    actor = (None, "system:benchmark", "system")

    def issued(seq: int, entry_id: uuid.UUID, writer: _Writer) -> None:
        number = f"B-{seq:03d}"
        writer.event(
            "issued",
            dept,
            _payload(
                "issued",
                {"entry_id": entry_id, "department_id": dept, "ticket_number": number,
                 "patient_id": None, "doctor_id": None, "triage_category": 4,
                 "occurred_at": now, "room": None},
                source="kiosk", due_at=due,
            ),
        )  # fmt: skip
        writer.audit(
            "ticket.issued",
            entry_id,
            {"ticket": number, "department": "BEN", "category": 4, "source": "kiosk",
             "patient_id": None, "doctor_id": None},
        )  # fmt: skip

    def make_op(_index: int) -> Callable[[], None]:
        if backend == "postgresql":
            bump, insert = BUMP.format(p="%s"), INSERT.format(p="%s")
            pg_conn = _pg_connect(url)
            pg_writer = _Writer(pg_conn, backend, actor)

            def run_pg(conn: Any) -> None:
                with conn.transaction():
                    seq = conn.execute(bump, (uuid.uuid4(), dept, BENCH_DAY)).fetchone()[0]
                    entry_id = uuid.uuid4()
                    conn.execute(
                        insert,
                        (entry_id, now, now, BENCH_DAY, dept, seq, f"B-{seq:03d}", now, due,
                         secrets.token_urlsafe(16), 60.0),
                    )  # fmt: skip
                    issued(seq, entry_id, pg_writer)

            return _Op(pg_conn, run_pg)
        bump, insert = BUMP.format(p="?"), INSERT.format(p="?")
        dept_hex = sqlite_uuid(dept)
        day, stamp, due_s = BENCH_DAY.isoformat(), sqlite_time(now), sqlite_time(due)
        sqlite_conn = _sqlite_connect(url)
        sqlite_writer = _Writer(sqlite_conn, backend, actor)

        def run_sqlite(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                seq = conn.execute(bump, (uuid.uuid4().hex, dept_hex, day)).fetchone()[0]
                entry_id = uuid.uuid4()
                conn.execute(
                    insert,
                    (entry_id.hex, stamp, stamp, day, dept_hex, seq, f"B-{seq:03d}", stamp, due_s,
                     secrets.token_urlsafe(16), 60.0),
                )  # fmt: skip
                issued(seq, entry_id, sqlite_writer)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        return _Op(sqlite_conn, run_sqlite)

    return _threads(callers, ops, make_op)


def floor_call_next(url: str, bench: BenchClinic, callers: int, ops: int) -> Timing:
    backend = make_url(url).get_backend_name()
    now = BENCH_NOW
    dept = bench.department_id

    def make_op(index: int) -> Callable[[], None]:
        doctor_id, user_id, username, room = bench.doctors[index % len(bench.doctors)]
        actor = (user_id, username, "doctor")

        def called(row: Any, writer: _Writer) -> None:
            entry_id = uuid.UUID(str(row[0]))
            arrived = row[4]
            if isinstance(arrived, str):
                arrived = datetime.fromisoformat(arrived).replace(tzinfo=UTC)
            writer.event(
                "called",
                dept,
                _payload(
                    "called",
                    {"entry_id": entry_id, "department_id": dept, "ticket_number": row[1],
                     "patient_id": row[2], "doctor_id": doctor_id, "triage_category": row[3],
                     "occurred_at": now, "room": room},
                ),
            )  # fmt: skip
            writer.audit(
                "ticket.called",
                entry_id,
                {"ticket": row[1], "status": "called", "doctor_id": str(doctor_id), "room": room,
                 "how": "next", "wait_minutes": round((now - arrived).total_seconds() / 60, 1),
                 "name_shown": False},
            )  # fmt: skip

        if backend == "postgresql":
            params = {"now": now, "user": user_id, "doctor": doctor_id, "room": room, "dept": dept}
            pg_conn = _pg_connect(url)
            pg_writer = _Writer(pg_conn, backend, actor)

            def run_pg(conn: Any) -> None:
                with conn.transaction():
                    row = conn.execute(PG_CLAIM, params).fetchone()
                    if row is None:
                        raise RuntimeError("the queue ran dry during the floor run")
                    called(row, pg_writer)

            return _Op(pg_conn, run_pg)
        stamp = sqlite_time(now)
        claim_args = (stamp, user_id.hex, doctor_id.hex, room, stamp, dept.hex, doctor_id.hex)
        sqlite_conn = _sqlite_connect(url)
        sqlite_writer = _Writer(sqlite_conn, backend, actor)

        def run_sqlite(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(SQLITE_CLAIM, claim_args).fetchone()
                if row is None:
                    raise RuntimeError("the queue ran dry during the floor run")
                called(row, sqlite_writer)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        return _Op(sqlite_conn, run_sqlite)

    return _threads(callers, ops, make_op)


# ---- one backend, one queue size -----------------------------------------------------------
async def bench_database(
    url: str, *, waiting: int, callers: Sequence[int], ops: int
) -> list[dict[str, Any]]:
    """All queue benchmarks on one migrated, empty database; returns the result lines."""
    settings = bench_settings(url)
    db = Database.from_settings(settings)
    results: list[dict[str, Any]] = []
    try:
        ctx = system_context(db, settings)
        bench = await make_clinic(ctx, doctors=max(callers))
        load_seconds = await bulk_load_waiting(url, bench.department_id, waiting)
        progress(f"  loaded {waiting} waiting tickets in {load_seconds:.1f} s")
        for n in callers:
            for name, ours, floor in (
                ("queue.issue", iqms_issue, floor_issue),
                ("queue.call_next", iqms_call_next, floor_call_next),
            ):
                progress(f"  {name} with {n} caller(s) ...")
                timing = await ours(ctx, bench, n, ops)
                floor_timing = await asyncio.to_thread(floor, url, bench, n, ops)
                line = {
                    "name": name,
                    "backend": db.backend,
                    "callers": n,
                    "waiting": waiting,
                    "ops": ops,
                    **timing.figures(),
                    **floor_timing.figures("floor_"),
                    "ratio_to_floor": round(timing.ops_per_s / floor_timing.ops_per_s, 3),
                }
                results.append(line)
                emit(line)
    finally:
        await db.dispose()
    return results


async def run(
    server_url: str | None,
    *,
    backends: Sequence[str],
    waiting: Sequence[int],
    callers: Sequence[int],
    ops: int,
) -> list[dict[str, Any]]:
    results = []
    for backend in backends:
        for size in waiting:
            progress(f"queue benchmarks: {backend}, {size} waiting tickets")
            async with fresh_database(backend, server_url) as url:
                results += await bench_database(url, waiting=size, callers=callers, ops=ops)
    return results


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of numbers"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give numbers of 1 or more")
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Queue operations: IQMS services vs raw SQL.")
    add_backend_options(parser)
    parser.add_argument("--waiting", type=_ints, default=list(DEFAULT_WAITING))
    parser.add_argument("--callers", type=_ints, default=list(DEFAULT_CALLERS))
    parser.add_argument("--ops", type=int, default=DEFAULT_OPS, help="operations per measurement")
    args = parser.parse_args(argv)
    run_with_backends(parser, args, run, waiting=args.waiting, callers=args.callers, ops=args.ops)


if __name__ == "__main__":
    main()
