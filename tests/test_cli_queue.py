"""``iqms queue ...`` through the real CLI, logged in with a token, on both databases."""

from __future__ import annotations

import asyncio
import json
import os
import queue as stdqueue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from iqms.cli import app
from iqms.core.clock import SystemClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import Role
from iqms.core.security.rbac import Principal
from iqms.core.security.tokens import issue_token
from iqms.core.service import Context
from iqms.core.services import patients
from tests.conftest import make_settings
from tests.test_queue_fixtures import add_user, small_clinic

runner = CliRunner()


@dataclass
class Tokens:
    staff: str
    drsmith: str
    kiosk: str
    env: dict[str, str]


def _token(settings: Settings, user_id: object, username: str, role: Role) -> str:
    return issue_token(
        settings,
        user_id=user_id,  # type: ignore[arg-type]
        username=username,
        role=role.value,
        token_version=1,
        now=SystemClock().now(),
    )


@pytest.fixture
def clinic_cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tokens:
    """A small clinic on the test database; tokens for reception, Dr Smith and a kiosk."""
    return make_clinic_cli(db_url, tmp_path, monkeypatch)


def make_clinic_cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tokens:
    """A small clinic on ``db_url``; the CLI pointed at it; tokens for three users."""
    settings = make_settings(tmp_path, db_url)
    env = {
        "IQMS_DATABASE_URL": db_url,
        "IQMS_DATA_DIR": str(tmp_path / "data"),
        "IQMS_CONFIG_DIR": str(tmp_path / "config"),
        "IQMS_SECRET_KEY": "test-signing-secret-0123456789abcdef",
        "IQMS_BCRYPT_ROUNDS": "4",
        "IQMS_TIMEZONE": "Europe/London",
        "IQMS_SMS_PROVIDER": "console",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("IQMS_TOKEN", raising=False)

    async def build() -> Tokens:
        db = Database.from_settings(settings)
        try:
            ctx = Context(
                db=db, principal=Principal.system("test"), settings=settings, clock=SystemClock()
            )
            c = await small_clinic(ctx)
            staff = await add_user(ctx, "rita", Role.STAFF, "Rita Reception")
            kiosk = await add_user(ctx, "kiosk1", Role.KIOSK, "Entrance kiosk")
            await patients.register(ctx, full_name="Amelia Hughes", phone="+447911123101")
            smith = c.doctors["drsmith"]
            return Tokens(
                staff=_token(settings, staff.id, "rita", Role.STAFF),
                drsmith=_token(settings, smith.user_id, "drsmith", Role.DOCTOR),
                kiosk=_token(settings, kiosk.id, "kiosk1", Role.KIOSK),
                env=env,
            )
        finally:
            await db.dispose()

    return asyncio.run(build())


def iqms(token: str | None, *args: str) -> Result:
    env = {"IQMS_TOKEN": token} if token else {}
    return runner.invoke(app, list(args), env=env)


def test_a_visit_from_ticket_to_served(clinic_cli: Tokens) -> None:
    t = clinic_cli
    issued = iqms(t.staff, "queue", "issue", "-d", "GEN", "--patient", "MRN000001", "--json")
    assert issued.exit_code == 0, issued.output
    ticket = json.loads(issued.stdout)
    assert ticket["ticket_number"] == "A-001" and ticket["position"] == 1
    second = iqms(t.kiosk, "queue", "issue", "-d", "gen")
    assert second.exit_code == 0 and second.stdout.strip() == "A-002"
    assert "position 2" in second.stderr

    status = iqms(t.kiosk, "queue", "status", "A-2")
    assert status.stdout.startswith("A-002 (General Practice): waiting, position 2 (1 ahead)")

    called = iqms(t.drsmith, "queue", "call-next")
    assert called.exit_code == 0, called.output
    assert called.stdout.strip() == "A-001"
    assert "called to Room 1" in called.stderr
    assert iqms(t.drsmith, "queue", "start", "A-001").exit_code == 0
    served = iqms(t.drsmith, "queue", "serve", "A-001", "--json")
    assert json.loads(served.stdout)["status"] == "served"

    listed = iqms(t.staff, "queue", "list", "--json", "-s", "waiting", "-s", "served")
    rows = {r["ticket_number"]: r for r in json.loads(listed.stdout)}
    assert rows["A-001"]["status"] == "served"
    assert rows["A-002"]["position"] == 1 and rows["A-002"]["patient"] is None
    named = iqms(t.staff, "queue", "list", "--names", "--csv", "-s", "served")
    assert "Amelia Hughes" in named.stdout.splitlines()[1]
    board = iqms(t.kiosk, "queue", "board", "GEN")
    assert board.exit_code == 0
    assert "next: A-002" in board.stdout and "Amelia" not in board.stdout


def test_mistakes_get_one_line_errors_and_exit_codes(clinic_cli: Tokens) -> None:
    t = clinic_cli
    assert iqms(t.staff, "queue", "issue", "-d", "GEN").exit_code == 0
    wrong_move = iqms(t.staff, "queue", "serve", "A-001")
    assert wrong_move.exit_code == 7
    assert wrong_move.stderr.strip() == (
        "iqms: error: cannot mark A-001 as served: it is waiting, not called or in service"
    )
    assert "Traceback" not in wrong_move.output
    assert iqms(t.staff, "queue", "issue", "-d", "XRAY").exit_code == 3
    assert iqms(t.kiosk, "queue", "issue", "-d", "GEN", "-c", "1").exit_code == 4
    assert iqms(t.staff, "queue", "issue", "-d", "GEN", "-c", "9").exit_code == 7
    assert iqms(t.staff, "queue", "call-next").exit_code == 7  # staff must name the doctor
    assert iqms(None, "queue", "list").exit_code == 5
    assert iqms(t.drsmith, "queue", "call-next").stdout.strip() == "A-001"
    empty = iqms(t.drsmith, "queue", "call-next")
    assert empty.exit_code == 3 and "nobody is waiting" in empty.stderr


def test_reception_moves_tickets(clinic_cli: Tokens) -> None:
    t = clinic_cli
    for _ in range(3):
        assert iqms(t.staff, "queue", "issue", "-d", "GEN").exit_code == 0
    assert iqms(t.staff, "queue", "category", "A-003", "very-urgent").exit_code == 0
    assert iqms(t.staff, "queue", "hold", "A-001", "--reason", "X-ray first").exit_code == 0
    moved = iqms(t.staff, "queue", "transfer", "A-002", "-d", "PED")
    assert moved.exit_code == 0 and moved.stdout.strip() == "P-001"
    order = json.loads(iqms(t.staff, "queue", "list", "--json").stdout)
    assert [(r["ticket_number"], r["status"]) for r in order] == [
        ("A-003", "waiting"),
        ("P-001", "waiting"),
        ("A-001", "held"),
    ]
    assert iqms(t.staff, "queue", "return", "A-001").exit_code == 0
    assert iqms(t.staff, "queue", "cancel", "A-001").exit_code == 0
    assert iqms(t.drsmith, "queue", "call", "A-003").stdout.strip() == "A-003"
    assert iqms(t.drsmith, "queue", "recall", "A-003").exit_code == 0
    gone = iqms(t.drsmith, "queue", "recall", "A-003", "--no-show-after", "1")
    assert gone.exit_code == 0 and "no-show" in gone.stderr
    mine = json.loads(iqms(t.drsmith, "queue", "doctor", "--json").stdout)
    assert mine["room"] == "Room 1" and mine["waiting"] == []


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "iqms", *args]


def test_watch_in_one_process_shows_a_call_from_another(clinic_cli: Tokens) -> None:
    t = clinic_cli
    assert iqms(t.staff, "queue", "issue", "-d", "GEN").exit_code == 0
    env = {**os.environ, **t.env, "IQMS_TOKEN": t.staff}
    watcher = subprocess.Popen(
        _cli("queue", "watch", "-d", "GEN", "--count", "1", "--timeout", "60"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: stdqueue.Queue[str] = stdqueue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in watcher.stderr], daemon=True).start()  # type: ignore[union-attr]
    try:
        ready = lines.get(timeout=60)
        assert "watching" in ready, ready
        caller = subprocess.run(
            _cli("queue", "call-next"),
            env={**env, "IQMS_TOKEN": t.drsmith},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert caller.returncode == 0, caller.stderr
        out, _ = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0
    event = out.strip().splitlines()
    assert len(event) == 1
    assert "called" in event[0] and "A-001 [GEN] Room 1" in event[0]
