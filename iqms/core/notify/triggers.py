"""Which ticket changes produce which patient messages (outbox rows, same transaction).

This is the "notify" step of :mod:`iqms.core.pipeline`, run for every ticket event:

* issued: ticket, department and estimated wait. If few tickets are ahead
  already, the message says so, and no separate "your turn is near" follows
  (the ticket is written already marked, see ``near``).
* approaching: once, when the number of tickets ahead of a waiting ticket
  first drops to ``notify_approaching_threshold`` (``approaching_notified_at``
  records it). Checked for a department after every change that can move
  someone up its queue (a ticket left it, or came back into it), by one
  query over the waiting tickets of patients not told yet.
* called / recalled (room), no-show, transferred (new ticket and department).

Only patients who opted in and can be reached get anything (see
:func:`iqms.core.notify.outbox.recipient_for`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Integer,
    Select,
    Table,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from iqms.core.config import Settings
from iqms.core.enums import NotifyChannel, TicketSource
from iqms.core.models import Department, Doctor, Patient, QueueEntry
from iqms.core.notify.outbox import enqueue_for_patient, recipient_for
from iqms.core.notify.providers import enabled_channels
from iqms.core.notify.templates import wait_text
from iqms.core.queue import engine as queue_engine
from iqms.core.queue import eta

if TYPE_CHECKING:
    from iqms.core.service import Context

#: changes after which a ticket of the department may have fewer tickets ahead than before
MOVES_UP = frozenset(
    {"called", "cancelled", "held", "transferred", "category_changed", "returned", "no_show"}
)


@dataclass(frozen=True)
class IssuedFacts:
    """What issuing a ticket already worked out, for its message."""

    department_name: str
    estimate: eta.WaitEstimate | None
    near: bool  # few enough tickets ahead that it was written already marked as told
    counted: bool  # the tickets ahead were counted (near is meaningful)


@dataclass(frozen=True)
class Contact:
    """How to reach a patient (the columns :func:`recipient_for` reads)."""

    id: uuid.UUID
    notify_channel: NotifyChannel
    phone: str | None
    push_token: str | None
    language: str


def is_near(settings: Settings, ahead: eta.Ahead, doctor_id: uuid.UUID | None) -> bool:
    """Few enough tickets are ahead of a ticket that its turn is near."""
    lanes: dict[uuid.UUID | None, int] = {None: ahead.pool}
    for doctor, count in ahead.reserved.items():
        lanes[doctor] = count
    return queue_engine.in_scope(lanes, doctor_id) <= settings.notify_approaching_threshold


def _stamp(when: datetime) -> str:
    return str(int(when.timestamp() * 1_000_000))


def anyone_to_tell(department_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """SQL: a department has waiting tickets of patients not yet told their turn is near.

    Cheap (the ``ix_queue_entries_approaching`` index); a caller that reads it
    with the change can tell :func:`on_ticket_event` to skip the approaching
    check when it is false.
    """
    qe = queue_engine.QUEUE_TABLE.alias("to_tell").c
    return exists().where(
        qe.department_id == department_id,
        qe.status == literal_column("'waiting'"),
        qe.approaching_notified_at.is_(None),
        qe.patient_id.is_not(None),
    )


async def on_ticket_event(
    ctx: Context, event: Any, *, issued: IssuedFacts | None = None, approaching: bool = True
) -> None:
    """Write the outbox rows a ticket event calls for, inside the event's transaction.

    ``approaching=False``: the caller knows nobody in the department waits to
    be told their turn is near (see :func:`anyone_to_tell`).
    """
    entry_id = getattr(event, "entry_id", None)
    department_id = getattr(event, "department_id", None)
    if entry_id is None or department_id is None or not enabled_channels(ctx.settings):
        return
    kind = getattr(event, "kind", "")
    if kind == "issued":
        await _issued(ctx, event, issued)
    elif kind in ("called", "recalled"):
        await _called(ctx, event)
    elif kind == "no_show":
        await _tell(ctx, event, "no_show", dedupe=f"no_show:{entry_id}:{_stamp(event.occurred_at)}")
    elif kind == "transferred":
        await _transferred(ctx, event)
    if kind in MOVES_UP and approaching:
        await check_approaching(ctx, department_id=department_id)


_PATIENTS = cast(Table, Patient.__table__)
_CONTACT = select(
    _PATIENTS.c.id,
    _PATIENTS.c.notify_channel,
    _PATIENTS.c.phone,
    _PATIENTS.c.push_token,
    _PATIENTS.c.language,
).where(_PATIENTS.c.id == bindparam("p_patient"))


async def _contact(ctx: Context, patient_id: uuid.UUID | None) -> Contact | None:
    """The patient's contact details, or None if anonymous or not reachable."""
    if patient_id is None:
        return None
    row = (await queue_engine.run(ctx.s, _CONTACT, {"p_patient": patient_id})).first()
    if row is None:
        return None
    contact = Contact(*row)
    return contact if recipient_for(contact, ctx.settings) is not None else None


async def _department_name(ctx: Context, department_id: uuid.UUID) -> str:
    department = await ctx.s.get(Department, department_id)
    return department.name if department is not None else ""


async def _issued(ctx: Context, event: Any, issued: IssuedFacts | None) -> None:
    if getattr(event, "source", None) == TicketSource.TRANSFER.value:
        return  # the "transferred" message tells the patient about the new ticket
    patient = await _contact(ctx, event.patient_id)
    if patient is None:
        return
    if issued is None or not issued.counted or issued.estimate is None:
        issued = await _work_out(ctx, event)
        if issued is None:
            return
    fields: dict[str, Any] = {"ticket": event.ticket_number, "department": issued.department_name}
    if issued.estimate is not None:
        fields["wait"] = wait_text(issued.estimate.p50_minutes, issued.estimate.p90_minutes)
    if issued.near:
        fields["near"] = True
    await enqueue_for_patient(
        ctx.s,
        ctx.settings,
        patient=patient,
        kind="issued",
        fields=fields,
        now=ctx.now(),
        queue_entry_id=event.entry_id,
        dedupe_key=f"issued:{event.entry_id}",
    )


async def _work_out(ctx: Context, event: Any) -> IssuedFacts | None:
    """Count and estimate for an issued event published without them."""
    entry = await queue_engine.find_ticket(ctx.s, event.entry_id)
    ahead = await eta.count_ahead(ctx.s, entry)
    near = is_near(ctx.settings, ahead, entry.doctor_id)
    if near:
        await _mark_approaching(ctx, [entry.id])
    state = await eta.department_state(ctx, entry.department_id)
    return IssuedFacts(
        department_name=await _department_name(ctx, entry.department_id),
        estimate=eta.estimate_for(state, entry, ahead, now=ctx.now()),
        near=near,
        counted=True,
    )


async def _room(ctx: Context, event: Any) -> str:
    if event.room:
        return str(event.room)
    if event.doctor_id is not None:
        doctor = await ctx.s.get(Doctor, event.doctor_id)
        if doctor is not None:
            return doctor.room
    return await _department_name(ctx, event.department_id)


async def _called(ctx: Context, event: Any) -> None:
    if event.kind == "recalled":
        dedupe = f"recalled:{event.entry_id}:{getattr(event, 'recall_count', 0)}"
    else:
        dedupe = f"called:{event.entry_id}:{_stamp(event.occurred_at)}"

    async def fields() -> dict[str, Any]:
        return {"ticket": event.ticket_number, "room": await _room(ctx, event)}

    await _tell(ctx, event, event.kind, fields=fields, dedupe=dedupe)


async def _transferred(ctx: Context, event: Any) -> None:
    async def fields() -> dict[str, Any]:
        return {
            "ticket": event.ticket_number,
            "department": await _department_name(ctx, event.target_department_id),
            "new_ticket": event.new_ticket_number,
        }

    await _tell(ctx, event, "transferred", fields=fields, dedupe=f"transferred:{event.entry_id}")


async def _tell(
    ctx: Context,
    event: Any,
    kind: str,
    *,
    dedupe: str,
    fields: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> None:
    """Queue the ``kind`` message about ``event`` for its patient, if they can be reached.

    ``fields`` (read only for a patient who is messaged) fill the template
    besides the ticket number.
    """
    patient = await _contact(ctx, event.patient_id)
    if patient is None:
        return
    await enqueue_for_patient(
        ctx.s,
        ctx.settings,
        patient=patient,
        kind=kind,
        fields=await fields() if fields is not None else {"ticket": event.ticket_number},
        now=ctx.now(),
        queue_entry_id=event.entry_id,
        dedupe_key=dedupe,
    )


async def _mark_approaching(ctx: Context, entry_ids: list[uuid.UUID]) -> None:
    await ctx.s.execute(
        update(QueueEntry)
        .where(QueueEntry.id.in_(entry_ids), QueueEntry.approaching_notified_at.is_(None))
        .values(approaching_notified_at=ctx.now())
        .execution_options(synchronize_session=False)
    )


@functools.cache
def _approaching_query() -> Select[Any]:
    """Waiting tickets of reachable patients not told yet, that may have few tickets ahead.

    Only tickets before the (threshold + 1)-th pool ticket can have so few
    ahead; for each of those, the tickets ahead are counted up to
    threshold + 1 (index ``ix_queue_entries_approaching`` for the candidates,
    the queue-order index for the counts). Parameters: ``p_department``,
    ``p_threshold``, ``p_limit`` (threshold + 1), ``p_channels``.
    """
    qe, other, p = (
        queue_engine.QUEUE_TABLE.c,
        queue_engine.QUEUE_TABLE.alias("other").c,
        _PATIENTS.c,
    )
    key = (qe.queue_band, qe.due_at, qe.arrived_at, qe.sequence)
    waiting: ColumnElement[str] = literal_column("'waiting'")
    department = bindparam("p_department", type_=qe.department_id.type)
    pool_bound = (
        select(*key)
        .where(qe.department_id == department, qe.status == waiting, qe.doctor_id.is_(None))
        .order_by(*key)
        .limit(1)
        .offset(bindparam("p_threshold", type_=Integer))
        .cte("pool_bound")
    )
    before = (
        select(literal(1))
        .where(
            other.department_id == qe.department_id,
            other.status == waiting,
            or_(qe.doctor_id.is_(None), other.doctor_id.is_(None), other.doctor_id == qe.doctor_id),
            tuple_(other.queue_band, other.due_at, other.arrived_at, other.sequence) < tuple_(*key),
        )
        .limit(bindparam("p_limit", type_=Integer))
        .correlate(queue_engine.QUEUE_TABLE)
        .subquery("before")
    )
    ahead = select(func.count()).select_from(before).scalar_subquery()
    bound = pool_bound.c
    return (
        select(
            qe.id,
            qe.ticket_number,
            p.id,
            p.notify_channel,
            p.phone,
            p.push_token,
            p.language,
            ahead.label("ahead"),
        )
        .select_from(queue_engine.QUEUE_TABLE)
        .join(_PATIENTS, p.id == qe.patient_id)
        .outerjoin(pool_bound, true())
        .where(
            qe.department_id == department,
            qe.status == waiting,
            qe.approaching_notified_at.is_(None),
            qe.patient_id.is_not(None),
            p.notify_channel.in_(bindparam("p_channels", expanding=True)),
            or_(
                bound.sequence.is_(None),
                tuple_(*key)
                <= tuple_(bound.queue_band, bound.due_at, bound.arrived_at, bound.sequence),
            ),
        )
        .order_by(*key)
    )


async def check_approaching(ctx: Context, *, department_id: uuid.UUID) -> int:
    """Queue "your turn is near" for tickets of a department that just got close; return how many.

    A ticket's "ahead" is what :func:`iqms.core.queue.engine.waiting_ahead`
    counts: every waiting ticket before a pool ticket; the pool and that
    doctor's tickets before a ticket reserved for a doctor.
    """
    threshold = ctx.settings.notify_approaching_threshold
    channels = sorted(c for c in enabled_channels(ctx.settings) if c != NotifyChannel.NONE)
    if not channels:
        return 0
    params = {
        "p_department": department_id,
        "p_threshold": threshold,
        "p_limit": threshold + 1,
        "p_channels": channels,
    }
    rows = (await queue_engine.run(ctx.s, _approaching_query(), params)).all()
    told: list[uuid.UUID] = []
    for entry_id, number, *contact, ahead in rows:
        if ahead > threshold:
            continue
        patient = Contact(*contact)
        if recipient_for(patient, ctx.settings) is None:
            continue
        await enqueue_for_patient(
            ctx.s,
            ctx.settings,
            patient=patient,
            kind="approaching",
            fields={"ticket": number, "ahead": ahead},
            now=ctx.now(),
            queue_entry_id=entry_id,
            dedupe_key=f"approaching:{entry_id}",
        )
        told.append(entry_id)
    if told:
        await _mark_approaching(ctx, told)
    return len(told)


__all__ = [
    "MOVES_UP",
    "Contact",
    "IssuedFacts",
    "anyone_to_tell",
    "check_approaching",
    "is_near",
    "on_ticket_event",
]
