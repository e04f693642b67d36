"""Applying offline batches: numbers, arrival times, idempotency, patient merging, conflicts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from iqms.core.clock import FrozenClock
from iqms.core.enums import ConflictStatus, SyncResult, TicketSource, TicketStatus
from iqms.core.errors import Conflict, PermissionDenied, ValidationError
from iqms.core.models import (
    AuditRecord,
    Device,
    Patient,
    QueueEntry,
    SyncConflict,
    SyncOperation,
    TicketCounter,
)
from iqms.core.security.audit import verify_chain
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, patients, queue, sync, users
from iqms.core.sync.batch import BatchRejected
from iqms.core.sync.journal import Journal

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Clinic:
    gen: uuid.UUID
    ped: uuid.UUID


async def make_clinic(ctx: Context) -> Clinic:
    gen = await clinic.create_department(ctx, code="GEN", name="General Practice",
                                         ticket_prefix="A")  # fmt: skip
    ped = await clinic.create_department(ctx, code="PED", name="Paediatrics", ticket_prefix="P")
    return Clinic(gen=gen.id, ped=ped.id)


async def kiosk_context(ctx: Context, username: str) -> Context:
    """A context acting as a kiosk account (role kiosk)."""
    user = await users.create(ctx, username=username, full_name=f"Kiosk {username}",
                              role="kiosk", password="kiosk-password-42")  # fmt: skip
    return ctx.as_principal(Principal(user_id=user.id, username=username, role="kiosk"))


def journal_for(tmp_path: Path, name: str, clock: FrozenClock) -> Journal:
    return Journal(tmp_path / f"{name}.db", device_name=name, clock=clock,
                   timezone=ZoneInfo("Europe/London"))  # fmt: skip


async def reserve_into(kiosk: Context, journal: Journal, department: uuid.UUID, size: int) -> None:
    block = await sync.reserve_numbers(kiosk, department_id=department, size=size,
                                       device_id=journal.device_id,
                                       device_name=journal.device_name)  # fmt: skip
    journal.add_number_block(block)


async def push_all(kiosk: Context, journal: Journal) -> sync.PushReport:
    batch = journal.next_batch()
    assert batch is not None
    report = await sync.push(kiosk, batch=batch)
    journal.confirm([r.as_dict() for r in report.results])
    return report


TABLES = (AuditRecord, Device, Patient, QueueEntry, SyncConflict, SyncOperation, TicketCounter)


async def snapshot(ctx: Context) -> dict[str, object]:
    """Everything a replay must leave untouched."""
    async with ctx.db.transaction(readonly=True) as s:
        counts = {
            t.__tablename__: (await s.execute(select(func.count()).select_from(t))).scalar_one()
            for t in TABLES
        }
        tickets = (
            await s.execute(
                select(
                    QueueEntry.ticket_number,
                    QueueEntry.status,
                    QueueEntry.arrived_at,
                    QueueEntry.patient_id,
                ).order_by(QueueEntry.ticket_number)
            )
        ).all()
        seen = (await s.execute(select(Device.name, Device.last_seen_at))).all()
        pts = (await s.execute(select(Patient.mrn, Patient.phone, Patient.version))).all()
    return {"counts": counts, "tickets": tickets, "devices": seen, "patients": pts}


async def tickets_of(ctx: Context, department: uuid.UUID) -> list[QueueEntry]:
    async with ctx.db.transaction(readonly=True) as s:
        return list(
            (
                await s.execute(
                    select(QueueEntry)
                    .where(QueueEntry.department_id == department)
                    .order_by(QueueEntry.sequence)
                )
            ).scalars()
        )


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    path = tmp_path / "journals"
    path.mkdir()
    return path


async def test_blocks_come_from_the_daily_counter_and_never_overlap(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    c = await make_clinic(ctx)
    k1 = await kiosk_context(ctx, "kiosk1")
    k2 = await kiosk_context(ctx, "kiosk2")
    j1, j2 = journal_for(journal_dir, "kiosk1", clock), journal_for(journal_dir, "kiosk2", clock)
    await reserve_into(k1, j1, c.gen, 5)
    central = await queue.issue(ctx, department=c.gen)
    await reserve_into(k2, j2, c.gen, 5)
    assert central.ticket_number == "A-006"
    offline1 = [j1.issue_ticket(c.gen).ticket_number for _ in range(5)]
    offline2 = [j2.issue_ticket(c.gen).ticket_number for _ in range(2)]
    assert offline1 == ["A-001", "A-002", "A-003", "A-004", "A-005"]
    assert offline2 == ["A-007", "A-008"]
    assert (await queue.issue(ctx, department=c.gen)).ticket_number == "A-012"
    with pytest.raises(ValidationError):
        await sync.reserve_numbers(k1, department_id=c.gen, size=0, device_id=j1.device_id)
    # a kiosk account linked to a device cannot reserve numbers for another one
    linked = ctx.as_principal(Principal(user_id=None, username="kiosk9", role="kiosk",
                                        device_id=j1.device_id))  # fmt: skip
    with pytest.raises(PermissionDenied):
        await sync.reserve_numbers(linked, department_id=c.gen, device_id=j2.device_id)


async def test_offline_tickets_keep_their_number_and_arrival_and_a_replay_changes_nothing(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    c = await make_clinic(ctx)
    kiosk = await kiosk_context(ctx, "kiosk1")
    journal = journal_for(journal_dir, "kiosk1", clock)
    await reserve_into(kiosk, journal, c.gen, 10)
    first = journal.issue_ticket(c.gen)
    clock.advance(minutes=5)
    second = journal.issue_ticket(c.gen)
    clock.advance(minutes=40)  # the network comes back much later
    batch = journal.next_batch()
    assert batch is not None
    report = await sync.push(kiosk, batch=batch)
    assert [r.result for r in report.results] == [SyncResult.APPLIED, SyncResult.APPLIED]
    assert [r.details["ticket_number"] for r in report.results] == ["A-001", "A-002"]
    entries = await tickets_of(ctx, c.gen)
    assert [(e.ticket_number, e.arrived_at, e.source) for e in entries] == [
        ("A-001", first.arrived_at, TicketSource.SYNC),
        ("A-002", second.arrived_at, TicketSource.SYNC),
    ]
    assert entries[1].due_at == second.arrived_at + timedelta(minutes=120)
    assert {e.client_op_id for e in entries} == {first.op_id, second.op_id}
    assert all(e.origin_device_id == journal.device_id for e in entries)

    before = await snapshot(ctx)
    clock.advance(minutes=1)
    again = await sync.push(kiosk, batch=batch)
    assert [r.result for r in again.results] == [SyncResult.DUPLICATE, SyncResult.DUPLICATE]
    assert again.results[0].details["ticket_number"] == "A-001"
    assert again.results[0].details["original_result"] == "applied"
    assert await snapshot(ctx) == before
    async with ctx.db.transaction(readonly=True) as s:
        assert (await verify_chain(s)).intact


async def test_a_number_not_reserved_or_already_used_gets_a_new_one_and_a_conflict(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    c = await make_clinic(ctx)
    kiosk = await kiosk_context(ctx, "kiosk1")
    journal = journal_for(journal_dir, "kiosk1", clock)
    await reserve_into(kiosk, journal, c.gen, 2)
    journal.issue_ticket(c.gen)
    batch = journal.next_batch()
    assert batch is not None
    batch["operations"][0]["sequence"] = 40  # not a number this kiosk reserved
    report = await sync.push(kiosk, batch=batch)
    result = report.results[0]
    assert result.result == SyncResult.CONFLICT
    assert "A-040 was not reserved by kiosk1" in (result.reason or "")
    assert result.details["ticket_number"] == "A-003"  # queued all the same
    assert result.details["printed_number"] == "A-040"
    conflicts = await sync.list_conflicts(ctx)
    assert [(v.kind, v.device_name) for v in conflicts] == [("ticket.issue", "kiosk1")]
    assert "A-040" in conflicts[0].reason
    assert conflicts[0].id == result.conflict_id


async def test_a_ticket_from_an_earlier_day_is_kept_for_review_not_queued(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    c = await make_clinic(ctx)
    kiosk = await kiosk_context(ctx, "kiosk1")
    journal = journal_for(journal_dir, "kiosk1", clock)
    await reserve_into(kiosk, journal, c.gen, 2)
    journal.issue_ticket(c.gen)
    clock.advance(days=1)
    report = await push_all(kiosk, journal)
    assert report.results[0].result == SyncResult.CONFLICT
    assert "earlier service day (2026-01-05)" in (report.results[0].reason or "")
    assert await tickets_of(ctx, c.gen) == []
    assert journal.pending_count() == 0  # the server has it (as a conflict): cleared
    [view] = await sync.list_conflicts(ctx)
    resolved = await sync.resolve_conflict(ctx, conflict_id=view.id, action="keep",
                                           note="patient was seen on paper")  # fmt: skip
    assert resolved.status == ConflictStatus.RESOLVED
    assert resolved.resolution == "kept the central data: patient was seen on paper"
    assert await sync.list_conflicts(ctx) == []
    with pytest.raises(Conflict):
        await sync.resolve_conflict(ctx, conflict_id=view.id, action="keep")


async def test_the_same_patient_registered_on_two_kiosks_exists_once(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    c = await make_clinic(ctx)
    k1, k2 = await kiosk_context(ctx, "kiosk1"), await kiosk_context(ctx, "kiosk2")
    j1, j2 = journal_for(journal_dir, "kiosk1", clock), journal_for(journal_dir, "kiosk2", clock)
    await reserve_into(k1, j1, c.ped, 3)
    await reserve_into(k2, j2, c.ped, 3)
    reg2 = j2.register_patient({"full_name": "ISLA  wilson", "phone": "07911 123103",
                                "date_of_birth": "2016-05-02", "national_id": "ab 12 34 56"})  # fmt: skip
    clock.advance(minutes=2)
    t2 = j2.issue_ticket(c.ped, patient_op_id=reg2.op_id)
    clock.advance(minutes=1)
    reg1 = j1.register_patient({"full_name": "Isla Wilson", "phone": "+447911123103",
                                "date_of_birth": "2016-05-02"})  # fmt: skip
    t1 = j1.issue_ticket(c.ped, patient_op_id=reg1.op_id)
    clock.advance(minutes=30)
    r1 = await push_all(k1, j1)  # kiosk 1 syncs first although its patient came later
    assert [r.result for r in r1.results] == [SyncResult.APPLIED, SyncResult.APPLIED]
    r2 = await push_all(k2, j2)
    assert [r.result for r in r2.results] == [SyncResult.MERGED, SyncResult.MERGED]
    assert r2.results[0].details["mrn"] == r1.results[0].details["mrn"]
    assert r2.results[0].details["filled"] == ["national_id"]
    assert r2.results[1].details["replaced"] == t1.ticket_number
    async with ctx.db.transaction(readonly=True) as s:
        found = list((await s.execute(select(Patient))).scalars())
    assert len(found) == 1 and found[0].national_id == "AB123456"
    entries = await tickets_of(ctx, c.ped)
    waiting = [e for e in entries if e.status == TicketStatus.WAITING]
    # one place in the queue, at the earlier of the two original arrival times
    assert [(e.ticket_number, e.arrived_at, e.patient_id) for e in waiting] == [
        (t2.ticket_number, t2.arrived_at, found[0].id)
    ]
    cancelled = [e for e in entries if e.status == TicketStatus.CANCELLED]
    assert [e.ticket_number for e in cancelled] == [t1.ticket_number]


async def test_matching_by_national_id_and_a_twin_kept_for_review(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    c = await make_clinic(ctx)
    amelia = await patients.register(ctx, full_name="Amelia Hughes", phone="+447911123101",
                                     date_of_birth=date(2019, 3, 1), national_id="QQ123456")  # fmt: skip
    kiosk = await kiosk_context(ctx, "kiosk1")
    journal = journal_for(journal_dir, "kiosk1", clock)
    await reserve_into(kiosk, journal, c.gen, 5)
    by_id = journal.register_patient({"full_name": "Amelia Hughes-Roberts",
                                      "national_id": "QQ-123-456"})  # fmt: skip
    twin = journal.register_patient({"full_name": "Olivia Hughes", "phone": "+447911123101",
                                     "date_of_birth": "2019-03-01"})  # fmt: skip
    ticket = journal.issue_ticket(c.gen, patient_op_id=twin.op_id)
    journal.update_patient(patient_op_id=twin.op_id, changes={"language": "cy"})
    # changes to a registration that was merged are checked against the central record
    journal.update_patient(patient_op_id=by_id.op_id,
                           changes={"language": "cy", "full_name": "Amelia Roberts"})  # fmt: skip
    report = await push_all(ctx, journal)  # a reception terminal may update patients
    results = report.results
    assert results[0].result == SyncResult.MERGED
    assert results[0].details["patient_id"] == str(amelia.id)
    assert results[0].details["kept_central"]["full_name"]["offline"] == "Amelia Hughes-Roberts"
    assert results[1].result == SyncResult.CONFLICT
    assert "same phone and date of birth but another name" in (results[1].reason or "")
    # the child is queued all the same, not yet linked to a record
    assert results[2].result == SyncResult.APPLIED
    assert results[2].details["patient_id"] is None
    assert results[3].result == SyncResult.CONFLICT
    assert "awaits staff review" in (results[3].reason or "")
    assert results[4].result == SyncResult.CONFLICT
    assert results[4].details["applied"] == {"language": "cy"}
    assert results[4].details["unresolved"]["full_name"] == {
        "central": "Amelia Hughes",
        "offline": "Amelia Roberts",
    }

    with pytest.raises(ValidationError):
        await sync.resolve_conflict(ctx, conflict_id=results[1].conflict_id, action="merge")
    view = await sync.resolve_conflict(ctx, conflict_id=results[1].conflict_id, action="apply",
                                       note="twin sister")  # fmt: skip
    assert view.resolution is not None and "registered as new patient" in view.resolution
    assert "1 tickets linked" in view.resolution
    async with ctx.db.transaction(readonly=True) as s:
        olivia = (
            await s.execute(select(Patient).where(Patient.full_name == "Olivia Hughes"))
        ).scalar_one()
        entry = (
            await s.execute(select(QueueEntry).where(QueueEntry.client_op_id == ticket.op_id))
        ).scalar_one()
    assert entry.patient_id == olivia.id


async def test_stale_updates_resolved_field_by_field(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    await make_clinic(ctx)
    noah = await patients.register(ctx, full_name="Noah Taylor", phone="+447911123104",
                                   date_of_birth=date(1990, 12, 19), language="en")  # fmt: skip
    staff = ctx  # reception keeps working centrally
    terminal = journal_for(journal_dir, "desk2", clock)
    base = {"phone": "+447911123104", "language": "en", "full_name": "Noah Taylor"}
    clock.advance(minutes=10)
    # offline at 09:10: new phone, Welsh, and a corrected name
    upd = terminal.update_patient(patient_id=noah.id, base_version=noah.version, base=base,
                                  changes={"phone": "07911 123999", "language": "cy",
                                           "full_name": "Noah J. Taylor"})  # fmt: skip
    clock.advance(minutes=10)
    # central at 09:20: another phone and another name; the language is untouched
    await patients.update(staff, patient=noah.id, version=noah.version, phone="+447911123555",
                          full_name="Noah Taylor-Smith")  # fmt: skip
    clock.advance(minutes=30)
    report = await push_all(ctx.as_principal(Principal.system("desk2")), terminal)
    [result] = report.results
    assert result.op_id == upd.op_id
    assert result.result == SyncResult.CONFLICT
    assert "full name of patient" in (result.reason or "")
    assert result.details["applied"] == {"language": "cy"}  # only the terminal changed it
    assert result.details["newer_wins"]["phone"] == {
        "central": "+447911123555",
        "offline": "+447911123999",
        "kept": "central",
    }
    async with ctx.db.transaction(readonly=True) as s:
        row = await s.get(Patient, noah.id)
        assert row is not None
        assert (row.phone, row.language, row.full_name) == (
            "+447911123555", "cy", "Noah Taylor-Smith")  # fmt: skip
        trail = (
            await s.execute(
                select(AuditRecord.details).where(AuditRecord.action == "sync.patient_updated")
            )
        ).scalar_one()
    assert trail["newer_wins"]["phone"]["offline"] == "+447911123999"  # both values kept
    assert trail["unresolved"]["full_name"] == {"central": "Noah Taylor-Smith",
                                                "offline": "Noah J. Taylor"}  # fmt: skip
    view = await sync.resolve_conflict(ctx, conflict_id=result.conflict_id, action="apply")
    assert view.resolution == f"applied the offline full_name to patient {noah.mrn}"
    async with ctx.db.transaction(readonly=True) as s:
        row = await s.get(Patient, noah.id)
        assert row is not None and row.full_name == "Noah J. Taylor"

    # a later offline phone change wins over an earlier central one
    clock.advance(minutes=5)
    await patients.update(staff, patient=noah.id, version=row.version, phone="+447911123666")
    clock.advance(minutes=5)
    terminal.update_patient(patient_id=noah.id, base_version=1,
                            changes={"phone": "+447911123777"})  # fmt: skip
    [later] = (await push_all(ctx.as_principal(Principal.system("desk2")), terminal)).results
    assert later.result == SyncResult.MERGED
    assert later.details["newer_wins"]["phone"]["kept"] == "offline"


async def test_each_operation_is_checked_against_the_pushers_rights(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    c = await make_clinic(ctx)
    ticket = await queue.issue(ctx, department=c.gen)
    kiosk = await kiosk_context(ctx, "kiosk1")
    journal = journal_for(journal_dir, "kiosk1", clock)
    await reserve_into(kiosk, journal, c.gen, 2)
    journal.cancel_ticket(ticket_id=ticket.id, reason="left")
    urgent = journal.issue_ticket(c.gen, triage_category=2)
    report = await push_all(kiosk, journal)
    assert report.results[0].result == SyncResult.CONFLICT
    assert "kiosks cannot cancel tickets, undo moves or leave notes for doctors" in (
        report.results[0].reason or ""
    )
    # a kiosk may not set urgency: the patient is queued as standard and staff are told
    assert report.results[1].result == SyncResult.CONFLICT
    assert "may not set the urgency (category 2)" in (report.results[1].reason or "")
    entries = await tickets_of(ctx, c.gen)
    assert entries[0].status == TicketStatus.WAITING
    assert (entries[1].ticket_number, entries[1].triage_category) == (urgent.ticket_number, 4)
    # reception may
    desk = journal_for(journal_dir, "desk", clock)
    desk.cancel_ticket(ticket_id=ticket.id, reason="left")
    desk.set_triage(ticket_id=ticket.id, triage_category=2)
    [cancelled, triage] = (await push_all(ctx, desk)).results
    assert cancelled.result == SyncResult.APPLIED
    assert triage.result == SyncResult.CONFLICT
    assert "cancelled" in (triage.reason or "")


async def test_an_appointment_checked_in_offline(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    c = await make_clinic(ctx)
    mia = await patients.register(ctx, full_name="Mia Roberts", phone="+447911123106")
    appt = await clinic.book_appointment(ctx, patient=mia.id, department=c.gen,
                                         scheduled_at=T0 + timedelta(minutes=30))  # fmt: skip
    other = await clinic.book_appointment(ctx, patient=mia.id, department=c.ped,
                                          scheduled_at=T0 + timedelta(minutes=40))  # fmt: skip
    kiosk = await kiosk_context(ctx, "kiosk1")
    journal = journal_for(journal_dir, "kiosk1", clock)
    await reserve_into(kiosk, journal, c.gen, 3)
    await reserve_into(kiosk, journal, c.ped, 3)
    clock.advance(minutes=20)
    offline = journal.check_in_appointment(appt.id, department_id=c.gen)
    journal.check_in_appointment(other.id, department_id=c.ped)
    await clinic.check_in(ctx, appointment=other.id)  # reception checked her in meanwhile
    clock.advance(minutes=15)
    [done, merged] = (await push_all(kiosk, journal)).results
    assert done.result == SyncResult.APPLIED
    assert done.details["ticket_number"] == offline.ticket_number
    assert merged.result == SyncResult.MERGED
    entries = await tickets_of(ctx, c.gen)
    assert [(e.arrived_at, e.due_at, e.patient_id) for e in entries] == [
        (T0 + timedelta(minutes=20), T0 + timedelta(minutes=30), mia.id)
    ]
    assert len(await tickets_of(ctx, c.ped)) == 1


async def test_a_reused_device_sequence_refuses_the_batch(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    await make_clinic(ctx)
    journal = journal_for(journal_dir, "desk", clock)
    journal.register_patient({"full_name": "Harry Walker"})
    batch = journal.next_batch()
    assert batch is not None
    await sync.push(ctx, batch=batch)
    batch["operations"][0]["op_id"] = str(uuid.uuid4())  # same sequence, another operation
    before = await snapshot(ctx)
    with pytest.raises(BatchRejected) as caught:
        await sync.push(ctx, batch=batch)
    assert caught.value.field == "operations[0].device_seq"
    assert "already used" in str(caught.value)
    assert await snapshot(ctx) == before


async def test_a_patient_already_waiting_keeps_one_place_and_can_leave_offline(
    ctx: Context, clock: FrozenClock, journal_dir: Path
) -> None:
    clock.set(T0)
    c = await make_clinic(ctx)
    amelia = await patients.register(ctx, full_name="Amelia Hughes", phone="+447911123101")
    central = await queue.issue(ctx, department=c.gen, patient=amelia.id)
    desk = journal_for(journal_dir, "desk", clock)
    await reserve_into(ctx, desk, c.gen, 3)
    clock.advance(minutes=5)
    offline = desk.issue_ticket(c.gen, patient_id=amelia.id)
    clock.advance(minutes=5)
    desk.cancel_ticket(ticket_op_id=offline.op_id, reason="went home")
    [issued, cancelled] = (await push_all(ctx, desk)).results
    assert issued.result == SyncResult.MERGED
    assert issued.details["ticket_number"] == central.ticket_number
    assert issued.details["printed_number"] == offline.ticket_number
    assert cancelled.result == SyncResult.APPLIED
    assert cancelled.details["ticket_number"] == central.ticket_number
    [entry] = await tickets_of(ctx, c.gen)
    assert entry.status == TicketStatus.CANCELLED
