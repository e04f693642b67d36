"""Queue operations: issuing, calling in triage order, the state machine, transfers, views."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from iqms.core.clock import FrozenClock
from iqms.core.enums import DoctorStatus, Role, TicketSource, TicketStatus
from iqms.core.errors import Conflict, InvalidTransition, PermissionDenied, ValidationError
from iqms.core.models import AuditRecord, QueueEntry
from iqms.core.schemas.queue import TicketOut
from iqms.core.security.audit import verify_chain
from iqms.core.service import Context
from iqms.core.services import clinic, patients, queue
from tests.test_queue_fixtures import as_doctor, as_role, as_user, small_clinic


async def _audit_count(ctx: Context) -> int:
    async with ctx.db.transaction(readonly=True) as s:
        return int((await s.execute(select(func.count()).select_from(AuditRecord))).scalar_one())


async def _actions(ctx: Context) -> list[str]:
    async with ctx.db.transaction(readonly=True) as s:
        return list(
            (await s.execute(select(AuditRecord.action).order_by(AuditRecord.seq))).scalars()
        )


async def test_issue_numbers_and_due_times_follow_the_policy(
    ctx: Context, clock: FrozenClock
) -> None:
    await small_clinic(ctx)
    t0 = clock.now()
    first = await queue.issue(ctx, department="GEN")
    clock.advance(minutes=1)
    urgent = await queue.issue(ctx, department="gen", triage_category=3)
    immediate = await queue.issue(ctx, department="GEN", triage_category="immediate")
    ped = await queue.issue(ctx, department="PED")
    assert [first.ticket_number, urgent.ticket_number, immediate.ticket_number] == [
        "A-001",
        "A-002",
        "A-003",
    ]
    assert ped.ticket_number == "P-001"
    assert first.due_at == t0 + timedelta(minutes=120)
    assert urgent.due_at == t0 + timedelta(minutes=1 + 30)  # GEN overrides category 3: 30 min
    assert immediate.queue_band == 0
    assert first.source == TicketSource.RECEPTION  # the system principal is not a kiosk
    assert first.position == 1 and first.estimate is not None
    assert immediate.position == 1  # category 1 jumps the queue
    status = await queue.ticket_status(ctx, ticket="A-001")
    assert status.position == 3 and status.ahead == 2


async def test_kiosk_issues_standard_tickets_only(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    kiosk = await as_user(ctx, "kiosk1", Role.KIOSK)
    ticket = await queue.issue(kiosk, department="GEN")
    assert ticket.source == TicketSource.KIOSK
    with pytest.raises(PermissionDenied):
        await queue.issue(kiosk, department="GEN", triage_category=2)
    with pytest.raises(ValidationError) as bad:
        await queue.issue(kiosk, department="GEN", source="sync")
    assert bad.value.field == "source"


async def test_call_next_follows_band_due_time_and_arrival(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    standard_early = await queue.issue(ctx, department="GEN")  # due +120
    clock.advance(minutes=100)
    urgent = await queue.issue(ctx, department="GEN", triage_category=3)  # due +130
    standard_late = await queue.issue(ctx, department="GEN")  # due +220
    immediate = await queue.issue(ctx, department="GEN", triage_category=1)
    order = []
    while (called := await queue.call_next(smith)) is not None:
        order.append(called.ticket_number)
        assert called.called_room == "Room 1" and called.status == TicketStatus.CALLED
    assert order == [
        immediate.ticket_number,
        standard_early.ticket_number,  # waited long: due before the newly arrived urgent one
        urgent.ticket_number,
        standard_late.ticket_number,
    ]


async def test_doctor_calls_own_tickets_and_pool_but_not_colleagues(ctx: Context) -> None:
    c = await small_clinic(ctx)
    smith, jones = as_doctor(ctx, c.doctors["drsmith"]), as_doctor(ctx, c.doctors["drjones"])
    for_jones = await queue.issue(ctx, department="GEN", doctor="drjones")
    pool = await queue.issue(ctx, department="GEN")
    got = await queue.call_next(smith)
    assert got is not None and got.ticket_number == pool.ticket_number
    assert await queue.call_next(smith) is None
    with pytest.raises(Conflict):
        await queue.call(smith, ticket=for_jones.ticket_number)
    got = await queue.call_next(jones)
    assert got is not None and got.ticket_number == for_jones.ticket_number
    # A doctor cannot finish a colleague's patient.
    with pytest.raises(PermissionDenied):
        await queue.start(smith, ticket=for_jones.ticket_number)


async def test_paused_doctor_and_staff_without_doctor_get_clear_errors(ctx: Context) -> None:
    c = await small_clinic(ctx)
    await queue.issue(ctx, department="GEN")
    smith = as_doctor(ctx, c.doctors["drsmith"])
    await clinic.set_doctor_status(smith, status="paused")
    with pytest.raises(InvalidTransition, match="Dr Drsmith is paused"):
        await queue.call_next(smith)
    staff = await as_user(ctx, "rita", Role.STAFF)
    with pytest.raises(ValidationError) as missing:
        await queue.call_next(staff)
    assert missing.value.field == "doctor"
    called = await queue.call_next(staff, doctor="drjones")
    assert called is not None and called.called_room == "Room 2"


async def test_full_visit_is_audited_and_published(ctx: Context) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    t = await queue.issue(ctx, department="GEN")
    await queue.call_next(smith)
    await queue.recall(smith, ticket=t.ticket_number)
    await queue.start(smith, ticket=t.ticket_number)
    served = await queue.serve(smith, ticket=t.ticket_number)
    assert served.status == TicketStatus.SERVED and served.recall_count == 1
    actions = await _actions(ctx)
    assert actions[-5:] == [
        "ticket.issued",
        "ticket.called",
        "ticket.recalled",
        "ticket.started",
        "ticket.served",
    ]
    async with ctx.db.transaction(readonly=True) as s:
        assert (await verify_chain(s)).intact


async def test_illegal_transitions_are_refused_and_change_nothing(ctx: Context) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    t = await queue.issue(ctx, department="GEN")
    before = await _actions(ctx)
    with pytest.raises(InvalidTransition, match="cannot mark A-001 as served: it is waiting"):
        await queue.serve(ctx, ticket="A-001")
    with pytest.raises(InvalidTransition):
        await queue.start(ctx, ticket="a1")
    with pytest.raises(InvalidTransition):
        await queue.recall(ctx, ticket=t.id)
    with pytest.raises(InvalidTransition):
        await queue.return_to_queue(ctx, ticket=t.id)
    await queue.call_next(smith)
    with pytest.raises(InvalidTransition, match="it is called, not waiting or on hold"):
        await queue.cancel(ctx, ticket=t.id)
    after = await queue.get_ticket(ctx, ticket=t.id)
    assert after.status == TicketStatus.CALLED
    assert (await _actions(ctx))[len(before) :] == ["ticket.called"]


async def test_recall_limit_turns_into_no_show_optionally_requeued(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    a = await queue.issue(ctx, department="GEN")
    b = await queue.issue(ctx, department="GEN")
    await queue.call_next(smith)
    await queue.recall(smith, ticket=a.id, no_show_after=2)
    await queue.recall(smith, ticket=a.id, no_show_after=2)
    gone = await queue.recall(smith, ticket=a.id, no_show_after=2)
    assert gone.status == TicketStatus.NO_SHOW and gone.recall_count == 2
    # The other ticket: no-show with requeue puts it back behind those already overdue.
    await queue.call_next(smith)
    clock.advance(minutes=200)
    late = await queue.issue(ctx, department="GEN")  # due +120 from now
    back = await queue.no_show(smith, ticket=b.id, requeue=True)
    assert back.status == TicketStatus.WAITING and back.called_room is None
    assert back.arrived_at == b.arrived_at
    assert back.due_at == clock.now()
    nxt = await queue.call_next(smith)
    assert nxt is not None and nxt.ticket_number == b.ticket_number
    assert (await queue.get_ticket(ctx, ticket=late.id)).position == 1


async def test_transfer_keeps_arrival_and_links_the_new_ticket(
    ctx: Context, clock: FrozenClock
) -> None:
    await small_clinic(ctx)
    p = await patients.register(ctx, full_name="Isla Wilson")
    old = await queue.issue(ctx, department="GEN", patient=p.mrn, triage_category=3)
    clock.advance(minutes=25)
    new = await queue.transfer(ctx, ticket=old.ticket_number, department="PED", reason="child")
    assert new.ticket_number == "P-001" and new.department_code == "PED"
    assert new.arrived_at == old.arrived_at
    assert new.due_at == old.arrived_at + timedelta(minutes=60)  # PED uses the default target
    assert new.transferred_from_id == old.id and new.source == TicketSource.TRANSFER
    assert new.patient_id == p.id and new.triage_category == 3
    assert (await queue.get_ticket(ctx, ticket=old.id)).status == TicketStatus.TRANSFERRED
    to_doctor = await queue.transfer(ctx, ticket=new.id, doctor="drpatel")
    assert to_doctor.doctor_id is not None and to_doctor.ticket_number == "P-002"
    with pytest.raises(ValidationError):
        await queue.transfer(ctx, ticket=to_doctor.id, doctor="drpatel")
    with pytest.raises(InvalidTransition):
        await queue.transfer(ctx, ticket=old.id, department="GEN")


async def test_hold_return_and_category_change(ctx: Context, clock: FrozenClock) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    a = await queue.issue(ctx, department="GEN")
    clock.advance(minutes=5)
    b = await queue.issue(ctx, department="GEN")
    held = await queue.hold(ctx, ticket=a.id, reason="gone to the pharmacy")
    assert held.status == TicketStatus.HELD
    first = await queue.call_next(smith)
    assert first is not None and first.id == b.id
    returned = await queue.return_to_queue(ctx, ticket=a.id)
    assert returned.status == TicketStatus.WAITING and returned.due_at == a.due_at
    # Category change recomputes the due time from arrival and reorders.
    clock.advance(minutes=5)
    d = await queue.issue(ctx, department="GEN")
    raised = await queue.change_category(smith, ticket=d.id, triage_category=2)
    assert raised.due_at == d.arrived_at + timedelta(minutes=10)
    assert raised.position == 1
    nxt = await queue.call_next(smith)
    assert nxt is not None and nxt.id == d.id


async def test_patient_cannot_hold_two_tickets_in_one_department(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    p = await patients.register(ctx, full_name="Oliver Brown", phone="07911 123102")
    await queue.issue(ctx, department="GEN", patient=p.id)
    with pytest.raises(Conflict, match="already has ticket A-001"):
        await queue.issue(ctx, department="GEN", patient=p.mrn)
    other = await queue.issue(ctx, department="PED", patient=p.mrn)
    assert other.ticket_number == "P-001"


async def test_closed_department_takes_no_new_tickets(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    await clinic.deactivate_department(ctx, department="PED")
    with pytest.raises(ValidationError, match="closed") as closed:
        await queue.issue(ctx, department="PED")
    assert closed.value.field == "department"


async def test_board_shows_rooms_and_numbers_never_names(ctx: Context) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    p = await patients.register(ctx, full_name="Amelia Hughes")
    await queue.issue(ctx, department="GEN", patient=p.id)
    await queue.issue(ctx, department="GEN")
    await queue.issue(ctx, department="GEN", triage_category=2)
    await queue.call_next(smith)  # A-003 (very urgent)
    await clinic.set_doctor_status(ctx, doctor="drjones", status=DoctorStatus.OFF)
    kiosk = as_role(ctx, "kiosk")
    board = await queue.board(kiosk, department="GEN", next_count=5)
    assert [(r.room, r.ticket_number) for r in board.now_serving] == [("Room 1", "A-003")]
    assert [t.ticket_number for t in board.next_up] == ["A-001", "A-002"]
    assert board.waiting_count == 2
    assert board.recent_calls[0].ticket_number == "A-003"
    assert "Amelia" not in board.model_dump_json()
    # the waits the board shows are each ticket's own
    own = [await queue.get_ticket(ctx, ticket=n) for n in ("A-001", "A-002")]
    assert [t.estimate for t in board.next_up] == [t.estimate for t in own]
    assert all(t.estimate is not None for t in own)
    # a board that shows no numbers still counts who waits
    bare = await queue.board(kiosk, department="GEN", next_count=0)
    assert (bare.next_up, bare.waiting_count) == ([], 2)


async def test_doctor_queue_shows_names_only_when_asked_and_audits_it(ctx: Context) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    p = await patients.register(ctx, full_name="Jack Evans")
    await queue.issue(ctx, department="GEN", patient=p.id)
    await queue.issue(ctx, department="GEN", doctor="drjones")
    await queue.issue(ctx, department="GEN")
    plain = await queue.doctor_queue(smith)
    assert [t.ticket_number for t in plain.waiting] == ["A-001", "A-003"]
    assert plain.waiting[0].patient_name is None and plain.waiting_count == 2
    assert [t.position for t in plain.waiting] == [1, 3]  # A-002 (Dr Jones) is ahead of A-003
    before = await _actions(ctx)
    named = await queue.doctor_queue(smith, include_names=True)
    assert named.waiting[0].patient_name == "Jack Evans"
    assert (await _actions(ctx))[len(before) :] == ["queue.names_viewed"]
    with pytest.raises(PermissionDenied):
        await queue.doctor_queue(smith, doctor="drjones")


async def test_queue_list_orders_waiting_then_active(ctx: Context) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    for _ in range(3):
        await queue.issue(ctx, department="GEN")
    called = await queue.call_next(smith)
    assert called is not None
    await queue.issue(ctx, department="PED")
    rows = await queue.queue_list(ctx, department="GEN")
    assert [(r.ticket_number, r.status, r.position) for r in rows] == [
        ("A-002", TicketStatus.WAITING, 1),
        ("A-003", TicketStatus.WAITING, 2),
        ("A-001", TicketStatus.CALLED, None),
    ]
    everything = await queue.queue_list(ctx, statuses=["waiting"])
    assert {r.ticket_number for r in everything} == {"A-002", "A-003", "P-001"}
    with pytest.raises(ValidationError):
        await queue.queue_list(ctx, statuses=["lost"])


async def _each_on_its_own(ctx: Context, listed: list[TicketOut]) -> list[tuple[Any, ...]]:
    return [
        (t.position, t.estimate) for t in [await queue.get_ticket(ctx, ticket=r.id) for r in listed]
    ]


async def test_queue_list_gives_each_waiting_ticket_the_place_and_wait_it_has_on_its_own(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    await queue.issue(ctx, department="GEN")
    await queue.issue(ctx, department="GEN", triage_category=2)
    await queue.issue(ctx, department="GEN", doctor="drjones")
    await queue.issue(ctx, department="PED")
    assert await queue.call_next(smith) is not None
    await queue.issue(ctx, department="GEN", doctor="drsmith")
    await queue.issue(ctx, department="GEN", triage_category=5)
    listed = [t for t in await queue.queue_list(ctx) if t.status == TicketStatus.WAITING]
    # GEN in calling order, then PED; a ticket for a named doctor counts what that doctor calls
    assert [(t.ticket_number, t.position) for t in listed] == [
        ("A-001", 1), ("A-003", 2), ("A-004", 2), ("A-005", 4), ("P-001", 1)
    ]  # fmt: skip
    assert await _each_on_its_own(ctx, listed) == [(t.position, t.estimate) for t in listed]
    assert all(t.estimate is not None for t in listed)

    # A patient left waiting since yesterday is still ahead of today's in the queue; today's
    # list does not show them, but counts them in everyone's place and wait.
    clock.advance(days=1)
    await queue.issue(ctx, department="GEN")
    await queue.issue(ctx, department="GEN", triage_category=4)
    today = [t for t in await queue.queue_list(ctx) if t.status == TicketStatus.WAITING]
    assert [(t.ticket_number, t.position) for t in today] == [("A-001", 5), ("A-002", 6)]
    assert await _each_on_its_own(ctx, today) == [(t.position, t.estimate) for t in today]
    # cut short by the limit: the tickets shown keep their place
    [first] = await queue.queue_list(ctx, statuses=["waiting"], limit=1)
    assert (first.ticket_number, first.position) == ("A-001", 5)


async def test_patient_sees_own_ticket_status(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    p = await patients.register(ctx, full_name="Mia Roberts")
    await queue.issue(ctx, department="PED", patient=p.id)
    me = as_role(ctx, "patient", patient_id=p.id)
    mine = await queue.my_tickets(me)
    assert [(t.ticket_number, t.position) for t in mine] == [("P-001", 1)]
    with pytest.raises(PermissionDenied):
        await queue.queue_list(me)


async def test_ticket_number_lookups(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    await queue.issue(ctx, department="GEN")
    for ref in ("A-001", "a1", "A 001", "a-1"):
        assert (await queue.ticket_status(ctx, ticket=ref)).ticket_number == "A-001"
    from iqms.core.errors import NotFound

    with pytest.raises(NotFound):
        await queue.ticket_status(ctx, ticket="A-002")
    with pytest.raises(ValidationError):
        await queue.ticket_status(ctx, ticket="hello there")


async def test_queue_entry_rows_match_outputs(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    t = await queue.issue(ctx, department="GEN", triage_category=5)
    async with ctx.db.transaction(readonly=True) as s:
        row = (await s.execute(select(QueueEntry).where(QueueEntry.id == t.id))).scalar_one()
    assert row.due_at == t.due_at and row.triage_category == 5 and row.queue_band == 1
    assert row.estimate_at_issue_minutes == t.estimate_at_issue_minutes is not None


# Written out independently of queue_policy.TRANSITIONS: which states each move starts from.
ALLOWED_FROM = {
    "call": {"waiting"},
    "recall": {"called"},
    "start": {"called"},
    "serve": {"called", "in_service"},  # from called: the start is recorded at the same time
    "no_show": {"called"},
    "requeue": {"called"},
    "cancel": {"waiting", "held"},
    "transfer": {"waiting", "held", "called", "in_service"},
    "hold": {"waiting", "called", "in_service"},
    "return": {"held"},
    "change_category": {"waiting", "held"},
}


async def test_every_move_from_every_state(ctx: Context) -> None:
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])

    async def ticket_in(state: str) -> str:
        t = (await queue.issue(ctx, department="GEN")).id
        if state == "held":
            await queue.hold(ctx, ticket=t)
        elif state == "cancelled":
            await queue.cancel(ctx, ticket=t)
        elif state == "transferred":
            await queue.transfer(ctx, ticket=t, department="PED")
        elif state != "waiting":
            await queue.call(smith, ticket=t)
            if state in ("in_service", "served"):
                await queue.start(smith, ticket=t)
            if state == "served":
                await queue.serve(smith, ticket=t)
            if state == "no_show":
                await queue.no_show(smith, ticket=t)
        return str(t)

    moves = {
        "call": lambda t: queue.call(smith, ticket=t),
        "recall": lambda t: queue.recall(smith, ticket=t),
        "start": lambda t: queue.start(smith, ticket=t),
        "serve": lambda t: queue.serve(smith, ticket=t),
        "no_show": lambda t: queue.no_show(smith, ticket=t),
        "requeue": lambda t: queue.no_show(smith, ticket=t, requeue=True),
        "cancel": lambda t: queue.cancel(ctx, ticket=t),
        "transfer": lambda t: queue.transfer(ctx, ticket=t, department="PED"),
        "hold": lambda t: queue.hold(ctx, ticket=t),
        "return": lambda t: queue.return_to_queue(ctx, ticket=t),
        "change_category": lambda t: queue.change_category(ctx, ticket=t, triage_category=2),
    }
    states = ["waiting", "held", "called", "in_service", "served", "no_show", "cancelled",
              "transferred"]  # fmt: skip
    wrong = []
    for state in states:
        for name, move in moves.items():
            t = await ticket_in(state)
            audit_before = await _audit_count(ctx)
            try:
                await move(t)
                allowed = True
            except InvalidTransition:
                allowed = False
                after = await queue.get_ticket(ctx, ticket=t)
                assert after.status.value == state
                assert await _audit_count(ctx) == audit_before
            if allowed != (state in ALLOWED_FROM[name]):
                wrong.append((name, state, allowed))
    assert wrong == []


async def test_a_retried_issue_with_the_same_operation_id_gets_the_same_ticket(
    ctx: Context,
) -> None:
    await small_clinic(ctx, doctors=False)
    kiosk = await as_user(ctx, "kiosk1", Role.KIOSK)
    op = uuid.uuid4()
    first = await queue.issue(kiosk, department="GEN", client_op_id=op)
    again = await queue.issue(kiosk, department="GEN", client_op_id=op)  # the reply was lost
    other = await queue.issue(kiosk, department="GEN", client_op_id=uuid.uuid4())
    assert again.id == first.id and again.ticket_number == "A-001"
    assert other.ticket_number == "A-002"
    async with ctx.db.transaction(readonly=True) as s:
        count = (await s.execute(select(func.count()).select_from(QueueEntry))).scalar_one()
    assert count == 2
