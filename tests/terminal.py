"""Run ``iqms`` at a real (pseudo-)terminal, as a person typing at prompts would."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass
class TerminalRun:
    exit_code: int
    screen: str  # everything the terminal showed (prompts, echoed typing, output)


def run_at_terminal(
    args: Sequence[str],
    answers: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    program: Sequence[str] = (sys.executable, "-m", "iqms"),
) -> TerminalRun:
    """Run ``iqms ARGS`` in a new pseudo-terminal; answer each prompt (a line ending in
    ": ") with the next of ``answers``, as a person would type it."""
    command = [*program, *args]
    child_env = {**os.environ, **(env or {}), "TERM": "dumb", "COLUMNS": "120"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its standard input, output and /dev/tty
        try:
            os.execve(command[0], command, child_env)
        finally:
            os._exit(127)
    screen = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"iqms {' '.join(args)} hung; screen so far:\n{screen!r}")
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            if pending and screen.split(b"\n")[-1].endswith(b": "):
                screen += b"\n"  # each later prompt on a line of its own
                os.write(fd, pending.pop(0).encode() + b"\r")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return TerminalRun(os.waitstatus_to_exitcode(status), screen.decode(errors="replace"))
