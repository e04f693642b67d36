"""The notification outbox for administrators: list messages, retry failed ones, send a test SMS."""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, select, update

from iqms.core.config import SmsProvider
from iqms.core.enums import NotificationStatus, NotifyChannel
from iqms.core.errors import ConfigError, Conflict, InvalidTransition, NotFound, ValidationError
from iqms.core.models import Notification, QueueEntry
from iqms.core.notify.base import mask_recipient
from iqms.core.notify.outbox import enqueue_message
from iqms.core.schemas.common import normalise_phone
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission
from iqms.core.service import Context, operation

MAX_LIMIT = 10_000
RETRYABLE = (NotificationStatus.FAILED, NotificationStatus.DEAD)
_SHORT_ID = re.compile(r"^[0-9a-f]{4,8}$")


@dataclass(frozen=True)
class NotificationSummary:
    """One outbox row as staff see it: the recipient masked, no message body."""

    id: uuid.UUID
    created_at: datetime
    channel: str
    template: str
    language: str
    recipient: str
    ticket_number: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    provider_message_id: str | None
    last_error: str | None

    @property
    def short_id(self) -> str:
        return self.id.hex[:8]

    def as_dict(self) -> dict[str, Any]:
        return {"short_id": self.short_id, **asdict(self)}


def _summary(row: Notification, ticket_number: str | None) -> NotificationSummary:
    status = NotificationStatus(row.status)
    return NotificationSummary(
        id=row.id,
        created_at=row.created_at,
        channel=NotifyChannel(row.channel).value,
        template=row.template,
        language=row.language,
        recipient=mask_recipient(row.recipient),
        ticket_number=ticket_number,
        status=status.value,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if status == NotificationStatus.PENDING else None,
        sent_at=row.sent_at,
        provider_message_id=row.provider_message_id,
        last_error=row.last_error,
    )


def _parse_status(status: NotificationStatus | str | None) -> NotificationStatus | None:
    if status is None or status == "":
        return None
    try:
        return NotificationStatus(str(status).strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in NotificationStatus)
        raise ValidationError(
            f"unknown status {status!r} (choose from {choices})", field="status"
        ) from None


async def _find(ctx: Context, ref: uuid.UUID | str) -> Notification:
    """A notification by full id or by the short id (first 8 hex digits) shown in listings."""
    text = str(ref).strip().lower()
    try:
        wanted = ref if isinstance(ref, uuid.UUID) else uuid.UUID(text)
    except ValueError:
        wanted = None
    if wanted is not None:
        row = await ctx.s.get(Notification, wanted)
        if row is None:
            raise NotFound(f"no notification {text}")
        return row
    if not _SHORT_ID.match(text):
        raise ValidationError(
            f"{ref!r} is not a notification id (use the id or short id from the list)", field="id"
        )
    rows = (
        (
            await ctx.s.execute(
                select(Notification).where(cast(Notification.id, String).like(text + "%")).limit(2)
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        raise NotFound(f"no notification {text}")
    if len(rows) > 1:
        raise Conflict(f"more than one notification starts with {text}; give more of the id")
    return rows[0]


@operation(Permission.NOTIFICATIONS_VIEW, readonly=True)
async def list_notifications(
    ctx: Context, *, status: NotificationStatus | str | None = None, limit: int = 100
) -> list[NotificationSummary]:
    """The newest outbox messages, optionally only those with one status (newest first)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    wanted = _parse_status(status)
    stmt = select(Notification, QueueEntry.ticket_number).outerjoin(
        QueueEntry, QueueEntry.id == Notification.queue_entry_id
    )
    if wanted is not None:
        stmt = stmt.where(Notification.status == wanted)
    stmt = stmt.order_by(Notification.created_at.desc(), Notification.id).limit(limit)
    rows = (await ctx.s.execute(stmt)).all()
    return [_summary(row, ticket) for row, ticket in rows]


@operation(Permission.NOTIFICATIONS_MANAGE)
async def retry(ctx: Context, *, notification_id: uuid.UUID | str) -> NotificationSummary:
    """Send a failed or dead message again (from attempt one, as soon as a worker is free)."""
    row = await _find(ctx, notification_id)
    status = NotificationStatus(row.status)
    if status not in RETRYABLE:
        raise InvalidTransition(
            f"notification {row.id.hex[:8]} is {status.value}; only failed or dead messages "
            "can be retried"
        )
    now = ctx.now()
    row.status = NotificationStatus.PENDING
    row.attempts = 0
    row.next_attempt_at = now
    row.lease_expires_at = None
    row.updated_at = now
    await ctx.s.flush()
    await log_action(
        ctx,
        action="notification.retried",
        target=("notification", row.id),
        details={"previous_status": status.value, "template": row.template},
    )
    ticket = None
    if row.queue_entry_id is not None:
        ticket = (
            await ctx.s.execute(
                select(QueueEntry.ticket_number).where(QueueEntry.id == row.queue_entry_id)
            )
        ).scalar_one_or_none()
    return _summary(row, ticket)


@operation(Permission.NOTIFICATIONS_MANAGE)
async def retry_all_dead(ctx: Context) -> int:
    """Send every dead message again (transient failures that ran out of attempts)."""
    now = ctx.now()
    result = await ctx.s.execute(
        update(Notification)
        .where(Notification.status == NotificationStatus.DEAD)
        .values(
            status=NotificationStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        await log_action(ctx, action="notification.retried_all_dead", details={"count": count})
    return count


@operation(Permission.NOTIFICATIONS_MANAGE)
async def queue_test_sms(ctx: Context, *, to: str, language: str = "en") -> uuid.UUID:
    """Put a test SMS to ``to`` in the outbox (send it with the worker's ``deliver_now``)."""
    settings = ctx.settings
    if settings.sms_provider == SmsProvider.NONE:
        raise ConfigError(
            "IQMS_SMS_PROVIDER", "is 'none'; set it to 'twilio' (or 'console') to send SMS"
        )
    if settings.sms_provider == SmsProvider.TWILIO:
        from iqms.core.notify.twilio_sms import check_twilio_settings

        check_twilio_settings(settings)
    try:
        number = normalise_phone(to)
    except ValueError as exc:
        raise ValidationError(str(exc), field="to") from None
    notification_id = await enqueue_message(
        ctx.s,
        settings,
        channel=NotifyChannel.SMS,
        recipient=number,
        language=language,
        kind="test",
        fields={},
        now=ctx.now(),
    )
    assert notification_id is not None  # no dedupe key: the insert always happens
    await log_action(
        ctx,
        action="notification.test_queued",
        target=("notification", notification_id),
        details={"to": mask_recipient(number)},
    )
    return notification_id
