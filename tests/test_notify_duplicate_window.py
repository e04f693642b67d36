"""A worker killed after the provider accepted a message but before it recorded that: the next
worker asks Twilio and does not send the SMS again; a provider that cannot tell gets it again
(at least once), and the message's row says the patient may have had it twice."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iqms.core.clock import FrozenClock
from iqms.core.enums import NotificationStatus, NotifyChannel
from iqms.core.notify.console import ConsoleProvider
from iqms.core.notify.worker import NotificationWorker
from iqms.core.service import Context
from tests.test_notify_support import TWILIO_FROM, RecordingTwilioHttp
from tests.test_notify_worker import queue_sms, row, twilio

# A worker process whose provider accepts the message and then the process dies at once
# (SIGKILL: no clean-up, no chance to record anything), like a power cut at that moment.
WORKER_THAT_DIES = """
import asyncio, json, os, signal, sys, uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from twilio.http import HttpClient
from iqms.core.config import load_settings
from iqms.core.db import Database
from iqms.core.enums import NotifyChannel
from iqms.core.notify.console import ConsoleProvider
from iqms.core.notify.twilio_sms import TwilioSmsProvider
from iqms.core.notify.worker import NotificationWorker

kind, evidence, sender = sys.argv[1], sys.argv[2], sys.argv[3]

def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)

class TwilioAcceptsThenWorkerDies(HttpClient):
    def request(self, method, url, params=None, data=None, headers=None, auth=None,
                timeout=None, allow_redirects=False):
        assert method == "POST", (method, url)
        accepted = {"sid": "SM" + uuid.uuid4().hex, "status": "queued", "to": data["To"],
                    "from": data["From"], "body": data["Body"],
                    "date_created": format_datetime(datetime.now(UTC), usegmt=True)}
        with open(evidence, "w") as fh:  # Twilio has it now
            json.dump(accepted, fh)
        die()

class PrintedThenWorkerDies:
    def write(self, text):
        with open(evidence, "a") as fh:
            fh.write(text)
    def flush(self):
        die()

async def main() -> None:
    settings = load_settings()
    if kind == "twilio":
        provider = TwilioSmsProvider(account_sid="AC" + "0123456789abcdef" * 2,
                                     auth_token="f" * 32, sender=sender,
                                     http_client=TwilioAcceptsThenWorkerDies(None, False, None))
    else:
        provider = ConsoleProvider(NotifyChannel.SMS, PrintedThenWorkerDies())
    db = Database.from_settings(settings)
    worker = NotificationWorker(db, settings, providers={NotifyChannel.SMS: provider})
    await worker.process_one()
    raise SystemExit("the worker should not have lived to record the result")

asyncio.run(main())
"""


def kill_a_worker_mid_send(ctx: Context, tmp_path: Path, kind: str) -> Path:
    evidence = tmp_path / f"{kind}-accepted"
    env = {
        "IQMS_DATABASE_URL": ctx.settings.effective_database_url,
        "IQMS_DATA_DIR": str(tmp_path / "worker-data"),
        "IQMS_SECRET_KEY": "test-signing-secret-0123456789abcdef",
        "IQMS_SMS_PROVIDER": "console",
        "PATH": "/usr/bin:/bin",
    }
    died = subprocess.run(
        [sys.executable, "-c", WORKER_THAT_DIES, kind, str(evidence), TWILIO_FROM],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert evidence.exists()
    return evidence


def after_the_lease(ctx: Context, clock: FrozenClock) -> None:
    clock.set(datetime.now(UTC) + timedelta(seconds=ctx.settings.notify_lease_seconds + 1))


async def test_twilio_is_asked_before_sending_again_after_a_worker_died(
    ctx: Context, clock: FrozenClock, tmp_path: Path
) -> None:
    clock.set(datetime.now(UTC))
    notification_id = await queue_sms(ctx)
    evidence = kill_a_worker_mid_send(ctx, tmp_path, "twilio")
    first = json.loads(evidence.read_text())
    stuck = await row(ctx.db, notification_id)
    assert stuck.status == NotificationStatus.SENDING and stuck.send_started_at is not None

    http = RecordingTwilioHttp(accepted=[first])  # Twilio's side: it has the first message
    survivor = NotificationWorker(
        ctx.db, ctx.settings, clock=clock, providers={NotifyChannel.SMS: twilio(http)},
        rng=random.Random(1),
    )  # fmt: skip
    assert await survivor.run_until_idle() == []  # still leased by the dead worker
    after_the_lease(ctx, clock)
    (outcome,) = await survivor.run_until_idle()
    assert outcome.status == NotificationStatus.SENT and outcome.reconciled
    assert http.sent == []  # no second SMS
    assert [r.method for r in http.requests] == ["GET"]
    stored = await row(ctx.db, notification_id)
    assert stored.provider_message_id == first["sid"]
    assert stored.last_error == "accepted by the provider before a worker stopped; not sent again"
    assert stored.send_started_at is None


async def test_a_provider_that_cannot_tell_sends_again_and_says_so(
    ctx: Context, clock: FrozenClock, tmp_path: Path
) -> None:
    clock.set(datetime.now(UTC))
    notification_id = await queue_sms(ctx)
    evidence = kill_a_worker_mid_send(ctx, tmp_path, "console")

    printed = evidence.open("a")
    survivor = NotificationWorker(
        ctx.db, ctx.settings, clock=clock,
        providers={NotifyChannel.SMS: ConsoleProvider(NotifyChannel.SMS, printed)},
    )  # fmt: skip
    after_the_lease(ctx, clock)
    (outcome,) = await survivor.run_until_idle()
    printed.close()
    assert outcome.status == NotificationStatus.SENT and not outcome.reconciled
    lines = evidence.read_text().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]  # the at-least-once window: one duplicate
    stored = await row(ctx.db, notification_id)
    assert "the patient may have got it twice" in (stored.last_error or "")


async def test_an_unanswered_question_to_twilio_sends_nothing_until_it_is_answered(
    ctx: Context, clock: FrozenClock, tmp_path: Path
) -> None:
    clock.set(datetime.now(UTC))
    notification_id = await queue_sms(ctx)
    first = json.loads(kill_a_worker_mid_send(ctx, tmp_path, "twilio").read_text())
    http = RecordingTwilioHttp(accepted=[first])
    survivor = NotificationWorker(
        ctx.db, ctx.settings, clock=clock, providers={NotifyChannel.SMS: twilio(http)},
        rng=random.Random(1),
    )  # fmt: skip
    after_the_lease(ctx, clock)
    http.answer(503, {"code": 20503, "message": "Service unavailable", "status": 503})
    (outcome,) = await survivor.run_until_idle()
    assert outcome.status == NotificationStatus.PENDING
    assert "could not check whether it was sent already" in (outcome.error or "")
    assert (await row(ctx.db, notification_id)).send_started_at is not None
    clock.advance(hours=1)
    (outcome,) = await survivor.run_until_idle()
    assert outcome.reconciled and http.sent == []
