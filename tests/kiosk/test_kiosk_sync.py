"""A kiosk's offline journal syncs as the device of its key (both backends): its numbers, its
printed status links, a reinstalled kiosk's sequence, and a press whose online reply was lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iqms.core.clock import FrozenClock
from iqms.core.enums import SyncResult, TicketStatus
from iqms.core.errors import ConfigError, PermissionDenied
from iqms.core.queue.engine import new_status_code
from iqms.core.service import Context
from iqms.core.services import queue, sync
from iqms.core.sync.batch import BatchRejected
from iqms.core.sync.journal import Journal
from tests.kiosk.support import kiosk
from tests.test_sync_push import Clinic, make_clinic

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def kiosk_journal(
    tmp_path: Path, kiosk_ctx: Context, clock: FrozenClock, name: str = "j"
) -> Journal:
    return Journal(tmp_path / f"{name}.db", device_id=kiosk_ctx.principal.device_id,
                   device_name=kiosk_ctx.principal.username, timezone=kiosk_ctx.settings.tz,
                   clock=clock)  # fmt: skip


async def kiosk_at_nine(
    ctx: Context, clock: FrozenClock, tmp_path: Path, journal_name: str = "j"
) -> tuple[Clinic, Context, Journal]:
    """09:00: the clinic, a kiosk signed in with its own key, and the kiosk's journal."""
    clock.set(T0)
    c = await make_clinic(ctx)
    at = await kiosk(ctx)
    return c, at, kiosk_journal(tmp_path, at, clock, journal_name)


async def take_numbers(at: Context, journal: Journal, department: uuid.UUID) -> None:
    """What a kiosk does once online: carry on its sequence, reserve five numbers to print."""
    journal.continue_after(await sync.last_sequence(at))
    journal.add_number_block(await sync.reserve_numbers(at, department_id=department, size=5))


async def push(kiosk_ctx: Context, journal: Journal) -> sync.PushReport:
    batch = journal.next_batch()
    assert batch is not None
    report = await sync.push(kiosk_ctx, batch=batch)
    journal.confirm([r.as_dict() for r in report.results])
    return report


async def test_offline_tickets_sync_as_the_kiosk_with_their_printed_links(
    ctx: Context, clock: FrozenClock, tmp_path: Path
) -> None:
    c, at, journal = await kiosk_at_nine(ctx, clock, tmp_path)
    assert journal.device_id == at.principal.device_id
    block = await sync.reserve_numbers(at, department_id=c.gen, size=5,
                                       device_id=journal.device_id)  # fmt: skip
    journal.add_number_block(block)
    code = new_status_code()
    offline = journal.issue_ticket(c.gen, status_code=code)
    assert (offline.ticket_number, offline.status_code) == ("A-001", code)
    clock.advance(minutes=2)
    report = await push(at, journal)
    assert [r.result for r in report.results] == [SyncResult.APPLIED]
    [ticket] = await queue.queue_list(ctx, department=c.gen)
    assert (ticket.ticket_number, ticket.status_code, ticket.arrived_at) == ("A-001", code, T0)
    # The printed link leads to the ticket.
    status = await queue.ticket_status(at, ticket=ticket.id)
    assert status.ticket_number == "A-001"


async def test_a_reinstalled_kiosk_carries_on_from_the_servers_sequence(
    ctx: Context, clock: FrozenClock, tmp_path: Path
) -> None:
    c, at, first = await kiosk_at_nine(ctx, clock, tmp_path, "before")
    await take_numbers(at, first, c.gen)
    first.issue_ticket(c.gen)
    first.issue_ticket(c.gen)
    await push(at, first)
    assert await sync.last_sequence(at) == 2

    # The kiosk's disk is replaced: a new journal, the same device key.
    again = kiosk_journal(tmp_path, at, clock, "after")
    assert not again.sequence_checked
    again.add_number_block(await sync.reserve_numbers(at, department_id=c.gen, size=5))
    offline = again.issue_ticket(c.gen)  # recorded before the check (it started offline)
    with pytest.raises(BatchRejected, match="sequence 1 of this device was already used"):
        await sync.push(at, batch=again.next_batch())
    again.continue_after(await sync.last_sequence(at))
    assert again.sequence_checked and [e.device_seq for e in again.pending()] == [3]
    report = await push(at, again)
    assert [r.result for r in report.results] == [SyncResult.APPLIED]
    numbers = [t.ticket_number for t in await queue.queue_list(ctx, department=c.gen)]
    assert numbers == ["A-001", "A-002", offline.ticket_number]

    other = await kiosk(ctx, "lift")
    with pytest.raises(PermissionDenied):
        await sync.last_sequence(other, device_id=at.principal.device_id)


async def test_a_journal_takes_the_device_key_of_its_computer(
    ctx: Context, clock: FrozenClock, tmp_path: Path
) -> None:
    c = await make_clinic(ctx)
    at = await kiosk(ctx)
    plain = Journal(tmp_path / "j.db", clock=clock)  # a terminal without a device key
    assert plain.sequence_checked and plain.device_id != at.principal.device_id
    plain.add_number_block(await sync.reserve_numbers(ctx, department_id=c.gen, size=3,
                                                      device_id=plain.device_id))  # fmt: skip
    adopted = kiosk_journal(tmp_path, at, clock)
    assert adopted.device_id == at.principal.device_id and not adopted.sequence_checked
    assert adopted.numbers_left() == []  # those numbers were reserved by the other device

    busy = Journal(tmp_path / "busy.db", clock=clock)
    busy.register_patient({"full_name": "Ada Lovelace"})
    with pytest.raises(ConfigError, match="holds 1 operations of another device"):
        Journal(tmp_path / "busy.db", device_id=uuid.uuid4(), clock=clock)
    assert busy.pending_count() == 1


async def test_a_press_whose_online_reply_was_lost_is_one_ticket(
    ctx: Context, clock: FrozenClock, tmp_path: Path
) -> None:
    c, at, journal = await kiosk_at_nine(ctx, clock, tmp_path)
    await take_numbers(at, journal, c.gen)
    await queue.issue(ctx, department=c.gen)  # someone else's ticket first: A-006
    press = uuid.uuid4()
    # The kiosk asked online; the ticket was committed but the reply never arrived...
    lost = await queue.issue(at, department=c.gen, client_op_id=press)
    clock.advance(seconds=20)
    # ...so it issued and printed one from its reserved numbers with the same operation id.
    printed = journal.issue_ticket(c.gen, op_id=press)
    clock.advance(minutes=5)
    report = await push(at, journal)
    [result] = report.results
    assert result.result == SyncResult.MERGED
    assert result.details["replaced"] == lost.ticket_number
    waiting = await queue.queue_list(ctx, department=c.gen)
    # Exactly one ticket for the press: the number the patient holds, at the first arrival.
    assert printed.ticket_number == "A-001"
    assert sorted((t.ticket_number, t.arrived_at) for t in waiting) == [
        ("A-001", T0),
        ("A-006", T0),
    ]
    withdrawn = await queue.get_ticket(ctx, ticket=lost.id)
    assert withdrawn.status == TicketStatus.CANCELLED
    # A replay of the batch changes nothing; a retry of the online call finds the ticket held.
    again = await sync.push(at, batch={**report_batch(journal, press, printed), "device_id":
                                       str(journal.device_id)})  # fmt: skip
    assert [r.result for r in again.results] == [SyncResult.DUPLICATE]
    retried = await queue.issue(at, department=c.gen, client_op_id=press)
    assert retried.ticket_number == printed.ticket_number
    assert len(await queue.queue_list(ctx, department=c.gen)) == 2
    assert clock.now() - T0 < timedelta(minutes=10)


def report_batch(journal: Journal, press: uuid.UUID, printed) -> dict:  # type: ignore[no-untyped-def]
    """The batch the kiosk sent, as it would send it again after losing the answer."""
    [result] = journal.results(limit=1)
    assert result.op_id == press
    return {
        "format": 1,
        "operations": [
            {
                "kind": "ticket.issue",
                "op_id": str(press),
                "device_seq": result.device_seq,
                "occurred_at": printed.arrived_at.isoformat(),
                "department_id": str(printed.department_id),
                "sequence": printed.sequence,
            }
        ],
    }
