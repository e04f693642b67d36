"""The real ``iqms reception`` command in a real terminal (tmux): log in with keys, read the queue.

tmux gives the console a pseudo-terminal of 100x30 and keeps what it draws;
``capture-pane`` reads the screen as a person would see it.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from tests.tui.desk import seed_desk
from tests.tui.support import PASSWORD, console_settings

TMUX = shutil.which("tmux") or "tmux"


class Terminal:
    """A tmux session of its own (own server socket), read and typed into like a terminal."""

    def __init__(
        self, command: str, env: dict[str, str], size: tuple[int, int] = (100, 30)
    ) -> None:
        self.socket = f"iqms-test-{uuid.uuid4().hex[:8]}"
        self.name = "desk"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        subprocess.run(
            [TMUX, "-L", self.socket, "new-session", "-d", "-s", self.name,
             "-x", str(size[0]), "-y", str(size[1]), f"env {exports} {command}; sleep 30"],
            check=True,
        )  # fmt: skip

    def screen(self) -> str:
        out = subprocess.run(
            [TMUX, "-L", self.socket, "capture-pane", "-p", "-t", self.name],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        args = [TMUX, "-L", self.socket, "send-keys", "-t", self.name]
        subprocess.run([*args, *(["-l"] if literal else []), *keys], check=True)

    def wait_for(self, text: str, within: float = 20.0) -> str:
        deadline = time.monotonic() + within
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear; the screen shows:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True, check=False)


def test_iqms_reception_in_a_terminal_logs_in_with_keys_and_shows_the_queue(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = console_settings(tmp_path, sqlite_url)
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))  # the command keeps real time

    async def seed() -> None:
        db = Database.from_settings(settings)
        core = Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
        try:
            await seed_desk(core, clock, morning=clock.now())
        finally:
            await db.dispose()

    asyncio.run(seed())
    env = {
        "IQMS_DATABASE_URL": sqlite_url,
        "IQMS_DATA_DIR": str(tmp_path / "desk-data"),
        "IQMS_CONFIG_DIR": str(tmp_path / "desk-config"),  # no saved login: the login screen
        "IQMS_SECRET_KEY": settings.signing_secret(),
        "IQMS_TIMEZONE": settings.timezone,
        "IQMS_CLINIC_NAME": settings.clinic_name,
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
    }
    terminal = Terminal(f"{shlex.quote(sys.executable)} -m iqms reception", env)
    try:
        terminal.wait_for("Username")
        terminal.keys("rita", literal=True)
        terminal.keys("Enter")
        terminal.keys(PASSWORD, literal=True)
        terminal.keys("Enter")
        screen = terminal.wait_for("Amelia Hughes")
        assert "Rita Reception (staff)" in screen and "● online" in screen
        lines = [line.split() for line in screen.splitlines()]
        queue = [words[0] for words in lines if words and words[0][:2] in ("A-", "P-")]
        assert queue[:4] == ["A-002", "A-001", "P-001", "A-003"]
        assert "n Issue" in screen and "f2 Patients" in screen
        terminal.keys("C-q")
        terminal.wait_for("", within=1)
        deadline = time.monotonic() + 10
        while "Amelia Hughes" in terminal.screen():  # the console has left the screen
            assert time.monotonic() < deadline, terminal.screen()
            time.sleep(0.1)
    finally:
        terminal.close()
