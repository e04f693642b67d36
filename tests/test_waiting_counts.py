"""Places in line come from trigger-kept waiting counts: they must match the queue itself.

The counts live in ``waiting_counts`` (department, lane, band, minute of due
time) and are kept by database triggers on ``queue_entries``, whatever writes
the tickets: the services, the offline sync, or plain SQL.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from iqms.core.clock import FrozenClock
from iqms.core.enums import TicketStatus
from iqms.core.models import POOL_LANE, QueueEntry, WaitingCount
from iqms.core.queue import engine as queue_engine
from iqms.core.service import Context
from iqms.core.services import queue
from tests.test_queue_fixtures import as_doctor, small_clinic


async def _counts_match_the_queue(ctx: Context) -> dict[tuple[object, ...], int]:
    """The waiting counts, after checking them against a count over the tickets."""
    async with ctx.db.transaction(readonly=True) as s:
        kept = {
            (d, lane, band, minute): n
            for d, lane, band, minute, n in (
                await s.execute(
                    select(
                        WaitingCount.department_id,
                        WaitingCount.lane_id,
                        WaitingCount.queue_band,
                        WaitingCount.due_minute,
                        WaitingCount.waiting,
                    )
                )
            ).all()
        }
        tickets = (
            await s.execute(
                select(
                    QueueEntry.department_id,
                    QueueEntry.doctor_id,
                    QueueEntry.queue_band,
                    QueueEntry.due_at,
                ).where(QueueEntry.status == TicketStatus.WAITING)
            )
        ).all()
    counted: dict[tuple[object, ...], int] = {}
    for dept, doctor, band, due in tickets:
        key = (dept, doctor or POOL_LANE, band, queue_engine.due_minute(due))
        counted[key] = counted.get(key, 0) + 1
    assert kept == counted
    return kept


async def _places_match_the_order(ctx: Context, department_id: uuid.UUID) -> None:
    """Every waiting ticket's place, from the counts, equals its place in the queue order."""
    async with ctx.db.transaction(readonly=True) as s:
        order = await queue_engine.waiting_in_order(s, department_id=department_id)
        for place, entry in enumerate(order):
            before = order[:place]
            if entry.doctor_id is None:
                expected = len(before)
            else:
                expected = sum(1 for e in before if e.doctor_id in (None, entry.doctor_id))
            assert await queue_engine.waiting_ahead(s, entry) == expected, entry.ticket_number


async def test_counts_follow_every_move_of_a_ticket(ctx: Context, clock: FrozenClock) -> None:
    c = await small_clinic(ctx)
    smith, jones = c.doctors["drsmith"], c.doctors["drjones"]
    for i in range(12):
        clock.advance(seconds=17)  # several tickets due within the same minute
        await queue.issue(
            ctx,
            department="GEN",
            triage_category=(4, 3, 2, 4, 1, 5)[i % 6],
            doctor=(None, smith.id, None, jones.id)[i % 4],
        )
    await queue.issue(ctx, department="PED")
    await _counts_match_the_queue(ctx)
    await _places_match_the_order(ctx, c.gen.id)

    first = await queue.call_next(as_doctor(ctx, smith))
    assert first is not None
    await queue.no_show(ctx, ticket=first.id, requeue=True)  # back in the queue
    await queue.call_next(as_doctor(ctx, jones))
    await queue.cancel(ctx, ticket="A-003")
    await queue.hold(ctx, ticket="A-004")
    await queue.change_category(ctx, ticket="A-006", triage_category=2)
    await queue.transfer(ctx, ticket="A-008", department="PED")
    await queue.transfer(ctx, ticket="A-009", doctor=jones.id)
    await _counts_match_the_queue(ctx)
    await _places_match_the_order(ctx, c.gen.id)
    await _places_match_the_order(ctx, c.ped.id)

    await queue.return_to_queue(ctx, ticket="A-004")
    await _counts_match_the_queue(ctx)
    await _places_match_the_order(ctx, c.gen.id)


async def test_counts_follow_plain_sql_and_empty_buckets_go(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    for _ in range(4):
        await queue.issue(ctx, department="GEN")
    async with ctx.db.transaction() as s:
        await s.execute(
            update(QueueEntry)
            .where(QueueEntry.ticket_number == "A-001")
            .values(due_at=clock.now() - timedelta(hours=1), doctor_id=c.doctors["drsmith"].id)
        )
        await s.execute(delete(QueueEntry).where(QueueEntry.ticket_number == "A-002"))
    kept = await _counts_match_the_queue(ctx)
    assert sum(kept.values()) == 3
    await _places_match_the_order(ctx, c.gen.id)
    async with ctx.db.transaction() as s:
        await s.execute(update(QueueEntry).values(status=TicketStatus.CANCELLED))
        left = (await s.execute(select(func.count()).select_from(WaitingCount))).scalar_one()
    assert left == 0
