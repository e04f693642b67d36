"""What a new user meets first: each mistake gives one plain line and the documented exit code,
and nothing changes.

Most of these run on SQLite (the CLI's own behaviour); the ones where the database matters run on
both backends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iqms.cli import app
from tests.test_cli_queue import Tokens, iqms, make_clinic_cli

runner = CliRunner()


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tokens:
    return make_clinic_cli(sqlite_url, tmp_path, monkeypatch)


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    """The single ``iqms: error:`` line of a failed command (and nothing on stdout)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("iqms: error: "), lines[0]
    assert result.stdout == ""
    return lines[0].removeprefix("iqms: error: ")


def test_permission_errors_say_who_cannot_do_what(cli: Tokens) -> None:
    issued = iqms(cli.staff, "queue", "issue", "-d", "GEN")
    assert issued.exit_code == 0
    refused = iqms(cli.drsmith, "queue", "cancel", issued.stdout.strip())
    assert refused.exit_code == 4
    assert one_error_line(refused) == (
        "doctors cannot cancel tickets, undo moves or leave notes for doctors "
        "(logged in as drsmith)"
    )
    status = iqms(cli.staff, "queue", "status", issued.stdout.strip())
    assert ": waiting, position 1" in status.stdout


def test_long_or_multi_line_arguments_are_shortened_when_echoed(cli: Tokens) -> None:
    long = "X" * 300
    for args in (["-d", long], [f"--department={long}"]):
        refused = iqms(cli.staff, "queue", "issue", *args)
        assert refused.exit_code == 3
        assert one_error_line(refused) == f"no department {'X' * 40}... (300 characters)"
    medium = "Y" * 70  # up to 80 characters (a path, a name) are echoed whole
    assert (
        one_error_line(iqms(cli.staff, "queue", "issue", "-d", medium)) == f"no department {medium}"
    )
    two_lines = iqms(cli.staff, "queue", "issue", "-d", "GEN\nPED")
    assert two_lines.exit_code == 3
    assert one_error_line(two_lines) == "no department GEN\\nPED"
    unknown = runner.invoke(app, [long], prog_name="iqms")
    assert unknown.exit_code == 2
    assert f"No such command '{'X' * 40}... (300 characters)'" in one_error_line(unknown)
    assert iqms(cli.staff, "queue", "list", "--json").stdout.strip() == "[]"


def test_settings_errors_are_plain_words(cli: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IQMS_DB_POOL_SIZE", "lots")
    refused = iqms(cli.staff, "queue", "list")
    assert refused.exit_code == 9
    assert one_error_line(refused) == "IQMS_DB_POOL_SIZE must be a whole number"


# Runs each command line as ``iqms`` would, one after the other in one process (one start-up).
_RUN_EACH = """
import contextlib, io, json, sys
from iqms.cli import app
done = []
for args in json.loads(sys.argv[1]):
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            app(args, prog_name="iqms")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    done.append([code, out.getvalue(), err.getvalue()])
sys.__stdout__.write(json.dumps(done))
"""


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def without_terminal(*commands: list[str]) -> list[Ran]:
    """Each ``iqms ARGS`` as cron or a script runs it: no terminal at all, nothing on stdin."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN_EACH, json.dumps(commands)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,  # no controlling terminal either
        timeout=120,
        check=True,
    )
    return [Ran(*ran) for ran in json.loads(done.stdout)]


def test_prompts_without_a_terminal_say_what_to_use_instead(cli: Tokens) -> None:
    cases = [
        (["login", "rita"], "no terminal to ask for the password; use --password-stdin to read "
         "it from standard input"),
        (["login"], "no terminal to ask for the username; give it as an argument: "
         "iqms login USERNAME"),
        (["admin", "users", "add", "sam", "--full-name", "Sam", "--role", "staff"],
         "no terminal to ask for the password; use --password-stdin to read it from standard "
         "input"),
        (["db", "downgrade", "base"], "no terminal to ask for confirmation; add --yes to "
         "downgrade without asking"),
    ]  # fmt: skip
    for (args, message), done in zip(cases, without_terminal(*(c[0] for c in cases)), strict=True):
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.splitlines() == [f"iqms: error: {message}"]
        assert done.stdout == ""
    assert iqms(cli.staff, "queue", "list").exit_code == 0  # the schema is still there


def test_status_of_a_transferred_ticket_names_the_new_one(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = make_clinic_cli(db_url, tmp_path, monkeypatch)
    old = iqms(cli.staff, "queue", "issue", "-d", "GEN").stdout.strip()
    new = iqms(cli.staff, "queue", "transfer", old, "-d", "PED")
    assert new.exit_code == 0, new.output
    status = iqms(cli.kiosk, "queue", "status", old)
    assert status.stdout == (
        f"{old} (General Practice): transferred to {new.stdout.strip()} (Paediatrics)\n"
    )
    view = json.loads(iqms(cli.kiosk, "queue", "status", old, "--json").stdout)
    assert (view["transferred_to"], view["transferred_to_department"]) == (
        new.stdout.strip(), "Paediatrics",
    )  # fmt: skip
    assert (
        json.loads(iqms(cli.kiosk, "queue", "status", new.stdout.strip(), "--json").stdout)[
            "transferred_to"
        ]
        is None
    )
