"""Exports stream queue history and audit records in batches, and are audited."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from iqms.core.clock import FrozenClock
from iqms.core.enums import Role
from iqms.core.errors import NotFound, PermissionDenied, ValidationError
from iqms.core.models import AuditRecord
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import exports
from tests.test_reports import D1, D2, seed_history


async def test_queue_history_streams_in_batches(ctx: Context) -> None:
    await seed_history(ctx)
    batches: list[list[dict]] = []
    totals: list[int] = []
    sent = await exports.export_queue_history(
        ctx,
        date_from=D1,
        date_to=D2,
        on_rows=batches.append,
        on_start=totals.append,
        batch_size=5,
        destination="history.csv",
    )
    assert sent == 12 and totals == [12]
    assert [len(b) for b in batches] == [5, 5, 2]
    rows = [r for b in batches for r in b]
    assert list(rows[0]) == list(exports.QUEUE_COLUMNS)
    arrivals = [r["arrived_at"] for r in rows]
    assert arrivals == sorted(arrivals), "rows come in arrival order"
    moved = next(r for r in rows if r["source"] == "transfer")
    assert moved["department"] == "GEN"
    assert moved["patient_mrn"] == "MRN000007"
    assert moved["wait_minutes"] == 130.0
    assert moved["service_minutes"] == 5.0
    assert moved["called_by_doctor"] == "drsmith"
    assert moved["arrived_at"] == "2026-01-12T11:00:00+00:00"
    original = next(r for r in rows if r["id"] == moved["transferred_from_id"])
    assert original["status"] == "transferred" and original["department"] == "PED"
    waiting = next(r for r in rows if r["status"] == "waiting")
    assert waiting["assigned_doctor"] == "drsmith" and waiting["called_at"] is None

    async with ctx.db.transaction(readonly=True) as s:
        rec = (
            await s.execute(select(AuditRecord).where(AuditRecord.action == "export.queue_history"))
        ).scalar_one()
    assert rec.details == {
        "date_from": "2026-01-12",
        "date_to": "2026-01-13",
        "department": None,
        "rows": 12,
        "destination": "history.csv",
    }


async def test_queue_history_for_one_department(ctx: Context) -> None:
    await seed_history(ctx)
    rows: list[dict] = []
    sent = await exports.export_queue_history(
        ctx, date_from=D1, date_to=D1, department="ped", on_rows=rows.extend
    )
    assert sent == 2
    assert {r["department"] for r in rows} == {"PED"}
    with pytest.raises(NotFound):
        await exports.export_queue_history(
            ctx, date_from=D1, date_to=D1, department="NOPE", on_rows=rows.extend
        )


async def test_audit_export_uses_clinic_days_and_chain_order(ctx: Context) -> None:
    clock = ctx.clock
    assert isinstance(clock, FrozenClock)
    # Europe/London in June is UTC+1: 23:30 UTC on the 9th is already the 10th.
    times = [
        datetime(2026, 6, 9, 12, 0, tzinfo=UTC),
        datetime(2026, 6, 9, 23, 30, tzinfo=UTC),
        datetime(2026, 6, 10, 9, 0, tzinfo=UTC),
        datetime(2026, 6, 10, 23, 10, tzinfo=UTC),
    ]
    for i, when in enumerate(times):
        clock.set(when)
        async with ctx.db.transaction() as s:
            await log_action(ctx.bind(s), action=f"test.step{i}", details={"i": i})
    clock.set(datetime(2026, 6, 10, 15, 0, tzinfo=UTC))
    rows: list[dict] = []
    sent = await exports.export_audit_records(
        ctx, date_from=date(2026, 6, 10), date_to=date(2026, 6, 10), on_rows=rows.extend
    )
    assert sent == 2
    assert [r["action"] for r in rows] == ["test.step1", "test.step2"]
    assert [r["seq"] for r in rows] == [2, 3]
    assert rows[0]["details"] == {"i": 1}
    assert rows[0]["at"] == "2026-06-09T23:30:00+00:00"
    assert len(rows[0]["hash"]) == 64 and rows[1]["prev_hash"] == rows[0]["hash"]

    # the export itself is audited; a later export of that day includes the record
    rows.clear()
    await exports.export_audit_records(
        ctx, date_from=date(2026, 6, 10), date_to=date(2026, 6, 10), on_rows=rows.extend
    )
    assert rows[-1]["action"] == "export.audit_records"
    assert rows[-1]["details"]["rows"] == 2


async def test_exports_need_the_export_permission(ctx: Context) -> None:
    for role in (Role.STAFF, Role.DOCTOR, Role.PATIENT, Role.KIOSK):
        who = ctx.as_principal(Principal(user_id=uuid.uuid4(), username="someone", role=role))
        with pytest.raises(PermissionDenied):
            await exports.export_queue_history(who, date_from=D1, date_to=D2, on_rows=print)
        with pytest.raises(PermissionDenied):
            await exports.export_audit_records(who, date_from=D1, date_to=D2, on_rows=print)
    with pytest.raises(ValidationError) as exc:
        await exports.export_audit_records(ctx, date_from=D2, date_to=D1, on_rows=print)
    assert exc.value.field == "date_from"
