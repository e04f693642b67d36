"""Exports: queue history and audit records for a date range, streamed in batches.

Rows come from a server-side cursor (PostgreSQL) or a stepping cursor
(SQLite) through ``AsyncSession.stream`` with ``yield_per``, and are handed to
the caller's ``on_rows`` callback a batch at a time, so memory stays flat
however long the range. Writing them (CSV, JSON lines, a file, a progress bar)
is the front end's business. The export is audited in the same transaction
once every row was handed over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import aliased

from iqms.core.errors import NotFound, ValidationError
from iqms.core.models import AuditRecord, Department, Doctor, Patient, QueueEntry, User
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission
from iqms.core.service import Context, operation

DEFAULT_BATCH = 2000
MAX_BATCH = 50_000

RowBatch = list[dict[str, Any]]

QUEUE_COLUMNS = (
    "id",
    "service_date",
    "department",
    "ticket_number",
    "sequence",
    "patient_mrn",
    "triage_category",
    "source",
    "status",
    "arrived_at",
    "due_at",
    "called_at",
    "started_at",
    "finished_at",
    "wait_minutes",
    "service_minutes",
    "assigned_doctor",
    "called_by_doctor",
    "called_room",
    "recall_count",
    "transferred_from_id",
)

AUDIT_COLUMNS = (
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "role",
    "action",
    "target_type",
    "target_id",
    "details",
    "prev_hash",
    "hash",
)


@operation(Permission.EXPORT_RUN)
async def export_queue_history(
    ctx: Context,
    *,
    date_from: date,
    date_to: date,
    on_rows: Callable[[RowBatch], None],
    on_start: Callable[[int], None] | None = None,
    department: str | None = None,
    destination: str | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> int:
    """Stream the tickets of a range of service days (columns: ``QUEUE_COLUMNS``)."""
    _check(date_from, date_to, batch_size)
    where: list[Any] = [QueueEntry.service_date >= date_from, QueueEntry.service_date <= date_to]
    dept_code = None
    if department:
        dept = (
            await ctx.s.execute(
                select(Department).where(func.upper(Department.code) == department.strip().upper())
            )
        ).scalar_one_or_none()
        if dept is None:
            raise NotFound(f"no department with code {department!r}")
        where.append(QueueEntry.department_id == dept.id)
        dept_code = dept.code

    assigned_doc, called_doc = aliased(Doctor), aliased(Doctor)
    assigned_user, called_user = aliased(User), aliased(User)
    qe = QueueEntry
    stmt = (
        select(
            qe.id,
            qe.service_date,
            Department.code.label("department"),
            qe.ticket_number,
            qe.sequence,
            Patient.mrn.label("patient_mrn"),
            qe.triage_category,
            qe.source,
            qe.status,
            qe.arrived_at,
            qe.due_at,
            qe.called_at,
            qe.started_at,
            qe.finished_at,
            assigned_user.username.label("assigned_doctor"),
            called_user.username.label("called_by_doctor"),
            qe.called_room,
            qe.recall_count,
            qe.transferred_from_id,
        )
        .join(Department, Department.id == qe.department_id)
        .outerjoin(Patient, Patient.id == qe.patient_id)
        .outerjoin(assigned_doc, assigned_doc.id == qe.doctor_id)
        .outerjoin(assigned_user, assigned_user.id == assigned_doc.user_id)
        .outerjoin(called_doc, called_doc.id == qe.called_doctor_id)
        .outerjoin(called_user, called_user.id == called_doc.user_id)
        .where(*where)
        .order_by(qe.arrived_at, qe.id)
    )
    total = await _count(ctx, select(func.count()).select_from(qe).where(*where))
    if on_start is not None:
        on_start(total)
    sent = await _stream(ctx, stmt, batch_size, _queue_row, on_rows)
    await log_action(
        ctx,
        action="export.queue_history",
        details={
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
            "department": dept_code,
            "rows": sent,
            "destination": destination,
        },
    )
    return sent


@operation(Permission.EXPORT_RUN)
async def export_audit_records(
    ctx: Context,
    *,
    date_from: date,
    date_to: date,
    on_rows: Callable[[RowBatch], None],
    on_start: Callable[[int], None] | None = None,
    destination: str | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> int:
    """Stream the audit records of a range of clinic days, in chain order (``AUDIT_COLUMNS``)."""
    _check(date_from, date_to, batch_size)
    tz = ctx.settings.tz
    start = datetime.combine(date_from, time(), tz).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time(), tz).astimezone(UTC)
    where = [AuditRecord.at >= start, AuditRecord.at < end]
    stmt = select(*(getattr(AuditRecord, c) for c in AUDIT_COLUMNS)).where(*where)
    total = await _count(ctx, select(func.count()).select_from(AuditRecord).where(*where))
    if on_start is not None:
        on_start(total)
    sent = await _stream(ctx, stmt.order_by(AuditRecord.seq), batch_size, _audit_row, on_rows)
    await log_action(
        ctx,
        action="export.audit_records",
        details={
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
            "rows": sent,
            "destination": destination,
        },
    )
    return sent


def _check(date_from: date, date_to: date, batch_size: int) -> None:
    if date_from > date_to:
        raise ValidationError(
            f"the start date {date_from.isoformat()} is after the end date {date_to.isoformat()}",
            field="date_from",
        )
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValidationError(f"batch size must be 1-{MAX_BATCH}", field="batch_size")


async def _count(ctx: Context, stmt: Select) -> int:
    return int((await ctx.s.execute(stmt)).scalar_one())


async def _stream(
    ctx: Context,
    stmt: Select,
    batch_size: int,
    convert: Callable[[Any], dict[str, Any]],
    on_rows: Callable[[RowBatch], None],
) -> int:
    sent = 0
    result = await ctx.s.stream(stmt.execution_options(yield_per=batch_size))
    async for rows in result.partitions(batch_size):
        batch = [convert(r) for r in rows]
        on_rows(batch)
        sent += len(batch)
    return sent


def _iso(value: datetime | None) -> str | None:
    # Stored times come back as aware UTC datetimes (see UTCDateTime).
    return value.isoformat() if value is not None else None


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60, 2)


def _queue_row(r: Any) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "service_date": r.service_date.isoformat(),
        "department": r.department,
        "ticket_number": r.ticket_number,
        "sequence": r.sequence,
        "patient_mrn": r.patient_mrn,
        "triage_category": r.triage_category,
        "source": str(r.source.value),
        "status": str(r.status.value),
        "arrived_at": _iso(r.arrived_at),
        "due_at": _iso(r.due_at),
        "called_at": _iso(r.called_at),
        "started_at": _iso(r.started_at),
        "finished_at": _iso(r.finished_at),
        "wait_minutes": _minutes(r.arrived_at, r.called_at),
        "service_minutes": _minutes(r.started_at or r.called_at, r.finished_at)
        if r.finished_at
        else None,
        "assigned_doctor": r.assigned_doctor,
        "called_by_doctor": r.called_by_doctor,
        "called_room": r.called_room,
        "recall_count": r.recall_count,
        "transferred_from_id": str(r.transferred_from_id) if r.transferred_from_id else None,
    }


def _audit_row(r: Any) -> dict[str, Any]:
    return {
        "seq": int(r.seq),
        "at": _iso(r.at),
        "actor_id": str(r.actor_id) if r.actor_id else None,
        "actor_name": r.actor_name,
        "role": r.role,
        "action": r.action,
        "target_type": r.target_type,
        "target_id": r.target_id,
        "details": r.details,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }
