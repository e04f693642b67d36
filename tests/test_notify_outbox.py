"""The outbox and the triggers: rows commit with the queue change, only for reachable patients."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from iqms.core import pipeline
from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.enums import NotificationStatus, NotifyChannel, TicketSource, TicketStatus
from iqms.core.errors import InvalidTransition
from iqms.core.models import Notification, QueueEntry
from iqms.core.notify import outbox
from iqms.core.queue import engine as queue_engine
from iqms.core.queue import events
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import notifications
from tests.conftest import make_settings
from tests.test_notify_support import Clinic, issue, make_clinic, make_patient


async def messages(db: Database) -> list[Notification]:
    async with db.transaction(readonly=True) as s:
        rows = await s.execute(select(Notification).order_by(Notification.created_at))
        return list(rows.scalars())


async def _enqueue(ctx: Context, patient, **kw):  # type: ignore[no-untyped-def]
    async with ctx.db.transaction() as s:
        return await outbox.enqueue_for_patient(
            s,
            ctx.settings,
            patient=patient,
            kind=kw.pop("kind", "called"),
            fields=kw.pop("fields", {"ticket": "A-001", "room": "Room 1"}),
            now=ctx.now(),
            **kw,
        )


async def test_only_patients_who_opted_in_and_can_be_reached(ctx: Context) -> None:
    reachable_sms = await make_patient(ctx.db, phone="07911 123456")
    reachable_push = await make_patient(ctx.db, channel=NotifyChannel.PUSH, push_token="tok-1")
    unreachable = [
        await make_patient(ctx.db, channel=NotifyChannel.NONE),
        await make_patient(ctx.db, phone=None),
        await make_patient(ctx.db, phone="12345"),
        await make_patient(ctx.db, channel=NotifyChannel.PUSH, push_token=None),
        await make_patient(ctx.db, channel=NotifyChannel.PUSH, push_token="   "),
    ]
    for patient in unreachable:
        assert await _enqueue(ctx, patient) is None
    assert await _enqueue(ctx, reachable_sms) is not None
    # push_provider is "none" in the test settings: push patients are not queued.
    assert await _enqueue(ctx, reachable_push) is None
    rows = await messages(ctx.db)
    assert [(r.channel, r.recipient) for r in rows] == [(NotifyChannel.SMS, "+447911123456")]
    assert rows[0].status == NotificationStatus.PENDING
    assert rows[0].body == "Riverside Clinic: ticket A-001, please go to Room 1 now."


async def test_push_patients_when_push_is_configured(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url, push_provider="console")
    db = Database.from_settings(settings)
    try:
        ctx = Context(
            db=db, principal=Principal.system("t"), settings=settings, clock=FrozenClock()
        )
        patient = await make_patient(
            db, channel=NotifyChannel.PUSH, push_token="tok-1", language="es"
        )
        assert await _enqueue(ctx, patient) is not None
        (row,) = await messages(db)
        assert (row.channel, row.recipient, row.language) == (NotifyChannel.PUSH, "tok-1", "es")
        assert row.payload["title"] == "Riverside Clinic"
    finally:
        await db.dispose()


async def test_dedupe_key_keeps_one_message(ctx: Context) -> None:
    patient = await make_patient(ctx.db)
    first = await _enqueue(ctx, patient, dedupe_key="called:x")
    second = await _enqueue(ctx, patient, dedupe_key="called:x")
    assert first is not None and second is None
    assert len(await messages(ctx.db)) == 1


async def test_rolled_back_change_leaves_no_message(ctx: Context) -> None:
    clinic = await make_clinic(ctx.db)
    patient = await make_patient(ctx.db)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with ctx.db.transaction() as s:
            await pipeline.issue_ticket(
                ctx.bind(s),
                department=clinic.department,
                source=TicketSource.KIOSK,
                patient_id=patient.id,
            )
            assert await s.scalar(select(func.count()).select_from(Notification)) == 1
            raise Boom
    assert await messages(ctx.db) == []
    await issue(ctx, clinic, patient)
    assert [m.template for m in await messages(ctx.db)] == ["issued"]


async def test_issued_message_has_ticket_department_and_wait(ctx: Context) -> None:
    clinic = await make_clinic(ctx.db)
    for _ in range(4):
        await issue(ctx, clinic)  # anonymous walk-ins: no messages
    patient = await make_patient(ctx.db)
    entry = await issue(ctx, clinic, patient)
    (row,) = await messages(ctx.db)
    assert row.template == "issued"
    assert row.queue_entry_id == entry.id
    assert row.body.startswith(
        f"Riverside Clinic: your ticket is {entry.ticket_number} for General Practice. "
        "Estimated wait about "
    )
    assert row.body.endswith("min. We will let you know when your turn is near.")


async def test_spanish_patient_gets_spanish_messages(ctx: Context) -> None:
    clinic = await make_clinic(ctx.db)
    patient = await make_patient(ctx.db, language="es", phone="+34600900104")
    entry = await issue(ctx, clinic, patient)
    (row,) = await messages(ctx.db)
    assert row.language == "es"
    assert row.body.startswith(f"Riverside Clinic: su turno es {entry.ticket_number} para ")
    assert "Ya casi le toca" in row.body  # nobody ahead


async def _publish(ctx: Context, event: events.TicketEvent) -> None:
    async with ctx.db.transaction() as s:
        await pipeline.ticket_changed(ctx.bind(s), event, audit=None)


async def _call_next(ctx: Context, clinic: Clinic, doctor: int = 0) -> QueueEntry:
    doc = clinic.doctors[doctor]
    async with ctx.db.transaction() as s:
        bound = ctx.bind(s)
        entry = await queue_engine.claim_next(
            bound,
            department_id=clinic.department.id,
            doctor_id=doc.id,
            room=doc.room,
            called_by_id=doc.user_id,
        )
        assert entry is not None
        await pipeline.ticket_changed(
            bound, events.TicketCalled.of(entry, occurred_at=ctx.now()), audit=None
        )
        return entry


async def test_turn_approaching_is_sent_once_when_ahead_first_drops_to_threshold(
    ctx: Context, clock: FrozenClock
) -> None:
    assert ctx.settings.notify_approaching_threshold == 3
    clinic = await make_clinic(ctx.db)
    patients = [await make_patient(ctx.db, phone=f"+4479111234{i:02d}") for i in range(6)]
    entries = []
    for p in patients:
        clock.advance(minutes=1)
        entries.append(await issue(ctx, clinic, p))
    rows = await messages(ctx.db)
    assert [r.template for r in rows] == ["issued"] * 6
    # Four tickets were near the front already (0-3 ahead): their issued message says so.
    assert ["stay in the waiting area" in r.body for r in rows] == [True] * 4 + [False] * 2

    clock.advance(minutes=5)
    await _call_next(ctx, clinic)  # the 5th ticket now has 3 ahead
    rows = await messages(ctx.db)
    new = [r for r in rows if r.template != "issued"]
    assert [(r.template, r.recipient) for r in new] == [
        ("called", patients[0].phone),
        ("approaching", patients[4].phone),
    ]
    assert "your turn is near (3 ahead of you)" in new[1].body

    clock.advance(minutes=5)
    await _call_next(ctx, clinic)  # 5th: 2 ahead (no new message); 6th: 3 ahead
    approaching = [r for r in await messages(ctx.db) if r.template == "approaching"]
    assert [r.recipient for r in approaching] == [patients[4].phone, patients[5].phone]
    async with ctx.db.transaction(readonly=True) as s:
        fifth = await s.get(QueueEntry, entries[4].id)
        assert fifth is not None and fifth.approaching_notified_at is not None


async def test_called_recalled_no_show_and_transferred_messages(
    ctx: Context, clock: FrozenClock
) -> None:
    clinic = await make_clinic(ctx.db)
    other = await make_clinic(ctx.db, code="ORT", name="Orthopaedics")
    patient = await make_patient(ctx.db)
    await issue(ctx, clinic, patient)
    clock.advance(minutes=2)
    entry = await _call_next(ctx, clinic)
    clock.advance(minutes=2)
    await _publish(ctx, events.TicketRecalled.of(entry, occurred_at=clock.now(), recall_count=1))
    await _publish(
        ctx, events.TicketRecalled.of(entry, occurred_at=clock.now(), recall_count=1)
    )  # the same recall published twice: one message
    clock.advance(minutes=2)
    await _publish(ctx, events.TicketNoShow.of(entry, occurred_at=clock.now()))
    clock.advance(minutes=2)
    async with ctx.db.transaction() as s:
        bound = ctx.bind(s)
        moved = (
            await pipeline.issue_ticket(
                bound,
                department=other.department,
                source=TicketSource.TRANSFER,
                patient_id=patient.id,
                transferred_from_id=entry.id,
            )
        ).entry
        await pipeline.ticket_changed(
            bound,
            events.TicketTransferred.of(
                entry,
                occurred_at=clock.now(),
                new_entry_id=moved.id,
                new_ticket_number=moved.ticket_number,
                target_department_id=other.department.id,
            ),
            audit=None,
        )
    bodies = [(r.template, r.body) for r in await messages(ctx.db)]
    assert [t for t, _ in bodies] == ["issued", "called", "recalled", "no_show", "transferred"]
    assert (
        bodies[1][1] == f"Riverside Clinic: ticket {entry.ticket_number}, please go to Room 1 now."
    )
    assert "calling you again. Please go to Room 1 now." in bodies[2][1]
    assert "Please see reception." in bodies[3][1]
    assert bodies[4][1] == (
        f"Riverside Clinic: ticket {entry.ticket_number} has moved to Orthopaedics. "
        f"Your new ticket is {moved.ticket_number}."
    )


async def test_a_later_message_replaces_an_unsent_earlier_one(ctx: Context) -> None:
    patient = await make_patient(ctx.db)
    clinic = await make_clinic(ctx.db)
    entry = await issue(ctx, clinic, patient)
    async with ctx.db.transaction() as s:
        await outbox.enqueue_for_patient(
            s,
            ctx.settings,
            patient=patient,
            kind="called",
            fields={"ticket": entry.ticket_number, "room": "Room 1"},
            now=ctx.now() + timedelta(seconds=1),
            queue_entry_id=entry.id,
        )
    by_template = {r.template: r for r in await messages(ctx.db)}
    # its own status: not a failure anyone should chase, and never retried
    assert by_template["issued"].status == NotificationStatus.SUPERSEDED
    assert "replaced" in (by_template["issued"].last_error or "")
    with pytest.raises(InvalidTransition, match="is superseded; only failed or dead"):
        await notifications.retry(ctx, notification_id=by_template["issued"].id)
    failed = await notifications.list_notifications(ctx, status="failed")
    assert failed == []
    assert by_template["called"].status == NotificationStatus.PENDING


async def test_no_messages_when_no_provider_is_configured(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url, sms_provider="none")
    db = Database.from_settings(settings)
    try:
        ctx = Context(
            db=db, principal=Principal.system("t"), settings=settings, clock=FrozenClock()
        )
        clinic = await make_clinic(db)
        await issue(ctx, clinic, await make_patient(db))
        assert await messages(db) == []
        async with db.transaction(readonly=True) as s:
            statuses = (await s.execute(select(QueueEntry.status))).scalars().all()
        assert statuses == [TicketStatus.WAITING]
    finally:
        await db.dispose()
