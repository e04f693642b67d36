"""After the demo, the next steps it prints work exactly as printed, in a shell where ``iqms``
is not on the PATH (as right after ``make demo``)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from iqms.cli import app
from tests.terminal import run_at_terminal

runner = CliRunner()

#: full-screen consoles: each has a test of its own in a real terminal; here they must be
#: commands this program knows, with the options shown
CONSOLES = {"reception", "doctor", "kiosk", "display"}

ACCOUNT_ROW = re.compile(r"^│ (\w+)\s+│ (\w+)\s+│ (\S+)\s+│$")


def test_the_printed_next_steps_run_as_shown(tmp_path: Path) -> None:
    installed = Path(sys.executable).parent / "iqms"  # the venv's script, as make demo runs it
    env = {
        "PATH": "/usr/bin:/bin",  # a fresh shell: the virtualenv is not activated
        "HOME": str(tmp_path),
        "IQMS_DATA_DIR": str(tmp_path / "data"),
        "IQMS_CONFIG_DIR": str(tmp_path / "config"),
        "IQMS_BCRYPT_ROUNDS": "4",
        "COLUMNS": "120",
    }
    demo = subprocess.run(
        [str(installed), "demo", "--no-simulate"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    out = demo.stdout.splitlines()
    passwords = {m[1]: m[3] for line in out if (m := ACCOUNT_ROW.match(line.strip()))}
    assert {"reception", "drsmith"} <= set(passwords)
    start = next(i for i, line in enumerate(out) if line.startswith("Next"))
    steps = [line.strip() for line in out[start + 1 :] if line.startswith("  ")]
    assert steps[0].startswith("export IQMS_DATABASE_URL=")
    assert f"'{installed}' because 'iqms' is not on your PATH" in " ".join(steps)

    shell_env = dict(env)
    ran = []
    for step in steps:
        command = step.split("#", 1)[0].strip()
        if not command or command.startswith("("):
            continue
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").partition("=")
            shell_env[name] = shlex.split(value)[0]
            continue
        for part in command.split(" && "):
            argv = shlex.split(part)
            program = argv[0] if os.path.isabs(argv[0]) else str(tmp_path / argv[0])
            assert os.access(program, os.X_OK), f"{argv[0]} is not a program one can run"
            if argv[1] == "login":  # typed at the password prompt, with the printed program
                done = run_at_terminal(
                    argv[1:], [passwords[argv[2]]], env=shell_env, program=[program]
                )
                assert done.exit_code == 0, (part, done.screen)
                assert "error" not in done.screen.lower(), (part, done.screen)
            elif argv[1] in CONSOLES:
                result = runner.invoke(app, [*argv[1:], "--help"], env=shell_env, prog_name="iqms")
                assert result.exit_code == 0, (part, result.output)
            else:  # the same program's commands, run in this process to keep the test quick
                result = runner.invoke(app, argv[1:], env=shell_env, prog_name="iqms")
                assert result.exit_code == 0, (part, result.output)
                assert "error" not in result.stderr.lower(), (part, result.stderr)
            ran.append(" ".join(argv[1:3]))
    assert ran == [
        "login reception", "queue list", "patients list", "queue issue", "login drsmith",
        "queue call-next", "doctor",
    ]  # fmt: skip
