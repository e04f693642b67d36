"""The offline scenarios end to end: two kiosks lose the network, reception carries on, all syncs.

Also: a connection killed in the middle of a sync loses nothing and doubles
nothing on the next push (PostgreSQL: ``pg_terminate_backend`` from another
connection while the batch is half applied; SQLite: the syncing process is
killed with SIGKILL half-way through its transaction).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.enums import SyncResult, TicketStatus
from iqms.core.errors import DatabaseUnavailable
from iqms.core.models import Patient, QueueEntry, SyncOperation
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import patients, queue, sync, users
from iqms.core.sync.connectivity import ConnectionState
from tests.conftest import make_settings
from tests.test_connectivity import Terminal, terminal, wait_state
from tests.test_sync_push import kiosk_context, make_clinic, snapshot

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


async def issue_at_kiosk(t: Terminal, department: uuid.UUID, **kwargs: Any) -> Any:
    """What the kiosk does: issue centrally, or from its journal when the database is away."""
    return await t.conn.run(
        lambda: queue.issue(t.ctx, department=department),
        offline=lambda: t.journal.issue_ticket(department, **kwargs),
    )


async def test_two_kiosks_offline_while_reception_works_then_everything_syncs(
    ctx: Context, clock: FrozenClock, db_url: str, tmp_path: Path
) -> None:
    clock.set(T0)
    c = await make_clinic(ctx)
    desk = await users.create(ctx, username="reception", full_name="Rita Reception",
                              role="staff", password="reception-pass-42")  # fmt: skip
    reception = ctx.as_principal(Principal(user_id=desk.id, username="reception", role="staff"))
    k1ctx = await kiosk_context(ctx, "kiosk1")
    k2ctx = await kiosk_context(ctx, "kiosk2")
    options = {"departments": [c.gen, c.ped], "block_size": 5, "low_water": 2}
    async with (
        terminal(db_url, tmp_path, clock, "kiosk1", k1ctx.principal, **options) as k1,
        terminal(db_url, tmp_path, clock, "kiosk2", k2ctx.principal, **options) as k2,
    ):
        assert (await k1.conn.start()).online and (await k2.conn.start()).online
        first = await queue.issue(reception, department=c.gen)
        assert first.ticket_number == "A-011"  # after the two kiosks' blocks

        await k1.link.cut()
        await k2.link.cut()
        clock.set(minute(1))
        a1 = await issue_at_kiosk(k1, c.gen)
        clock.set(minute(2))
        a2 = await issue_at_kiosk(k2, c.gen)
        assert k1.conn.state == k2.conn.state == ConnectionState.OFFLINE
        clock.set(minute(3))
        urgent = await queue.issue(reception, department=c.gen, triage_category=2)
        clock.set(minute(4))
        reg1 = k1.journal.register_patient({"full_name": "Lucía García", "phone": "+34600900108",
                                            "date_of_birth": "1995-06-17"})  # fmt: skip
        clock.set(minute(5))
        p1 = await issue_at_kiosk(k1, c.ped, patient_op_id=reg1.op_id)
        clock.set(minute(6))
        reg2 = k2.journal.register_patient({"full_name": "lucia garcia", "phone": "+34 600 900 108",
                                            "date_of_birth": "1995-06-17"})  # fmt: skip
        clock.set(minute(7))
        p2 = await issue_at_kiosk(k2, c.ped, patient_op_id=reg2.op_id)
        clock.set(minute(8))
        a3 = await issue_at_kiosk(k2, c.gen)
        clock.set(minute(9))
        george = await patients.register(reception, full_name="George Wright",
                                         phone="+447911123109")  # fmt: skip
        walk_in = await queue.issue(reception, department=c.gen, patient=george.id)
        clock.set(minute(10))
        p3 = await issue_at_kiosk(k1, c.ped)
        printed = {t.ticket_number for t in (a1, a2, a3, p1, p2, p3)}
        assert printed == {"A-001", "A-006", "A-007", "P-001", "P-006", "P-002"}
        batches = [k1.journal.next_batch(), k2.journal.next_batch()]

        clock.set(minute(30))
        await k1.link.restore()
        await k2.link.restore()
        await wait_state(k1.conn, ConnectionState.ONLINE)
        await wait_state(k2.conn, ConnectionState.ONLINE)
        assert k1.journal.pending_count() == k2.journal.pending_count() == 0

    async with ctx.db.transaction(readonly=True) as s:
        entries = list((await s.execute(select(QueueEntry))).scalars())
        found = list(
            (await s.execute(select(Patient).where(Patient.phone == "+34600900108"))).scalars()
        )
    # the patient exists once; her two kiosk tickets became one place in the queue,
    # at the earlier original arrival time
    assert len(found) == 1
    lucia = found[0]
    numbers = [(e.department_id, e.ticket_number) for e in entries]
    assert len(numbers) == len(set(numbers))
    by_op = {e.client_op_id: e for e in entries if e.client_op_id}
    for ticket in (a1, a2, a3, p1, p3):  # every offline ticket is there, once
        assert by_op[ticket.op_id].ticket_number == ticket.ticket_number
        assert by_op[ticket.op_id].arrived_at == ticket.arrived_at
    assert by_op[p1.op_id].patient_id == lucia.id
    assert p2.op_id not in by_op or by_op[p2.op_id].status == TicketStatus.CANCELLED

    gen_order = [t.ticket_number for t in await queue.queue_list(ctx, department=c.gen)]
    assert gen_order == [urgent.ticket_number, "A-011", "A-001", "A-006", "A-007",
                         walk_in.ticket_number]  # fmt: skip
    ped = await queue.queue_list(ctx, department=c.ped)
    assert [(t.ticket_number, t.arrived_at, t.patient_id) for t in ped] == [
        ("P-001", minute(5), lucia.id),
        ("P-002", minute(10), None),
    ]
    assert await sync.list_conflicts(ctx) == []

    # replaying either batch changes nothing
    before = await snapshot(ctx)
    for kiosk_ctx, batch in zip((k1ctx, k2ctx), batches, strict=True):
        assert batch is not None
        again = await sync.push(kiosk_ctx, batch=batch)
        assert {r.result for r in again.results} == {SyncResult.DUPLICATE}
    assert await snapshot(ctx) == before


async def _victim(server_url: str, dbname: str, blocker_pid: int) -> int:
    """The backend (the sync) waiting for the blocker's lock in the test database."""
    async with (
        await psycopg.AsyncConnection.connect(server_url, autocommit=True) as watcher,
        asyncio.timeout(30),
    ):
        while True:
            row = await (
                await watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s "
                    "AND wait_event_type = 'Lock'",
                    (dbname, blocker_pid),
                )
            ).fetchone()
            if row:
                return int(row[0])
            await asyncio.sleep(0.02)


@pytest.mark.postgresql
async def test_a_sync_killed_half_way_on_postgresql_loses_and_doubles_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    clock = FrozenClock(T0)
    settings = make_settings(tmp_path, pg_url)
    db = Database.from_settings(settings)
    ctx = Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
    try:
        c = await make_clinic(ctx)
        kiosk = await kiosk_context(ctx, "kiosk1")
        async with terminal(pg_url, tmp_path, clock, "kiosk1", kiosk.principal,
                            departments=[c.gen, c.ped]) as t:  # fmt: skip
            await t.conn.start()
            tickets = []
            for i in range(3):
                clock.set(minute(i + 1))
                tickets.append(t.journal.issue_ticket(c.gen))
            reg = t.journal.register_patient({"full_name": "Jack Evans",
                                              "phone": "+447911123105"})  # fmt: skip
            tickets.append(t.journal.issue_ticket(c.ped, patient_op_id=reg.op_id))
            batch = t.journal.next_batch()
            before = await snapshot(ctx)

            url = make_url(pg_url)
            conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
            async with await psycopg.AsyncConnection.connect(conninfo) as blocker:
                # Hold the PED department row: the sync stops at its PED ticket, with the
                # GEN tickets and the patient already written in its open transaction.
                await blocker.execute(
                    "SELECT id FROM departments WHERE id = %s FOR UPDATE", (c.ped,)
                )
                push = asyncio.create_task(t.conn.push_pending())
                victim = await _victim(conninfo, url.database or "", blocker.info.backend_pid)
                row = await (
                    await blocker.execute(
                        "SELECT count(*) FROM pg_locks WHERE pid = %s AND mode = "
                        "'RowExclusiveLock' AND relation = 'queue_entries'::regclass",
                        (victim,),
                    )
                ).fetchone()
                assert row is not None and row[0] >= 1  # it had written tickets already
                await blocker.execute("SELECT pg_terminate_backend(%s)", (victim,))
                await blocker.rollback()
            with pytest.raises(DatabaseUnavailable):
                await push
            assert t.journal.pending_count() == 5  # nothing confirmed, nothing cleared
            assert await snapshot(ctx) == before  # nothing half-applied

            summary = await t.conn.push_pending()
            assert summary.counts == {"applied": 5}
            assert t.journal.pending_count() == 0
            assert batch is not None
            again = await sync.push(kiosk, batch=batch)
            assert {r.result for r in again.results} == {SyncResult.DUPLICATE}
        async with db.transaction(readonly=True) as s:
            entries = list((await s.execute(select(QueueEntry))).scalars())
            assert (await s.execute(select(func.count()).select_from(Patient))).scalar() == 1
        assert sorted(e.ticket_number for e in entries) == sorted(x.ticket_number for x in tickets)
        assert {e.client_op_id: e.arrived_at for e in entries} == {
            x.op_id: x.arrived_at for x in tickets
        }
    finally:
        await db.dispose()


CRASHING_PUSH = textwrap.dedent(
    """
    import asyncio, json, os, signal, sys, uuid
    from datetime import datetime
    from iqms.core.queue import engine as queue_engine
    from iqms.core.clock import FrozenClock
    from iqms.core.config import Settings
    from iqms.core.db import Database
    from iqms.core.security.rbac import Principal
    from iqms.core.service import Context
    from iqms.core.services import sync

    real = queue_engine.insert_entry
    calls = 0

    async def create_then_die(*args, **kwargs):
        global calls
        entry = await real(*args, **kwargs)
        calls += 1
        if calls == 3:  # three tickets written, transaction still open: the power goes
            os.kill(os.getpid(), signal.SIGKILL)
        return entry

    queue_engine.insert_entry = create_then_die
    args = json.loads(sys.argv[1])
    settings = Settings(_env_file=None, **args["settings"])
    db = Database.from_settings(settings)
    who = args["principal"]
    principal = Principal(user_id=uuid.UUID(who["user_id"]), username=who["username"],
                          role=who["role"])
    ctx = Context(db=db, principal=principal, settings=settings,
                  clock=FrozenClock(datetime.fromisoformat(args["now"])))
    asyncio.run(sync.push(ctx, batch=args["batch"]))
    print("finished")
    """
)


@pytest.mark.sqlite
async def test_a_sync_process_killed_half_way_on_sqlite_loses_and_doubles_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    clock = FrozenClock(T0)
    settings = make_settings(tmp_path, sqlite_url)
    db = Database.from_settings(settings)
    ctx = Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
    try:
        c = await make_clinic(ctx)
        kiosk = await kiosk_context(ctx, "kiosk1")
        async with terminal(sqlite_url, tmp_path, clock, "kiosk1", kiosk.principal,
                            departments=[c.gen]) as t:  # fmt: skip
            await t.conn.start()
            tickets = []
            for i in range(5):
                clock.set(minute(i + 1))
                tickets.append(t.journal.issue_ticket(c.gen))
            batch = t.journal.next_batch()
            before = await snapshot(ctx)
            principal = kiosk.principal
            args = {
                "settings": {"database_url": sqlite_url, "data_dir": str(tmp_path / "proc"),
                             "secret_key": "x" * 32, "timezone": "Europe/London"},
                "principal": {"user_id": str(principal.user_id), "username": principal.username,
                              "role": principal.role},
                "now": minute(20).isoformat(),
                "batch": batch,
            }  # fmt: skip
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CRASHING_PUSH, json.dumps(args),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            )  # fmt: skip
            out, err = await proc.communicate()
            assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
            assert b"finished" not in out
            assert await snapshot(ctx) == before  # the open transaction died with the process
            assert t.journal.pending_count() == 5

            clock.set(minute(21))
            summary = await t.conn.push_pending()
            assert summary.counts == {"applied": 5}
            assert batch is not None
            again = await sync.push(kiosk, batch=batch)
            assert {r.result for r in again.results} == {SyncResult.DUPLICATE}
        async with db.transaction(readonly=True) as s:
            entries = list(
                (await s.execute(select(QueueEntry).order_by(QueueEntry.sequence))).scalars()
            )
            ops = (await s.execute(select(func.count()).select_from(SyncOperation))).scalar()
        assert [e.ticket_number for e in entries] == [x.ticket_number for x in tickets]
        assert [e.arrived_at for e in entries] == [x.arrived_at for x in tickets]
        assert ops == 5
    finally:
        await db.dispose()
