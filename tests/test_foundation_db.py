"""The database layer on both backends: migrations match the models, round trips work."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from iqms.core import migrate
from iqms.core.db import Database
from iqms.core.enums import TicketSource, TicketStatus
from iqms.core.errors import DatabaseUnavailable
from iqms.core.models import Base, Department, QueueEntry


async def _diff(db: Database) -> list[object]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
            )
        )


async def test_migrations_match_models(db: Database) -> None:
    assert await migrate.current(db) == migrate.head_revision()
    assert await _diff(db) == []


async def test_upgrade_downgrade_upgrade(db: Database) -> None:
    await migrate.downgrade(db, "base")
    assert await migrate.current(db) is None
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
    assert "queue_entries" not in tables
    await migrate.upgrade(db)
    assert await migrate.current(db) == migrate.head_revision()
    assert await _diff(db) == []


async def test_times_round_trip_as_aware_utc(db: Database) -> None:
    arrived = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    async with db.transaction() as s:
        dept = Department(code="GEN", name="General", ticket_prefix="A")
        s.add(dept)
        await s.flush()
        s.add(
            QueueEntry(
                service_date=date(2026, 3, 1), department_id=dept.id, sequence=1, ticket_number="A-001",
                source=TicketSource.KIOSK, arrived_at=arrived, due_at=arrived,
            )
        )  # fmt: skip
    async with db.transaction(readonly=True) as s:
        entry = (await s.execute(select(QueueEntry))).scalar_one()
    assert entry.arrived_at == arrived
    assert entry.arrived_at.tzinfo is not None
    assert entry.status is TicketStatus.WAITING


async def test_ticket_number_unique_per_department_and_day(db: Database) -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    async with db.transaction() as s:
        dept = Department(code="GEN", name="General", ticket_prefix="A")
        s.add(dept)
        await s.flush()
        dept_id = dept.id
    kwargs = dict(
        service_date=date(2026, 3, 1), department_id=dept_id, ticket_number="A-001",
        source=TicketSource.KIOSK, arrived_at=now, due_at=now,
    )  # fmt: skip
    async with db.transaction() as s:
        s.add(QueueEntry(sequence=1, **kwargs))
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(QueueEntry(sequence=2, **kwargs))
    # The next day the same number is fine.
    async with db.transaction() as s:
        s.add(QueueEntry(sequence=1, **{**kwargs, "service_date": date(2026, 3, 2)}))


async def test_check_constraints_reject_bad_values(db: Database) -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    async with db.transaction() as s:
        dept = Department(code="GEN", name="General", ticket_prefix="A")
        s.add(dept)
        await s.flush()
        dept_id = dept.id
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            await s.execute(
                text(
                    "INSERT INTO queue_entries (id, service_date, department_id, sequence, ticket_number, "
                    "triage_category, queue_band, source, status, arrived_at, due_at, recall_count, "
                    "created_at, updated_at) VALUES (:id, :d, :dep, 1, 'A-001', 4, 1, 'kiosk', 'teleported', "
                    ":t, :t, 0, :t, :t)"
                ),
                {"id": uuid.uuid4() if db.is_postgres else uuid.uuid4().hex, "d": date(2026, 3, 1),
                 "dep": dept_id if db.is_postgres else dept_id.hex, "t": now},
            )  # fmt: skip


async def test_foreign_keys_enforced(db: Database) -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(
                QueueEntry(
                    service_date=date(2026, 3, 1), department_id=uuid.uuid4(), sequence=1,
                    ticket_number="A-001", source=TicketSource.KIOSK, arrived_at=now, due_at=now,
                )
            )  # fmt: skip


async def test_sqlite_uses_wal(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        async with db.transaction(readonly=True) as s:
            mode = (await s.execute(text("PRAGMA journal_mode"))).scalar_one()
            fks = (await s.execute(text("PRAGMA foreign_keys"))).scalar_one()
        assert mode == "wal"
        assert fks == 1
    finally:
        await db.dispose()


async def test_unreachable_postgres_names_the_host() -> None:
    db = Database("postgresql+psycopg://iqms@127.0.0.1:1/iqms", connect_timeout=2)
    try:
        with pytest.raises(DatabaseUnavailable) as info:
            await db.check()
        assert "PostgreSQL at 127.0.0.1:1/iqms" in str(info.value)
        with pytest.raises(DatabaseUnavailable):
            async with db.transaction() as s:
                await s.execute(text("SELECT 1"))
    finally:
        await db.dispose()
