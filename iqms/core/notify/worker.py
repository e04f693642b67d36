"""The notification worker: claim due outbox rows, send them, record what happened.

Claiming is one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING`` statement, so several workers on PostgreSQL take disjoint rows; on
SQLite every write transaction holds the write lock from its first statement.
A claimed row is marked ``sending`` with a lease; the provider is called
outside any transaction; the result is recorded only while the lease is still
ours (the lease's expiry time is the claim token). A row whose worker died is
claimed again once its lease has expired. Provider calls time out well inside
the lease, so a slow send is never handed to a second worker.

Transient failures are retried with exponential backoff and jitter until
``notify_max_attempts``, then the row is ``dead``; permanent ones are
``failed`` at once, and an unregistered push token is removed from the patient.

The duplicate window. A worker that stops (crash, power cut, SIGKILL) after the
provider accepted a message but before the result was recorded leaves the row
``sending``, with ``send_started_at`` still set. The worker that takes it over
asks the provider first, if the provider can say (Twilio lists the messages it
accepted): if the message is there it is recorded as sent, not sent again. A
provider that cannot say (Firebase, the console) gets it again, so delivery is
at least once: a patient may get that one message twice, and the row says so.
The window is the time from the provider's answer to the commit of the result
(``make bench`` measures it); the lease only decides when the row is taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from iqms.core.clock import Clock, SystemClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import NotificationStatus, NotifyChannel
from iqms.core.errors import DatabaseUnavailable, NotFound
from iqms.core.models import Notification, Patient
from iqms.core.notify.base import (
    NotificationProvider,
    OutgoingMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
    mask_recipient,
)
from iqms.core.notify.providers import build_providers
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission, Principal, require
from iqms.core.service import Context

log = logging.getLogger("iqms.notify.worker")

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 3600.0
_LONG_NUMBER = re.compile(r"\+?\d[\d ]{5,}\d")


def backoff_delay(
    attempts: int,
    rng: random.Random,
    *,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_MAX_SECONDS,
) -> float:
    """Seconds before the next try after ``attempts`` failures: exponential, half of it jittered."""
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def redact(text: str, recipient: str) -> str:
    """An error text without the recipient or other phone-like numbers (for logs and listings)."""
    if recipient:
        text = text.replace(recipient, mask_recipient(recipient))
    text = _LONG_NUMBER.sub(lambda m: mask_recipient(m.group(0).replace(" ", "")), text)
    return " ".join(text.split())[:500]


#: Templates carrying a one-time secret (a login code): its text is removed from the outbox once
#: the message is finished, so the database never keeps a usable or used code in clear.
ONE_TIME_SECRET_TEMPLATES = frozenset({"login_code"})
SECRET_REMOVED = "[one-time code removed after sending]"


@dataclass(frozen=True)
class ClaimedMessage:
    """A row this worker holds (status ``sending``) until ``lease_expires_at``."""

    id: uuid.UUID
    channel: NotifyChannel
    recipient: str
    template: str
    body: str
    payload: Mapping[str, Any]
    attempts: int
    patient_id: uuid.UUID | None
    lease_expires_at: datetime
    created_at: datetime | None = None
    # When an earlier attempt began whose outcome is unknown (its worker stopped mid-send).
    interrupted_since: datetime | None = None


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one message."""

    notification_id: uuid.UUID
    status: NotificationStatus
    attempts: int
    provider_message_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    # False when the lease had expired and another worker had taken the row over.
    recorded: bool = True
    # Found already accepted by the provider after a worker stopped mid-send: not sent again.
    reconciled: bool = False


class NotificationWorker:
    """Sends due outbox rows through the configured providers."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock | None = None,
        providers: Mapping[NotifyChannel, NotificationProvider] | None = None,
        rng: random.Random | None = None,
        name: str = "notify-worker",
        backoff_base_seconds: float = BACKOFF_BASE_SECONDS,
        backoff_max_seconds: float = BACKOFF_MAX_SECONDS,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        # Building providers validates their settings: a bad one fails here, at start-up.
        self._own_providers = providers is None
        self.providers = dict(providers) if providers is not None else build_providers(settings)
        self.rng = rng or random.Random()
        self.name = name
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds

    @property
    def channels(self) -> frozenset[NotifyChannel]:
        return frozenset(self.providers)

    def describe(self) -> list[str]:
        return [provider.describe() for provider in self.providers.values()]

    async def verify(self) -> list[str]:
        """Check each provider's credentials online.

        A refused credential raises ``ConfigError``; an unreachable provider only
        gives a warning (returned), since sending retries later anyway.
        """
        warnings: list[str] = []
        for provider in self.providers.values():
            try:
                await provider.verify()
            except TransientDeliveryError as exc:
                warnings.append(f"could not check {provider.describe()}: {exc}")
        return warnings

    def close(self) -> None:
        if self._own_providers:
            for provider in self.providers.values():
                provider.close()

    # ---- claiming ------------------------------------------------------------
    async def claim(self, *, notification_id: uuid.UUID | None = None) -> ClaimedMessage | None:
        """Take one due row (or the given one) for sending; None if there is none."""
        if not self.channels:
            return None
        now = self.clock.now()
        lease = now + timedelta(seconds=self.settings.notify_lease_seconds)
        due = or_(
            and_(
                Notification.status == NotificationStatus.PENDING,
                Notification.next_attempt_at <= now,
            ),
            and_(
                Notification.status == NotificationStatus.SENDING,
                Notification.lease_expires_at <= now,
            ),
        )
        if notification_id is not None:
            due = and_(
                Notification.id == notification_id,
                or_(Notification.status == NotificationStatus.PENDING, due),
            )
        pick = (
            select(Notification.id)
            .where(due, Notification.channel.in_(sorted(self.channels)))
            .order_by(Notification.next_attempt_at, Notification.created_at, Notification.id)
            .limit(1)
        )
        if self.db.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(Notification)
            .where(Notification.id.in_(pick.scalar_subquery()))
            .values(
                status=NotificationStatus.SENDING,
                lease_expires_at=lease,
                attempts=Notification.attempts + 1,
                updated_at=now,
                # Kept if an earlier attempt's outcome is unknown: see deliver().
                send_started_at=func.coalesce(Notification.send_started_at, now),
            )
            .returning(
                Notification.id,
                Notification.channel,
                Notification.recipient,
                Notification.template,
                Notification.body,
                Notification.payload,
                Notification.attempts,
                Notification.patient_id,
                Notification.lease_expires_at,
                Notification.created_at,
                Notification.send_started_at,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.db.transaction() as session:
            row = (await session.execute(stmt)).first()
        if row is None:
            return None
        return ClaimedMessage(
            id=row.id,
            channel=NotifyChannel(row.channel),
            recipient=row.recipient,
            template=row.template,
            body=row.body,
            payload=row.payload or {},
            attempts=row.attempts,
            patient_id=row.patient_id,
            lease_expires_at=row.lease_expires_at,
            created_at=row.created_at,
            interrupted_since=row.send_started_at if row.send_started_at < now else None,
        )

    # ---- sending ---------------------------------------------------------------
    async def deliver(self, claimed: ClaimedMessage) -> DeliveryOutcome:
        """Send a claimed message and record the result."""
        max_attempts = self.settings.notify_max_attempts
        if claimed.attempts > max_attempts:
            # Claimed again after workers stopped while sending it, too many times.
            return await self._record_failure(
                claimed,
                NotificationStatus.DEAD,
                f"gave up after {max_attempts} attempts (the worker stopped while sending)",
            )
        if claimed.template != "test" and claimed.created_at is not None:
            age = self.clock.now() - claimed.created_at
            if age > timedelta(minutes=self.settings.notify_max_age_minutes):
                # "Please go to Room 1" hours later only confuses the patient.
                return await self._record_failure(
                    claimed,
                    NotificationStatus.FAILED,
                    f"not sent: queued {int(age.total_seconds() // 60)} minutes ago, "
                    f"older than IQMS_NOTIFY_MAX_AGE_MINUTES={self.settings.notify_max_age_minutes}",
                )
        provider = self.providers[claimed.channel]
        fields = claimed.payload.get("fields") or {}
        message = OutgoingMessage(
            channel=claimed.channel,
            recipient=claimed.recipient,
            body=claimed.body,
            title=str(claimed.payload.get("title") or self.settings.clinic_name),
            data={"kind": claimed.template, "ticket": str(fields.get("ticket", ""))},
        )
        note = None
        if claimed.interrupted_since is not None:
            if provider.can_reconcile:
                try:
                    found = await provider.find_sent(message, claimed.interrupted_since)
                except TransientDeliveryError as exc:
                    return await self._record_transient(
                        claimed,
                        redact(f"could not check whether it was sent already: {exc}",
                               claimed.recipient),
                        unknown_outcome=True,
                    )  # fmt: skip
                if found is not None:
                    return await self._record_sent(claimed, found, reconciled=True)
            else:
                note = (
                    "sent again after a worker stopped while sending it; "
                    f"{provider.name} cannot tell whether the first went out, "
                    "so the patient may have got it twice"
                )
                log.warning("notification %s: %s", _short(claimed.id), note)
        try:
            provider_id = await provider.send(message)
        except PermanentDeliveryError as exc:
            return await self._record_failure(
                claimed,
                NotificationStatus.FAILED,
                redact(str(exc), claimed.recipient),
                clear_push_token=exc.clear_push_token,
            )
        except TransientDeliveryError as exc:
            return await self._record_transient(claimed, redact(str(exc), claimed.recipient))
        except Exception as exc:  # a provider bug must not stop the worker or lose the row
            log.warning("notification %s: unexpected %s from %s", _short(claimed.id),
                        type(exc).__name__, provider.name, exc_info=True)  # fmt: skip
            return await self._record_transient(
                claimed, redact(f"unexpected {type(exc).__name__}: {exc}", claimed.recipient)
            )
        return await self._record_sent(claimed, provider_id, note=note)

    async def _finish(self, session: AsyncSession, claimed: ClaimedMessage, **values: Any) -> bool:
        if claimed.template in ONE_TIME_SECRET_TEMPLATES and values.get("status") not in (
            None,
            NotificationStatus.PENDING,
        ):
            # Once a login code has gone out (or never will), the outbox keeps no copy of it.
            values.update(body=SECRET_REMOVED, payload={"removed": "one-time code"})
        result = await session.execute(
            update(Notification)
            .where(
                Notification.id == claimed.id,
                Notification.status == NotificationStatus.SENDING,
                Notification.lease_expires_at == claimed.lease_expires_at,
            )
            .values(updated_at=self.clock.now(), **{"send_started_at": None, **values})
            .execution_options(synchronize_session=False)
        )
        recorded = int(getattr(result, "rowcount", 0) or 0) == 1
        if not recorded:
            log.warning(
                "notification %s: lease expired before the result was recorded; "
                "another worker has taken it over",
                _short(claimed.id),
            )
        return recorded

    async def _record_sent(
        self,
        claimed: ClaimedMessage,
        provider_id: str,
        *,
        reconciled: bool = False,
        note: str | None = None,
    ) -> DeliveryOutcome:
        now = self.clock.now()
        if reconciled:
            note = "accepted by the provider before a worker stopped; not sent again"
        async with self.db.transaction() as session:
            recorded = await self._finish(
                session,
                claimed,
                status=NotificationStatus.SENT,
                provider_message_id=provider_id[:128],
                sent_at=now,
                lease_expires_at=None,
                last_error=note,
            )
        self._log(claimed, f"sent, provider id {provider_id}" + (f" ({note})" if note else ""))
        return DeliveryOutcome(
            claimed.id,
            NotificationStatus.SENT,
            claimed.attempts,
            provider_id,
            recorded=recorded,
            reconciled=reconciled,
        )

    async def _record_transient(
        self, claimed: ClaimedMessage, error: str, *, unknown_outcome: bool = False
    ) -> DeliveryOutcome:
        if claimed.attempts >= self.settings.notify_max_attempts:
            return await self._record_failure(
                claimed,
                NotificationStatus.DEAD,
                f"gave up after {claimed.attempts} attempts: {error}",
            )
        delay = backoff_delay(
            claimed.attempts,
            self.rng,
            base=self.backoff_base_seconds,
            cap=self.backoff_max_seconds,
        )
        next_at = self.clock.now() + timedelta(seconds=delay)
        # Still unknown whether the interrupted attempt went out: the next one asks again.
        started = claimed.interrupted_since if unknown_outcome else None
        async with self.db.transaction() as session:
            recorded = await self._finish(
                session,
                claimed,
                status=NotificationStatus.PENDING,
                next_attempt_at=next_at,
                lease_expires_at=None,
                last_error=error,
                send_started_at=started,
            )
        self._log(claimed, f"will retry in {round(delay)} s: {error}")
        return DeliveryOutcome(
            claimed.id,
            NotificationStatus.PENDING,
            claimed.attempts,
            error=error,
            next_attempt_at=next_at,
            recorded=recorded,
        )

    async def _record_failure(
        self,
        claimed: ClaimedMessage,
        status: NotificationStatus,
        error: str,
        *,
        clear_push_token: bool = False,
    ) -> DeliveryOutcome:
        async with self.db.transaction() as session:
            recorded = await self._finish(
                session, claimed, status=status, lease_expires_at=None, last_error=error
            )
            if recorded and clear_push_token and claimed.patient_id is not None:
                await self._clear_push_token(session, claimed)
        self._log(claimed, f"{status.value}: {error}")
        return DeliveryOutcome(claimed.id, status, claimed.attempts, error=error, recorded=recorded)

    async def _clear_push_token(self, session: AsyncSession, claimed: ClaimedMessage) -> None:
        result = await session.execute(
            update(Patient)
            .where(Patient.id == claimed.patient_id, Patient.push_token == claimed.recipient)
            .values(push_token=None, version=Patient.version + 1, updated_at=self.clock.now())
            .execution_options(synchronize_session=False)
        )
        if int(getattr(result, "rowcount", 0) or 0) == 1:
            ctx = Context(
                db=self.db,
                principal=Principal.system(self.name),
                settings=self.settings,
                clock=self.clock,
            ).bind(session)
            await log_action(
                ctx,
                action="patient.push_token_cleared",
                target=("patient", claimed.patient_id),
                details={
                    "reason": "push token no longer registered",
                    "notification": str(claimed.id),
                },
            )

    def _log(self, claimed: ClaimedMessage, outcome: str) -> None:
        log.info(
            "notification %s %s %s to %s (attempt %d): %s",
            _short(claimed.id),
            claimed.channel.value,
            claimed.template,
            mask_recipient(claimed.recipient),
            claimed.attempts,
            outcome,
        )

    # ---- loops -------------------------------------------------------------------
    async def process_one(self) -> DeliveryOutcome | None:
        """Claim and send one due message; None when nothing is due."""
        claimed = await self.claim()
        if claimed is None:
            return None
        return await self.deliver(claimed)

    async def run_until_idle(self, *, max_messages: int | None = None) -> list[DeliveryOutcome]:
        """Send every message due now (failures are rescheduled for later), then return."""
        outcomes: list[DeliveryOutcome] = []
        while max_messages is None or len(outcomes) < max_messages:
            outcome = await self.process_one()
            if outcome is None:
                break
            outcomes.append(outcome)
        return outcomes

    async def run(self, stop: asyncio.Event, *, poll_seconds: float = 1.0) -> int:
        """Send messages until ``stop`` is set; the message in flight is always finished."""
        handled = 0
        while not stop.is_set():
            wait = poll_seconds
            try:
                outcome = await self.process_one()
            except DatabaseUnavailable as exc:
                log.warning("%s; trying again in %d s", exc, round(poll_seconds * 5))
                outcome, wait = None, poll_seconds * 5
            if outcome is not None:
                handled += 1
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        return handled


async def deliver_now(
    ctx: Context,
    *,
    notification_id: uuid.UUID,
    providers: Mapping[NotifyChannel, NotificationProvider] | None = None,
) -> DeliveryOutcome:
    """Send one pending message at once (e.g. an admin's test SMS) and return the outcome."""
    require(ctx.principal, Permission.NOTIFICATIONS_MANAGE)
    worker = NotificationWorker(
        ctx.db, ctx.settings, clock=ctx.clock, providers=providers, name=ctx.principal.username
    )
    try:
        claimed = await worker.claim(notification_id=notification_id)
        if claimed is None:
            raise NotFound(f"notification {notification_id} is not waiting to be sent")
        return await worker.deliver(claimed)
    finally:
        worker.close()


def _short(notification_id: uuid.UUID) -> str:
    return notification_id.hex[:8]
