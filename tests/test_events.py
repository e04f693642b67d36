"""Live events: delivered to subscribers only when the publishing transaction commits."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.models import QueueEvent
from iqms.core.queue.events import (
    Resync,
    TicketCalled,
    TicketIssued,
    TicketTransferred,
    event_from_payload,
    publish,
    subscribe,
)
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from tests.conftest import make_settings

WAIT = 5.0


def _system_ctx(db: Database, tmp_path: Path) -> Context:
    settings = make_settings(tmp_path, str(db.url))
    return Context(
        db=db, principal=Principal.system("test"), settings=settings, clock=FrozenClock()
    )


def _called(ctx: Context, number: str, department_id: uuid.UUID | None = None) -> TicketCalled:
    return TicketCalled(
        entry_id=uuid.uuid4(),
        department_id=department_id or uuid.uuid4(),
        ticket_number=number,
        triage_category=4,
        occurred_at=ctx.now(),
        room="Room 3",
    )


async def _publish(ctx: Context, *events: object, commit: bool = True) -> None:
    class Rollback(Exception):
        pass

    try:
        async with ctx.db.transaction() as session:
            bound = ctx.bind(session)
            for event in events:
                await publish(bound, event)  # type: ignore[arg-type]
            if not commit:
                raise Rollback
    except Rollback:
        pass


async def test_committed_event_reaches_a_subscriber_and_rolled_back_one_never_does(
    ctx: Context, db_url: str
) -> None:
    # The subscriber has its own database handle: another connection, as another process would.
    other = Database(db_url)
    try:
        async with subscribe(other, poll_interval=0.02) as events:
            await _publish(ctx, _called(ctx, "A-001"), commit=False)
            await _publish(ctx, _called(ctx, "A-002"))
            first = await events.next(within=WAIT)
            assert isinstance(first, TicketCalled)
            assert first.ticket_number == "A-002"
            assert first.room == "Room 3"
            assert await events.next(within=0.5) is None
    finally:
        await other.dispose()


async def test_events_arrive_in_commit_order_and_filter_by_department(
    ctx: Context, db_url: str
) -> None:
    gen, ped = uuid.uuid4(), uuid.uuid4()
    other = Database(db_url)
    try:
        async with subscribe(other, department_id=gen, poll_interval=0.02) as events:
            await _publish(ctx, _called(ctx, "A-001", gen), _called(ctx, "P-001", ped))
            moved = TicketTransferred(
                entry_id=uuid.uuid4(),
                department_id=ped,
                ticket_number="P-002",
                triage_category=3,
                occurred_at=ctx.now(),
                new_entry_id=uuid.uuid4(),
                new_ticket_number="A-002",
                target_department_id=gen,
            )
            await _publish(ctx, moved, _called(ctx, "A-003", gen))
            got = [await events.next(within=WAIT) for _ in range(3)]
            assert [getattr(e, "ticket_number", None) for e in got] == ["A-001", "P-002", "A-003"]
            assert isinstance(got[1], TicketTransferred)
            assert got[1].new_ticket_number == "A-002"
            assert got[1].target_department_id == gen
            assert await events.next(within=0.3) is None
    finally:
        await other.dispose()


def test_payload_round_trip_keeps_types(ctx: Context) -> None:
    issued = TicketIssued(
        entry_id=uuid.uuid4(),
        department_id=uuid.uuid4(),
        ticket_number="O-017",
        patient_id=uuid.uuid4(),
        triage_category=2,
        occurred_at=ctx.now(),
        source="reception",
        due_at=ctx.now(),
    )
    assert event_from_payload(issued.to_payload()) == issued
    assert event_from_payload({"kind": "no-such-kind"}) is None


@pytest.mark.postgresql
async def test_postgres_listener_reconnects_and_asks_for_a_resync(
    pg_url: str, tmp_path: Path
) -> None:
    listener_db = Database(pg_url)
    publisher = Database(pg_url)
    try:
        pctx = _system_ctx(publisher, tmp_path)
        async with subscribe(listener_db) as events:
            # Kill the listening backend, as a server restart or network cut would.
            async with publisher.transaction() as s:
                await s.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
                    )
                )
            marker = await events.next(within=WAIT)
            assert isinstance(marker, Resync)
            await _publish(pctx, _called(pctx, "A-009"))
            after = await events.next(within=WAIT)
            assert isinstance(after, TicketCalled)
            assert after.ticket_number == "A-009"
    finally:
        await listener_db.dispose()
        await publisher.dispose()


@pytest.mark.sqlite
async def test_sqlite_event_rows_are_pruned(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import iqms.core.queue.events as events_module

    monkeypatch.setattr(events_module, "KEEP_EVENTS", 10)
    monkeypatch.setattr(events_module, "PRUNE_EVERY", 5)
    db = Database(sqlite_url)
    try:
        sctx = _system_ctx(db, tmp_path)
        await _publish(sctx, *[_called(sctx, f"A-{i:03d}") for i in range(1, 31)])
        async with db.transaction(readonly=True) as s:
            count = (await s.execute(select(func.count()).select_from(QueueEvent))).scalar_one()
            newest = (await s.execute(select(func.max(QueueEvent.seq)))).scalar_one()
        assert newest == 30
        assert count <= 15
    finally:
        await db.dispose()


async def test_subscription_iterates_with_async_for(ctx: Context, db_url: str) -> None:
    other = Database(db_url)
    try:
        seen: list[str] = []
        async with subscribe(other, poll_interval=0.02) as events:

            async def consume() -> None:
                async for event in events:
                    seen.append(getattr(event, "ticket_number", ""))
                    if len(seen) == 2:
                        return

            consumer = asyncio.create_task(consume())
            await _publish(ctx, _called(ctx, "B-001"))
            await _publish(ctx, _called(ctx, "B-002"))
            await asyncio.wait_for(consumer, WAIT)
        assert seen == ["B-001", "B-002"]
    finally:
        await other.dispose()


@pytest.mark.sqlite
async def test_a_broken_listener_surfaces_as_an_error_not_silence(
    sqlite_url: str, tmp_path: Path
) -> None:
    db = Database(sqlite_url)
    try:
        async with subscribe(db, poll_interval=0.02) as events:
            # The events table vanishing (a broken or replaced database) stops the listener.
            async with db.transaction() as s:
                await s.execute(text("DROP TABLE queue_events"))
            with pytest.raises(Exception, match="queue_events"):
                await events.next(within=5)
    finally:
        await db.dispose()
