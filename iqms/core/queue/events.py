"""Live queue events: typed, published inside the operation's transaction, delivered on commit.

Operations call :func:`publish` with one of the event dataclasses below. The
event only becomes visible to subscribers when the transaction commits:

* PostgreSQL: ``SELECT pg_notify('iqms_events', <json>)``, which the server
  delivers to listeners only on commit (and never for a rolled-back one);
* SQLite: a :class:`~iqms.core.models.QueueEvent` row (``seq`` = max + 1, in
  the same statement; every SQLite write transaction already holds the write
  lock), which subscribers poll cheaply (``PRAGMA data_version`` first, then
  the new rows).

Front ends receive them with one async iterator::

    async with subscribe(db, department_id=dept_id) as events:
        async for event in events:
            if isinstance(event, Resync):
                ...  # the stream had a gap (reconnect): reload the view
            else:
                ...  # event.kind, event.ticket_number, ...

This module only carries events. What else a ticket change sets off (patient
messages, the audit record) is :mod:`iqms.core.pipeline`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, text

from iqms.core.models import QueueEntry, QueueEvent

if TYPE_CHECKING:
    from iqms.core.db import Database
    from iqms.core.service import Context

log = logging.getLogger(__name__)

CHANNEL = "iqms_events"
# SQLite: how many event rows to keep, and how often (in events) to prune older ones.
KEEP_EVENTS = 5000
PRUNE_EVERY = 500
SQLITE_POLL_SECONDS = 0.2
PG_KEEPALIVE_SECONDS = 15.0
PG_BACKOFF_MAX_SECONDS = 10.0


# ---- the events ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TicketEvent:
    """Something happened to one ticket. ``kind`` names what (``"called"``, ...)."""

    kind: ClassVar[str] = "ticket"

    entry_id: uuid.UUID
    department_id: uuid.UUID
    ticket_number: str
    patient_id: uuid.UUID | None = None
    doctor_id: uuid.UUID | None = None
    triage_category: int
    occurred_at: datetime
    room: str | None = None

    @classmethod
    def of(cls, entry: QueueEntry, *, occurred_at: datetime, **extra: Any) -> Any:
        """The event for ``entry`` as it is now (doctor is the calling doctor if called)."""
        values: dict[str, Any] = {
            "entry_id": entry.id,
            "department_id": entry.department_id,
            "ticket_number": entry.ticket_number,
            "patient_id": entry.patient_id,
            "doctor_id": entry.called_doctor_id or entry.doctor_id,
            "triage_category": entry.triage_category,
            "occurred_at": occurred_at,
            "room": entry.called_room,
        }
        values.update(extra)
        return cls(**values)

    def concerns(self, department_id: uuid.UUID) -> bool:
        """True when a view of ``department_id`` should react to this event."""
        return self.department_id == department_id

    def to_payload(self) -> dict[str, Any]:
        """A small JSON-plain dict (what travels in NOTIFY / the events table)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out


@dataclass(frozen=True, kw_only=True)
class TicketIssued(TicketEvent):
    kind: ClassVar[str] = "issued"
    source: str = "kiosk"
    due_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class TicketCalled(TicketEvent):
    kind: ClassVar[str] = "called"


@dataclass(frozen=True, kw_only=True)
class TicketRecalled(TicketEvent):
    kind: ClassVar[str] = "recalled"
    recall_count: int = 0


@dataclass(frozen=True, kw_only=True)
class TicketStarted(TicketEvent):
    kind: ClassVar[str] = "started"


@dataclass(frozen=True, kw_only=True)
class TicketServed(TicketEvent):
    kind: ClassVar[str] = "served"


@dataclass(frozen=True, kw_only=True)
class TicketNoShow(TicketEvent):
    kind: ClassVar[str] = "no_show"
    requeued: bool = False


@dataclass(frozen=True, kw_only=True)
class TicketTransferred(TicketEvent):
    """The ticket left this queue; ``new_entry_id`` waits in the target queue."""

    kind: ClassVar[str] = "transferred"
    new_entry_id: uuid.UUID
    new_ticket_number: str
    target_department_id: uuid.UUID
    target_doctor_id: uuid.UUID | None = None

    def concerns(self, department_id: uuid.UUID) -> bool:
        return department_id in (self.department_id, self.target_department_id)


@dataclass(frozen=True, kw_only=True)
class TicketCancelled(TicketEvent):
    kind: ClassVar[str] = "cancelled"


@dataclass(frozen=True, kw_only=True)
class TicketCategoryChanged(TicketEvent):
    kind: ClassVar[str] = "category_changed"
    old_category: int
    due_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class TicketHeld(TicketEvent):
    kind: ClassVar[str] = "held"


@dataclass(frozen=True, kw_only=True)
class TicketReturned(TicketEvent):
    """A held (or requeued) ticket is waiting again."""

    kind: ClassVar[str] = "returned"


@dataclass(frozen=True, kw_only=True)
class TicketUndone(TicketEvent):
    """Staff undid the ticket's last move (a hold, cancel, no-show, ...); ``status`` is its state now."""

    kind: ClassVar[str] = "undone"
    undid: str = ""
    status: str = ""


@dataclass(frozen=True, kw_only=True)
class DoctorChanged:
    """A doctor's status or room changed (boards show rooms of doctors on duty)."""

    kind: ClassVar[str] = "doctor_changed"

    doctor_id: uuid.UUID
    department_id: uuid.UUID
    room: str
    status: str
    occurred_at: datetime
    previous_department_id: uuid.UUID | None = None

    def concerns(self, department_id: uuid.UUID) -> bool:
        return department_id in (self.department_id, self.previous_department_id)

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out


@dataclass(frozen=True, kw_only=True)
class PrinterFault:
    """A kiosk's ticket printer changed state: a fault, a warning (paper low), or fine again.

    ``severity`` is ``fault`` (no tickets print), ``warning`` or ``ok`` (cleared). It names
    the device and the printer state only: never a patient or a ticket.
    """

    kind: ClassVar[str] = "printer_fault"

    device_id: uuid.UUID
    device_name: str
    state: str
    severity: str
    message: str
    occurred_at: datetime
    department_id: uuid.UUID | None = None  # a kiosk serves every department

    @property
    def cleared(self) -> bool:
        return self.severity == "ok"

    def concerns(self, department_id: uuid.UUID) -> bool:
        return True  # reception shows it whichever queue it is looking at

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out


@dataclass(frozen=True, kw_only=True)
class DisplayMessageChanged:
    """The message line of the waiting-room boards was set, or cleared (``text`` None)."""

    kind: ClassVar[str] = "display_message"

    text: str | None
    occurred_at: datetime
    department_id: uuid.UUID | None = None  # clinic-wide

    def concerns(self, department_id: uuid.UUID) -> bool:
        return True

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out


@dataclass(frozen=True)
class Resync:
    """Not a domain event: the stream may have missed events; reload the view."""

    kind: ClassVar[str] = "resync"
    reason: str = "reconnected"
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def concerns(self, department_id: uuid.UUID) -> bool:
        return True


EVENT_TYPES: dict[
    str, type[TicketEvent] | type[DoctorChanged] | type[PrinterFault] | type[DisplayMessageChanged]
] = {
    cls.kind: cls
    for cls in (
        DoctorChanged,
        PrinterFault,
        DisplayMessageChanged,
        TicketIssued,
        TicketCalled,
        TicketRecalled,
        TicketStarted,
        TicketServed,
        TicketNoShow,
        TicketTransferred,
        TicketCancelled,
        TicketCategoryChanged,
        TicketHeld,
        TicketReturned,
        TicketUndone,
    )
}

DomainEvent = TicketEvent | DoctorChanged | PrinterFault | DisplayMessageChanged
Event = TicketEvent | DoctorChanged | PrinterFault | DisplayMessageChanged | Resync


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def event_from_payload(payload: dict[str, Any]) -> DomainEvent | None:
    """Rebuild a typed event from :meth:`TicketEvent.to_payload`; None if unknown."""
    cls = EVENT_TYPES.get(str(payload.get("kind")))
    if cls is None:
        return None
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in payload:
            continue
        raw = payload[f.name]
        annotation = str(f.type)
        if raw is None:
            values[f.name] = None
        elif "uuid.UUID" in annotation:
            values[f.name] = uuid.UUID(raw)
        elif "datetime" in annotation:
            values[f.name] = datetime.fromisoformat(raw)
        else:
            values[f.name] = raw
    try:
        return cls(**values)
    except TypeError:
        log.warning("ignoring malformed %s event", cls.kind)
        return None


# ---- publishing ---------------------------------------------------------------------------------
async def publish(ctx: Context, event: DomainEvent) -> None:
    """Publish ``event`` in the running operation's transaction (delivered only on commit)."""
    session = ctx.s
    payload = event.to_payload()
    conn = await session.connection()
    if ctx.db.is_postgres:
        await conn.execute(
            _NOTIFY, {"channel": CHANNEL, "payload": json.dumps(payload, separators=(",", ":"))}
        )
        return
    params = {
        "p_id": uuid.uuid4(),
        "p_occurred_at": event.occurred_at,
        "p_kind": event.kind,
        "p_department": event.department_id,
        "p_payload": payload,
    }
    seq = int((await conn.execute(_EVENT_ROW, params)).scalar_one())
    if seq % PRUNE_EVERY == 0 and seq > KEEP_EVENTS:
        await conn.execute(delete(_EVENTS).where(_EVENTS.c.seq <= seq - KEEP_EVENTS))


_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_EVENTS = cast(Table, QueueEvent.__table__)
# One statement: the next sequence number and the row.
_EVENT_ROW = (
    insert(_EVENTS)
    .from_select(
        ["id", "seq", "occurred_at", "kind", "department_id", "payload"],
        select(
            bindparam("p_id", type_=_EVENTS.c.id.type),
            func.coalesce(func.max(_EVENTS.c.seq), 0) + 1,
            bindparam("p_occurred_at", type_=_EVENTS.c.occurred_at.type),
            bindparam("p_kind", type_=_EVENTS.c.kind.type),
            bindparam("p_department", type_=_EVENTS.c.department_id.type),
            bindparam("p_payload", type_=_EVENTS.c.payload.type),
        ),
    )
    .returning(_EVENTS.c.seq)
)


# ---- subscribing --------------------------------------------------------------------------------
class Subscription:
    """An async iterator of committed events (and :class:`Resync` markers).

    Use as ``async with subscribe(db) as events: async for event in events: ...``.
    Listening starts on entering the ``async with`` (or at the first ``anext``),
    so nothing committed after that is missed. Leaving it stops listening.
    """

    def __init__(
        self,
        db: Database,
        *,
        department_id: uuid.UUID | None = None,
        poll_interval: float = SQLITE_POLL_SECONDS,
    ) -> None:
        self.db = db
        self.department_id = department_id
        self.poll_interval = poll_interval
        self._queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._closed = False

    async def start(self) -> None:
        """Begin listening (idempotent); returns once the listener is in place."""
        if self._task is not None:
            return
        if self._closed:
            raise RuntimeError("subscription already closed")
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name="iqms-events")
        waiter = asyncio.ensure_future(self._ready.wait())
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            waiter.cancel()
            exc = self._task.exception()
            if exc is not None:
                raise exc

    async def _supervise(self) -> None:
        """Run the listener; once it is up, hand any failure to the consumer (not lose it)."""
        assert self._ready is not None
        runner = self._run_postgres if self.db.is_postgres else self._run_sqlite
        try:
            await runner()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._ready.is_set():
                raise
            log.warning("event listener stopped: %s", exc)
            self._queue.put_nowait(exc)

    async def close(self) -> None:
        """Stop listening and release the connection."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def __aenter__(self) -> Subscription:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        await self.start()
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def next(self, within: float | None = None) -> Event | None:
        """The next event, or None if none came within ``within`` seconds."""
        try:
            return await asyncio.wait_for(self.__anext__(), within)
        except TimeoutError:
            return None

    def _deliver(self, payload: dict[str, Any]) -> None:
        event = event_from_payload(payload)
        if event is None:
            return
        if self.department_id is not None and not event.concerns(self.department_id):
            return
        self._queue.put_nowait(event)

    # -- PostgreSQL: LISTEN on a dedicated autocommit connection, reconnecting with backoff --
    def _conninfo(self) -> str:
        return self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def _run_postgres(self) -> None:
        import psycopg

        assert self._ready is not None
        delay = 0.2
        first = True
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._conninfo(), autocommit=True, connect_timeout=5
                )
            except psycopg.OperationalError as exc:
                if first:
                    raise self.db.unavailable(exc) from exc
                log.warning("event listener cannot reconnect yet: %s", exc)
                await asyncio.sleep(delay + random.uniform(0, delay / 2))
                delay = min(delay * 2, PG_BACKOFF_MAX_SECONDS)
                continue
            try:
                await conn.execute(f"LISTEN {CHANNEL}")
                if first:
                    self._ready.set()
                    first = False
                else:
                    self._queue.put_nowait(Resync("reconnected"))
                delay = 0.2
                while True:
                    async for notify in conn.notifies(timeout=PG_KEEPALIVE_SECONDS):
                        try:
                            self._deliver(json.loads(notify.payload))
                        except (ValueError, TypeError):
                            log.warning("ignoring a malformed event notification")
                    # Quiet for a while: make sure the connection is still alive.
                    await conn.execute("SELECT 1")
            except psycopg.OperationalError as exc:
                log.warning("event listener lost its connection: %s; reconnecting", exc)
                await asyncio.sleep(delay + random.uniform(0, delay / 2))
                delay = min(delay * 2, PG_BACKOFF_MAX_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    # -- SQLite: PRAGMA data_version, then the new QueueEvent rows --
    # The two reads are microseconds on the event loop's own thread (as the core's SQLite
    # statements are): a WAL reader does not wait for writers; a rare "locked" answer (the
    # file being recovered or checkpointed) is tried again at the next poll.
    async def _run_sqlite(self) -> None:
        assert self._ready is not None
        path = self.db.url.database
        if not path or path == ":memory:":
            raise RuntimeError("live events need an SQLite file, not an in-memory database")
        conn = await self._sqlite_open(path)
        try:
            row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM queue_events").fetchone()
            last_seq = int(row[0]) if row else 0
            version = self._data_version(conn)
            self._ready.set()
            while True:
                await asyncio.sleep(self.poll_interval)
                try:
                    now_version = self._data_version(conn)
                    if now_version == version:
                        continue
                    last_seq = self._read_new(conn, last_seq)
                    version = now_version
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                        raise
        finally:
            conn.close()

    async def _sqlite_open(self, path: str) -> sqlite3.Connection:
        """A read connection, waiting (asynchronously) while the file is briefly locked."""
        pause = 0.01
        while True:
            try:
                conn = sqlite3.connect(path, isolation_level=None, timeout=0)
                conn.execute("SELECT 1 FROM queue_events LIMIT 1")
                return conn
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.poll_interval)

    @staticmethod
    def _data_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def _read_new(self, conn: sqlite3.Connection, last_seq: int) -> int:
        rows = conn.execute(
            "SELECT seq, payload FROM queue_events WHERE seq > ? ORDER BY seq", (last_seq,)
        ).fetchall()
        if rows and rows[0][0] > last_seq + 1 and last_seq > 0:
            # Rows were pruned before we read them: tell the consumer to reload.
            self._queue.put_nowait(Resync("missed events"))
        for seq, raw in rows:
            last_seq = int(seq)
            try:
                payload = json.loads(raw) if isinstance(raw, str | bytes) else raw
                self._deliver(payload)
            except (ValueError, TypeError):
                log.warning("ignoring a malformed event row %s", seq)
        return last_seq


def subscribe(
    db: Database,
    *,
    department_id: uuid.UUID | None = None,
    poll_interval: float = SQLITE_POLL_SECONDS,
) -> Subscription:
    """Committed queue events as an async iterator, optionally only one department's."""
    return Subscription(db, department_id=department_id, poll_interval=poll_interval)


__all__ = [
    "CHANNEL",
    "EVENT_TYPES",
    "DisplayMessageChanged",
    "DoctorChanged",
    "DomainEvent",
    "Event",
    "PrinterFault",
    "Resync",
    "Subscription",
    "TicketCalled",
    "TicketCancelled",
    "TicketCategoryChanged",
    "TicketEvent",
    "TicketHeld",
    "TicketIssued",
    "TicketNoShow",
    "TicketRecalled",
    "TicketReturned",
    "TicketServed",
    "TicketStarted",
    "TicketTransferred",
    "TicketUndone",
    "event_from_payload",
    "publish",
    "subscribe",
]
