"""Queue engine internals: daily numbering under concurrency, blocks, ordering in SQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from iqms.core import pipeline
from iqms.core.enums import TicketSource, TicketStatus
from iqms.core.errors import Conflict, ValidationError
from iqms.core.models import Department, QueueEntry
from iqms.core.queue import engine as queue_engine
from iqms.core.service import Context


async def _department(
    ctx: Context, code: str = "GEN", prefix: str = "A", **kw: object
) -> Department:
    async with ctx.db.transaction() as s:
        dept = Department(
            id=uuid.uuid4(), code=code, name=f"Dept {code}", ticket_prefix=prefix, **kw
        )
        s.add(dept)
    return dept


async def _issue(ctx: Context, dept: Department, **kw: object) -> QueueEntry:
    async with ctx.db.transaction() as s:
        bound = ctx.bind(s)
        issued = await pipeline.issue_ticket(
            bound,
            department=dept,
            source=kw.pop("source", TicketSource.KIOSK),
            **kw,  # type: ignore[arg-type]
        )
        return issued.entry


async def test_sixteen_concurrent_issuers_get_consecutive_unique_numbers(ctx: Context) -> None:
    dept = await _department(ctx)
    entries = await asyncio.gather(*[_issue(ctx, dept) for _ in range(16)])
    numbers = sorted(e.ticket_number for e in entries)
    assert numbers == [f"A-{i:03d}" for i in range(1, 17)]
    assert sorted(e.sequence for e in entries) == list(range(1, 17))


async def test_numbers_restart_each_service_day_in_the_clinic_time_zone(ctx: Context) -> None:
    dept = await _department(ctx)
    # Europe/London in summer is UTC+1: 23:30 UTC on 1 July is already 2 July at the clinic.
    late = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)
    first = await _issue(ctx, dept, arrived_at=late)
    second = await _issue(ctx, dept, arrived_at=late + timedelta(minutes=20))
    third = await _issue(ctx, dept, arrived_at=late + timedelta(minutes=40))
    assert (first.ticket_number, second.ticket_number, third.ticket_number) == (
        "A-001",
        "A-002",
        "A-001",
    )
    assert third.service_date.isoformat() == "2026-07-02"


async def test_reserved_block_is_skipped_by_online_numbering(ctx: Context) -> None:
    dept = await _department(ctx)
    await _issue(ctx, dept)
    async with ctx.db.transaction() as s:
        first, last = await queue_engine.reserve_block(s, dept.id, ctx.today(), 10)
    assert (first, last) == (2, 11)
    online = await _issue(ctx, dept)
    assert online.ticket_number == "A-012"
    offline = await _issue(ctx, dept, sequence=5, source=TicketSource.SYNC)
    assert offline.ticket_number == "A-005"
    with pytest.raises(Conflict):
        await _issue(ctx, dept, sequence=5, source=TicketSource.SYNC)
    with pytest.raises(ValidationError):
        async with ctx.db.transaction() as s:
            await queue_engine.reserve_block(s, dept.id, ctx.today(), 0)


async def test_waiting_order_is_band_then_due_then_arrival(ctx: Context) -> None:
    dept = await _department(ctx, triage_targets={"3": 30})
    t0 = ctx.now()
    standard_early = await _issue(ctx, dept, triage_category=4, arrived_at=t0 - timedelta(hours=3))
    urgent_now = await _issue(ctx, dept, triage_category=3, arrived_at=t0)
    standard_now = await _issue(ctx, dept, triage_category=4, arrived_at=t0)
    immediate = await _issue(ctx, dept, triage_category=1, arrived_at=t0 + timedelta(minutes=1))
    # due: standard_early = t0-1h (overdue), urgent = t0+30 (override), standard_now = t0+2h
    async with ctx.db.transaction(readonly=True) as s:
        order = await queue_engine.waiting_in_order(s, department_id=dept.id)
        ahead = await queue_engine.waiting_ahead(s, standard_now)
    assert [e.id for e in order] == [
        immediate.id,
        standard_early.id,
        urgent_now.id,
        standard_now.id,
    ]
    assert ahead == 3
    assert urgent_now.due_at == t0 + timedelta(minutes=30)


async def test_doctor_scope_is_own_tickets_plus_pool(ctx: Context) -> None:
    from iqms.core.enums import Role
    from iqms.core.models import Doctor, User

    dept = await _department(ctx)
    async with ctx.db.transaction() as s:
        users = [
            User(
                id=uuid.uuid4(),
                username=f"dr{i}",
                full_name=f"Dr {i}",
                role=Role.DOCTOR,
                password_hash="x",
            )
            for i in range(2)
        ]
        s.add_all(users)
        await s.flush()
        docs = [
            Doctor(id=uuid.uuid4(), user_id=u.id, department_id=dept.id, room=f"R{i}")
            for i, u in enumerate(users)
        ]
        s.add_all(docs)
    t0 = ctx.now()
    mine = await _issue(ctx, dept, doctor_id=docs[0].id, arrived_at=t0)
    theirs = await _issue(ctx, dept, doctor_id=docs[1].id, arrived_at=t0 - timedelta(minutes=5))
    pool = await _issue(ctx, dept, arrived_at=t0 + timedelta(minutes=1))
    async with ctx.db.transaction(readonly=True) as s:
        for_me = await queue_engine.waiting_in_order(s, department_id=dept.id, doctor_id=docs[0].id)
        everyone = await queue_engine.waiting_in_order(s, department_id=dept.id, limit=2)
        assert await queue_engine.waiting_ahead(s, pool) == 2
        assert await queue_engine.waiting_ahead(s, mine) == 0
    assert [e.id for e in for_me] == [mine.id, pool.id]
    assert [e.id for e in everyone] == [theirs.id, mine.id]
    async with ctx.db.transaction() as s:
        bound = ctx.bind(s)
        claimed = await queue_engine.claim_next(
            bound, department_id=dept.id, doctor_id=docs[0].id, room="R0", called_by_id=None
        )
    assert claimed is not None and claimed.id == mine.id
    assert claimed.status == TicketStatus.CALLED and claimed.called_room == "R0"
    async with ctx.db.transaction(readonly=True) as s:
        still = (
            await s.execute(select(QueueEntry.status).where(QueueEntry.id == theirs.id))
        ).scalar_one()
    assert still == TicketStatus.WAITING
