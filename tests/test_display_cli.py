"""``iqms admin display`` through the CLI, and the real ``iqms display`` running in a terminal.

The board test starts ``iqms display`` in tmux (a real terminal), signs it in
with a display device's key, calls tickets through the services and reads
the screen as a person would: the large number (drawn in the board's pixel
font), the room, the queue, the message line set with ``iqms admin display
message`` from another process, and never a name. The audio player is a
command that keeps the WAV; espeak-ng speaks for real.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from iqms.cli import app
from iqms.core.enums import Role
from iqms.core.service import Context
from iqms.core.services import devices, display
from iqms.tui.display.bigtext import render_lines
from tests.audio_support import fake_player, read_wav
from tests.conftest import make_settings
from tests.system import cli_environment, login_token, run_as_system
from tests.test_queue_fixtures import add_user
from tests.tui.display_support import NAMES, call, named_clinic

runner = CliRunner()
IQMS = str(Path(sys.executable).with_name("iqms"))


@dataclass
class Setup:
    env: dict[str, str]
    admin_token: str
    staff_token: str
    settings: object


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    env = cli_environment(monkeypatch, tmp_path, sqlite_url, IQMS_TIMEZONE="Europe/London",
                          IQMS_CLINIC_NAME="Riverside Clinic",
                          unset=("IQMS_TOKEN", "IQMS_DEVICE_KEY", "IQMS_DEVICE_KEY_FILE",
                                 "IQMS_ANNOUNCE"))  # fmt: skip
    settings = make_settings(tmp_path, sqlite_url)

    async def seed(ctx: Context) -> list[str]:
        tokens = []
        for name, role in (("ada", Role.ADMIN), ("dr", Role.DOCTOR)):
            user = await add_user(ctx, name, role)
            tokens.append(login_token(settings, user.id, name, role))
        return tokens

    admin, doctor = run_as_system(settings, seed)
    return Setup(env, admin, doctor, settings)


def iqms(*args: str, token: str | None = None) -> Result:
    return runner.invoke(app, list(args), env={"IQMS_TOKEN": token} if token else {},
                         prog_name="iqms")  # fmt: skip


def test_the_message_line_is_set_shown_and_cleared_from_the_command_line(cli: Setup) -> None:
    shown = iqms("admin", "display", "message", "Flu vaccinations today, ask at reception",
                 token=cli.admin_token)  # fmt: skip
    assert shown.exit_code == 0, shown.stderr
    assert shown.stderr.strip() == "The boards now show: Flu vaccinations today, ask at reception"
    current = iqms("admin", "display", "show", token=cli.admin_token)
    assert current.stdout.strip() == "Flu vaccinations today, ask at reception"
    assert "set by ada at " in current.stderr
    assert iqms("admin", "display", "clear", token=cli.admin_token).stderr.strip() == (
        "The message line is cleared."
    )
    assert iqms("admin", "display", "clear", token=cli.admin_token).stderr.strip() == (
        "No message was shown."
    )
    assert iqms("admin", "display", "show", "--json", token=cli.admin_token).stdout.strip() == (
        "null"
    )

    too_long = iqms("admin", "display", "message", "x" * 200, token=cli.admin_token)
    assert too_long.exit_code == 7
    assert "at most 160 characters (this one has 200)" in too_long.stderr
    refused = iqms("admin", "display", "message", "Hello", token=cli.staff_token)  # a doctor
    assert refused.exit_code == 4
    assert "doctors cannot set the message line of the waiting-room boards" in refused.stderr
    assert iqms("admin", "display", "message", "Hello").exit_code == 5  # not logged in


def test_queue_watch_lists_a_board_message_among_the_events(cli: Setup) -> None:
    env = {**os.environ, **cli.env, "IQMS_TOKEN": cli.admin_token}
    watcher = subprocess.Popen([IQMS, "queue", "watch", "--count", "1", "--timeout", "10"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        said = []
        for line in watcher.stderr:  # type: ignore[union-attr]
            said.append(line)
            if "watching queue events" in line:
                break  # listening from now on
        assert said and "watching queue events" in said[-1], "".join(said)
        run_as_system(cli.settings, lambda ctx: display.set_message(ctx, text="Back at 14:00"))  # type: ignore[arg-type]
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    assert out.split(maxsplit=1)[1].strip() == "board-message    Back at 14:00"


def test_a_language_the_board_cannot_speak_is_a_setting_error(cli: Setup) -> None:
    result = runner.invoke(app, ["display", "--announce", "voice"], prog_name="iqms",
                           env={"IQMS_TOKEN": cli.admin_token, "IQMS_CLINIC_LANGUAGE": "tlh"})  # fmt: skip
    assert result.exit_code == 9
    assert result.stderr.strip() == (
        "iqms: error: IQMS_CLINIC_LANGUAGE: calls cannot be spoken in 'tlh' yet "
        "(languages: de, en, es, fr, it, nl, pt)"
    )


def test_without_a_device_key_or_a_login_the_board_says_how_to_get_one(cli: Setup) -> None:
    result = iqms("display")
    assert result.exit_code == 5
    assert "this computer has no device key" in result.stderr
    assert "iqms admin devices add NAME --role display" in result.stderr
    assert "Traceback" not in result.output


# ---- the real board in a real terminal ----------------------------------------------------------
class Terminal:
    """``iqms display`` in a detached tmux session of a given size, on a tmux server of its own."""

    def __init__(self, directory: Path, width: int, height: int, command: str, env: dict[str, str]):
        self.socket = directory / "tmux.sock"
        self.status = directory / "exit-status"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        status, part = shlex.quote(str(self.status)), shlex.quote(f"{self.status}.part")
        # written whole, then renamed: a reader never sees the file before its number
        script = (
            f"env -u COLUMNS -u LINES {exports} {command}; echo $? > {part}; mv {part} {status}"
        )
        self.tmux("new-session", "-d", "-s", "board", "-x", str(width), "-y", str(height),
                  "bash", "-c", script)  # fmt: skip

    def tmux(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
                             capture_output=True, text=True, check=False)  # fmt: skip
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "board")

    def press(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "board", *keys)

    def wait_for(self, condition: Callable[[str], bool], what: str, within: float = 20) -> str:
        deadline = time.monotonic() + within
        while True:
            text = self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.1)

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed to run the board in a terminal (apt-get install tmux)")
    opened: list[Terminal] = []

    def open_terminal(**kwargs: object) -> Terminal:
        directory = tmp_path / f"terminal-{len(opened) + 1}"
        directory.mkdir()
        term = Terminal(directory, **kwargs)  # type: ignore[arg-type]
        opened.append(term)
        return term

    yield open_terminal
    for term in opened:
        term.close()


def drawn(text: str, screen: str) -> bool:
    """True when ``text`` is drawn large on the screen (its pixel-font lines, at any scale)."""
    for scale in (1, 2, 3, 4):
        lines = [line.rstrip() for line in render_lines(text, scale)]
        if all(line.strip() == "" or line in screen for line in lines):
            return True
    return False


def test_the_real_board_in_a_terminal_shows_calls_and_messages_and_speaks(
    cli: Setup, tmp_path: Path, terminal: Callable[..., Terminal]
) -> None:
    settings = cli.settings

    async def prepare(ctx: Context) -> tuple[str, object]:
        clinic = await named_clinic(ctx, waiting=3)
        key = (await devices.add(ctx, name="hall-board", role="display")).key
        return key, clinic

    key, clinic = run_as_system(settings, prepare)  # type: ignore[arg-type]
    speaker = fake_player(tmp_path)
    env = dict(cli.env, IQMS_DEVICE_KEY=key, IQMS_ANNOUNCE="voice",
               IQMS_AUDIO_PLAYER=speaker.setting, TERM="xterm-256color",
               PATH=os.environ.get("PATH", ""))  # fmt: skip
    term = terminal(width=100, height=30, command=IQMS + " display --rows 4", env=env)
    screen = term.wait_for(lambda s: "3 waiting" in s, "the board")
    assert "Riverside Clinic" in screen and "hall-board" not in screen
    assert "Now calling" in screen and "No calls yet today" in screen

    time.sleep(0.5)  # the board is listening
    number = run_as_system(settings, lambda ctx: call(ctx, clinic, "drsmith"))  # type: ignore[arg-type]
    term.wait_for(lambda s: drawn(number, s) and drawn("→ Room 1", s), f"{number} large")
    term.wait_for(lambda s: "2 waiting" in s, "the count after the call")

    message = iqms("admin", "display", "message", "Dr Patel is running 20 minutes late",
                   token=cli.admin_token)  # fmt: skip
    assert message.exit_code == 0, message.stderr
    screen = term.wait_for(lambda s: "Dr Patel is running 20 minutes late" in s, "the message")
    for name in NAMES:
        for part in name.split():
            assert part not in screen

    deadline = time.monotonic() + 20
    while not speaker.played() and time.monotonic() < deadline:
        time.sleep(0.1)
    [spoken] = speaker.played()
    assert read_wav(spoken).seconds > 2.5  # the chime, then "Ticket A 1, room 1"

    term.press("C-q")
    deadline = time.monotonic() + 10
    while not term.status.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert term.status.read_text().strip() == "0"
    log = Path(cli.env["IQMS_DATA_DIR"]) / "display.log"
    assert not log.exists() or "Traceback" not in log.read_text()
