"""Admin operations on the outbox: test SMS, retry, listing; each audited and permission-checked."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from iqms.core.enums import NotificationStatus, NotifyChannel
from iqms.core.errors import InvalidTransition, PermissionDenied, ValidationError
from iqms.core.models import AuditRecord, Notification
from iqms.core.notify.twilio_sms import TwilioSmsProvider
from iqms.core.notify.worker import deliver_now
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import notifications
from tests.test_notify_support import (
    TWILIO_FROM,
    TWILIO_MESSAGES_URL,
    TWILIO_SID,
    TWILIO_TOKEN,
    RecordingTwilioHttp,
)


def as_role(ctx: Context, role: str) -> Context:
    return ctx.as_principal(Principal(user_id=uuid.uuid4(), username=role, role=role))


def providers(http: RecordingTwilioHttp) -> dict[NotifyChannel, TwilioSmsProvider]:
    return {
        NotifyChannel.SMS: TwilioSmsProvider(
            account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, sender=TWILIO_FROM, http_client=http
        )
    }


async def actions(ctx: Context) -> list[str]:
    async with ctx.db.transaction(readonly=True) as s:
        return list(
            (await s.execute(select(AuditRecord.action).order_by(AuditRecord.seq))).scalars()
        )


async def test_test_sms_is_sent_through_twilio_and_audited(ctx: Context) -> None:
    admin = as_role(ctx, "admin")
    http = RecordingTwilioHttp()
    notification_id = await notifications.queue_test_sms(admin, to="+34 600 900 104", language="es")
    outcome = await deliver_now(admin, notification_id=notification_id, providers=providers(http))
    assert outcome.status == NotificationStatus.SENT
    (request,) = http.sent
    assert request.url == TWILIO_MESSAGES_URL
    assert request.data == {
        "To": "+34600900104",
        "From": TWILIO_FROM,
        "Body": "Riverside Clinic: este es un mensaje de prueba del sistema de turnos. "
        "No hace falta responder.",
    }
    assert await actions(ctx) == ["notification.test_queued"]
    with pytest.raises(ValidationError) as info:
        await notifications.queue_test_sms(admin, to="not a number")
    assert info.value.field == "to"
    with pytest.raises(PermissionDenied):
        await deliver_now(as_role(ctx, "staff"), notification_id=notification_id)


async def test_retry_failed_and_all_dead(ctx: Context) -> None:
    admin = as_role(ctx, "admin")
    http = RecordingTwilioHttp()
    http.answer(400, {"code": 21211, "message": "invalid 'To'", "status": 400})
    failed = await notifications.queue_test_sms(admin, to="+447911123456")
    assert (await deliver_now(admin, notification_id=failed, providers=providers(http))).status == (
        NotificationStatus.FAILED
    )
    listed = await notifications.list_notifications(as_role(ctx, "staff"), status="failed")
    assert [(n.id, n.recipient, n.attempts) for n in listed] == [(failed, "+44******3456", 1)]
    assert listed[0].last_error is not None and "21211" in listed[0].last_error

    again = await notifications.retry(admin, notification_id=failed.hex[:8])
    assert (again.status, again.attempts) == ("pending", 0)
    with pytest.raises(InvalidTransition):
        await notifications.retry(admin, notification_id=failed)  # pending now, not failed
    sent = await deliver_now(admin, notification_id=failed, providers=providers(http))
    assert sent.status == NotificationStatus.SENT
    assert len(http.sent) == 2

    async with ctx.db.transaction() as s:
        row = await s.get(Notification, failed)
        assert row is not None
        row.status = NotificationStatus.DEAD
    assert await notifications.retry_all_dead(admin) == 1
    assert await notifications.retry_all_dead(admin) == 0
    assert await actions(ctx) == [
        "notification.test_queued",
        "notification.retried",
        "notification.retried_all_dead",
    ]
    with pytest.raises(PermissionDenied):
        await notifications.retry_all_dead(as_role(ctx, "staff"))
    with pytest.raises(ValidationError):
        await notifications.list_notifications(admin, status="lost")
