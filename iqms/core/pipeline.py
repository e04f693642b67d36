"""What follows a change to a ticket: the steps every queue operation runs, in order.

An operation changes a ticket with the queue engine (issue, claim, a status
update) and then calls :func:`ticket_changed` (or :func:`issue_ticket` to make
a new ticket), which runs, in the operation's transaction::

    notify    outbox rows for the patient, and "your turn is near" for tickets
              that moved up (iqms.core.notify.triggers)
    publish   the live event, delivered to subscribers only on commit
              (iqms.core.queue.events)
    estimate  the department's cached estimate inputs kept current (in process;
              read again if the transaction does not commit)
    audit     the hash-chained audit record, last: appending to the chain
              serialises writers until the commit (iqms.core.security.audit)

All of it commits or rolls back with the change. The queue engine and the
events module know nothing of notifications or audit; this module is where
they meet.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Unpack

from iqms.core.enums import TicketSource
from iqms.core.models import Department, QueueEntry
from iqms.core.notify import triggers
from iqms.core.notify.providers import enabled_channels
from iqms.core.queue import engine as queue_engine
from iqms.core.queue import eta
from iqms.core.queue.events import (
    TicketCalled,
    TicketCancelled,
    TicketEvent,
    TicketHeld,
    TicketIssued,
    TicketNoShow,
    TicketRecalled,
    TicketReturned,
    TicketServed,
    TicketStarted,
    TicketTransferred,
    publish,
)
from iqms.core.security.audit import log_action
from iqms.core.service import Context


@dataclass(frozen=True)
class Audit:
    """The audit record of a ticket change: its action and details."""

    action: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Issued:
    """A new ticket, with what was worked out while issuing it."""

    entry: QueueEntry
    ahead: eta.Ahead | None  # waiting tickets ahead, by lane (None if not counted)
    estimate: eta.WaitEstimate | None


async def ticket_changed(
    ctx: Context,
    event: TicketEvent,
    *,
    audit: Audit | None,
    entry: QueueEntry | None = None,
    issued: triggers.IssuedFacts | None = None,
    approaching: bool = True,
) -> None:
    """The steps after a ticket changed (see the module docstring), in order.

    ``entry`` is the changed ticket as it is now; with it the estimate inputs
    follow the change in place, without it they are read again.
    ``approaching=False`` skips the "your turn is near" check, for a caller
    that read with the change that nobody in the department is still to be
    told (:func:`iqms.core.notify.triggers.anyone_to_tell`).
    """
    await ctx.s.flush()  # the change is written before the steps read around it
    await triggers.on_ticket_event(ctx, event, issued=issued, approaching=approaching)
    await publish(ctx, event)
    _keep_estimates_current(ctx, event, entry)
    if audit is not None:
        await log_action(
            ctx, action=audit.action, target=("queue_entry", event.entry_id), details=audit.details
        )


def _keep_estimates_current(ctx: Context, event: TicketEvent, entry: QueueEntry | None) -> None:
    """Update the department's cached estimate inputs with what ``event`` changed.

    Calls, finished consultations and tickets leaving a doctor are applied in
    place; a change they cannot follow (a category change, an undo, or an
    event without its ticket) drops them, so the next estimate reads afresh.
    """
    department_id = event.department_id
    if isinstance(event, (TicketIssued, TicketRecalled, TicketStarted, TicketReturned)):
        return  # issue_ticket noted the arrival; the rest leave who is busy as it was
    _forget_if_rolled_back(ctx, department_id)
    if entry is None or entry.id != event.entry_id:
        eta.note_change(ctx.db, department_id)
    elif isinstance(event, TicketCalled):
        if entry.called_doctor_id is None or entry.called_at is None:
            eta.note_change(ctx.db, department_id)
        else:
            eta.note_change(
                ctx.db, department_id, busy=(entry.id, entry.called_doctor_id, entry.called_at)
            )
    elif isinstance(event, TicketServed):
        sample = eta.service_sample(
            entry.called_doctor_id, entry.called_at, entry.started_at, entry.finished_at
        )
        eta.note_change(ctx.db, department_id, free=entry.id, served=sample)
    elif isinstance(event, (TicketNoShow, TicketHeld, TicketCancelled, TicketTransferred)):
        eta.note_change(ctx.db, department_id, free=entry.id)
    else:
        eta.note_change(ctx.db, department_id)


def _forget_if_rolled_back(ctx: Context, department_id: uuid.UUID) -> None:
    """Kept inputs follow a change before it commits: if it does not, read them again."""
    ctx.after_rollback.append(lambda: eta.note_change(ctx.db, department_id))


async def issue_ticket(
    ctx: Context,
    *,
    department: Department,
    source: TicketSource,
    note: str | None = None,
    audit_action: str | None = "ticket.issued",
    audit_details: Mapping[str, Any] | None = None,
    keep_estimate: bool = False,
    **ticket: Unpack[queue_engine.TicketFields],
) -> Issued:
    """Make a waiting ticket and run the steps after it; every new ticket comes through here.

    Kiosk and reception tickets, appointment check-ins, transfers and offline
    sync. The tickets ahead are counted once, before the insert, and serve
    the estimate (written with the ticket when ``keep_estimate``), the "near
    the front" mark and the patient's message. ``ticket`` holds the new
    ticket's fields (:class:`iqms.core.queue.engine.TicketFields`). Raises
    :class:`~iqms.core.errors.Conflict` if the number (or ``client_op_id``)
    is taken.
    """
    await ctx.s.flush()  # e.g. a patient registered in the same transaction
    entry = await queue_engine.new_entry(ctx, department=department, source=source, **ticket)
    entry.note = note  # e.g. reception's note, following a transferred patient
    notifying = bool(enabled_channels(ctx.settings))
    ahead: eta.Ahead | None = None
    estimate: eta.WaitEstimate | None = None
    near = False
    if keep_estimate or notifying:
        ahead = eta.Ahead.of_lanes(
            await queue_engine.lanes_ahead(
                ctx.s, department_id=department.id, key=queue_engine.rank_key(entry)
            )
        )
        if keep_estimate or entry.patient_id is not None:
            state = await eta.department_state(ctx, department.id, department=department)
            estimate = eta.estimate_for(state, entry, ahead, now=ctx.now())
    if keep_estimate and estimate is not None:
        entry.estimate_at_issue_minutes = estimate.p50_minutes
    if notifying and ahead is not None:
        near = triggers.is_near(ctx.settings, ahead, entry.doctor_id)
        if near:
            # Already close to the front: "your turn is near" would not be news.
            entry.approaching_notified_at = ctx.now()
    await queue_engine.insert_entry(ctx.s, entry, department_code=department.code)
    eta.note_change(ctx.db, department.id, arrival=(entry.triage_category, entry.arrived_at))
    _forget_if_rolled_back(ctx, department.id)
    audit = None
    if audit_action:
        details: dict[str, Any] = {
            "ticket": entry.ticket_number,
            "department": department.code,
            "category": entry.triage_category,
            "source": source.value,
            "patient_id": str(entry.patient_id) if entry.patient_id else None,
            "doctor_id": str(entry.doctor_id) if entry.doctor_id else None,
        }
        details.update(audit_details or {})
        audit = Audit(audit_action, details)
    await ticket_changed(
        ctx,
        TicketIssued.of(entry, occurred_at=ctx.now(), source=source.value, due_at=entry.due_at),
        audit=audit,
        entry=entry,
        issued=triggers.IssuedFacts(
            department_name=department.name, estimate=estimate, near=near, counted=ahead is not None
        ),
    )
    return Issued(entry, ahead, estimate)


__all__ = ["Audit", "Issued", "issue_ticket", "ticket_changed"]
