"""The iqms command: version, help everywhere, db commands, the demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from iqms import __version__
from iqms.cli import app
from iqms.core import migrate

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"iqms {__version__}"


def test_usage_errors_are_one_line_with_exit_code_2() -> None:
    result = runner.invoke(app, ["db", "upgrade", "--bogus"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "iqms: error: No such option: --bogus (see 'iqms db upgrade --help')"
    ]
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2
    assert result.stderr.startswith("iqms: error: No such command 'no-such-command'")


@pytest.mark.parametrize("path", [[], ["db"], ["db", "upgrade"], ["demo"]])
def test_help_flags(path: list[str]) -> None:
    for flag in ("-h", "--help"):
        result = runner.invoke(app, [*path, flag])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.stdout


def test_db_upgrade_and_current_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IQMS_DATABASE_URL", f"sqlite:///{tmp_path / 'clinic.db'}")
    result = runner.invoke(app, ["db", "current"])
    assert result.exit_code == 0
    assert result.stdout.strip() == "none"
    assert "there is no database at" in result.stderr
    assert not (tmp_path / "clinic.db").exists()  # looking creates nothing
    (tmp_path / "clinic.db").touch()  # an empty file: an empty SQLite database
    result = runner.invoke(app, ["db", "current"])
    assert result.stdout.strip() == "none"
    assert "no IQMS schema yet" in result.stderr
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["db", "current"])
    assert result.stdout.strip() == migrate.head_revision()
    assert "up to date" in result.stderr
    result = runner.invoke(app, ["db", "downgrade", "base", "--yes"])
    assert result.exit_code == 0, result.stderr
    assert runner.invoke(app, ["db", "current"]).stdout.strip() == "none"


def test_demo_creates_a_separate_inspectable_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IQMS_BCRYPT_ROUNDS", "4")
    monkeypatch.delenv("IQMS_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    demo_db = tmp_path / "demo" / "iqms-demo.db"
    assert demo_db.exists()
    assert not (tmp_path / "iqms.db").exists(), "the demo must not touch the production database"
    out = result.stdout
    for expected in (
        "General Practice",
        "drsmith",
        "Room 1",
        "reception",
        "A-001",
        "IQMS_DATABASE_URL",
    ):
        assert expected in out
    monkeypatch.setenv("IQMS_DATABASE_URL", f"sqlite:///{demo_db}")
    assert runner.invoke(app, ["db", "current"]).stdout.strip() == migrate.head_revision()


def test_command_on_database_without_schema_says_to_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IQMS_CONFIG_DIR", str(tmp_path / "cfg"))
    (tmp_path / "empty.db").touch()
    monkeypatch.setenv("IQMS_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["login", "admin", "--password-stdin"], input="whatever-pass\n")
    assert result.exit_code == 8
    assert result.stderr.strip().splitlines() == [
        f"iqms: error: SQLite file {tmp_path / 'empty.db'} has no IQMS schema yet; "
        "run 'iqms db upgrade'"
    ]
