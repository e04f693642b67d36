"""The transactional outbox: notification rows written in the caller's transaction.

A queue change and the messages it calls for commit (or roll back) together;
the worker sends them later. A dedupe key keeps one trigger from queueing the
same message twice, even when two transactions race (``ON CONFLICT DO NOTHING``).
Only patients who opted in and can be reached get messages: SMS needs a valid
phone number, push a registered token, and the channel's provider must be on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from iqms.core.config import Settings
from iqms.core.enums import NotificationStatus, NotifyChannel
from iqms.core.models import Notification
from iqms.core.notify.providers import enabled_channels
from iqms.core.notify.templates import render
from iqms.core.schemas.common import normalise_phone

# A later message about a ticket makes earlier, still unsent ones pointless
# (no "your turn is near" after "please go to Room 2").
SUPERSEDES: dict[str, frozenset[str]] = {
    "called": frozenset({"issued", "approaching"}),
    "recalled": frozenset({"issued", "approaching", "called"}),
    "no_show": frozenset({"issued", "approaching", "called", "recalled"}),
    "transferred": frozenset({"issued", "approaching", "called", "recalled"}),
}


class Reachable(Protocol):
    """A patient as far as messages go (a :class:`~iqms.core.models.Patient` is one)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def notify_channel(self) -> NotifyChannel: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def push_token(self) -> str | None: ...
    @property
    def language(self) -> str: ...


@dataclass(frozen=True)
class Recipient:
    channel: NotifyChannel
    address: str
    language: str


def recipient_for(patient: Reachable, settings: Settings) -> Recipient | None:
    """Where to reach a patient, or None if they did not opt in or cannot be reached."""
    channel = patient.notify_channel
    if channel not in enabled_channels(settings):
        return None
    language = patient.language or "en"
    if channel == NotifyChannel.SMS:
        if not patient.phone:
            return None
        try:
            return Recipient(channel, normalise_phone(patient.phone), language)
        except ValueError:
            return None
    if channel == NotifyChannel.PUSH:
        token = (patient.push_token or "").strip()
        return Recipient(channel, token, language) if token else None
    return None


async def enqueue_message(
    session: AsyncSession,
    settings: Settings,
    *,
    channel: NotifyChannel,
    recipient: str,
    language: str,
    kind: str,
    fields: Mapping[str, Any],
    now: datetime,
    patient_id: uuid.UUID | None = None,
    queue_entry_id: uuid.UUID | None = None,
    dedupe_key: str | None = None,
) -> uuid.UUID | None:
    """Write one outbox row; return its id, or None if the dedupe key was already used."""
    message = render(
        kind, language=language, clinic=settings.clinic_name, channel=channel, fields=fields
    )
    payload = {
        "title": message.title,
        "fields": {key: str(value) for key, value in fields.items()},
    }
    values = {
        "id": uuid.uuid4(),
        "patient_id": patient_id,
        "queue_entry_id": queue_entry_id,
        "channel": channel,
        "recipient": recipient,
        "template": kind,
        "language": message.language,
        "payload": payload,
        "body": message.body,
        "status": NotificationStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "dedupe_key": dedupe_key,
        "created_at": now,
        "updated_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_fn(Notification).values(**values)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
    result = await session.execute(stmt.returning(Notification.id))
    return result.scalar_one_or_none()


async def enqueue_for_patient(
    session: AsyncSession,
    settings: Settings,
    *,
    patient: Reachable,
    kind: str,
    fields: Mapping[str, Any],
    now: datetime,
    queue_entry_id: uuid.UUID | None = None,
    dedupe_key: str | None = None,
) -> uuid.UUID | None:
    """Queue a message for a patient if they opted in and can be reached; return its id."""
    recipient = recipient_for(patient, settings)
    if recipient is None:
        return None
    if queue_entry_id is not None and kind in SUPERSEDES:
        await supersede(session, queue_entry_id=queue_entry_id, kinds=SUPERSEDES[kind], now=now)
    return await enqueue_message(
        session,
        settings,
        channel=recipient.channel,
        recipient=recipient.address,
        language=recipient.language,
        kind=kind,
        fields=fields,
        now=now,
        patient_id=patient.id,
        queue_entry_id=queue_entry_id,
        dedupe_key=dedupe_key,
    )


async def supersede(
    session: AsyncSession, *, queue_entry_id: uuid.UUID, kinds: Iterable[str], now: datetime
) -> int:
    """Drop a ticket's unsent messages of the given kinds; return how many."""
    result = await session.execute(
        update(Notification)
        .where(
            Notification.queue_entry_id == queue_entry_id,
            Notification.status == NotificationStatus.PENDING,
            Notification.template.in_(sorted(kinds)),
        )
        .values(
            status=NotificationStatus.SUPERSEDED,
            last_error="not sent: a later message about this ticket replaced it",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
