"""The real ``iqms kiosk`` in a real terminal (tmux), printing on the fake network printer.

Keys go in with ``tmux send-keys`` and the screen comes back with ``capture-pane``, as a
patient and a member of staff would use it: take a ticket, find that Ctrl+Q only asks for
the staff PIN, and stop it cleanly from its computer with SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from iqms.core.db import Database
from iqms.core.models import QueueEntry
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from tests.kiosk.fake_printer import FakePrinter
from tests.kiosk.support import PIN, kiosk_key
from tests.test_queue_fixtures import small_clinic

TMUX = shutil.which("tmux")
ROOT = Path(__file__).resolve().parents[2]


class Terminal:
    """A detached tmux server of our own, with one 100x34 window."""

    def __init__(self, workdir: Path) -> None:
        assert TMUX is not None, "tmux is needed for this test (apt-get install tmux)"
        self.socket = f"iqms-kiosk-{uuid.uuid4().hex[:8]}"
        self.workdir = workdir

    def tmux(self, *args: str) -> str:
        done = subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True,
                              check=True, timeout=10)  # fmt: skip
        return done.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        script = self.workdir / f"run-{uuid.uuid4().hex[:6]}.sh"
        exports = "".join(f"export {k}='{v}'\n" for k, v in env.items())
        args = " ".join(f"'{a}'" for a in command)
        script.write_text(
            # the terminal's own size, not one a test runner left in the environment
            f"#!/bin/sh\nunset COLUMNS LINES\n{exports}cd '{self.workdir}'\n{args}\n"
            # written whole, then renamed: a reader never sees the file before its number
            f"echo $? > '{self.workdir}/exit-code.part'\n"
            f"mv '{self.workdir}/exit-code.part' '{self.workdir}/exit-code'\nsleep 60\n"
        )
        script.chmod(0o755)
        (self.workdir / "exit-code").unlink(missing_ok=True)
        self.tmux("new-session", "-d", "-x", "100", "-y", "34", "-s", "kiosk", str(script))

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "kiosk")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "kiosk", *keys)

    def wait_for(self, condition: Callable[[], bool], what: str, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.screen()}")

    def wait_text(self, text: str, within: float = 30.0) -> None:
        self.wait_for(lambda: text in self.screen(), repr(text), within)

    def exit_code(self) -> int | None:
        path = self.workdir / "exit-code"
        return int(path.read_text().strip()) if path.exists() else None

    def kiosk_pid(self) -> int:
        shell = int(self.tmux("display-message", "-p", "-t", "kiosk", "#{pane_pid}").strip())
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(shell)], capture_output=True,
                                  text=True, check=True).stdout.split()  # fmt: skip
        return int(children[0])

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        term.close()


@pytest.mark.sqlite
def test_the_real_kiosk_in_a_terminal_prints_and_stops(
    terminal: Terminal, tmp_path: Path, sqlite_url: str
) -> None:
    data = tmp_path / "kiosk-data"

    async def setup() -> tuple[str, Context]:
        from tests.conftest import make_settings

        settings = make_settings(tmp_path, sqlite_url)
        db = Database.from_settings(settings)
        ctx = Context(db=db, principal=Principal.system("test"), settings=settings)
        try:
            await small_clinic(ctx, doctors=False)
            return await kiosk_key(ctx), ctx
        finally:
            await db.dispose()

    key, _ = asyncio.run(setup())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "IQMS_DATABASE_URL": sqlite_url,
        "IQMS_DATA_DIR": str(data),
        "IQMS_CONFIG_DIR": str(tmp_path / "config"),
        "IQMS_SECRET_KEY": "test-signing-secret-0123456789abcdef",
        "IQMS_DEVICE_KEY": key,
        "IQMS_KIOSK_ADMIN_PIN": PIN,
        "IQMS_CLINIC_NAME": "Riverside Clinic",
        "IQMS_TIMEZONE": "Europe/London",
        "IQMS_SMS_PROVIDER": "none",  # no SMS offered: straight to the ticket
        "ESCPOS_CAPABILITIES_PICKLE_DIR": os.environ.get("ESCPOS_CAPABILITIES_PICKLE_DIR", ""),
        "PYTHONPATH": str(ROOT),
    }
    with FakePrinter() as printer:
        command = [sys.executable, "-m", "iqms", "kiosk", "--printer", printer.spec]
        terminal.start(command, env)
        terminal.wait_text("Choose your language")
        terminal.keys("1")
        terminal.wait_text("Choose a service")
        assert "General Practice" in terminal.screen()
        terminal.keys("1")
        terminal.wait_text("Please take your ticket.")
        [paper] = printer.wait_for_tickets(1)

        terminal.keys("C-q")  # staff only: the PIN (checked in the Pilot tests)
        terminal.wait_text("Quit the kiosk (staff)")
        terminal.keys("1", "2", "Escape")  # a patient trying digits gets nowhere
        terminal.wait_for(lambda: "Quit the kiosk" not in terminal.screen(), "the PIN to close")
        assert "Please take your ticket." in terminal.screen()
        assert terminal.exit_code() is None

        # Its computer stops it (systemctl stop sends SIGTERM): it leaves cleanly.
        os.kill(terminal.kiosk_pid(), signal.SIGTERM)
        terminal.wait_for(lambda: terminal.exit_code() is not None, "the kiosk to stop")
        assert terminal.exit_code() == 0

    async def tickets() -> list[str]:
        db = Database(sqlite_url)
        try:
            async with db.transaction(readonly=True) as s:
                return list((await s.execute(select(QueueEntry.ticket_number))).scalars())
        finally:
            await db.dispose()

    assert asyncio.run(tickets()) == [paper.largest.text]
    assert "stopped by SIGTERM" in (data / "kiosk.log").read_text()
