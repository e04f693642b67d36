"""The waiting-room boards: the clinic-wide board view and the message line staff set on them.

A board reads one view, :func:`board`: the latest calls of the day (ticket
number and room, newest first; a recall counts as a new call) and, per
department, how many wait and the next numbers in calling order. It is built
from ticket numbers, rooms and department names only: no patient's name can
reach a board. A board reloads this view when a live event says something
changed, and after any gap in the events, so it never shows stale calls as
current.

The message line ("Dr Patel is running 20 minutes late") is set and cleared
by staff (:func:`set_message`, :func:`clear_message`): audited, and published
as a live event so every board shows it at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select

from iqms.core.enums import TicketStatus
from iqms.core.errors import ValidationError
from iqms.core.models import Department, DisplayMessage, QueueEntry
from iqms.core.models._display import CLINIC_SCOPE
from iqms.core.queue import engine as queue_engine
from iqms.core.queue.events import DisplayMessageChanged, publish
from iqms.core.schemas.clinic import parse
from iqms.core.schemas.display import (
    BoardCall,
    BoardDepartment,
    ClinicBoard,
    DisplayMessageOut,
    MessageIn,
)
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission
from iqms.core.service import Context, operation

BOARD_CALLS_DEFAULT = 5
BOARD_CALLS_MAX = 20
BOARD_NEXT_DEFAULT = 10
BOARD_NEXT_MAX = 30
#: calls that stay on the board: the patient was called, whatever happened next
SHOWN_CALL_STATUSES = (
    TicketStatus.CALLED,
    TicketStatus.IN_SERVICE,
    TicketStatus.SERVED,
    TicketStatus.NO_SHOW,
)


def _last_called_at(entry: QueueEntry) -> datetime:
    """The ticket's latest call: the first call, or the latest recall noted in its history."""
    assert entry.called_at is not None
    latest = entry.called_at
    for step in (entry.extra or {}).get("history", []):
        if step.get("step") != "recalled" or not step.get("at"):
            continue
        try:
            at = datetime.fromisoformat(step["at"])
        except (TypeError, ValueError):
            continue
        if at.tzinfo is not None and at > latest:
            latest = at
    return latest


async def _departments(ctx: Context, wanted: Sequence[uuid.UUID | str] | None) -> list[Department]:
    if not wanted:
        stmt = select(Department).where(Department.active).order_by(Department.code)
        return list((await ctx.s.execute(stmt)).scalars())
    found: list[Department] = []
    for ref in wanted:
        dept = await queue_engine.find_department(ctx.s, ref)
        if dept.id not in {d.id for d in found}:
            found.append(dept)
    return found


@operation(Permission.QUEUE_BOARD, readonly=True)
async def board(
    ctx: Context,
    *,
    departments: Sequence[uuid.UUID | str] | None = None,
    calls: int = BOARD_CALLS_DEFAULT,
    next_count: int = BOARD_NEXT_DEFAULT,
) -> ClinicBoard:
    """The waiting-room board of the clinic (or of some departments): calls, queues, message."""
    if not 1 <= calls <= BOARD_CALLS_MAX:
        raise ValidationError(f"calls must be 1-{BOARD_CALLS_MAX}", field="calls")
    if not 0 <= next_count <= BOARD_NEXT_MAX:
        raise ValidationError(f"next_count must be 0-{BOARD_NEXT_MAX}", field="next_count")
    depts = await _departments(ctx, departments)
    ids = [d.id for d in depts]
    codes = {d.id: d.code for d in depts}
    today = ctx.today()

    shown: dict[uuid.UUID, QueueEntry] = {}
    if ids:
        today_calls = (
            QueueEntry.department_id.in_(ids),
            QueueEntry.service_date == today,
            QueueEntry.called_at.is_not(None),
        )
        latest = select(QueueEntry).where(*today_calls, QueueEntry.status.in_(SHOWN_CALL_STATUSES))
        # The newest first calls, and every ticket still called (a recall makes an older
        # call the newest; there are only as many of those as rooms calling).
        for query in (
            latest.order_by(QueueEntry.called_at.desc()).limit(calls),
            select(QueueEntry).where(*today_calls, QueueEntry.status == TicketStatus.CALLED),
        ):
            for entry in (await ctx.s.execute(query)).scalars():
                shown[entry.id] = entry
    ordered = sorted(shown.values(), key=_last_called_at, reverse=True)[:calls]

    counts: dict[uuid.UUID, int] = {}
    if ids:
        rows = await ctx.s.execute(
            select(QueueEntry.department_id, func.count())
            .where(QueueEntry.department_id.in_(ids), QueueEntry.status == TicketStatus.WAITING)
            .group_by(QueueEntry.department_id)
        )
        counts = {dept_id: int(n) for dept_id, n in rows.all()}
    board_departments = []
    for dept in depts:
        upcoming = (
            await queue_engine.waiting_in_order(ctx.s, department_id=dept.id, limit=next_count)
            if next_count and counts.get(dept.id)
            else []
        )
        board_departments.append(
            BoardDepartment(
                id=dept.id,
                code=dept.code,
                name=dept.name,
                waiting_count=counts.get(dept.id, 0),
                next_numbers=[e.ticket_number for e in upcoming],
            )
        )
    message = await _message(ctx)
    return ClinicBoard(
        service_date=today,
        calls=[
            BoardCall(
                ticket_number=e.ticket_number,
                room=e.called_room,
                department_code=codes[e.department_id],
                called_at=_last_called_at(e),
                recall_count=e.recall_count,
                status=e.status,
            )
            for e in ordered
        ],
        departments=board_departments,
        message=message.text if message is not None else None,
        generated_at=ctx.now(),
    )


async def _message(ctx: Context) -> DisplayMessage | None:
    stmt = select(DisplayMessage).where(DisplayMessage.scope == CLINIC_SCOPE)
    return (await ctx.s.execute(stmt)).scalar_one_or_none()


def _message_out(row: DisplayMessage) -> DisplayMessageOut:
    return DisplayMessageOut(text=row.text, set_at=row.set_at, set_by=row.set_by)


@operation(Permission.QUEUE_BOARD, readonly=True)
async def get_message(ctx: Context) -> DisplayMessageOut | None:
    """The message line the boards show now (None: no message)."""
    row = await _message(ctx)
    return _message_out(row) if row is not None else None


@operation(Permission.DISPLAY_MESSAGE)
async def set_message(ctx: Context, *, text: str) -> DisplayMessageOut:
    """Show a message line on every waiting-room board (replaces the one shown)."""
    data = parse(MessageIn, text=text)
    now = ctx.now()
    row = await _message(ctx)
    previous = row.text if row is not None else None
    if row is None:
        row = DisplayMessage(id=uuid.uuid4(), scope=CLINIC_SCOPE, text=data.text, set_at=now,
                             set_by=ctx.principal.username[:64])  # fmt: skip
        ctx.s.add(row)
    else:
        row.text = data.text
        row.set_at = now
        row.set_by = ctx.principal.username[:64]
    await ctx.s.flush()
    await log_action(
        ctx,
        action="display.message_set",
        target=("display_message", row.id),
        details={"text": data.text, "previous": previous},
    )
    await publish(ctx, DisplayMessageChanged(text=data.text, occurred_at=now))
    return _message_out(row)


@operation(Permission.DISPLAY_MESSAGE)
async def clear_message(ctx: Context) -> bool:
    """Remove the message line from the boards; False if there was none."""
    row = await _message(ctx)
    if row is None:
        return False
    await ctx.s.execute(delete(DisplayMessage).where(DisplayMessage.id == row.id))
    await log_action(
        ctx,
        action="display.message_cleared",
        target=("display_message", row.id),
        details={"text": row.text},
    )
    await publish(ctx, DisplayMessageChanged(text=None, occurred_at=ctx.now()))
    return True


__all__ = [
    "BOARD_CALLS_DEFAULT",
    "BOARD_CALLS_MAX",
    "BOARD_NEXT_DEFAULT",
    "board",
    "clear_message",
    "get_message",
    "set_message",
]
