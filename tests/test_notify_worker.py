"""The worker: delivery, retries with backoff, permanent failures, leases, concurrent workers."""

from __future__ import annotations

import asyncio
import io
import logging
import random
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import responses
from sqlalchemy import select

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import NotificationStatus, NotifyChannel
from iqms.core.errors import ConfigError
from iqms.core.models import AuditRecord, Notification, Patient
from iqms.core.notify import outbox
from iqms.core.notify.console import ConsoleProvider
from iqms.core.notify.firebase_push import FirebasePushProvider
from iqms.core.notify.twilio_sms import TwilioSmsProvider
from iqms.core.notify.worker import NotificationWorker, backoff_delay
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from tests.conftest import make_settings
from tests.test_notify_support import (
    FCM_URL,
    TWILIO_FROM,
    TWILIO_SID,
    TWILIO_TOKEN,
    FakeGoogleCredential,
    RecordingTwilioHttp,
    make_patient,
)

BODY = "Riverside Clinic: ticket A-001, please go to Room 1 now."


def twilio(http: RecordingTwilioHttp) -> TwilioSmsProvider:
    return TwilioSmsProvider(
        account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, sender=TWILIO_FROM, http_client=http
    )


def make_worker(ctx: Context, http: RecordingTwilioHttp, **kw: object) -> NotificationWorker:
    return NotificationWorker(
        ctx.db,
        kw.pop("settings", ctx.settings),  # type: ignore[arg-type]
        clock=ctx.clock,
        providers={NotifyChannel.SMS: twilio(http)},
        rng=random.Random(7),
        **kw,  # type: ignore[arg-type]
    )


async def queue_sms(ctx: Context, patient: Patient | None = None, **kw: object) -> uuid.UUID:
    patient = patient or await make_patient(ctx.db)
    async with ctx.db.transaction() as s:
        notification_id = await outbox.enqueue_for_patient(
            s,
            ctx.settings,
            patient=patient,
            kind="called",
            fields={"ticket": "A-001", "room": "Room 1"},
            now=ctx.now(),
            **kw,  # type: ignore[arg-type]
        )
    assert notification_id is not None
    return notification_id


async def row(db: Database, notification_id: uuid.UUID) -> Notification:
    async with db.transaction(readonly=True) as s:
        found = await s.get(Notification, notification_id)
        assert found is not None
        return found


UNAVAILABLE = {"code": 20503, "message": "Service unavailable", "status": 503}


async def test_sent_message_records_the_provider_id(ctx: Context) -> None:
    http = RecordingTwilioHttp()
    notification_id = await queue_sms(ctx)
    worker = make_worker(ctx, http)
    (outcome,) = await worker.run_until_idle()
    assert outcome.status == NotificationStatus.SENT
    (request,) = http.sent
    assert request.data == {"To": "+447911123456", "From": TWILIO_FROM, "Body": BODY}
    stored = await row(ctx.db, notification_id)
    assert stored.status == NotificationStatus.SENT
    assert stored.provider_message_id == outcome.provider_message_id
    assert stored.provider_message_id is not None and stored.provider_message_id.startswith("SM")
    assert stored.sent_at == ctx.now()
    assert stored.attempts == 1
    assert await worker.run_until_idle() == []


async def test_two_503s_then_success_delivers_exactly_one_message(
    ctx: Context, clock: FrozenClock
) -> None:
    http = RecordingTwilioHttp()
    http.answer(503, UNAVAILABLE, times=2)
    notification_id = await queue_sms(ctx)
    worker = make_worker(ctx, http)

    first = await worker.process_one()
    assert first is not None and first.status == NotificationStatus.PENDING
    assert first.next_attempt_at is not None
    assert 15 <= (first.next_attempt_at - clock.now()).total_seconds() <= 30
    assert await worker.process_one() is None  # not due yet: nothing is sent early
    assert len(http.sent) == 1

    clock.set(first.next_attempt_at)
    second = await worker.process_one()
    assert second is not None and second.status == NotificationStatus.PENDING
    assert second.next_attempt_at is not None
    assert 30 <= (second.next_attempt_at - clock.now()).total_seconds() <= 60
    assert "20503" in (await row(ctx.db, notification_id)).last_error  # type: ignore[operator]

    clock.set(second.next_attempt_at)
    third = await worker.process_one()
    assert third is not None and third.status == NotificationStatus.SENT
    clock.advance(hours=3)
    assert await worker.run_until_idle() == []
    assert len(http.sent) == 3  # two refused, one accepted: one message on the phone
    stored = await row(ctx.db, notification_id)
    assert (stored.status, stored.attempts, stored.last_error) == (NotificationStatus.SENT, 3, None)


async def test_invalid_number_fails_at_once_and_is_not_retried(
    ctx: Context, clock: FrozenClock
) -> None:
    http = RecordingTwilioHttp()
    http.answer(
        400,
        {
            "code": 21211,
            "message": "The 'To' number +447911123456 is not a valid phone number.",
            "status": 400,
        },
    )
    notification_id = await queue_sms(ctx)
    worker = make_worker(ctx, http)
    (outcome,) = await worker.run_until_idle()
    assert outcome.status == NotificationStatus.FAILED
    clock.advance(days=1)
    assert await worker.run_until_idle() == []
    assert len(http.sent) == 1
    stored = await row(ctx.db, notification_id)
    assert stored.status == NotificationStatus.FAILED
    assert stored.last_error is not None and "21211" in stored.last_error
    assert "+447911123456" not in stored.last_error  # the number is masked in the error


async def test_transient_failures_stop_at_the_limit_as_dead(
    tmp_path: Path, db_url: str, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, db_url, notify_max_attempts=3)
    db = Database.from_settings(settings)
    try:
        ctx = Context(db=db, principal=Principal.system("t"), settings=settings, clock=clock)
        http = RecordingTwilioHttp()
        http.answer(503, UNAVAILABLE, times=10)
        notification_id = await queue_sms(ctx)
        worker = make_worker(ctx, http)
        statuses = []
        for _ in range(5):
            statuses += [o.status for o in await worker.run_until_idle()]
            clock.advance(minutes=10)  # past any backoff this early, within the age limit
        assert statuses == [NotificationStatus.PENDING] * 2 + [NotificationStatus.DEAD]
        assert len(http.sent) == 3
        stored = await row(db, notification_id)
        assert stored.status == NotificationStatus.DEAD
        assert stored.last_error is not None and stored.last_error.startswith("gave up after 3")
    finally:
        await db.dispose()


async def test_message_of_a_crashed_worker_is_sent_after_the_lease_expires_exactly_once(
    ctx: Context, clock: FrozenClock
) -> None:
    http = RecordingTwilioHttp()
    notification_id = await queue_sms(ctx)
    crashed = make_worker(ctx, http, name="crashed")
    claimed = await crashed.claim()
    assert claimed is not None and claimed.id == notification_id
    # The first worker dies here, between claim and send.
    assert (await row(ctx.db, notification_id)).status == NotificationStatus.SENDING

    survivor = make_worker(ctx, http, name="survivor")
    assert await survivor.run_until_idle() == []  # still leased: not sent twice
    clock.advance(seconds=ctx.settings.notify_lease_seconds - 1)
    assert await survivor.run_until_idle() == []
    clock.advance(seconds=2)
    (outcome,) = await survivor.run_until_idle()
    assert outcome.status == NotificationStatus.SENT
    clock.advance(hours=1)
    assert await survivor.run_until_idle() == []
    assert len(http.sent) == 1
    stored = await row(ctx.db, notification_id)
    assert (stored.status, stored.attempts) == (NotificationStatus.SENT, 2)


async def test_a_worker_that_lost_its_lease_does_not_overwrite_the_result(
    ctx: Context, clock: FrozenClock
) -> None:
    out = io.StringIO()
    providers = {NotifyChannel.SMS: ConsoleProvider(NotifyChannel.SMS, out)}
    notification_id = await queue_sms(ctx)
    slow = NotificationWorker(ctx.db, ctx.settings, clock=clock, providers=providers)
    claimed = await slow.claim()
    assert claimed is not None
    clock.advance(seconds=ctx.settings.notify_lease_seconds + 1)
    other = NotificationWorker(ctx.db, ctx.settings, clock=clock, providers=providers)
    (taken_over,) = await other.run_until_idle()
    late = await slow.deliver(claimed)
    assert taken_over.recorded and not late.recorded
    assert (
        await row(ctx.db, notification_id)
    ).provider_message_id == taken_over.provider_message_id


async def test_two_workers_never_send_the_same_row(ctx: Context) -> None:
    patient = await make_patient(ctx.db)
    ids = set()
    async with ctx.db.transaction() as s:
        for i in range(30):
            ids.add(
                await outbox.enqueue_message(
                    s,
                    ctx.settings,
                    channel=NotifyChannel.SMS,
                    recipient=patient.phone or "",
                    language="en",
                    kind="called",
                    fields={"ticket": f"A-{i:03d}", "room": "Room 1"},
                    now=ctx.now(),
                )
            )
    streams = [io.StringIO(), io.StringIO()]
    workers = [
        NotificationWorker(
            ctx.db,
            ctx.settings,
            clock=ctx.clock,
            providers={NotifyChannel.SMS: ConsoleProvider(NotifyChannel.SMS, stream)},
        )
        for stream in streams
    ]
    results = await asyncio.gather(*(w.run_until_idle() for w in workers))
    handled = [[o.notification_id for o in outcomes] for outcomes in results]
    assert all(o.status == NotificationStatus.SENT for outcomes in results for o in outcomes)
    assert set(handled[0]).isdisjoint(handled[1])
    assert set(handled[0]) | set(handled[1]) == ids
    lines = streams[0].getvalue().splitlines() + streams[1].getvalue().splitlines()
    assert sorted(lines) == sorted(
        f"[sms to {patient.phone}] Riverside Clinic: ticket A-{i:03d}, please go to Room 1 now."
        for i in range(30)
    )


@responses.activate
async def test_unregistered_push_token_fails_and_is_removed_from_the_patient(
    tmp_path: Path, db_url: str, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, db_url, push_provider="firebase")
    db = Database.from_settings(settings)
    provider = FirebasePushProvider(credential=FakeGoogleCredential(), project_id="demo")
    try:
        ctx = Context(db=db, principal=Principal.system("t"), settings=settings, clock=clock)
        patient = await make_patient(db, channel=NotifyChannel.PUSH, push_token="stale-token-1")
        responses.post(
            FCM_URL,
            status=404,
            json={
                "error": {
                    "code": 404,
                    "status": "NOT_FOUND",
                    "message": "Requested entity was not found.",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                            "errorCode": "UNREGISTERED",
                        }
                    ],
                }
            },
        )
        notification_id = await queue_sms(ctx, patient)
        worker = NotificationWorker(
            db, settings, clock=clock, providers={NotifyChannel.PUSH: provider}
        )
        (outcome,) = await worker.run_until_idle()
        assert outcome.status == NotificationStatus.FAILED
        assert len(responses.calls) == 1
        async with db.transaction(readonly=True) as s:
            stored = await s.get(Patient, patient.id)
            assert stored is not None
            assert stored.push_token is None
            assert stored.version == patient.version + 1
            audit = (
                await s.execute(select(AuditRecord).where(AuditRecord.target_id == str(patient.id)))
            ).scalar_one()
            assert audit.action == "patient.push_token_cleared"
            assert (await s.get(Notification, notification_id)).status == NotificationStatus.FAILED  # type: ignore[union-attr]
        clock.advance(days=1)
        assert await worker.run_until_idle() == []
    finally:
        provider.close()
        await db.dispose()


async def test_one_log_line_per_message_without_body_or_full_number(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    http = RecordingTwilioHttp()
    http.answer(503, UNAVAILABLE)
    await queue_sms(ctx)
    worker = make_worker(ctx, http)
    with caplog.at_level(logging.INFO, logger="iqms.notify.worker"):
        await worker.run_until_idle()
        ctx.clock.advance(minutes=5)  # type: ignore[attr-defined]
        await worker.run_until_idle()
    lines = [r.getMessage() for r in caplog.records if r.name == "iqms.notify.worker"]
    assert len(lines) == 2
    assert "will retry in" in lines[0] and "sent, provider id SM" in lines[1]
    for line in lines:
        assert "Room 1" not in line and "+447911123456" not in line
        assert "+44******3456" in line


async def test_worker_refuses_to_start_with_missing_credentials(ctx: Context) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=str(ctx.db.url.render_as_string(hide_password=False)),
        sms_provider="twilio",
        twilio_account_sid=TWILIO_SID,
        twilio_from_number=TWILIO_FROM,
    )
    with pytest.raises(ConfigError) as info:
        NotificationWorker(ctx.db, settings)
    assert info.value.setting == "IQMS_TWILIO_AUTH_TOKEN"


async def test_run_stops_when_asked_and_finishes_the_message_in_flight(ctx: Context) -> None:
    out = io.StringIO()
    stop = asyncio.Event()

    class StopsMidSend(ConsoleProvider):
        def send_blocking(self, message):  # type: ignore[no-untyped-def]
            loop.call_soon_threadsafe(stop.set)  # Ctrl-C arrives while this one is sent
            return super().send_blocking(message)

    loop = asyncio.get_running_loop()
    first = await queue_sms(ctx)
    second = await queue_sms(ctx, dedupe_key="other")
    worker = NotificationWorker(
        ctx.db, ctx.settings, clock=ctx.clock,
        providers={NotifyChannel.SMS: StopsMidSend(NotifyChannel.SMS, out)},
    )  # fmt: skip
    handled = await asyncio.wait_for(worker.run(stop, poll_seconds=0.01), timeout=30)
    assert handled == 1
    statuses = {(await row(ctx.db, i)).status for i in (first, second)}
    assert statuses == {NotificationStatus.SENT, NotificationStatus.PENDING}
    assert len(out.getvalue().splitlines()) == 1


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempts, low, high in [(1, 15, 30), (2, 30, 60), (3, 60, 120), (12, 1800, 3600)]:
        delays = {backoff_delay(attempts, rng) for _ in range(20)}
        assert all(low <= d <= high for d in delays)
        assert len(delays) > 1  # jittered: workers do not retry in lockstep
    assert timedelta(seconds=backoff_delay(50, rng)) <= timedelta(hours=1)


async def test_a_message_queued_hours_ago_is_not_sent_late(
    ctx: Context, clock: FrozenClock
) -> None:
    http = RecordingTwilioHttp()
    notification_id = await queue_sms(ctx)
    clock.advance(minutes=ctx.settings.notify_max_age_minutes + 1)  # the worker was down
    worker = make_worker(ctx, http)
    (outcome,) = await worker.run_until_idle()
    assert outcome.status == NotificationStatus.FAILED
    assert http.sent == []
    stored = await row(ctx.db, notification_id)
    assert stored.status == NotificationStatus.FAILED
    assert stored.last_error is not None and "IQMS_NOTIFY_MAX_AGE_MINUTES" in stored.last_error


async def test_a_message_within_its_age_limit_is_still_sent(
    ctx: Context, clock: FrozenClock
) -> None:
    http = RecordingTwilioHttp()
    await queue_sms(ctx)
    clock.advance(minutes=ctx.settings.notify_max_age_minutes - 1)
    (outcome,) = await make_worker(ctx, http).run_until_idle()
    assert outcome.status == NotificationStatus.SENT
    assert len(http.sent) == 1


async def test_a_login_code_leaves_the_outbox_once_it_is_sent(ctx: Context) -> None:
    """The patient's phone gets the code; the database keeps no copy of it afterwards."""
    http = RecordingTwilioHttp()
    async with ctx.db.transaction() as s:
        notification_id = await outbox.enqueue_message(
            s,
            ctx.settings,
            channel=NotifyChannel.SMS,
            recipient="+447911123456",
            language="en",
            kind="login_code",
            fields={"code": "482913", "minutes": 10},
            now=ctx.now(),
        )
    assert notification_id is not None
    (outcome,) = await make_worker(ctx, http).run_until_idle()
    assert outcome.status == NotificationStatus.SENT
    (request,) = http.sent
    assert "482913" in request.data["Body"]
    stored = await row(ctx.db, notification_id)
    assert stored.status == NotificationStatus.SENT
    assert "482913" not in stored.body and "482913" not in str(stored.payload)
