"""Tickets (queue entries), waiting counts, daily ticket counters, offline number blocks, events."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from iqms.core.enums import TicketSource, TicketStatus
from iqms.core.models._base import Base, Timestamps, UUIDPk, enum_column


class QueueEntry(UUIDPk, Timestamps, Base):
    """One ticket: a patient (or anonymous walk-in) waiting for a department or doctor."""

    __tablename__ = "queue_entries"

    service_date: Mapped[date]
    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT")
    )
    sequence: Mapped[int]
    ticket_number: Mapped[str] = mapped_column(String(12))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("patients.id", ondelete="RESTRICT")
    )
    # NULL: the department pool; otherwise reserved for this doctor.
    doctor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("doctors.id", ondelete="SET NULL")
    )
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    triage_category: Mapped[int] = mapped_column(default=4)
    # 0 for category 1 (always first), 1 otherwise: the first key of the queue order.
    queue_band: Mapped[int] = mapped_column(default=1)
    source: Mapped[TicketSource] = mapped_column(enum_column(TicketSource, name="ticket_source"))
    status: Mapped[TicketStatus] = mapped_column(
        enum_column(TicketStatus, name="ticket_status"), default=TicketStatus.WAITING
    )
    arrived_at: Mapped[datetime]
    due_at: Mapped[datetime]
    called_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    called_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    called_doctor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("doctors.id", ondelete="SET NULL")
    )
    called_room: Mapped[str | None] = mapped_column(String(20))
    recall_count: Mapped[int] = mapped_column(default=0)
    origin_device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL")
    )
    client_op_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    # Unguessable code of the ticket's public status page (printed as a QR code); no names.
    status_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    transferred_from_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("queue_entries.id", ondelete="SET NULL")
    )
    # Wait estimate (minutes) given when the ticket was issued; kept for accuracy reports.
    estimate_at_issue_minutes: Mapped[float | None]
    approaching_notified_at: Mapped[datetime | None]
    # A short note from reception for the doctor ("needs an interpreter"); follows transfers.
    note: Mapped[str | None] = mapped_column(String(300))
    extra: Mapped[dict[str, Any] | None]

    __table_args__ = (
        UniqueConstraint(
            "department_id", "service_date", "sequence", name="uq_queue_entries_day_sequence"
        ),
        UniqueConstraint(
            "department_id", "service_date", "ticket_number", name="uq_queue_entries_day_ticket"
        ),
        CheckConstraint("triage_category BETWEEN 1 AND 5", name="triage_category_range"),
        CheckConstraint("queue_band IN (0, 1)", name="queue_band_values"),
        CheckConstraint("recall_count >= 0", name="recall_count_nonnegative"),
        CheckConstraint("sequence >= 1", name="sequence_positive"),
        # The queue order of waiting tickets, per department and per doctor.
        Index(
            "ix_queue_entries_waiting_order",
            "department_id",
            "queue_band",
            "due_at",
            "arrived_at",
            postgresql_where=text("status = 'waiting'"),
            sqlite_where=text("status = 'waiting'"),
        ),
        Index(
            "ix_queue_entries_waiting_doctor",
            "doctor_id",
            "queue_band",
            "due_at",
            "arrived_at",
            postgresql_where=text("status = 'waiting' AND doctor_id IS NOT NULL"),
            sqlite_where=text("status = 'waiting' AND doctor_id IS NOT NULL"),
        ),
        # Recent consultation lengths for wait estimates (newest served tickets first).
        Index(
            "ix_queue_entries_served_recent",
            "department_id",
            "finished_at",
            postgresql_where=text("status = 'served'"),
            sqlite_where=text("status = 'served'"),
        ),
        # "Your turn is near": waiting tickets of patients not told yet, in queue order. Status
        # and approaching_notified_at lead (constant here) so that SQLite, which has no
        # statistics, prefers this index to (status, department_id) for these queries.
        Index(
            "ix_queue_entries_approaching",
            "department_id",
            "status",
            "approaching_notified_at",
            "queue_band",
            "due_at",
            "arrived_at",
            "sequence",
            postgresql_where=text(
                "status = 'waiting' AND approaching_notified_at IS NULL AND patient_id IS NOT NULL"
            ),
            sqlite_where=text(
                "status = 'waiting' AND approaching_notified_at IS NULL AND patient_id IS NOT NULL"
            ),
        ),
        # A doctor's tickets of a day (the day summary, the patients with the doctor).
        Index("ix_queue_entries_called_doctor_day", "called_doctor_id", "service_date"),
        Index("ix_queue_entries_status_department", "status", "department_id"),
        Index("ix_queue_entries_arrived_at", "arrived_at"),
        Index("ix_queue_entries_patient", "patient_id"),
    )


#: ``waiting_counts.lane_id`` of the department pool (tickets reserved for no doctor)
POOL_LANE = uuid.UUID(int=0)


class WaitingCount(UUIDPk, Base):
    """How many tickets wait, per department, lane and minute of due time.

    A lane is the doctor a ticket is reserved for, or :data:`POOL_LANE`.
    Database triggers on ``queue_entries`` keep the counts (migration 0101),
    whatever writes the tickets; a bucket is deleted when it empties. A
    ticket's place in line is then a sum over these few rows plus a count of
    the tickets due in its own minute, however long the queue.
    """

    __tablename__ = "waiting_counts"

    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE")
    )
    lane_id: Mapped[uuid.UUID]
    queue_band: Mapped[int]
    due_minute: Mapped[datetime]
    waiting: Mapped[int]

    __table_args__ = (
        UniqueConstraint(
            "department_id", "lane_id", "queue_band", "due_minute", name="uq_waiting_counts_bucket"
        ),
    )


class TicketCounter(UUIDPk, Base):
    """The last ticket number given per department per service day."""

    __tablename__ = "ticket_counters"

    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE")
    )
    service_date: Mapped[date]
    last_number: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        UniqueConstraint("department_id", "service_date", name="uq_ticket_counters_day"),
        CheckConstraint("last_number >= 0", name="last_number_nonnegative"),
    )


class TicketBlock(UUIDPk, Base):
    """Ticket numbers reserved by a device for use while offline."""

    __tablename__ = "ticket_blocks"

    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE")
    )
    service_date: Mapped[date]
    first_number: Mapped[int]
    last_number: Mapped[int]
    reserved_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("first_number >= 1 AND last_number >= first_number", name="block_range"),
        Index("ix_ticket_blocks_device_day", "device_id", "service_date"),
    )


class QueueEvent(UUIDPk, Base):
    """Domain events for polling subscribers (SQLite); PostgreSQL uses NOTIFY."""

    __tablename__ = "queue_events"

    seq: Mapped[int] = mapped_column(unique=True)
    occurred_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    department_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict[str, Any]]
