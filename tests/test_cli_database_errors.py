"""A database IQMS cannot use: one plain line, exit code 8 (7 for an unknown revision, checked
before any question), and nothing created or changed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from iqms.cli import app
from iqms.core import migrate
from iqms.core.db import Database
from tests.test_cli_first_contact import one_error_line, without_terminal
from tests.test_cli_queue import Tokens, iqms, make_clinic_cli

runner = CliRunner()


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tokens:
    return make_clinic_cli(sqlite_url, tmp_path, monkeypatch)


def sqlite_file(url: str) -> Path:
    return Path(url.split(":///", 1)[1])


def tickets_today(token: str) -> str:
    listed = iqms(token, "queue", "list", "--csv")
    assert listed.exit_code == 0, listed.output
    return listed.stdout


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """The file as a user meets it when they may not write it.

    Root may write any file whatever its mode, so as root the file is made immutable
    (``chattr +i``), which SQLite meets exactly as it meets a file without write permission.
    """
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)


def test_a_mistyped_path_is_never_created(cli: Tokens, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    typo = tmp_path / "clinc" / "iqms.db"
    monkeypatch.setenv("IQMS_DATABASE_URL", f"sqlite:///{typo}")
    expected = (
        f"cannot reach the database: there is no SQLite file at {typo} "
        "(check IQMS_DATABASE_URL, or create it with 'iqms db upgrade')"
    )
    for token, args in [
        (cli.staff, ["queue", "list"]),
        (cli.staff, ["queue", "issue", "-d", "GEN"]),
        (None, ["admin", "bootstrap", "root", "--full-name", "Ada", "--password-stdin"]),
        (None, ["login", "rita", "--password-stdin"]),
        (cli.staff, ["patients", "list", "Hughes"]),
        (None, ["worker", "--once"]),
        (None, ["db", "downgrade", "base", "--yes"]),
    ]:
        env = {"IQMS_TOKEN": token} if token else {}
        result = runner.invoke(app, args, env=env, input="a-password-1234\n")
        assert result.exit_code == 8, (args, result.output)
        assert one_error_line(result) == expected, args
    current = iqms(None, "db", "current")
    assert current.exit_code == 0
    assert current.stdout == "none\n"
    assert "there is no database at" in current.stderr
    assert not typo.parent.exists()
    created = iqms(None, "db", "upgrade")  # the one command that creates it
    assert created.exit_code == 0, created.output
    assert typo.exists()


def test_a_damaged_file_is_named_and_left_alone(cli: Tokens, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not an SQLite database " * 200)
    before = damaged.read_bytes()
    monkeypatch.setenv("IQMS_DATABASE_URL", f"sqlite:///{damaged}")
    message = (
        f"SQLite file {damaged} is damaged or is not an SQLite database; restore it from a "
        "backup, or check IQMS_DATABASE_URL"
    )
    for args in (["queue", "list"], ["db", "current"], ["db", "upgrade"]):
        result = iqms(cli.staff, *args)
        assert result.exit_code == 8, (args, result.output)
        assert result.stderr.splitlines()[-1] == f"iqms: error: {message}"
        assert "unexpected" not in result.stderr
    assert damaged.read_bytes() == before


def test_a_read_only_file_refuses_changes_in_one_line(cli: Tokens, sqlite_url: str) -> None:
    path = sqlite_file(sqlite_url)
    before = tickets_today(cli.staff)
    with read_only(path):
        refused = iqms(cli.staff, "queue", "issue", "-d", "GEN")
        assert refused.exit_code == 8
        assert one_error_line(refused) == (
            f"SQLite file {path} is read-only: IQMS needs to write to the file and to its "
            "folder (check their permissions)"
        )
    assert tickets_today(cli.staff) == before


def test_a_locked_file_says_who_holds_it_after_the_lock_timeout(
    cli: Tokens, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQMS_DB_LOCK_TIMEOUT", "0.2")
    before = tickets_today(cli.staff)
    other = sqlite3.connect(sqlite_file(sqlite_url), isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # another program writing, e.g. a backup tool
        refused = iqms(cli.staff, "queue", "issue", "-d", "GEN")
        assert refused.exit_code == 8
        assert one_error_line(refused) == (
            f"SQLite file {sqlite_file(sqlite_url)} is locked by another program "
            "(waited 0.2 s); try again, or close the program that holds it"
        )
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert tickets_today(cli.staff) == before
    assert iqms(cli.staff, "queue", "issue", "-d", "GEN").exit_code == 0


def test_an_unknown_revision_is_refused_before_any_question(cli: Tokens) -> None:
    head = migrate.head_revision()
    # without a terminal: downgrade would have to ask, and must not get that far
    for refused in without_terminal(["db", "upgrade", "zzz"], ["db", "downgrade", "zzz"]):
        assert refused.returncode == 7, refused.stderr
        lines = refused.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("iqms: error: unknown schema revision 'zzz'")
        assert "or use head, base, -1" in lines[0]
    too_far = iqms(None, "db", "downgrade", "-99", "--yes")
    assert too_far.exit_code == 7
    assert one_error_line(too_far).startswith("cannot migrate: ")
    assert iqms(None, "db", "current").stdout.strip() == head


def test_a_schema_that_is_behind_or_ahead_is_refused(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = make_clinic_cli(db_url, tmp_path, monkeypatch)
    where = Database(db_url).where
    head = migrate.head_revision()
    previous = migrate.known_revisions()[-2]

    async def set_revision(revision: str, *, stamp: bool = False) -> None:
        db = Database(db_url)
        try:
            if stamp:
                async with db.transaction() as s:
                    await s.execute(
                        text("UPDATE alembic_version SET version_num = :v"), {"v": revision}
                    )
            else:
                await migrate.downgrade(db, revision)
        finally:
            await db.dispose()

    asyncio.run(set_revision(previous))
    behind = (
        f"{where} has an older schema (revision {previous}; this IQMS needs {head}); "
        "run 'iqms db upgrade'"
    )
    for token, args in ((cli.staff, ["queue", "list"]), (None, ["worker", "--once"])):
        refused = iqms(token, *args)
        assert refused.exit_code == 8, refused.output
        assert one_error_line(refused) == behind
    login = runner.invoke(app, ["login", "rita", "--password-stdin"], input="rita-pass-5678\n")
    assert login.exit_code == 8 and "run 'iqms db upgrade'" in login.stderr
    assert iqms(None, "db", "upgrade").exit_code == 0
    assert iqms(cli.staff, "queue", "list").exit_code == 0

    asyncio.run(set_revision("9999", stamp=True))
    newer = iqms(cli.staff, "queue", "list")
    assert newer.exit_code == 8
    assert one_error_line(newer).startswith(
        f"{where} has schema revision 9999, newer than this IQMS"
    )
    shutil.rmtree(tmp_path / "config", ignore_errors=True)
