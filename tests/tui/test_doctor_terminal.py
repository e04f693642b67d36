"""The real ``iqms doctor`` command in a terminal: a pseudo-terminal read through a VT100 emulator.

The command runs as a separate process with its own settings from the
environment, as a doctor would start it; the test types at its login screen,
presses keys and reads the screen the way a person would see it (pyte keeps
the screen the escape sequences draw).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest

from iqms.core.clock import SystemClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import TicketStatus
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import queue
from tests.tui.doctor_clinic import doctor_clinic, issue
from tests.tui.support import PASSWORD

COLUMNS, LINES = 100, 30
#: generous: a cold start of Python, Textual and the database on a busy machine
START_SECONDS = 60.0
STEP_SECONDS = 20.0


class Terminal:
    """A child process on a pseudo-terminal of a fixed size, and what its screen shows."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
            close_fds=True,
        )  # fmt: skip
        os.close(slave)
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.ByteStream(self.screen)

    def pump(self, seconds: float) -> None:
        """Read what the program drew for up to ``seconds``."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], min(left, 0.05))
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the program has ended
                return
            if not data:
                return
            self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, *texts: str, within: float = STEP_SECONDS) -> None:
        end = time.monotonic() + within
        while not all(t in self.text() for t in texts):
            if time.monotonic() > end or self.process.poll() is not None:
                raise AssertionError(f"the screen never showed {texts}:\n{self.text()}")
            self.pump(0.1)

    def type(self, keys: str) -> None:
        """Key presses one at a time, as fingers make them."""
        for key in keys:
            os.write(self.master, key.encode())
            self.pump(0.02)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)


@pytest.fixture
def terminal_env(tui_settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IQMS_")}
    env.update(
        TERM="xterm-256color",
        COLUMNS=str(COLUMNS),
        LINES=str(LINES),
        IQMS_DATABASE_URL=tui_settings.database_url,
        IQMS_DATA_DIR=str(tui_settings.data_dir),
        IQMS_CONFIG_DIR=str(tui_settings.config_dir),
        IQMS_SECRET_KEY=tui_settings.secret_key.get_secret_value(),
        IQMS_BCRYPT_ROUNDS="4",
        IQMS_CLINIC_NAME="Riverside Clinic",
        IQMS_TIMEZONE="Europe/London",
    )
    return env


async def test_the_real_command_logs_in_with_keys_and_calls_the_next_patient(
    tui_settings: Settings, terminal_env: dict[str, str]
) -> None:
    db = Database.from_settings(tui_settings)
    core = Context(
        db=db, principal=Principal.system("test"), settings=tui_settings, clock=SystemClock()
    )  # fmt: skip  (the command runs on the real clock)
    try:
        c = await doctor_clinic(core)
        ticket = await issue(core, c.patients["Amelia Hughes"], category=3)
        iqms = Path(sys.executable).with_name("iqms")
        term = Terminal([str(iqms), "doctor", "--room", "Room 3"], terminal_env)
        try:
            term.wait_for("Doctor console", "Username", within=START_SECONDS)
            term.type("drsmith\r")
            term.type(PASSWORD + "\r")
            # ... and the keys in the footer
            term.wait_for("Dr Sam Smith", "Room 3", "My queue · 1 waiting", "A-001", "n Next")
            term.type("n")
            term.wait_for("Amelia Hughes", "CALLED", "3 Urgent")
            assert "Traceback" not in term.text()
            term.type("\x11")  # Ctrl+Q
            end = time.monotonic() + STEP_SECONDS
            while term.process.poll() is None and time.monotonic() < end:
                term.pump(0.1)
            assert term.process.returncode == 0
        finally:
            term.close()
        called = await queue.get_ticket(core, ticket=ticket.id)
        assert called.status == TicketStatus.CALLED and called.called_room == "Room 3"
    finally:
        await db.dispose()
