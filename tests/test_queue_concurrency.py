"""Concurrent callers: every ticket called exactly once, always the best one still available.

The invariant checked for each call: no ticket ranked before the one it got
(same department, queue order) was still waiting when the call finished,
i.e. every better ticket was claimed by a call that had started before this
one ended. Two calls overlapping in time may legitimately take the two best
tickets in either order.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.enums import TicketSource, TicketStatus
from iqms.core.models import QueueEntry
from iqms.core.queue import policy as queue_policy
from iqms.core.schemas.clinic import DoctorOut
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, queue
from tests.conftest import make_settings
from tests.test_queue_fixtures import add_doctor, as_doctor


@dataclass
class Claim:
    entry_id: uuid.UUID
    department_id: uuid.UUID
    started: int
    finished: int


async def _seed(ctx: Context, departments: int, per_department: int) -> tuple[list, dict]:
    """Departments with two available doctors each and many waiting pool tickets."""
    rng = random.Random(42)
    doctors = []
    depts = []
    for d in range(departments):
        code = f"D{d}"
        dept = await clinic.create_department(
            ctx, code=code, name=f"Department {d}", ticket_prefix=chr(ord("A") + d)
        )
        depts.append(dept)
        for k in range(2):
            doctors.append(await add_doctor(ctx, f"doc{d}x{k}", code, f"Room {d}{k}"))
    base: datetime = ctx.now()
    keys: dict[uuid.UUID, tuple] = {}
    rows = []
    for dept in depts:
        for seq in range(1, per_department + 1):
            category = rng.choice([1, 2, 3, 4, 4, 4, 5])
            arrived = base - timedelta(minutes=rng.randint(0, 240), seconds=rng.randint(0, 59))
            due = queue_policy.due_time(arrived, category)
            entry_id = uuid.uuid4()
            band = queue_policy.queue_band(category)
            rows.append(
                {
                    "id": entry_id,
                    "service_date": ctx.today(),
                    "department_id": dept.id,
                    "sequence": seq,
                    "ticket_number": f"{dept.ticket_prefix}-{seq:03d}",
                    "triage_category": category,
                    "queue_band": band,
                    "source": TicketSource.KIOSK,
                    "status": TicketStatus.WAITING,
                    "arrived_at": arrived,
                    "due_at": due,
                    "recall_count": 0,
                }
            )
            keys[entry_id] = (band, due, arrived, seq)
    async with ctx.db.transaction() as s:
        await s.execute(insert(QueueEntry), rows)
    return doctors, keys


async def _drain(ctx: Context, doctors: list) -> list[Claim]:
    """Each doctor calls next until nobody waits; every call is timed."""
    claims: list[Claim] = []

    async def caller(doc_ctx: Context) -> None:
        while True:
            started = time.monotonic_ns()
            got = await queue.call_next(doc_ctx)
            finished = time.monotonic_ns()
            if got is None:
                return
            claims.append(Claim(got.id, got.department_id, started, finished))

    await asyncio.gather(*[caller(as_doctor(ctx, d)) for d in doctors])
    return claims


def _caller_process(db_url: str, data_dir: str, doctors: list[dict]) -> list[tuple]:
    """A separate process (like a doctor's console) running some of the callers."""
    settings = make_settings(Path(data_dir), db_url, sms_provider="none", push_provider="none")

    async def go() -> list[Claim]:
        db = Database.from_settings(settings)
        try:
            ctx = Context(
                db=db, principal=Principal.system("test"), settings=settings, clock=FrozenClock()
            )
            return await _drain(ctx, [DoctorOut.model_validate(d) for d in doctors])
        finally:
            await db.dispose()

    # CLOCK_MONOTONIC is one clock for every process on the machine: times compare across them.
    return [
        (str(c.entry_id), str(c.department_id), c.started, c.finished) for c in asyncio.run(go())
    ]


async def _drain_in_processes(
    db_url: str, tmp_path: Path, doctors: list, processes: int
) -> list[Claim]:
    context = multiprocessing.get_context("spawn")
    groups = [doctors[i::processes] for i in range(processes)]
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        futures = [
            asyncio.wrap_future(
                pool.submit(
                    _caller_process,
                    db_url,
                    str(tmp_path / f"p{i}"),
                    [d.model_dump(mode="json") for d in group],
                )
            )
            for i, group in enumerate(groups)
        ]
        results = await asyncio.gather(*futures)
    return [
        Claim(uuid.UUID(e), uuid.UUID(d), started, finished)
        for result in results
        for e, d, started, finished in result
    ]


def _check_best_available(claims: list[Claim], keys: dict[uuid.UUID, tuple]) -> None:
    by_dept: dict[uuid.UUID, list[Claim]] = {}
    for c in claims:
        by_dept.setdefault(c.department_id, []).append(c)
    for dept_claims in by_dept.values():
        ranked = sorted(dept_claims, key=lambda c: keys[c.entry_id])
        latest_start_of_better = -1
        bad = []
        for c in ranked:
            # Every better-ranked ticket (already visited) must have been claimed by a call
            # that started before this call finished; otherwise it was waiting all along.
            if latest_start_of_better > c.finished:
                bad.append(c.entry_id)
            latest_start_of_better = max(latest_start_of_better, c.started)
        assert bad == [], f"{len(bad)} calls got a worse ticket while a better one waited"


async def _run(
    db_url: str, tmp_path: Path, departments: int, per_department: int, processes: int = 0
) -> None:
    settings = make_settings(
        tmp_path, db_url, sms_provider="none", push_provider="none", db_pool_size=10
    )
    db = Database.from_settings(settings)
    try:
        ctx = Context(
            db=db, principal=Principal.system("test"), settings=settings, clock=FrozenClock()
        )
        doctors, keys = await _seed(ctx, departments, per_department)
        if processes:
            claims = await _drain_in_processes(db_url, tmp_path, doctors, processes)
        else:
            claims = await _drain(ctx, doctors)
        ids = [c.entry_id for c in claims]
        assert len(ids) == len(set(ids)) == departments * per_department
        assert set(ids) == set(keys)
        async with db.transaction(readonly=True) as s:
            rows = await s.execute(
                select(QueueEntry.status, func.count()).group_by(QueueEntry.status)
            )
            statuses = {status: count for status, count in rows}
        assert statuses == {TicketStatus.CALLED: departments * per_department}
        _check_best_available(claims, keys)
    finally:
        await db.dispose()


@pytest.mark.postgresql
async def test_eight_callers_drain_two_thousand_tickets_on_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    # 8 callers (2 per department) in 2 processes of 4, as separate consoles would be.
    await _run(pg_url, tmp_path, departments=4, per_department=500, processes=2)


@pytest.mark.sqlite
async def test_concurrent_callers_on_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    await _run(sqlite_url, tmp_path, departments=2, per_department=120, processes=2)
