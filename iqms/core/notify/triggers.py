"""Which queue events produce which patient messages (outbox rows, same transaction).

* issued: ticket, department and estimated wait. If few tickets are ahead
  already, the message says so, and no separate "your turn is near" follows.
* approaching: once, when the number of tickets ahead of a waiting ticket
  first drops to ``notify_approaching_threshold`` (``approaching_notified_at``
  records it). Checked for the department after every event that can move
  its queue.
* called / recalled (room), no-show, transferred (new ticket and department).

Only patients who opted in and can be reached get anything (see
:func:`iqms.core.notify.outbox.recipient_for`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from iqms.core.enums import NotifyChannel, TicketSource, TicketStatus
from iqms.core.models import Department, Doctor, Patient, QueueEntry
from iqms.core.notify.outbox import enqueue_for_patient, recipient_for
from iqms.core.notify.providers import enabled_channels
from iqms.core.notify.templates import wait_text

if TYPE_CHECKING:
    from iqms.core.service import Context

# How many waiting tickets of a department are looked at for "your turn is near".
APPROACHING_SCAN_LIMIT = 500


def _stamp(when: datetime) -> str:
    return str(int(when.timestamp() * 1_000_000))


async def on_queue_event(ctx: Context, event: Any) -> None:
    """Write the outbox rows a queue event calls for, inside the event's transaction."""
    entry_id = getattr(event, "entry_id", None)
    department_id = getattr(event, "department_id", None)
    if entry_id is None or department_id is None or not enabled_channels(ctx.settings):
        return
    kind = getattr(event, "kind", "")
    if kind == "issued":
        await _issued(ctx, event)
    elif kind in ("called", "recalled"):
        await _called(ctx, event)
    elif kind == "no_show":
        await _simple(
            ctx, event, "no_show", dedupe=f"no_show:{entry_id}:{_stamp(event.occurred_at)}"
        )
    elif kind == "transferred":
        await _transferred(ctx, event)
    await check_approaching(ctx, department_id=department_id)


async def _patient(ctx: Context, patient_id: uuid.UUID | None) -> Patient | None:
    if patient_id is None:
        return None
    patient = await ctx.s.get(Patient, patient_id)
    if patient is None or recipient_for(patient, ctx.settings) is None:
        return None
    return patient


async def _department_name(ctx: Context, department_id: uuid.UUID) -> str:
    department = await ctx.s.get(Department, department_id)
    return department.name if department is not None else ""


async def _issued(ctx: Context, event: Any) -> None:
    session = ctx.s
    entry = await session.get(QueueEntry, event.entry_id)
    if entry is None or entry.status != TicketStatus.WAITING:
        return
    from iqms.core.queue.engine import waiting_ahead

    ahead = await waiting_ahead(session, entry)
    near = ahead <= ctx.settings.notify_approaching_threshold
    if near:
        # Already close to the front: "your turn is near" would not be news.
        await _mark_approaching(ctx, entry.id)
    if getattr(event, "source", None) == TicketSource.TRANSFER.value:
        return  # the "transferred" message tells the patient about the new ticket
    patient = await _patient(ctx, event.patient_id)
    if patient is None:
        return
    fields: dict[str, Any] = {
        "ticket": entry.ticket_number,
        "department": await _department_name(ctx, entry.department_id),
    }
    from iqms.core.queue.eta import estimate_for_entry

    estimate = await estimate_for_entry(session, entry, now=ctx.now(), settings=ctx.settings)
    fields["wait"] = wait_text(estimate.p50_minutes, estimate.p90_minutes)
    if near:
        fields["near"] = True
    await enqueue_for_patient(
        session,
        ctx.settings,
        patient=patient,
        kind="issued",
        fields=fields,
        now=ctx.now(),
        queue_entry_id=entry.id,
        dedupe_key=f"issued:{entry.id}",
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
    patient = await _patient(ctx, event.patient_id)
    if patient is None:
        return
    if event.kind == "recalled":
        dedupe = f"recalled:{event.entry_id}:{getattr(event, 'recall_count', 0)}"
    else:
        dedupe = f"called:{event.entry_id}:{_stamp(event.occurred_at)}"
    await enqueue_for_patient(
        ctx.s,
        ctx.settings,
        patient=patient,
        kind=event.kind,
        fields={"ticket": event.ticket_number, "room": await _room(ctx, event)},
        now=ctx.now(),
        queue_entry_id=event.entry_id,
        dedupe_key=dedupe,
    )


async def _simple(ctx: Context, event: Any, kind: str, *, dedupe: str) -> None:
    patient = await _patient(ctx, event.patient_id)
    if patient is None:
        return
    await enqueue_for_patient(
        ctx.s,
        ctx.settings,
        patient=patient,
        kind=kind,
        fields={"ticket": event.ticket_number},
        now=ctx.now(),
        queue_entry_id=event.entry_id,
        dedupe_key=dedupe,
    )


async def _transferred(ctx: Context, event: Any) -> None:
    patient = await _patient(ctx, event.patient_id)
    if patient is not None:
        await enqueue_for_patient(
            ctx.s,
            ctx.settings,
            patient=patient,
            kind="transferred",
            fields={
                "ticket": event.ticket_number,
                "department": await _department_name(ctx, event.target_department_id),
                "new_ticket": event.new_ticket_number,
            },
            now=ctx.now(),
            queue_entry_id=event.entry_id,
            dedupe_key=f"transferred:{event.entry_id}",
        )
    if event.target_department_id != event.department_id:
        await check_approaching(ctx, department_id=event.target_department_id)


async def _mark_approaching(ctx: Context, entry_id: uuid.UUID) -> None:
    await ctx.s.execute(
        update(QueueEntry)
        .where(QueueEntry.id == entry_id, QueueEntry.approaching_notified_at.is_(None))
        .values(approaching_notified_at=ctx.now())
        .execution_options(synchronize_session="fetch")
    )


async def check_approaching(ctx: Context, *, department_id: uuid.UUID) -> int:
    """Queue "your turn is near" for tickets of a department that just got close; return how many.

    A ticket's "ahead" is what :func:`iqms.core.queue.engine.waiting_ahead`
    counts: every waiting ticket before a pool ticket; the pool and that
    doctor's tickets before a ticket reserved for a doctor.
    """
    from iqms.core.queue.engine import QUEUE_ORDER

    session = ctx.s
    threshold = ctx.settings.notify_approaching_threshold
    rows = (
        await session.execute(
            select(
                QueueEntry.id,
                QueueEntry.doctor_id,
                QueueEntry.patient_id,
                QueueEntry.ticket_number,
                QueueEntry.approaching_notified_at,
                Patient.notify_channel,
            )
            .outerjoin(Patient, Patient.id == QueueEntry.patient_id)
            .where(
                QueueEntry.department_id == department_id,
                QueueEntry.status == TicketStatus.WAITING,
            )
            .order_by(*QUEUE_ORDER)
            .limit(APPROACHING_SCAN_LIMIT)
        )
    ).all()
    channels = enabled_channels(ctx.settings)
    pool_before = 0
    reserved_before: dict[uuid.UUID, int] = {}
    sent = 0
    for index, row in enumerate(rows):
        if pool_before > threshold:
            break  # nobody further back can have few enough ahead
        if row.doctor_id is None:
            ahead = index
        else:
            ahead = pool_before + reserved_before.get(row.doctor_id, 0)
        if (
            ahead <= threshold
            and row.approaching_notified_at is None
            and row.patient_id is not None
            and row.notify_channel in channels
            and row.notify_channel != NotifyChannel.NONE
        ):
            patient = await _patient(ctx, row.patient_id)
            if patient is not None:
                await enqueue_for_patient(
                    session,
                    ctx.settings,
                    patient=patient,
                    kind="approaching",
                    fields={"ticket": row.ticket_number, "ahead": ahead},
                    now=ctx.now(),
                    queue_entry_id=row.id,
                    dedupe_key=f"approaching:{row.id}",
                )
                await _mark_approaching(ctx, row.id)
                sent += 1
        if row.doctor_id is None:
            pool_before += 1
        else:
            reserved_before[row.doctor_id] = reserved_before.get(row.doctor_id, 0) + 1
    return sent
