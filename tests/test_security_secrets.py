"""Passwords never leak: not into logs, audit details, error messages or CLI output."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from iqms.cli import app
from iqms.core.errors import IQMSError
from iqms.core.models import AuditRecord, User
from iqms.core.security.audit import scrub
from iqms.core.service import Context
from iqms.core.services import audit, auth, users
from tests.terminal import run_at_terminal

ROOT_PW = "Root-Secret-Pw-111"
RITA_PW = "Rita-Secret-Pw-222"
WRONG_PW = "Wrong-Secret-Pw-333"
NEW_PW = "New-Secret-Pw-444"
RESET_PW = "Reset-Secret-Pw-555"
TOO_LONG_PW = "Long-Secret-Pw-" + "x" * 80
SHORT_PW = "Sh0rt!pw"
ALL_PASSWORDS = (ROOT_PW, RITA_PW, WRONG_PW, NEW_PW, RESET_PW, TOO_LONG_PW, SHORT_PW)


def _leaks(text: str) -> list[str]:
    return [pw for pw in ALL_PASSWORDS if pw in text]


async def test_passwords_stay_out_of_logs_audit_and_errors(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # SQL with its parameters
    errors: list[IQMSError] = []

    async def expect_error(coro) -> None:  # type: ignore[no-untyped-def]
        try:
            await coro
        except IQMSError as exc:
            errors.append(exc)
        else:
            raise AssertionError("expected an error")

    try:
        await auth.bootstrap(ctx, username="root", full_name="Ada Admin", password=ROOT_PW)
        admin = ctx.as_principal(
            (await auth.login(ctx, username="root", password=ROOT_PW)).principal
        )
        await users.create(admin, username="rita", full_name="Rita", role="staff", password=RITA_PW)
        for bad in (SHORT_PW, TOO_LONG_PW):
            await expect_error(
                users.create(admin, username="sam", full_name="Sam", role="staff", password=bad)
            )
        await expect_error(auth.login(ctx, username="rita", password=WRONG_PW))
        await expect_error(auth.login(ctx, username="nobody", password=WRONG_PW))
        await expect_error(auth.login(ctx, username="rita", password=TOO_LONG_PW))
        rita = ctx.as_principal(
            (await auth.login(ctx, username="rita", password=RITA_PW)).principal
        )
        await expect_error(
            users.change_own_password(rita, current_password=WRONG_PW, new_password=NEW_PW)
        )
        await expect_error(
            users.change_own_password(rita, current_password=RITA_PW, new_password=SHORT_PW)
        )
        await users.change_own_password(rita, current_password=RITA_PW, new_password=NEW_PW)
        await users.reset_password(admin, user="rita", new_password=RESET_PW)
        await expect_error(users.reset_password(admin, user="rita", new_password=TOO_LONG_PW))
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

    assert len(errors) == 8
    for exc in errors:
        assert _leaks(f"{exc} {exc!r} {exc.details} {exc.args}") == [], type(exc).__name__
    assert _leaks(caplog.text) == []
    assert "INSERT INTO users" in caplog.text  # the SQL log really was captured

    async with ctx.db.transaction(readonly=True) as s:
        records = list((await s.execute(select(AuditRecord))).scalars())
        stored = [u.password_hash for u in (await s.execute(select(User))).scalars()]
    assert len(records) == 9
    dumped = json.dumps(
        [[r.action, r.actor_name, r.target_id, r.details] for r in records], ensure_ascii=False
    )
    assert _leaks(dumped) == []
    assert not any(h in dumped for h in stored)  # nor the hashes
    assert (await audit.verify(ctx)).intact


def test_audit_details_drop_secret_fields() -> None:
    cleaned = scrub(
        {
            "username": "rita",
            "password": RITA_PW,
            "new_password": NEW_PW,
            "push_token": "tok",
            "password_hash": "$2b$",
            "nested": {"api_key": "k", "room": "Room 1", "items": [{"secret": "s"}]},
            "author": "kept",
        }
    )
    assert _leaks(json.dumps(cleaned)) == []
    assert cleaned["username"] == "rita" and cleaned["author"] == "kept"
    assert cleaned["nested"]["room"] == "Room 1"
    assert cleaned["password"] == cleaned["push_token"] == "[redacted]"
    assert cleaned["nested"]["items"] == [{"secret": "[redacted]"}]


def test_cli_output_never_shows_a_password(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQMS_DATABASE_URL", db_url)
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IQMS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("IQMS_SECRET_KEY", "cli-test-secret-0123456789abcdef")
    monkeypatch.setenv("IQMS_BCRYPT_ROUNDS", "4")
    monkeypatch.delenv("IQMS_TOKEN", raising=False)
    runner = CliRunner()
    steps: list[tuple[list[str], str]] = [
        (["admin", "bootstrap", "root", "--full-name", "Ada"], f"{ROOT_PW}\n{ROOT_PW}\n"),
        (["login", "root"], f"{ROOT_PW}\n"),
        (["admin", "users", "add", "rita", "--full-name", "Rita", "--role", "staff"],
         f"{RITA_PW}\n{RITA_PW}\n"),
        (["admin", "users", "add", "sam", "--full-name", "Sam", "--role", "staff",
          "--password-stdin"], f"{SHORT_PW}\n"),
        (["admin", "users", "add", "sam", "--full-name", "Sam", "--role", "staff",
          "--password-stdin"], f"{TOO_LONG_PW}\n"),
        (["login", "rita", "--password-stdin", "--print-token"], f"{WRONG_PW}\n"),
        (["admin", "users", "reset-password", "rita"], f"{RESET_PW}\n{RESET_PW}\n"),
        (["passwd", "--password-stdin"], f"{WRONG_PW}\n{NEW_PW}\n"),
        (["passwd"], f"{ROOT_PW}\n{NEW_PW}\n{NEW_PW}\n"),
        (["admin", "users", "list", "--json"], ""),
        (["admin", "audit", "show", "--json"], ""),
        (["whoami", "--json"], ""),
    ]  # fmt: skip
    codes = []
    for args, typed in steps:
        if "--password-stdin" in args or not typed:
            result = runner.invoke(app, args, input=typed)
            codes.append(result.exit_code)
            assert _leaks(result.output) == [], args
            assert result.exception is None or isinstance(result.exception, SystemExit), args
        else:  # typed at the password prompt of a real terminal
            at_terminal = run_at_terminal(args, typed.splitlines())
            codes.append(at_terminal.exit_code)
            assert _leaks(at_terminal.screen) == [], args
            assert "Traceback" not in at_terminal.screen
    assert codes == [0, 0, 0, 7, 7, 5, 0, 5, 0, 0, 0, 0]
