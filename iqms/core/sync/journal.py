"""The offline journal: a terminal's local SQLite record of what it did while the database was away.

Each entry is one operation in the sync batch format (:mod:`iqms.core.sync.batch`)
with its client operation id, the device's sequence number, the time it
happened and what it was based on. Entries are validated before they are
stored, so the journal can only ever hold operations the server can read.
An entry is removed only after the server confirmed it (``confirm``), so a
push that fails half-way, or whose answer never arrives, is simply pushed
again (the server recognises operations it already applied).

The journal also keeps what the terminal needs to go on working offline: the
ticket-number blocks it reserved while online (printed numbers stay short and
unique) and the last confirmed results.

A damaged entry (unreadable, or refused by the server as malformed) never
blocks the others: it is moved aside into the journal's ``quarantine`` table
with the reason, kept there for IT to look at, and shown by ``iqms sync status``.

A journal belongs to one device. A kiosk or board signed in with a device key
gives its key's device id (``device_id=``), so the server accepts its batches
as that device's; a person's terminal gets a random id of its own. A journal
that takes an id the server may already know (a reinstalled kiosk) asks the
server for the last sequence number it has from that device before its first
push (:meth:`Journal.continue_after`), so its numbering carries on from there.

The journal is a plain ``sqlite3`` file used by one terminal; each call is a
short local transaction, safe to call from an event loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from iqms.core.clock import Clock, SystemClock, service_date
from iqms.core.config import Settings
from iqms.core.errors import ConfigError, Conflict, ValidationError
from iqms.core.queue.engine import format_ticket_number
from iqms.core.sync.batch import (
    FORMAT_VERSION,
    MAX_OPERATIONS,
    PatientChanges,
    PatientDetails,
    validate_operation,
)

log = logging.getLogger(__name__)

JOURNAL_FILE = "offline-journal.db"
RESULTS_KEPT = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
    device_seq INTEGER PRIMARY KEY,
    op_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    body TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    push_attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS number_blocks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    department_id TEXT NOT NULL,
    department_code TEXT NOT NULL,
    department_name TEXT NOT NULL,
    ticket_prefix TEXT NOT NULL,
    service_date TEXT NOT NULL,
    first_number INTEGER NOT NULL,
    last_number INTEGER NOT NULL,
    next_number INTEGER NOT NULL,
    reserved_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_number_blocks_day ON number_blocks (department_id, service_date);
CREATE TABLE IF NOT EXISTS quarantine (
    device_seq INTEGER PRIMARY KEY,
    op_id TEXT,
    kind TEXT,
    occurred_at TEXT,
    body TEXT,
    reason TEXT NOT NULL,
    quarantined_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    op_id TEXT PRIMARY KEY,
    device_seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    details TEXT NOT NULL,
    confirmed_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class JournalEntry:
    """One recorded operation waiting for the server."""

    device_seq: int
    op_id: uuid.UUID
    kind: str
    occurred_at: datetime
    body: dict[str, Any]
    push_attempts: int
    last_error: str | None


@dataclass(frozen=True)
class OfflineTicket:
    """A ticket issued offline: what the kiosk prints."""

    op_id: uuid.UUID
    ticket_number: str
    sequence: int
    department_id: uuid.UUID
    department_name: str
    arrived_at: datetime
    status_code: str | None = None  # the ticket's status page, valid once synced


@dataclass(frozen=True)
class NumberBlockInfo:
    """Ticket numbers a device reserved for one department and day."""

    department_id: uuid.UUID
    department_code: str
    department_name: str
    ticket_prefix: str
    service_date: date
    first_number: int
    last_number: int


@dataclass(frozen=True)
class NumbersLeft:
    department_id: uuid.UUID
    department_code: str
    service_date: date
    left: int


@dataclass(frozen=True)
class QuarantinedEntry:
    """A damaged entry moved aside so the others can be pushed (kept with its raw body)."""

    device_seq: int
    op_id: str | None
    kind: str | None
    reason: str
    quarantined_at: datetime
    body: str | None


class DamagedEntry(Exception):
    """A journal row that cannot be pushed as it is."""


@dataclass(frozen=True)
class ConfirmedResult:
    op_id: uuid.UUID
    device_seq: int
    kind: str
    result: str
    details: dict[str, Any]
    confirmed_at: datetime


@dataclass
class JournalStatus:
    """What ``iqms sync status`` and the consoles show."""

    path: Path
    device_id: uuid.UUID
    device_name: str | None
    pending: int
    oldest_pending_at: datetime | None
    last_sync_at: datetime | None
    last_sync_summary: dict[str, int]
    last_error: str | None
    numbers_left: list[NumbersLeft] = field(default_factory=list)
    quarantined: list[QuarantinedEntry] = field(default_factory=list)


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("naive datetime given; the journal stores aware UTC times")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class Journal:
    """The local operation journal of one terminal or kiosk."""

    def __init__(
        self,
        path: Path,
        *,
        device_id: uuid.UUID | None = None,
        device_name: str | None = None,
        timezone: ZoneInfo | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.path = Path(path)
        self.tz = timezone or ZoneInfo("UTC")
        self.clock: Clock = clock or SystemClock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._write() as conn:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if self._meta(conn, "device_id") is None:
                    self._set_meta(conn, "device_id", str(device_id or uuid.uuid4()))
                    self._set_meta(conn, "next_seq", "1")
                    self._set_meta(conn, "format", str(FORMAT_VERSION))
                    # A random id is new to the server; a given one may have synced before.
                    self._set_meta(conn, "seq_checked", "0" if device_id else "1")
                elif device_id is not None and self._meta(conn, "device_id") != str(device_id):
                    self._adopt(conn, device_id)
                if device_name and self._meta(conn, "device_name") != device_name:
                    self._set_meta(conn, "device_name", device_name)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                "IQMS_DATA_DIR", f"cannot use the offline journal {self.path}: {exc}"
            ) from None
        except OSError as exc:
            raise ConfigError(
                "IQMS_DATA_DIR", f"cannot create the offline journal {self.path}: {exc.strerror}"
            ) from None

    def _adopt(self, conn: sqlite3.Connection, device_id: uuid.UUID) -> None:
        """Take another device identity (e.g. this computer now has a kiosk's device key)."""
        pending = int(conn.execute("SELECT COUNT(*) FROM operations").fetchone()[0])
        if pending:
            raise ConfigError(
                "IQMS_DATA_DIR",
                f"the offline journal {self.path} holds {pending} operations of another device "
                f"({self._meta(conn, 'device_name') or self._meta(conn, 'device_id')}); push them "
                "as that device first ('iqms sync push'), or move the file away to keep it",
            )
        # Reserved numbers belong to the device that reserved them.
        conn.execute("DELETE FROM number_blocks")
        self._set_meta(conn, "device_id", str(device_id))
        self._set_meta(conn, "seq_checked", "0")

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        device_id: uuid.UUID | None = None,
    ) -> Journal:
        """The journal in the data directory (``DATA_DIR/offline-journal.db``)."""
        return cls(
            settings.data_dir / JOURNAL_FILE,
            device_id=device_id,
            device_name=settings.device_name,
            timezone=settings.tz,
            clock=clock,
        )

    # ---- plumbing ----------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ---- identity ----------------------------------------------------------------
    @property
    def device_id(self) -> uuid.UUID:
        with self._read() as conn:
            return uuid.UUID(self._meta(conn, "device_id") or "")

    @property
    def device_name(self) -> str | None:
        with self._read() as conn:
            return self._meta(conn, "device_name")

    @property
    def sequence_checked(self) -> bool:
        """False until the server said which sequence numbers of this device it already has."""
        with self._read() as conn:
            return self._meta(conn, "seq_checked") != "0"

    def continue_after(self, last_seq: int) -> None:
        """Number from ``last_seq + 1`` on: the last sequence the server has from this device.

        Pending entries numbered at or below it (recorded before the check) move up, in order.
        """
        with self._write() as conn:
            first = conn.execute("SELECT MIN(device_seq) FROM operations").fetchone()[0]
            shift = 0 if first is None or first > last_seq else last_seq + 1 - int(first)
            if shift:
                rows = conn.execute(
                    "SELECT device_seq, body FROM operations ORDER BY device_seq DESC"
                ).fetchall()
                for row in rows:  # highest first, so no number is taken twice on the way
                    body = json.loads(row["body"])
                    body["device_seq"] = int(row["device_seq"]) + shift
                    conn.execute(
                        "UPDATE operations SET device_seq = ?, body = ? WHERE device_seq = ?",
                        (body["device_seq"], json.dumps(body), row["device_seq"]),
                    )
            next_seq = int(self._meta(conn, "next_seq") or "1") + shift
            self._set_meta(conn, "next_seq", str(max(next_seq, last_seq + 1)))
            self._set_meta(conn, "seq_checked", "1")

    # ---- recording ----------------------------------------------------------------
    def record(
        self,
        kind: str,
        fields: Mapping[str, Any],
        *,
        occurred_at: datetime | None = None,
        op_id: uuid.UUID | None = None,
    ) -> JournalEntry:
        """Validate one operation and append it with the next device sequence number."""
        when = occurred_at or self.clock.now()
        op_id = op_id or uuid.uuid4()
        with self._write() as conn:
            return self._record(conn, kind, fields, when, op_id)

    def _record(
        self,
        conn: sqlite3.Connection,
        kind: str,
        fields: Mapping[str, Any],
        when: datetime,
        op_id: uuid.UUID,
    ) -> JournalEntry:
        seq = int(self._meta(conn, "next_seq") or "1")
        body = {
            **{k: v for k, v in fields.items() if v is not None},
            "kind": kind,
            "op_id": str(op_id),
            "device_seq": seq,
            "occurred_at": _iso(when),
        }
        op = validate_operation(body)
        clean = op.model_dump(mode="json", exclude_none=True)
        if kind == "patient.update":
            # Keep the explicit nulls of "clear this field" in the changes.
            clean["changes"] = op.changes.given()  # type: ignore[union-attr]
            if op.base is not None:  # type: ignore[union-attr]
                clean["base"] = op.base.given()  # type: ignore[union-attr]
        conn.execute(
            "INSERT INTO operations (device_seq, op_id, kind, occurred_at, body, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (seq, str(op_id), kind, _iso(when), json.dumps(clean), _iso(self.clock.now())),
        )
        self._set_meta(conn, "next_seq", str(seq + 1))
        return JournalEntry(seq, op_id, kind, when.astimezone(UTC), clean, 0, None)

    def register_patient(
        self, details: PatientDetails | Mapping[str, Any], *, occurred_at: datetime | None = None
    ) -> JournalEntry:
        """Record a new patient; tickets refer to them by this entry's ``op_id``."""
        patient = (
            details.model_dump(mode="json")
            if isinstance(details, PatientDetails)
            else dict(details)
        )
        return self.record("patient.register", {"patient": patient}, occurred_at=occurred_at)

    def update_patient(
        self,
        *,
        changes: PatientChanges | Mapping[str, Any],
        patient_id: uuid.UUID | None = None,
        patient_op_id: uuid.UUID | None = None,
        base_version: int | None = None,
        base: Mapping[str, Any] | None = None,
        occurred_at: datetime | None = None,
    ) -> JournalEntry:
        """Record changed patient details, with the version and values they were based on."""
        given = changes.given() if isinstance(changes, PatientChanges) else dict(changes)
        return self.record(
            "patient.update",
            {
                "patient_id": str(patient_id) if patient_id else None,
                "patient_op_id": str(patient_op_id) if patient_op_id else None,
                "base_version": base_version,
                "base": dict(base) if base is not None else None,
                "changes": given,
            },
            occurred_at=occurred_at,
        )

    def issue_ticket(
        self,
        department_id: uuid.UUID,
        *,
        patient_id: uuid.UUID | None = None,
        patient_op_id: uuid.UUID | None = None,
        doctor_id: uuid.UUID | None = None,
        triage_category: int = 4,
        occurred_at: datetime | None = None,
        op_id: uuid.UUID | None = None,
        status_code: str | None = None,
    ) -> OfflineTicket:
        """Issue a ticket offline with the next number of this device's reserved block.

        ``op_id`` is the client operation id of the press that asked for it: the one an
        online attempt used, if it was made (a lost reply then never yields two tickets).
        ``status_code`` is the ticket's status page, printed now and valid once synced.
        """
        return self._numbered(
            "ticket.issue",
            department_id,
            {
                "department_id": str(department_id),
                "patient_id": str(patient_id) if patient_id else None,
                "patient_op_id": str(patient_op_id) if patient_op_id else None,
                "doctor_id": str(doctor_id) if doctor_id else None,
                "triage_category": triage_category,
                "status_code": status_code,
            },
            occurred_at,
            op_id=op_id,
        )

    def check_in_appointment(
        self,
        appointment_id: uuid.UUID,
        *,
        department_id: uuid.UUID,
        occurred_at: datetime | None = None,
    ) -> OfflineTicket:
        """Check a patient in for their appointment offline (a ticket from the reserved block)."""
        return self._numbered(
            "appointment.check_in",
            department_id,
            {"appointment_id": str(appointment_id)},
            occurred_at,
        )

    def _numbered(
        self,
        kind: str,
        department_id: uuid.UUID,
        payload: dict[str, Any],
        occurred_at: datetime | None,
        *,
        op_id: uuid.UUID | None = None,
    ) -> OfflineTicket:
        """Journal an operation that takes the next reserved number (its ``sequence``)."""
        when = occurred_at or self.clock.now()
        day = service_date(when, self.tz)
        op_id = op_id or uuid.uuid4()
        with self._write() as conn:
            block, number = self._take_number(conn, department_id, day)
            self._record(conn, kind, {**payload, "sequence": number}, when, op_id)
        return OfflineTicket(
            op_id=op_id,
            ticket_number=format_ticket_number(block["ticket_prefix"], number),
            sequence=number,
            department_id=department_id,
            department_name=block["department_name"],
            arrived_at=when.astimezone(UTC),
            status_code=payload.get("status_code"),
        )

    def cancel_ticket(
        self,
        *,
        ticket_id: uuid.UUID | None = None,
        ticket_op_id: uuid.UUID | None = None,
        reason: str | None = None,
        occurred_at: datetime | None = None,
    ) -> JournalEntry:
        """Record that a waiting patient left."""
        return self.record(
            "ticket.cancel",
            {
                "ticket_id": str(ticket_id) if ticket_id else None,
                "ticket_op_id": str(ticket_op_id) if ticket_op_id else None,
                "reason": reason,
            },
            occurred_at=occurred_at,
        )

    def set_triage(
        self,
        *,
        triage_category: int,
        ticket_id: uuid.UUID | None = None,
        ticket_op_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> JournalEntry:
        """Record a changed triage category for a waiting ticket."""
        return self.record(
            "ticket.triage",
            {
                "ticket_id": str(ticket_id) if ticket_id else None,
                "ticket_op_id": str(ticket_op_id) if ticket_op_id else None,
                "triage_category": triage_category,
            },
            occurred_at=occurred_at,
        )

    # ---- ticket number blocks ----------------------------------------------------
    def add_number_block(self, block: NumberBlockInfo) -> None:
        """Keep a block of numbers the server reserved for this device."""
        with self._write() as conn:
            duplicate = conn.execute(
                "SELECT 1 FROM number_blocks WHERE department_id = ? AND service_date = ? "
                "AND first_number = ?",
                (str(block.department_id), block.service_date.isoformat(), block.first_number),
            ).fetchone()
            if duplicate:
                return
            conn.execute(
                "INSERT INTO number_blocks (department_id, department_code, department_name, "
                "ticket_prefix, service_date, first_number, last_number, next_number, reserved_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(block.department_id),
                    block.department_code,
                    block.department_name,
                    block.ticket_prefix,
                    block.service_date.isoformat(),
                    block.first_number,
                    block.last_number,
                    block.first_number,
                    _iso(self.clock.now()),
                ),
            )
            # Blocks of past days can never be used again.
            conn.execute(
                "DELETE FROM number_blocks WHERE service_date < ?",
                (service_date(self.clock.now(), self.tz).isoformat(),),
            )

    def _take_number(
        self, conn: sqlite3.Connection, department_id: uuid.UUID, day: date
    ) -> tuple[sqlite3.Row, int]:
        block = conn.execute(
            "SELECT * FROM number_blocks WHERE department_id = ? AND service_date = ? "
            "AND next_number <= last_number ORDER BY first_number LIMIT 1",
            (str(department_id), day.isoformat()),
        ).fetchone()
        if block is None:
            known = conn.execute(
                "SELECT department_name FROM number_blocks WHERE department_id = ? LIMIT 1",
                (str(department_id),),
            ).fetchone()
            name = known["department_name"] if known else "this department"
            raise Conflict(
                f"no offline ticket numbers left for {name} today; "
                "send the patient to reception until the connection is back",
                department_id=str(department_id),
            )
        number = int(block["next_number"])
        conn.execute(
            "UPDATE number_blocks SET next_number = next_number + 1 WHERE id = ?", (block["id"],)
        )
        return block, number

    def numbers_left(self, *, day: date | None = None) -> list[NumbersLeft]:
        """Unused reserved numbers per department for a service day (default today)."""
        day = day or service_date(self.clock.now(), self.tz)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT department_id, department_code, "
                "SUM(last_number - next_number + 1) AS left_count FROM number_blocks "
                "WHERE service_date = ? GROUP BY department_id, department_code "
                "ORDER BY department_code",
                (day.isoformat(),),
            ).fetchall()
        return [
            NumbersLeft(
                uuid.UUID(r["department_id"]), r["department_code"], day, int(r["left_count"])
            )
            for r in rows
        ]

    # ---- pushing ------------------------------------------------------------------
    def pending(self, *, limit: int | None = None) -> list[JournalEntry]:
        """Entries not yet confirmed by the server, oldest first.

        A damaged entry met on the way is moved to the quarantine (see :meth:`quarantine`)
        instead of stopping the others.
        """
        sql = "SELECT * FROM operations ORDER BY device_seq"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        entries: list[JournalEntry] = []
        damaged: dict[int, str] = {}
        for row in rows:
            try:
                entries.append(_entry(row))
            except DamagedEntry as exc:
                damaged[int(row["device_seq"])] = str(exc)
        if damaged:
            self._set_aside(damaged)
        return entries

    def quarantine(self, reasons: Mapping[uuid.UUID, str]) -> int:
        """Move these entries aside (e.g. the server refused them as malformed) with the
        reason; they stay in the file for IT. Returns how many were moved."""
        with self._read() as conn:
            seqs = {
                int(row["device_seq"]): reasons[uuid.UUID(row["op_id"])]
                for op_id in reasons
                for row in conn.execute(
                    "SELECT device_seq, op_id FROM operations WHERE op_id = ?", (str(op_id),)
                )
            }
        return self._set_aside(seqs)

    def _set_aside(self, reasons: Mapping[int, str]) -> int:
        moved = 0
        with self._write() as conn:
            for seq, reason in reasons.items():
                cursor = conn.execute(
                    "INSERT OR REPLACE INTO quarantine (device_seq, op_id, kind, occurred_at, "
                    "body, reason, quarantined_at) SELECT device_seq, op_id, kind, occurred_at, "
                    "body, ?, ? FROM operations WHERE device_seq = ?",
                    (reason[:500], _iso(self.clock.now()), seq),
                )
                conn.execute("DELETE FROM operations WHERE device_seq = ?", (seq,))
                moved += cursor.rowcount
                log.warning("offline journal entry %d set aside: %s", seq, reason)
        return moved

    def quarantined(self) -> list[QuarantinedEntry]:
        """Entries moved aside as damaged, oldest first."""
        with self._read() as conn:
            rows = conn.execute("SELECT * FROM quarantine ORDER BY device_seq").fetchall()
        return [
            QuarantinedEntry(
                device_seq=int(r["device_seq"]),
                op_id=r["op_id"],
                kind=r["kind"],
                reason=r["reason"],
                quarantined_at=_from_iso(r["quarantined_at"]),
                body=r["body"],
            )
            for r in rows
        ]

    def pending_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM operations").fetchone()[0])

    def next_batch(self, *, limit: int = 200) -> dict[str, Any] | None:
        """The oldest pending entries as a sync batch (plain JSON), or None if none is pending."""
        entries = self.pending(limit=max(1, min(limit, MAX_OPERATIONS)))
        if not entries:
            return None
        return {
            "format": FORMAT_VERSION,
            "device_id": str(self.device_id),
            "device_name": self.device_name,
            "operations": [e.body for e in entries],
        }

    def note_push_failed(self, op_ids: Sequence[uuid.UUID], error: str) -> None:
        """Remember that a push of these entries did not get through (they stay pending)."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE operations SET push_attempts = push_attempts + 1, last_error = ? "
                "WHERE op_id = ?",
                [(error[:500], str(op_id)) for op_id in op_ids],
            )
            self._set_meta(conn, "last_error", error[:500])

    def confirm(self, results: Sequence[Mapping[str, Any]]) -> int:
        """Clear the entries the server confirmed; keep their results. Returns how many cleared."""
        now = self.clock.now()
        summary: dict[str, int] = {}
        cleared = 0
        with self._write() as conn:
            for res in results:
                op_id = str(res["op_id"])
                row = conn.execute(
                    "SELECT device_seq, kind FROM operations WHERE op_id = ?", (op_id,)
                ).fetchone()
                if row is None:
                    continue
                outcome = str(res["result"])
                summary[outcome] = summary.get(outcome, 0) + 1
                conn.execute(
                    "INSERT INTO results (op_id, device_seq, kind, result, details, confirmed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (op_id) DO UPDATE SET "
                    "result = excluded.result, details = excluded.details, "
                    "confirmed_at = excluded.confirmed_at",
                    (
                        op_id,
                        row["device_seq"],
                        row["kind"],
                        outcome,
                        json.dumps(res.get("details") or {}, default=str),
                        _iso(now),
                    ),
                )
                conn.execute("DELETE FROM operations WHERE op_id = ?", (op_id,))
                cleared += 1
            self._set_meta(conn, "last_sync_at", _iso(now))
            self._set_meta(conn, "last_sync_summary", json.dumps(summary))
            conn.execute("DELETE FROM meta WHERE key = 'last_error'")
            conn.execute(
                "DELETE FROM results WHERE op_id NOT IN "
                "(SELECT op_id FROM results ORDER BY device_seq DESC LIMIT ?)",
                (RESULTS_KEPT,),
            )
        return cleared

    def results(self, *, limit: int = 50) -> list[ConfirmedResult]:
        """The most recent results the server confirmed, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM results ORDER BY device_seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [
            ConfirmedResult(
                op_id=uuid.UUID(r["op_id"]),
                device_seq=int(r["device_seq"]),
                kind=r["kind"],
                result=r["result"],
                details=json.loads(r["details"]),
                confirmed_at=_from_iso(r["confirmed_at"]),
            )
            for r in rows
        ]

    def status(self) -> JournalStatus:
        """Pending entries, last successful sync and numbers left, for the status views."""
        self.pending()  # sets damaged entries aside, so the counts below are the truth
        with self._read() as conn:
            pending = int(conn.execute("SELECT COUNT(*) FROM operations").fetchone()[0])
            oldest = conn.execute("SELECT MIN(occurred_at) FROM operations").fetchone()[0]
            last_sync = self._meta(conn, "last_sync_at")
            summary = self._meta(conn, "last_sync_summary")
            last_error = self._meta(conn, "last_error")
            device_id = uuid.UUID(self._meta(conn, "device_id") or "")
            device_name = self._meta(conn, "device_name")
        return JournalStatus(
            path=self.path,
            device_id=device_id,
            device_name=device_name,
            pending=pending,
            oldest_pending_at=_from_iso(oldest) if oldest else None,
            last_sync_at=_from_iso(last_sync) if last_sync else None,
            last_sync_summary=json.loads(summary) if summary else {},
            last_error=last_error,
            numbers_left=self.numbers_left(),
            quarantined=self.quarantined(),
        )


def _entry(row: sqlite3.Row) -> JournalEntry:
    """A stored row as an entry; :class:`DamagedEntry` saying what is wrong with it."""
    try:
        body = json.loads(row["body"])
    except (TypeError, ValueError):
        raise DamagedEntry("damaged: its operation is not readable JSON") from None
    if not isinstance(body, dict):
        raise DamagedEntry("damaged: it holds no operation")
    try:
        op_id = uuid.UUID(str(row["op_id"]))
        occurred_at = _from_iso(str(row["occurred_at"]))
    except ValueError:
        raise DamagedEntry("damaged: its operation id or time is not readable") from None
    stored = (body.get("op_id"), body.get("device_seq"), body.get("kind"))
    if stored != (str(op_id), row["device_seq"], row["kind"]):
        raise DamagedEntry("damaged: its operation does not match its id, sequence or kind")
    try:
        validate_operation(body)
    except ValidationError as exc:
        raise DamagedEntry(f"damaged: {exc}") from None
    return JournalEntry(
        device_seq=int(row["device_seq"]),
        op_id=op_id,
        kind=str(row["kind"]),
        occurred_at=occurred_at,
        body=body,
        push_attempts=int(row["push_attempts"] or 0),
        last_error=row["last_error"],
    )


def journal_exists(settings: Settings) -> bool:
    return (settings.data_dir / JOURNAL_FILE).exists()


__all__ = [
    "JOURNAL_FILE",
    "ConfirmedResult",
    "Journal",
    "JournalEntry",
    "JournalStatus",
    "NumberBlockInfo",
    "NumbersLeft",
    "OfflineTicket",
    "QuarantinedEntry",
    "journal_exists",
]
