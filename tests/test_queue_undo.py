"""Undo of a ticket's last move: reverts what the desk did by mistake, audited, never rewrites history."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from iqms.core.clock import FrozenClock
from iqms.core.enums import TicketStatus
from iqms.core.errors import Conflict, InvalidTransition
from iqms.core.models import AuditRecord, QueueEntry
from iqms.core.queue.events import TicketUndone, subscribe
from iqms.core.security.audit import verify_chain
from iqms.core.service import Context
from iqms.core.services import patients, queue
from tests.test_queue_fixtures import as_doctor, small_clinic


async def _entry(ctx: Context, number: str) -> QueueEntry:
    async with ctx.db.transaction(readonly=True) as s:
        return (
            await s.execute(select(QueueEntry).where(QueueEntry.ticket_number == number))
        ).scalar_one()


async def test_undo_brings_back_a_cancelled_held_or_returned_ticket(
    ctx: Context, clock: FrozenClock
) -> None:
    await small_clinic(ctx)
    first = await queue.issue(ctx, department="GEN")
    await queue.issue(ctx, department="GEN")
    clock.advance(minutes=5)
    await queue.cancel(ctx, ticket="A-001", reason="left")
    back = await queue.undo_last(ctx, ticket="A-001")
    assert back.status == TicketStatus.WAITING and back.finished_at is None
    assert back.position == 1 and back.due_at == first.due_at  # its place, not the end

    await queue.hold(ctx, ticket="A-002")
    await queue.cancel(ctx, ticket="A-002")  # cancelled from hold: undo puts it on hold again
    assert (await queue.undo_last(ctx, ticket="A-002")).status == TicketStatus.HELD
    await queue.return_to_queue(ctx, ticket="A-002")
    assert (await queue.undo_last(ctx, ticket="A-002")).status == TicketStatus.HELD

    with pytest.raises(InvalidTransition, match="already undone") as twice:
        await queue.undo_last(ctx, ticket="A-002")
    assert (await queue.get_ticket(ctx, ticket="A-002")).status == TicketStatus.HELD
    assert "A-002" in str(twice.value)

    history = (await _entry(ctx, "A-001")).extra["history"]  # type: ignore[index]
    assert [h["step"] for h in history] == ["cancelled", "undone"]  # nothing rewritten
    async with ctx.db.transaction(readonly=True) as s:
        undone = list(
            (
                await s.execute(
                    select(AuditRecord.details).where(AuditRecord.action == "ticket.undone")
                )
            ).scalars()
        )
        assert (await verify_chain(s)).intact
    assert [d["undid"] for d in undone] == ["cancelled", "cancelled", "returned"]


async def test_undo_of_a_category_change_restores_category_and_due_time(
    ctx: Context, clock: FrozenClock
) -> None:
    await small_clinic(ctx)
    issued = await queue.issue(ctx, department="GEN")
    clock.advance(minutes=3)
    urgent = await queue.change_category(ctx, ticket="A-001", triage_category=2)
    assert urgent.due_at != issued.due_at
    back = await queue.undo_last(ctx, ticket="A-001")
    assert (back.triage_category, back.due_at, back.queue_band) == (4, issued.due_at, 1)

    await queue.change_category(ctx, ticket="A-001", triage_category=1)
    back = await queue.undo_last(ctx, ticket="A-001")
    assert (back.triage_category, back.queue_band) == (4, 1)  # out of the immediate band again


async def test_undo_of_a_no_show_and_of_a_requeue_calls_the_patient_again(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    doctor = as_doctor(ctx, c.doctors["drsmith"])
    await queue.issue(ctx, department="GEN")
    await queue.issue(ctx, department="GEN")
    called = await queue.call_next(doctor)
    assert called is not None and called.ticket_number == "A-001"
    await queue.no_show(ctx, ticket="A-001")
    back = await queue.undo_last(ctx, ticket="A-001")
    assert back.status == TicketStatus.CALLED and back.called_room == "Room 1"

    second = await queue.call_next(doctor)
    assert second is not None
    clock.advance(minutes=2)
    await queue.no_show(ctx, ticket=second.ticket_number, requeue=True)
    back = await queue.undo_last(ctx, ticket=second.ticket_number)
    assert back.status == TicketStatus.CALLED
    assert (back.called_at, back.called_room, back.called_doctor_id) == (
        second.called_at,
        "Room 1",
        c.doctors["drsmith"].id,
    )
    started = await queue.start(doctor, ticket=second.ticket_number)  # the doctor carries on
    assert started.status == TicketStatus.IN_SERVICE


async def test_undo_of_a_transfer_cancels_the_new_ticket_and_restores_the_old(
    ctx: Context, db_url: str
) -> None:
    await small_clinic(ctx)
    await queue.issue(ctx, department="GEN")
    moved = await queue.transfer(ctx, ticket="A-001", department="PED")
    assert moved.ticket_number == "P-001"
    async with subscribe(ctx.db) as feed:
        back = await queue.undo_last(ctx, ticket="A-001")
        kinds = {(await feed.next(within=5)).kind for _ in range(2)}  # type: ignore[union-attr]
    assert kinds == {"cancelled", TicketUndone.kind}
    assert back.status == TicketStatus.WAITING and back.department_code == "GEN"
    assert (await queue.get_ticket(ctx, ticket="P-001")).status == TicketStatus.CANCELLED
    with pytest.raises(InvalidTransition, match="cannot undo the last move of P-001"):
        await queue.undo_last(ctx, ticket="P-001")  # cancelling by undo is not undone in turn


async def test_undo_refuses_when_the_ticket_moved_on_or_nothing_can_be_undone(
    ctx: Context,
) -> None:
    c = await small_clinic(ctx)
    doctor = as_doctor(ctx, c.doctors["drsmith"])
    await queue.issue(ctx, department="GEN")
    with pytest.raises(InvalidTransition, match="has not been moved since it was issued"):
        await queue.undo_last(ctx, ticket="A-001")
    await queue.hold(ctx, ticket="A-001")
    await queue.return_to_queue(ctx, ticket="A-001")
    await queue.call_next(doctor)  # the doctor called it after the return
    with pytest.raises(InvalidTransition, match="A-001 is called now"):
        await queue.undo_last(ctx, ticket="A-001")
    await queue.recall(ctx, ticket="A-001")
    with pytest.raises(InvalidTransition, match=r"cannot undo the last move of A-001 \(recalled\)"):
        await queue.undo_last(ctx, ticket="A-001")
    assert (await queue.get_ticket(ctx, ticket="A-001")).status == TicketStatus.CALLED

    moved = await queue.transfer(ctx, ticket="A-001", department="PED")
    await queue.call_next(as_doctor(ctx, c.doctors["drpatel"]))
    with pytest.raises(InvalidTransition, match=f"new ticket {moved.ticket_number} is called"):
        await queue.undo_last(ctx, ticket="A-001")


async def test_undo_never_gives_a_patient_two_open_tickets_in_one_queue(ctx: Context) -> None:
    await small_clinic(ctx)
    george = await patients.register(ctx, full_name="George Wright")
    await queue.issue(ctx, department="GEN", patient=george.id)
    await queue.cancel(ctx, ticket="A-001")
    await queue.issue(ctx, department="GEN", patient=george.id)  # came back: a new ticket
    with pytest.raises(Conflict, match="has ticket A-002 in that queue now"):
        await queue.undo_last(ctx, ticket="A-001")
    assert (await queue.get_ticket(ctx, ticket="A-001")).status == TicketStatus.CANCELLED
