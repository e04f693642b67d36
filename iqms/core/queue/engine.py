"""Queue engine internals shared by the queue services, notifications, ETA, simulator and sync.

These are not service operations (no permission check of their own): call them
from inside an operation, with its session / context.

* :func:`next_ticket_number` - the next daily number of a department, atomic on
  both backends (one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``).
* :func:`reserve_block` - a block of numbers for a device that may go offline.
* :func:`create_entry` - THE way a ticket comes into existence (kiosk,
  reception, appointment check-in, transfer, offline sync): numbering, due
  time, audit record and the ``issued`` event.
* :func:`waiting_in_order` / :func:`waiting_ahead` / :func:`rank_key` - the
  queue order, computed by the database with one ``ORDER BY`` (index
  ``ix_queue_entries_waiting_order``), never sorted in Python.
* :func:`claim_next` - the atomic "call next" claim (``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL; the write lock taken up front on SQLite).
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import and_, func, literal, literal_column, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from iqms.core.clock import service_date as _service_date
from iqms.core.enums import TicketSource, TicketStatus, TriageCategory
from iqms.core.errors import Conflict, NotFound, ValidationError
from iqms.core.models import Department, Doctor, Patient, QueueEntry, TicketCounter, User
from iqms.core.queue import policy as queue_policy
from iqms.core.queue.events import TicketIssued, publish
from iqms.core.security.audit import log_action

if TYPE_CHECKING:
    from iqms.core.service import Context

MAX_BLOCK_SIZE = 500

#: the queue order: category 1 first, then due time, then arrival, then issue order
QUEUE_ORDER = (
    QueueEntry.queue_band,
    QueueEntry.due_at,
    QueueEntry.arrived_at,
    QueueEntry.sequence,
)


class TicketNumber(NamedTuple):
    sequence: int
    number: str


def format_ticket_number(prefix: str, sequence: int) -> str:
    """``A-042``: the department prefix and the 3-digit daily sequence (more digits past 999)."""
    return f"{prefix}-{sequence:03d}"


# ---- numbering ----------------------------------------------------------------------------------
async def _bump_counter(session: AsyncSession, department_id: uuid.UUID, day: date, by: int) -> int:
    """Add ``by`` to the day's counter (creating it) and return the new last number."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    base = insert(TicketCounter).values(
        id=uuid.uuid4(), department_id=department_id, service_date=day, last_number=by
    )
    stmt = base.on_conflict_do_update(
        index_elements=[TicketCounter.department_id, TicketCounter.service_date],
        set_={"last_number": TicketCounter.last_number + by},
    ).returning(TicketCounter.last_number)
    return int((await session.execute(stmt)).scalar_one())


async def next_ticket_number(
    session: AsyncSession, department: Department, service_date: date
) -> TicketNumber:
    """The next ticket of ``department`` on ``service_date`` (``A-001``, ``A-002``, ...)."""
    seq = await _bump_counter(session, department.id, service_date, 1)
    return TicketNumber(seq, format_ticket_number(department.ticket_prefix, seq))


async def reserve_block(
    session: AsyncSession, department_id: uuid.UUID, service_date: date, size: int
) -> tuple[int, int]:
    """Reserve ``size`` consecutive numbers of the day; returns (first, last), inclusive."""
    if not 1 <= size <= MAX_BLOCK_SIZE:
        raise ValidationError(f"block size must be 1-{MAX_BLOCK_SIZE}", field="size")
    last = await _bump_counter(session, department_id, service_date, size)
    return last - size + 1, last


# ---- issuing ------------------------------------------------------------------------------------
def new_status_code() -> str:
    """An unguessable code for a ticket's public status page (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


async def create_entry(
    ctx: Context,
    *,
    department: Department,
    source: TicketSource,
    patient_id: uuid.UUID | None = None,
    doctor_id: uuid.UUID | None = None,
    triage_category: int = TriageCategory.STANDARD,
    arrived_at: datetime | None = None,
    due_at: datetime | None = None,
    appointment_id: uuid.UUID | None = None,
    appointment_at: datetime | None = None,
    sequence: int | None = None,
    service_day: date | None = None,
    client_op_id: uuid.UUID | None = None,
    origin_device_id: uuid.UUID | None = None,
    transferred_from_id: uuid.UUID | None = None,
    extra: dict[str, Any] | None = None,
    status_code: str | None = None,
    audit_action: str | None = "ticket.issued",
    audit_details: dict[str, Any] | None = None,
) -> QueueEntry:
    """Insert a waiting ticket, audit it and publish ``issued``; returns the flushed entry.

    ``arrived_at`` defaults to now (offline sync passes the original time);
    ``due_at`` defaults to the policy (appointment time, or arrival + target);
    ``sequence`` is a pre-reserved number (offline block) instead of the next
    one; ``service_day`` defaults to the clinic's day of ``arrived_at``;
    ``status_code`` (the ticket's public status page) is generated unless given.
    Raises :class:`Conflict` if the number or ``client_op_id`` is already used.
    """
    session = ctx.s
    category = queue_policy.parse_category(triage_category)
    arrived = arrived_at or ctx.now()
    if arrived.tzinfo is None:
        raise ValidationError("arrival time must include a time zone", field="arrived_at")
    day = service_day or _service_date(arrived, ctx.settings.tz)
    if sequence is None:
        seq, number = await next_ticket_number(session, department, day)
    else:
        if sequence < 1:
            raise ValidationError("ticket sequence must be 1 or more", field="sequence")
        seq, number = sequence, format_ticket_number(department.ticket_prefix, sequence)
    due = due_at or queue_policy.due_time(
        arrived, category, department.triage_targets, appointment_at=appointment_at
    )
    entry = QueueEntry(
        id=uuid.uuid4(),
        service_date=day,
        department_id=department.id,
        sequence=seq,
        ticket_number=number,
        patient_id=patient_id,
        doctor_id=doctor_id,
        appointment_id=appointment_id,
        triage_category=int(category),
        queue_band=queue_policy.queue_band(category),
        source=source,
        status=TicketStatus.WAITING,
        arrived_at=arrived,
        due_at=due,
        recall_count=0,
        origin_device_id=origin_device_id,
        client_op_id=client_op_id,
        transferred_from_id=transferred_from_id,
        extra=extra,
        status_code=status_code or new_status_code(),
    )
    try:
        async with session.begin_nested():
            session.add(entry)
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"ticket {number} of {department.code} on {day.isoformat()} already exists"
            if client_op_id is None
            else f"ticket {number} (or operation {client_op_id}) already exists",
            ticket=number,
        ) from None
    if audit_action:
        details: dict[str, Any] = {
            "ticket": number,
            "department": department.code,
            "category": int(category),
            "source": source.value,
            "patient_id": str(patient_id) if patient_id else None,
            "doctor_id": str(doctor_id) if doctor_id else None,
        }
        details.update(audit_details or {})
        await log_action(
            ctx, action=audit_action, target=("queue_entry", entry.id), details=details
        )
    await publish(
        ctx,
        TicketIssued.of(entry, occurred_at=ctx.now(), source=source.value, due_at=entry.due_at),
    )
    return entry


# ---- ordering -----------------------------------------------------------------------------------
#: ``status = 'waiting'`` written literally (not as a bound parameter), so that both
#: databases can match it to the partial indexes' ``WHERE status = 'waiting'``.
IS_WAITING: ColumnElement[bool] = QueueEntry.status == literal_column("'waiting'")


def _scope(department_id: uuid.UUID, doctor_id: uuid.UUID | None) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [QueueEntry.department_id == department_id, IS_WAITING]
    if doctor_id is not None:
        conditions.append(or_(QueueEntry.doctor_id == doctor_id, QueueEntry.doctor_id.is_(None)))
    return and_(*conditions)


def rank_key(entry: QueueEntry) -> tuple[int, datetime, datetime, int]:
    """The sort key of a ticket in the queue order (for comparisons, not for sorting lists)."""
    return (entry.queue_band, entry.due_at, entry.arrived_at, entry.sequence)


def ahead_of(entry: QueueEntry) -> ColumnElement[bool]:
    """SQL condition: a ticket comes before ``entry`` in the queue order.

    Written as row-value comparisons so the database can read the range from
    the queue-order index (band, due time, arrival) instead of testing every
    waiting ticket; the sequence breaks exact ties.
    """
    qe = QueueEntry
    key = (qe.queue_band, qe.due_at, qe.arrived_at)
    values = (entry.queue_band, entry.due_at, entry.arrived_at)
    mine = tuple_(*(literal(v, type_=c.type) for v, c in zip(values, key, strict=True)))
    full_key = tuple_(*key, qe.sequence)
    full_mine = tuple_(*mine.clauses, literal(entry.sequence, type_=qe.sequence.type))
    return and_(tuple_(*key) <= mine, full_key < full_mine)


async def waiting_in_order(
    session: AsyncSession,
    *,
    department_id: uuid.UUID,
    doctor_id: uuid.UUID | None = None,
    limit: int | None = None,
) -> list[QueueEntry]:
    """Waiting tickets of a department in queue order.

    With ``doctor_id``: the tickets that doctor would call, i.e. those reserved
    for them plus the department pool (tickets reserved for other doctors are
    left out).
    """
    stmt = select(QueueEntry).where(_scope(department_id, doctor_id)).order_by(*QUEUE_ORDER)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await session.execute(stmt)).scalars().all())


async def waiting_ahead(session: AsyncSession, entry: QueueEntry) -> int:
    """How many waiting tickets will be called before ``entry`` (0 = it is next).

    A ticket reserved for a doctor counts that doctor's tickets and the pool
    ahead of it; a pool ticket counts every waiting ticket of its department
    ahead of it.
    """
    stmt = (
        select(func.count())
        .select_from(QueueEntry)
        .where(
            _scope(entry.department_id, entry.doctor_id),
            QueueEntry.id != entry.id,
            ahead_of(entry),
        )
    )
    return int((await session.execute(stmt)).scalar_one())


# ---- claiming -----------------------------------------------------------------------------------
async def claim_next(
    ctx: Context,
    *,
    department_id: uuid.UUID,
    doctor_id: uuid.UUID,
    room: str,
    called_by_id: uuid.UUID | None,
) -> QueueEntry | None:
    """Atomically take the best waiting ticket a doctor may call and mark it called.

    PostgreSQL: one ``UPDATE ... WHERE id = (SELECT ... ORDER BY <queue order>
    LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id``: two callers never get the
    same row and neither waits for the other. SQLite: the operation's write
    transaction already holds the database write lock, so the select and the
    update cannot interleave with another caller. Returns None if nobody waits.
    """
    session = ctx.s
    now = ctx.now()
    values = {
        "status": TicketStatus.CALLED,
        "called_at": now,
        "called_by_id": called_by_id,
        "called_doctor_id": doctor_id,
        "called_room": room,
        "updated_at": now,
    }
    pick = (
        select(QueueEntry.id)
        .where(_scope(department_id, doctor_id))
        .order_by(*QUEUE_ORDER)
        .limit(1)
    )
    if ctx.db.is_postgres:
        pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(QueueEntry)
            .where(QueueEntry.id == pick.scalar_subquery())
            .values(**values)
            .returning(QueueEntry)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return (await session.execute(stmt)).scalar_one_or_none()
    entry_id = (await session.execute(pick)).scalar_one_or_none()
    if entry_id is None:
        return None
    stmt = (
        update(QueueEntry)
        .where(QueueEntry.id == entry_id, QueueEntry.status == TicketStatus.WAITING)
        .values(**values)
        .returning(QueueEntry)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


# ---- finding things by what people type -------------------------------------------------------
_TICKET_RE = re.compile(r"^\s*([A-Za-z]{1,3})\s*-?\s*0*(\d{1,6})\s*$")


def _as_uuid(ref: object) -> uuid.UUID | None:
    if isinstance(ref, uuid.UUID):
        return ref
    try:
        return uuid.UUID(str(ref).strip())
    except ValueError:
        return None


async def find_department(
    session: AsyncSession, ref: uuid.UUID | str, *, for_update: bool = False
) -> Department:
    """A department by id or code (``GEN``, case-insensitive); NotFound otherwise."""
    ref_id = _as_uuid(ref)
    stmt = select(Department)
    if ref_id is not None:
        stmt = stmt.where(Department.id == ref_id)
    else:
        stmt = stmt.where(Department.code == str(ref).strip().upper())
    if for_update:
        stmt = stmt.with_for_update()
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no department {ref!s}", field="department")
    return found


async def find_doctor(
    session: AsyncSession, ref: uuid.UUID | str, *, for_update: bool = False
) -> Doctor:
    """A doctor by doctor id, user id or username; NotFound otherwise."""
    ref_id = _as_uuid(ref)
    stmt = select(Doctor).join(User, User.id == Doctor.user_id)
    if ref_id is not None:
        stmt = stmt.where(or_(Doctor.id == ref_id, Doctor.user_id == ref_id))
    else:
        stmt = stmt.where(User.username == str(ref).strip().lower())
    if for_update:
        stmt = stmt.with_for_update(of=Doctor)
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no doctor {ref!s}", field="doctor")
    return found


async def find_patient(session: AsyncSession, ref: uuid.UUID | str) -> Patient:
    """A patient by id or MRN; NotFound otherwise."""
    ref_id = _as_uuid(ref)
    stmt = select(Patient)
    if ref_id is not None:
        stmt = stmt.where(Patient.id == ref_id)
    else:
        stmt = stmt.where(Patient.mrn == str(ref).strip().upper())
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no patient {ref!s}", field="patient")
    return found


def normalise_ticket_number(text_: str) -> str | None:
    """``a42`` / ``A-042`` / ``A 42`` -> ``A-042``; None if it does not look like a ticket."""
    match = _TICKET_RE.match(text_)
    if not match:
        return None
    return format_ticket_number(match.group(1).upper(), int(match.group(2)))


async def find_ticket(
    session: AsyncSession,
    ref: uuid.UUID | str,
    *,
    service_day: date | None = None,
    for_update: bool = False,
) -> QueueEntry:
    """A ticket by id, or by number (``A-042``) on ``service_day``; NotFound otherwise.

    A number is looked up on the given day; without one, the most recent ticket
    with that number.
    """
    ref_id = _as_uuid(ref)
    stmt = select(QueueEntry)
    if ref_id is not None:
        stmt = stmt.where(QueueEntry.id == ref_id)
    else:
        number = normalise_ticket_number(str(ref))
        if number is None:
            raise ValidationError(
                f"{ref!s} is not a ticket number (like A-042) or ticket id", field="ticket"
            )
        stmt = stmt.where(QueueEntry.ticket_number == number)
        if service_day is not None:
            stmt = stmt.where(QueueEntry.service_date == service_day)
        stmt = stmt.order_by(QueueEntry.service_date.desc(), QueueEntry.arrived_at.desc()).limit(1)
    if for_update:
        stmt = stmt.with_for_update(of=QueueEntry)
    found = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    if found is None:
        when = f" today ({service_day.isoformat()})" if service_day and ref_id is None else ""
        raise NotFound(f"no ticket {ref!s}{when}", field="ticket")
    return found


__all__ = [
    "IS_WAITING",
    "QUEUE_ORDER",
    "TicketNumber",
    "ahead_of",
    "claim_next",
    "create_entry",
    "find_department",
    "find_doctor",
    "find_patient",
    "find_ticket",
    "format_ticket_number",
    "new_status_code",
    "next_ticket_number",
    "normalise_ticket_number",
    "rank_key",
    "reserve_block",
    "waiting_ahead",
    "waiting_in_order",
]
