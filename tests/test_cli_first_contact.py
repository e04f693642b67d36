"""What a new user meets first: each mistake gives one plain line and the documented exit code,
and nothing changes.

Most of these run on SQLite (the CLI's own behaviour); the ones where the database matters run on
both backends.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

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
    refused = iqms(cli.drsmith, "queue", "transfer", issued.stdout.strip(), "-d", "PED")
    assert refused.exit_code == 4
    assert one_error_line(refused) == (
        "doctors cannot transfer, hold or cancel tickets (logged in as drsmith)"
    )
    status = iqms(cli.staff, "queue", "status", issued.stdout.strip())
    assert ": waiting, position 1" in status.stdout
