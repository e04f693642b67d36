"""Notification outbox, audit log, and offline sync bookkeeping."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from iqms.core.enums import ConflictStatus, NotificationStatus, NotifyChannel, SyncResult
from iqms.core.models._base import Base, Timestamps, UUIDPk, enum_column


class Notification(UUIDPk, Timestamps, Base):
    """An outbox row: written with the queue change, sent later by the worker."""

    __tablename__ = "notifications"

    patient_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("patients.id", ondelete="SET NULL")
    )
    queue_entry_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("queue_entries.id", ondelete="SET NULL")
    )
    channel: Mapped[NotifyChannel] = mapped_column(
        enum_column(NotifyChannel, name="notification_channel")
    )
    recipient: Mapped[str] = mapped_column(String(512))
    template: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8), default="en")
    payload: Mapped[dict[str, Any]]
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[NotificationStatus] = mapped_column(
        enum_column(NotificationStatus, name="notification_status"),
        default=NotificationStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[datetime | None]
    # When the send now in flight began; still set when a worker stopped mid-send (kept
    # across re-claims), so the next worker asks the provider before sending again.
    send_started_at: Mapped[datetime | None]
    # Keeps one trigger from queueing the same message twice (e.g. "approaching:<ticket>").
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)

    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_queue_entry", "queue_entry_id"),
    )


class AuditRecord(UUIDPk, Base):
    """One entry of the append-only, hash-chained audit trail."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime]
    actor_id: Mapped[uuid.UUID | None]
    actor_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor", "actor_name"),
        Index("ix_audit_log_action", "action"),
        Index("ix_audit_log_target", "target_type", "target_id"),
    )


class AuditChainHead(Base):
    """The newest record of the audit chain: its sequence number and hash.

    One row, moved forward with every append in the same transaction. Whoever deletes the
    newest audit records must also rewind this row, or ``audit verify`` sees the gap; on
    PostgreSQL the database refuses to rewind or delete it.
    """

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("seq >= 0", name="seq_nonnegative"),
    )


class SyncOperation(UUIDPk, Base):
    """An offline operation already applied (keeps replays idempotent)."""

    __tablename__ = "sync_operations"

    op_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    device_seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(40))
    result: Mapped[SyncResult] = mapped_column(enum_column(SyncResult, name="sync_result"))
    result_details: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]
    applied_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("device_id", "device_seq", name="uq_sync_operations_device_seq"),
    )


class SyncConflict(UUIDPk, Timestamps, Base):
    """An offline operation that could not be applied automatically, kept for staff review."""

    __tablename__ = "sync_conflicts"

    op_id: Mapped[uuid.UUID]
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]]
    status: Mapped[ConflictStatus] = mapped_column(
        enum_column(ConflictStatus, name="conflict_status"), default=ConflictStatus.OPEN
    )
    resolution: Mapped[str | None] = mapped_column(String(500))
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    resolved_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_sync_conflicts_status", "status"),)


__all__ = ["AuditChainHead", "AuditRecord", "Notification", "SyncConflict", "SyncOperation"]
