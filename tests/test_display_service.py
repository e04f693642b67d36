"""The board view and the message line of the waiting-room boards, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from iqms.core.clock import FrozenClock
from iqms.core.enums import TicketStatus
from iqms.core.errors import NotFound, PermissionDenied, ValidationError
from iqms.core.queue.events import DisplayMessageChanged, subscribe
from iqms.core.service import Context
from iqms.core.services import audit, display, patients, queue
from tests.test_queue_fixtures import as_doctor, as_role, small_clinic


async def test_the_board_shows_calls_newest_first_with_rooms_and_the_queues(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    smith, jones = as_doctor(ctx, c.doctors["drsmith"]), as_doctor(ctx, c.doctors["drjones"])
    patel = as_doctor(ctx, c.doctors["drpatel"])
    for _ in range(5):
        await queue.issue(ctx, department="GEN")
    await queue.issue(ctx, department="PED")
    await queue.issue(ctx, department="GEN", triage_category=2)  # A-006 jumps the queue
    await queue.call_next(smith)
    clock.advance(minutes=1)
    await queue.call_next(jones)
    clock.advance(minutes=1)
    await queue.call_next(patel)  # P-001
    board = await display.board(as_role(ctx, "display"))
    assert [(c.ticket_number, c.room, c.department_code) for c in board.calls] == [
        ("P-001", "Room 5", "PED"),
        ("A-001", "Room 2", "GEN"),
        ("A-006", "Room 1", "GEN"),
    ]
    gen, ped = board.departments
    assert (gen.code, gen.name, gen.waiting_count) == ("GEN", "General Practice", 4)
    assert gen.next_numbers == ["A-002", "A-003", "A-004", "A-005"]
    assert (ped.code, ped.waiting_count, ped.next_numbers) == ("PED", 0, [])
    assert board.message is None

    # One department only; the number of calls and next numbers is the board's choice.
    only_gen = await display.board(ctx, departments=["gen"], calls=1, next_count=2)
    assert [c.ticket_number for c in only_gen.calls] == ["A-001"]
    assert [d.code for d in only_gen.departments] == ["GEN"]
    assert only_gen.departments[0].next_numbers == ["A-002", "A-003"]


async def test_a_recall_makes_an_older_call_the_newest_and_served_calls_stay_listed(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    smith, jones = as_doctor(ctx, c.doctors["drsmith"]), as_doctor(ctx, c.doctors["drjones"])
    for _ in range(3):
        await queue.issue(ctx, department="GEN")
    first = await queue.call_next(smith)
    clock.advance(minutes=2)
    second = await queue.call_next(jones)
    assert first is not None and second is not None
    await queue.start(jones, ticket=second.id)
    await queue.serve(jones, ticket=second.id)
    board = await display.board(ctx, calls=3)
    assert [(c.ticket_number, c.status) for c in board.calls] == [
        ("A-002", TicketStatus.SERVED),
        ("A-001", TicketStatus.CALLED),
    ]
    clock.advance(minutes=1)
    await queue.recall(smith, ticket=first.id)
    board = await display.board(ctx, calls=3)
    assert [c.ticket_number for c in board.calls] == ["A-001", "A-002"]
    assert board.calls[0].recall_count == 1
    assert board.calls[0].called_at == clock.now()


async def test_calls_of_earlier_days_and_requeued_tickets_are_not_shown(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    await queue.issue(ctx, department="GEN")
    await queue.issue(ctx, department="GEN")
    yesterday = await queue.call_next(smith)
    assert yesterday is not None
    clock.advance(timedelta(days=1))
    assert (await display.board(ctx)).calls == []  # a new clinic day: nothing called yet
    today = await queue.call_next(smith)
    assert today is not None
    await queue.no_show(smith, ticket=today.id, requeue=True)  # back to waiting
    board = await display.board(ctx)
    assert board.calls == []
    assert board.departments[0].next_numbers == ["A-002"]


async def test_the_board_view_carries_no_names(ctx: Context) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    for name in ("Amelia Hughes", "Oliver Brown"):
        person = await patients.register(ctx, full_name=name)
        await queue.issue(ctx, department="GEN", patient=person.id)
    await queue.call_next(smith)
    board = await display.board(as_role(ctx, "display"))
    dumped = board.model_dump_json()
    assert "A-001" in dumped and "A-002" in dumped
    for fragment in ("Amelia", "Hughes", "Oliver", "Brown", "Dr Drsmith"):
        assert fragment not in dumped


async def test_unknown_departments_and_silly_sizes_are_refused(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    with pytest.raises(NotFound, match="no department XRAY"):
        await display.board(ctx, departments=["GEN", "XRAY"])
    with pytest.raises(ValidationError, match="calls must be 1-20"):
        await display.board(ctx, calls=0)


async def test_the_message_line_is_set_cleared_audited_and_published(
    ctx: Context, clock: FrozenClock
) -> None:
    await small_clinic(ctx, doctors=False)
    reception = as_role(ctx, "staff", username="rita")
    async with subscribe(ctx.db) as feed:
        shown = await display.set_message(reception, text="  Dr Patel is running\n20 minutes late ")
        assert shown.text == "Dr Patel is running 20 minutes late"
        assert (shown.set_by, shown.set_at) == ("rita", clock.now())
        event = await feed.next(within=5)
        assert isinstance(event, DisplayMessageChanged)
        assert event.text == "Dr Patel is running 20 minutes late"
        assert (await display.board(ctx)).message == "Dr Patel is running 20 minutes late"

        await display.set_message(reception, text="Flu vaccinations today")
        assert (await display.get_message(as_role(ctx, "display"))).text == "Flu vaccinations today"  # type: ignore[union-attr]
        await feed.next(within=5)

        assert await display.clear_message(reception) is True
        event = await feed.next(within=5)
        assert isinstance(event, DisplayMessageChanged) and event.text is None
    assert await display.clear_message(reception) is False  # nothing to clear: no event either
    assert (await display.board(ctx)).message is None
    assert await display.get_message(ctx) is None

    records = await audit.show(ctx, action="display.*")
    assert [(r.action, r.actor) for r in records] == [
        ("display.message_set", "rita"),
        ("display.message_set", "rita"),
        ("display.message_cleared", "rita"),
    ]

    with pytest.raises(ValidationError, match="at most 160 characters"):
        await display.set_message(reception, text="x" * 161)
    with pytest.raises(ValidationError):
        await display.set_message(reception, text="   ")
    with pytest.raises(PermissionDenied):
        await display.set_message(as_role(ctx, "display"), text="hello")
