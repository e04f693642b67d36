"""Queue engine internals shared by the queue services, notifications, ETA, simulator and sync.

These are not service operations (no permission check of their own): call them
from inside an operation, with its session / context.

* :func:`next_ticket_number` - the next daily number of a department, atomic on
  both backends (one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``).
* :func:`reserve_block` - a block of numbers for a device that may go offline.
* :func:`new_entry` / :func:`insert_entry` - a ticket comes into existence:
  numbering and due time, then one ``INSERT``. The steps that follow (patient
  messages, live event, audit record) are :mod:`iqms.core.pipeline`'s.
* :func:`waiting_in_order` / :func:`waiting_ahead` / :func:`lanes_ahead` - the
  queue order, computed by the database with one ``ORDER BY`` (index
  ``ix_queue_entries_waiting_order``), never sorted in Python; places in line
  from the trigger-kept ``waiting_counts`` plus the ticket's own minute.
* :func:`claim_next` - the atomic "call next" claim (``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL; the write lock taken up front on SQLite), one
  statement on both.
"""

from __future__ import annotations

import functools
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, Unpack, cast

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from iqms.core.clock import service_date as _service_date
from iqms.core.enums import TicketSource, TicketStatus, TriageCategory
from iqms.core.errors import Conflict, NotFound, ValidationError
from iqms.core.models import (
    POOL_LANE,
    Department,
    Doctor,
    Patient,
    QueueEntry,
    TicketCounter,
    User,
    WaitingCount,
)
from iqms.core.queue import policy as queue_policy
from iqms.core.security.rbac import require_own_doctor

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


# Hot statements are built once, with bound parameters (building a SQLAlchemy statement
# costs more than running a small one), and run as Core statements on the session's
# connection, in its transaction (the ORM session adds nothing to them). Callers flush
# pending ORM changes first (see iqms.core.pipeline).
def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def run(session: AsyncSession, statement: Any, params: Any = None) -> Any:
    """Execute a Core ``statement`` on the session's connection; returns its result."""
    conn = await session.connection()
    return await conn.execute(statement, params)


def _insert_fn(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


# ---- numbering ----------------------------------------------------------------------------------
@functools.cache
def _bump_statement(dialect: str) -> Any:
    counter = cast(Table, TicketCounter.__table__)
    return (
        _insert_fn(dialect)(counter)
        .values(
            id=bindparam("p_id"),
            department_id=bindparam("p_department"),
            service_date=bindparam("p_day"),
            last_number=bindparam("p_by"),
        )
        .on_conflict_do_update(
            index_elements=[counter.c.department_id, counter.c.service_date],
            set_={"last_number": counter.c.last_number + bindparam("p_by")},
        )
        .returning(counter.c.last_number)
    )


async def _bump_counter(session: AsyncSession, department_id: uuid.UUID, day: date, by: int) -> int:
    """Add ``by`` to the day's counter (creating it) and return the new last number."""
    params = {"p_id": uuid.uuid4(), "p_department": department_id, "p_day": day, "p_by": by}
    return int((await run(session, _bump_statement(_dialect(session)), params)).scalar_one())


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


class TicketFields(TypedDict, total=False):
    """What a new ticket may be given besides its department and source (:func:`new_entry`).

    ``arrived_at`` defaults to now (offline sync passes the original time);
    ``due_at`` to the policy (appointment time, or arrival + target);
    ``sequence`` is a pre-reserved number (offline block) instead of the next
    one (taking the next one bumps the day's counter now); ``service_day``
    defaults to the clinic's day of ``arrived_at``; ``status_code`` (the
    ticket's public status page) is generated unless given.
    """

    patient_id: uuid.UUID | None
    doctor_id: uuid.UUID | None
    triage_category: int
    arrived_at: datetime | None
    due_at: datetime | None
    appointment_id: uuid.UUID | None
    appointment_at: datetime | None
    sequence: int | None
    service_day: date | None
    client_op_id: uuid.UUID | None
    origin_device_id: uuid.UUID | None
    transferred_from_id: uuid.UUID | None
    extra: dict[str, Any] | None
    status_code: str | None


async def new_entry(
    ctx: Context, *, department: Department, source: TicketSource, **fields: Unpack[TicketFields]
) -> QueueEntry:
    """A waiting ticket, numbered and due, not yet written (see :func:`insert_entry`)."""
    category = queue_policy.parse_category(fields.get("triage_category", TriageCategory.STANDARD))
    arrived = fields.get("arrived_at") or ctx.now()
    if arrived.tzinfo is None:
        raise ValidationError("arrival time must include a time zone", field="arrived_at")
    day = fields.get("service_day") or _service_date(arrived, ctx.settings.tz)
    sequence = fields.get("sequence")
    if sequence is None:
        seq, number = await next_ticket_number(ctx.s, department, day)
    else:
        if sequence < 1:
            raise ValidationError("ticket sequence must be 1 or more", field="sequence")
        seq, number = sequence, format_ticket_number(department.ticket_prefix, sequence)
    due = fields.get("due_at") or queue_policy.due_time(
        arrived, category, department.triage_targets, appointment_at=fields.get("appointment_at")
    )
    now = ctx.now()
    return QueueEntry(
        id=uuid.uuid4(),
        created_at=now,
        updated_at=now,
        service_date=day,
        department_id=department.id,
        sequence=seq,
        ticket_number=number,
        patient_id=fields.get("patient_id"),
        doctor_id=fields.get("doctor_id"),
        appointment_id=fields.get("appointment_id"),
        triage_category=int(category),
        queue_band=queue_policy.queue_band(category),
        source=source,
        status=TicketStatus.WAITING,
        arrived_at=arrived,
        due_at=due,
        recall_count=0,
        origin_device_id=fields.get("origin_device_id"),
        client_op_id=fields.get("client_op_id"),
        transferred_from_id=fields.get("transferred_from_id"),
        extra=fields.get("extra"),
        status_code=fields.get("status_code") or new_status_code(),
        estimate_at_issue_minutes=None,
        approaching_notified_at=None,
    )


#: ``queue_entries`` and ``waiting_counts`` for Core statements, and the columns a ticket
#: is written with
QUEUE_TABLE = cast(Table, QueueEntry.__table__)
WAITING_COUNTS = cast(Table, WaitingCount.__table__)
_INSERTED = tuple(c.key for c in QUEUE_TABLE.columns)


@functools.cache
def _insert_statement(dialect: str) -> Any:
    return _insert_fn(dialect)(QUEUE_TABLE).on_conflict_do_nothing().returning(QUEUE_TABLE.c.id)


async def insert_entry(session: AsyncSession, entry: QueueEntry, *, department_code: str) -> None:
    """Write a ticket made by :func:`new_entry` (one ``INSERT``).

    Raises :class:`Conflict` if its number (or ``client_op_id``) is already
    used; the transaction stays usable (``ON CONFLICT DO NOTHING``, no
    savepoint).
    """
    values = {key: getattr(entry, key) for key in _INSERTED}
    if (await run(session, _insert_statement(_dialect(session)), values)).first() is None:
        number, day = entry.ticket_number, entry.service_date
        raise Conflict(
            f"ticket {number} of {department_code} on {day.isoformat()} already exists"
            if entry.client_op_id is None
            else f"ticket {number} (or operation {entry.client_op_id}) already exists",
            ticket=number,
        )


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


def due_minute(moment: datetime) -> datetime:
    """The ``waiting_counts`` bucket of a due time: its minute, in UTC."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


@functools.cache
def _lanes_statement() -> Any:
    qe, wc = QUEUE_TABLE.c, WAITING_COUNTS.c
    department = bindparam("p_department", type_=wc.department_id.type)
    band = bindparam("p_band", type_=wc.queue_band.type)
    minute = bindparam("p_minute", type_=wc.due_minute.type)
    earlier_buckets = select(wc.lane_id.label("lane"), wc.waiting.label("n")).where(
        wc.department_id == department,
        or_(wc.queue_band < band, and_(wc.queue_band == band, wc.due_minute < minute)),
    )
    mine = tuple_(
        bindparam("p_due", type_=qe.due_at.type),
        bindparam("p_arrived", type_=qe.arrived_at.type),
        bindparam("p_sequence", type_=qe.sequence.type),
    )
    same_minute = select(
        func.coalesce(qe.doctor_id, literal(POOL_LANE, type_=qe.doctor_id.type)).label("lane"),
        literal(1).label("n"),
    ).where(
        qe.department_id == department,
        qe.status == literal_column("'waiting'"),
        qe.queue_band == band,
        qe.due_at >= minute,
        tuple_(qe.due_at, qe.arrived_at, qe.sequence) < mine,
    )
    both = union_all(earlier_buckets, same_minute).subquery("ahead")
    return select(both.c.lane, func.sum(both.c.n)).group_by(both.c.lane)


async def lanes_ahead(
    session: AsyncSession,
    *,
    department_id: uuid.UUID,
    key: tuple[int, datetime, datetime, int],
) -> dict[uuid.UUID | None, int]:
    """Waiting tickets of a department before the place ``key`` in the queue order, by lane.

    ``key`` is (band, due time, arrival, sequence), e.g. :func:`rank_key` of a
    ticket (which is not counted itself). Lanes are the doctors tickets are
    reserved for, ``None`` for the department pool. One statement: the
    ``waiting_counts`` buckets of earlier bands and minutes, plus the waiting
    tickets due in the same minute that come first.
    """
    band, due, arrived, seq = key
    params = {
        "p_department": department_id,
        "p_band": band,
        "p_minute": due_minute(due),
        "p_due": due,
        "p_arrived": arrived,
        "p_sequence": seq,
    }
    rows = await run(session, _lanes_statement(), params)
    return {(None if lane == POOL_LANE else lane): int(n) for lane, n in rows}


def in_scope(lanes: Mapping[uuid.UUID | None, int], doctor_id: uuid.UUID | None) -> int:
    """How many of ``lanes`` are called before a ticket of ``doctor_id``'s lane (None: pool).

    A pool ticket waits behind everyone; a ticket reserved for a doctor
    behind the pool and that doctor's own tickets.
    """
    if doctor_id is None:
        return sum(lanes.values())
    return lanes.get(None, 0) + lanes.get(doctor_id, 0)


async def waiting_count(
    session: AsyncSession, *, department_id: uuid.UUID, doctor_id: uuid.UUID | None = None
) -> int:
    """How many tickets wait in a department (with ``doctor_id``: those that doctor may call)."""
    wc = WAITING_COUNTS.c
    stmt = select(func.coalesce(func.sum(wc.waiting), 0)).where(wc.department_id == department_id)
    if doctor_id is not None:
        stmt = stmt.where(wc.lane_id.in_([POOL_LANE, doctor_id]))
    return int((await run(session, stmt)).scalar_one())


async def waiting_ahead(session: AsyncSession, entry: QueueEntry) -> int:
    """How many waiting tickets will be called before ``entry`` (0 = it is next).

    A ticket reserved for a doctor counts that doctor's tickets and the pool
    ahead of it; a pool ticket counts every waiting ticket of its department
    ahead of it.
    """
    lanes = await lanes_ahead(session, department_id=entry.department_id, key=rank_key(entry))
    return in_scope(lanes, entry.doctor_id)


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

    One ``UPDATE ... WHERE id = (SELECT ... ORDER BY <queue order> LIMIT 1)
    RETURNING ...``. PostgreSQL: the inner select takes the row ``FOR UPDATE
    SKIP LOCKED``, so two callers never get the same row and neither waits for
    the other. SQLite: the operation's write transaction already holds the
    database write lock. Returns the called ticket (not attached to the
    session), or None if nobody waits.
    """
    now = ctx.now()
    params = {
        "p_department": department_id,
        "p_doctor": doctor_id,
        "p_now": now,
        "p_called_by": called_by_id,
        "p_room": room,
    }
    row = (await run(ctx.s, _claim_statement(ctx.db.backend), params)).first()
    return None if row is None else detached_entry(row._mapping)


@functools.cache
def _claim_statement(dialect: str) -> Any:
    qe = QUEUE_TABLE.c
    doctor = bindparam("p_doctor", type_=qe.doctor_id.type)
    pick = (
        select(qe.id)
        .where(
            qe.department_id == bindparam("p_department", type_=qe.department_id.type),
            qe.status == literal_column("'waiting'"),
            or_(qe.doctor_id == doctor, qe.doctor_id.is_(None)),
        )
        .order_by(qe.queue_band, qe.due_at, qe.arrived_at, qe.sequence)
        .limit(1)
    )
    if dialect == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    table = QUEUE_TABLE
    return (
        update(table)
        .where(table.c.id == pick.scalar_subquery())
        .values(
            status=TicketStatus.CALLED,
            called_at=bindparam("p_now", type_=table.c.called_at.type),
            called_by_id=bindparam("p_called_by", type_=table.c.called_by_id.type),
            called_doctor_id=doctor,
            called_room=bindparam("p_room", type_=table.c.called_room.type),
            updated_at=bindparam("p_now", type_=table.c.updated_at.type),
        )
        .returning(*table.columns)
    )


class Claimed(NamedTuple):
    """A ticket called by :func:`claim_for_doctor`, with what the call needs to show it."""

    entry: QueueEntry
    department_code: str
    room: str
    extra: tuple[Any, ...]  # the caller's ``also`` columns


async def claim_for_doctor(
    ctx: Context,
    *,
    doctor_id: uuid.UUID,
    called_by_id: uuid.UUID | None,
    also: tuple[ColumnElement[Any], ...] = (),
) -> Claimed | None:
    """:func:`claim_next` for an available doctor, read from the doctors table in the same statement.

    PostgreSQL only (SQLite renders the ``RETURNING`` subqueries unqualified).
    One ``UPDATE queue_entries ... FROM doctors WHERE doctors.id = :doctor AND
    doctors.status = 'available' AND id = (SELECT ... <queue order> ... FOR
    UPDATE SKIP LOCKED) RETURNING ...``: the doctor's department, room and
    availability are read where the ticket is claimed. ``also`` are extra
    columns to return (SQL over ``queue_entries`` of the called ticket). None
    if nothing was called: the doctor is unknown, not available, or nobody
    waits for them (the caller tells which).
    """
    if not ctx.db.is_postgres:
        raise RuntimeError("claim_for_doctor is for PostgreSQL; use claim_next")
    params = {"p_doctor": doctor_id, "p_now": ctx.now(), "p_called_by": called_by_id}
    stmt = _claim_for_doctor_statement(also)
    row = (await run(ctx.s, stmt, params)).first()
    if row is None:
        return None
    values = row._mapping
    n = len(_INSERTED)
    return Claimed(detached_entry(values), row[n], values["called_room"], tuple(row[n + 1 :]))


@functools.cache
def _claim_for_doctor_statement(also: tuple[ColumnElement[Any], ...]) -> Any:
    doctors, departments = cast(Table, Doctor.__table__), cast(Table, Department.__table__)
    table = QUEUE_TABLE
    other = QUEUE_TABLE.alias("pick")
    doctor = doctors.c
    pick = (
        select(other.c.id)
        .where(
            other.c.department_id == doctor.department_id,
            other.c.status == literal_column("'waiting'"),
            or_(other.c.doctor_id == doctor.id, other.c.doctor_id.is_(None)),
        )
        .order_by(other.c.queue_band, other.c.due_at, other.c.arrived_at, other.c.sequence)
        .limit(1)
    )
    pick = pick.with_for_update(skip_locked=True)
    code = (
        select(departments.c.code)
        .where(departments.c.id == table.c.department_id)
        .scalar_subquery()
    )
    return (
        update(table)
        .where(
            doctor.id == bindparam("p_doctor", type_=doctor.id.type),
            doctor.status == literal_column("'available'"),
            table.c.department_id == doctor.department_id,  # (the picked ticket's)
            table.c.id == pick.scalar_subquery(),
        )
        .values(
            status=TicketStatus.CALLED,
            called_at=bindparam("p_now", type_=table.c.called_at.type),
            called_by_id=bindparam("p_called_by", type_=table.c.called_by_id.type),
            called_doctor_id=doctor.id,
            called_room=doctor.room,
            updated_at=bindparam("p_now", type_=table.c.updated_at.type),
        )
        .returning(*table.columns, code, *also)
    )


def detached_entry(values: Mapping[Any, Any]) -> QueueEntry:
    """A ticket object from a row of ``queue_entries`` (not attached to any session)."""
    return QueueEntry(**{key: values[key] for key in _INSERTED})


# ---- finding things by what people type -------------------------------------------------------
_TICKET_RE = re.compile(r"^\s*([A-Za-z]{1,3})\s*-?\s*0*(\d{1,6})\s*$")


def as_uuid(ref: object) -> uuid.UUID | None:
    """``ref`` as a UUID, or None if it is not one (a number, code or name)."""
    if isinstance(ref, uuid.UUID):
        return ref
    try:
        return uuid.UUID(str(ref).strip())
    except ValueError:
        return None


_DEPARTMENT_BY_ID = select(Department).where(Department.id == bindparam("p_id"))


async def find_department(
    session: AsyncSession, ref: uuid.UUID | str, *, for_update: bool = False
) -> Department:
    """A department by id or code (``GEN``, case-insensitive); NotFound otherwise."""
    ref_id = as_uuid(ref)
    if ref_id is not None and not for_update:
        found = (await session.execute(_DEPARTMENT_BY_ID, {"p_id": ref_id})).scalar_one_or_none()
        if found is None:
            raise NotFound(f"no department {ref!s}", field="department")
        return found
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
    ref_id = as_uuid(ref)
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


async def acting_doctor(
    ctx: Context, doctor: uuid.UUID | str | None, *, missing: str, for_update: bool = False
) -> Doctor:
    """The doctor named, or else the caller's own; a doctor may only name themselves.

    ``missing`` is the message when neither is there (staff must name one).
    """
    if doctor is None:
        if ctx.principal.doctor_id is None:
            raise ValidationError(missing, field="doctor")
        doctor = ctx.principal.doctor_id
    found = await find_doctor(ctx.s, doctor, for_update=for_update)
    require_own_doctor(ctx.principal, found.id)
    return found


async def find_patient(session: AsyncSession, ref: uuid.UUID | str) -> Patient:
    """A patient by id or MRN; NotFound otherwise."""
    ref_id = as_uuid(ref)
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
    ref_id = as_uuid(ref)
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
    "QUEUE_TABLE",
    "WAITING_COUNTS",
    "Claimed",
    "TicketFields",
    "TicketNumber",
    "acting_doctor",
    "as_uuid",
    "claim_for_doctor",
    "claim_next",
    "detached_entry",
    "due_minute",
    "find_department",
    "find_doctor",
    "find_patient",
    "find_ticket",
    "format_ticket_number",
    "in_scope",
    "insert_entry",
    "lanes_ahead",
    "new_entry",
    "new_status_code",
    "next_ticket_number",
    "normalise_ticket_number",
    "rank_key",
    "reserve_block",
    "run",
    "waiting_ahead",
    "waiting_count",
    "waiting_in_order",
]
