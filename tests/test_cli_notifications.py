"""``iqms admin notifications ...`` and ``iqms worker`` through the real CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty, Queue

import pytest
from typer.testing import CliRunner, Result

from iqms.cli import app
from iqms.core.config import load_settings
from iqms.core.db import Database
from iqms.core.enums import NotificationStatus, NotifyChannel
from iqms.core.models import Notification
from iqms.core.notify import outbox

runner = CliRunner()
ROOT_PW = "root-pass-1234"


def iqms(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


def _login(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "IQMS_DATABASE_URL": url,
        "IQMS_DATA_DIR": str(tmp_path / "data"),
        "IQMS_CONFIG_DIR": str(tmp_path / "config"),
        "IQMS_SECRET_KEY": "cli-test-secret-0123456789abcdef",
        "IQMS_BCRYPT_ROUNDS": "4",
        "IQMS_CLINIC_NAME": "Riverside Clinic",
        "IQMS_SMS_PROVIDER": "console",
        "IQMS_PUSH_PROVIDER": "none",
        "COLUMNS": "200",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("IQMS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    boot = iqms(
        "admin", "bootstrap", "root", "--full-name", "Ada Admin", "--password-stdin",
        input=ROOT_PW + "\n",
    )  # fmt: skip
    assert boot.exit_code == 0, boot.output
    assert iqms("login", "root", "--password-stdin", input=ROOT_PW + "\n").exit_code == 0
    return env


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The CLI on the test database with the console SMS provider, logged in as ``root``."""
    return _login(db_url, tmp_path, monkeypatch)


def seed(*rows: tuple[str, NotificationStatus]) -> list[uuid.UUID]:
    """Outbox rows (recipient, status) written straight into the test database."""

    async def go() -> list[uuid.UUID]:
        settings = load_settings()
        db = Database.from_settings(settings)
        ids = []
        try:
            async with db.transaction() as s:
                for i, (recipient, status) in enumerate(rows):
                    nid = await outbox.enqueue_message(
                        s, settings, channel=NotifyChannel.SMS, recipient=recipient,
                        language="en", kind="called", fields={"ticket": f"A-{i + 1:03d}",
                        "room": "Room 1"}, now=datetime.now(UTC),
                    )  # fmt: skip
                    assert nid is not None
                    row = await s.get(Notification, nid)
                    assert row is not None
                    row.status = status
                    if status != NotificationStatus.PENDING:
                        row.attempts = 1
                        row.last_error = "Twilio error 21211: invalid number"
                    ids.append(nid)
        finally:
            await db.dispose()
        return ids

    return asyncio.run(go())


def statuses() -> list[str]:
    result = iqms("admin", "notifications", "list", "--json")
    assert result.exit_code == 0, result.output
    return sorted(r["status"] for r in json.loads(result.stdout))


def test_list_filters_by_status_and_masks_recipients(cli_env: dict[str, str]) -> None:
    empty = iqms("admin", "notifications", "list")
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "No messages." in empty.stderr
    seed(
        ("+447911123401", NotificationStatus.PENDING), ("+447911123402", NotificationStatus.FAILED)
    )
    table = iqms("admin", "notifications", "list")
    assert table.exit_code == 0
    for expected in ("called", "pending", "failed", "+44******3401", "21211"):
        assert expected in table.stdout
    assert "+447911123401" not in table.stdout
    failed = json.loads(
        iqms("admin", "notifications", "list", "--status", "failed", "--json").stdout
    )
    assert [(r["status"], r["recipient"], r["ticket_number"]) for r in failed] == [
        ("failed", "+44******3402", None)
    ]
    assert "body" not in failed[0]
    bad = iqms("admin", "notifications", "list", "--status", "lost")
    assert bad.exit_code == 2


def test_retry_one_and_all_dead(cli_env: dict[str, str]) -> None:
    failed, dead1, _dead2, sent = seed(
        ("+447911123401", NotificationStatus.FAILED),
        ("+447911123402", NotificationStatus.DEAD),
        ("+447911123403", NotificationStatus.DEAD),
        ("+447911123404", NotificationStatus.SENT),
    )
    one = iqms("admin", "notifications", "retry", failed.hex[:8])
    assert one.exit_code == 0, one.output
    assert one.stdout.strip() == str(failed)
    assert "queued again" in one.stderr
    refused = iqms("admin", "notifications", "retry", str(sent))
    assert refused.exit_code == 7
    assert refused.stderr.strip() == (
        f"iqms: error: notification {sent.hex[:8]} is sent; only failed or dead messages "
        "can be retried"
    )
    missing = iqms("admin", "notifications", "retry", "0123abcd")
    assert missing.exit_code == 3
    assert iqms("admin", "notifications", "retry").exit_code == 2
    assert iqms("admin", "notifications", "retry", str(dead1), "--all-dead").exit_code == 2
    all_dead = iqms("admin", "notifications", "retry", "--all-dead")
    assert all_dead.exit_code == 0
    assert all_dead.stdout.strip() == "2"
    assert statuses() == ["pending", "pending", "pending", "sent"]


def test_test_sms_goes_through_the_configured_provider(cli_env: dict[str, str]) -> None:
    result = iqms("admin", "notifications", "test", "--to", "07911 123456")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "[sms to +447911123456] Riverside Clinic: this is a test message from the queue "
        "system. No reply needed."
    )
    assert lines[1].startswith("console-")
    (row,) = json.loads(iqms("admin", "notifications", "list", "--json").stdout)
    assert (row["template"], row["status"], row["provider_message_id"]) == (
        "test", "sent", lines[1]
    )  # fmt: skip
    bad = iqms("admin", "notifications", "test", "--to", "12")
    assert bad.exit_code == 7
    assert bad.stderr.startswith("iqms: error: '12' is not")


def test_test_sms_names_the_missing_setting(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQMS_SMS_PROVIDER", "twilio")
    result = iqms("admin", "notifications", "test", "--to", "+447700900123")
    assert result.exit_code == 9
    assert result.stderr.strip() == (
        "iqms: error: IQMS_TWILIO_ACCOUNT_SID is not set (needed for IQMS_SMS_PROVIDER=twilio)"
    )
    assert statuses() == []


def test_staff_may_list_but_not_retry(cli_env: dict[str, str]) -> None:
    (failed,) = seed(("+447911123401", NotificationStatus.FAILED))
    add = iqms(
        "admin", "users", "add", "rita", "--full-name", "Rita Reception", "--role", "staff",
        "--password-stdin", input="rita-pass-5678\n",
    )  # fmt: skip
    assert add.exit_code == 0, add.output
    assert iqms("login", "rita", "--password-stdin", input="rita-pass-5678\n").exit_code == 0
    assert iqms("admin", "notifications", "list").exit_code == 0
    denied = iqms("admin", "notifications", "retry", str(failed))
    assert denied.exit_code == 4
    assert statuses() == ["failed"]


def test_worker_once_sends_what_is_due(cli_env: dict[str, str]) -> None:
    seed(
        ("+447911123401", NotificationStatus.PENDING), ("+447911123402", NotificationStatus.PENDING)
    )
    result = iqms("worker", "--once")
    assert result.exit_code == 0, result.output
    assert sorted(result.stdout.splitlines()) == [
        "[sms to +447911123401] Riverside Clinic: ticket A-001, please go to Room 1 now.",
        "[sms to +447911123402] Riverside Clinic: ticket A-002, please go to Room 1 now.",
    ]
    assert "2 message(s) handled" in result.stderr
    assert statuses() == ["sent", "sent"]


def test_worker_refuses_to_start_without_credentials(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQMS_SMS_PROVIDER", "twilio")
    monkeypatch.setenv("IQMS_TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("IQMS_TWILIO_FROM_NUMBER", "+15017122661")
    seed(("+447911123401", NotificationStatus.PENDING))
    result = iqms("worker", "--once")
    assert result.exit_code == 9
    assert result.stderr.strip().splitlines()[-1] == (
        "iqms: error: IQMS_TWILIO_AUTH_TOKEN is not set (needed for IQMS_SMS_PROVIDER=twilio)"
    )
    assert statuses() == ["pending"]
    monkeypatch.setenv("IQMS_SMS_PROVIDER", "none")
    nothing = iqms("worker")
    assert nothing.exit_code == 9
    assert "both 'none'" in nothing.stderr


@pytest.fixture
def worker_process(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[subprocess.Popen[str], Queue[str]]]:
    """``iqms worker`` as a real process on an SQLite file (signals need a process)."""
    env = {**os.environ, **_login(sqlite_url, tmp_path, monkeypatch), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "iqms", "worker", "--poll", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: Queue[str] = Queue()

    def pump(stream: object, tag: str) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(f"{tag}{line.rstrip()}")

    for stream, tag in ((proc.stdout, "out:"), (proc.stderr, "err:")):
        threading.Thread(target=pump, args=(stream, tag), daemon=True).start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def wait_for(lines: Queue[str], text: str, seen: list[str]) -> str:
    while True:
        try:
            line = lines.get(timeout=60)
        except Empty:
            raise AssertionError(f"no line containing {text!r}; saw {seen}") from None
        seen.append(line)
        if text in line:
            return line


@pytest.mark.sqlite
def test_worker_sends_until_ctrl_c_then_stops_cleanly(
    worker_process: tuple[subprocess.Popen[str], Queue[str]],
) -> None:
    proc, lines = worker_process
    seen: list[str] = []
    wait_for(lines, "Ctrl-C stops", seen)
    seed(("+447911123401", NotificationStatus.PENDING))
    assert wait_for(lines, "out:[sms to +447911123401]", seen)
    log = wait_for(lines, "notification ", seen)
    assert "sms called to +44******3401 (attempt 1): sent" in log
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    wait_for(lines, "stopped after 1 message(s)", seen)
    assert statuses() == ["sent"]
