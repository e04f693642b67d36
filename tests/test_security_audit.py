"""The audit trail: hash chain, tamper detection, append-only PostgreSQL, concurrency, filters."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner, Result

from iqms.cli import app
from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.errors import ValidationError
from iqms.core.models import AuditRecord
from iqms.core.security.audit import GENESIS_HASH, compute_hash, log_action, verify_chain
from iqms.core.security.rbac import Principal
from iqms.core.service import Context, operation
from iqms.core.services import audit, auth, users
from tests.conftest import make_settings

runner = CliRunner()
ROOT_PW = "root-pass-1234"


def iqms(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


def _cli_as_admin(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IQMS_DATABASE_URL", url)
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IQMS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("IQMS_SECRET_KEY", "cli-test-secret-0123456789abcdef")
    monkeypatch.setenv("IQMS_BCRYPT_ROUNDS", "4")
    monkeypatch.delenv("IQMS_TOKEN", raising=False)
    boot = iqms(
        "admin", "bootstrap", "root", "--full-name", "Ada Admin", "--password-stdin",
        input=ROOT_PW + "\n",
    )  # fmt: skip
    assert boot.exit_code == 0, boot.output
    assert iqms("login", "root", "--password-stdin", input=ROOT_PW + "\n").exit_code == 0
    for name in ("rita", "sam", "jo"):
        added = iqms(
            "admin", "users", "add", name, "--full-name", name.title(), "--role", "staff",
            "--password-stdin", input=f"{name}-pass-12345\n",
        )  # fmt: skip
        assert added.exit_code == 0, added.output


async def _records(db: Database) -> list[AuditRecord]:
    async with db.transaction(readonly=True) as s:
        return list((await s.execute(select(AuditRecord).order_by(AuditRecord.seq))).scalars())


async def test_records_form_an_unbroken_chain(ctx: Context) -> None:
    await users.create(
        ctx, username="rita", full_name="Rita", role="staff", password="rita-pass-12"
    )
    await users.disable(ctx, user="rita")
    await users.enable(ctx, user="rita")
    records = await _records(ctx.db)
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
    assert all(compute_hash(r) == r.hash for r in records)
    result = await audit.verify(ctx)
    assert result.intact and result.checked == 3


def test_edited_record_is_named_by_verify_on_sqlite(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli_as_admin(sqlite_url, tmp_path, monkeypatch)
    ok = iqms("admin", "audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith(
        "audit trail intact: 5 records; head 5:"
    )  # bootstrap, login, 3 accounts
    # behind the application's back: someone rewrites who was created in record 3
    path = sqlite_url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE audit_log SET details = ? WHERE seq = 3",
            (json.dumps({"username": "mallory", "role": "staff"}),),
        )
    broken = iqms("admin", "audit", "verify")
    assert broken.exit_code == 1
    assert broken.stderr.strip() == (
        "iqms: error: audit trail broken at record 3: contents do not match the stored hash "
        "(2 records before it are intact)"
    )
    as_json = json.loads(iqms("admin", "audit", "verify", "--json").stdout)
    assert as_json["intact"] is False and as_json["first_bad_seq"] == 3


def test_deleted_record_is_named_by_verify_on_sqlite(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli_as_admin(sqlite_url, tmp_path, monkeypatch)
    with sqlite3.connect(sqlite_url.split("///", 1)[1]) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 4")
    broken = iqms("admin", "audit", "verify")
    assert broken.exit_code == 1
    assert "audit trail broken at record 4: record 4 is missing (next is 5)" in broken.stderr


async def test_postgresql_refuses_to_edit_or_delete_audit_records(
    pg_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, pg_url)
    db = Database.from_settings(settings)
    ctx = Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
    try:
        await users.create(
            ctx, username="rita", full_name="R", role="staff", password="rita-pass-12"
        )
        for statement in (
            "UPDATE audit_log SET details = '{}' WHERE seq = 1",
            "DELETE FROM audit_log WHERE seq = 1",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(DBAPIError, match="audit_log is append-only"):
                async with db.transaction() as s:
                    await s.execute(text(statement))
        records = await _records(db)
        assert len(records) == 1 and records[0].details["username"] == "rita"
        assert (await audit.verify(ctx)).intact
    finally:
        await db.dispose()


@operation(None, public=True)
async def _audited_write(ctx: Context, *, n: int) -> None:
    """One audited change in its own transaction (a stand-in for any service call)."""
    await log_action(ctx, action="test.write", target=("thing", n), details={"n": n})


async def test_twenty_concurrent_writers_leave_one_chain(ctx: Context) -> None:
    await asyncio.gather(
        *(
            users.create(
                ctx, username=f"user{i:02d}", full_name="U", role="staff", password="user-pass-123"
            )
            for i in range(10)
        ),
        *(_audited_write(ctx, n=i) for i in range(10)),
    )
    records = await _records(ctx.db)
    assert [r.seq for r in records] == list(range(1, 21))
    assert len({r.prev_hash for r in records}) == 20  # no two records claim the same parent
    result = await audit.verify(ctx)
    assert result.intact and result.checked == 20


async def test_show_filters(ctx: Context, clock: FrozenClock) -> None:
    start = clock.now()
    await users.create(ctx, username="rita", full_name="R", role="staff", password="rita-pass-12")
    clock.advance(hours=1)
    login = await auth.login(ctx, username="rita", password="rita-pass-12")
    clock.advance(hours=1)
    await users.create(ctx, username="sam", full_name="S", role="doctor", password="sam-pass-123")
    clock.advance(hours=1)
    await users.disable(ctx, user="sam")

    every = await audit.show(ctx)
    assert [e.action for e in every] == [
        "user.created", "auth.login", "user.created", "user.disabled",
    ]  # fmt: skip
    assert [e.action for e in await audit.show(ctx, actor="rita")] == ["auth.login"]
    assert [e.details["username"] for e in await audit.show(ctx, action="user.created")] == [
        "rita",
        "sam",
    ]
    assert len(await audit.show(ctx, action="user.*")) == 3
    assert len(await audit.show(ctx, action="user_*")) == 0  # '_' is not a wildcard
    rita_id = str(login.principal.user_id)
    about_rita = await audit.show(ctx, target_type="user", target_id=rita_id)
    assert [e.action for e in about_rita] == ["user.created", "auth.login"]
    window = await audit.show(
        ctx, since=start + timedelta(minutes=30), until=start + timedelta(hours=2)
    )
    assert [e.action for e in window] == ["auth.login"]
    newest = await audit.show(ctx, limit=2)
    assert [e.seq for e in newest] == [3, 4]
    with pytest.raises(ValidationError, match="time zone"):
        await audit.show(ctx, since=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="before its end"):
        await audit.show(ctx, since=start, until=start)


def test_cli_show_with_filters(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli_as_admin(db_url, tmp_path, monkeypatch)
    everything = json.loads(iqms("admin", "audit", "show", "--json").stdout)
    assert [e["action"] for e in everything] == [
        "user.bootstrap", "auth.login", "user.created", "user.created", "user.created",
    ]  # fmt: skip
    created = json.loads(
        iqms("admin", "audit", "show", "--actor", "root", "--action", "user.*", "--json").stdout
    )
    assert [e["details"]["username"] for e in created] == ["rita", "sam", "jo"]
    target = f"user:{created[1]['target_id']}"
    about_sam = json.loads(iqms("admin", "audit", "show", "--target", target, "--json").stdout)
    assert [e["details"]["username"] for e in about_sam] == ["sam"]
    today = datetime.now(UTC).astimezone().date()
    later = (today + timedelta(days=2)).isoformat()
    assert json.loads(iqms("admin", "audit", "show", "--since", later, "--json").stdout) == []
    upto_today = iqms(
        "admin", "audit", "show", "--until", (today + timedelta(days=1)).isoformat(), "--json"
    )
    assert len(json.loads(upto_today.stdout)) == 5
    table = iqms("admin", "audit", "show", "--action", "auth.login")
    assert table.exit_code == 0 and "auth.login" in table.stdout and "root" in table.stdout
    bad = iqms("admin", "audit", "show", "--since", "yesterday")
    assert bad.exit_code == 2 and "is not a date or time" in bad.stderr


async def test_verify_reports_a_link_that_does_not_match(sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    db = Database.from_settings(settings)
    ctx = Context(db=db, principal=Principal.system("test"), settings=settings)
    try:
        for i in range(3):
            await _audited_write(ctx, n=i)
        async with db.transaction() as s:  # a forged record re-hashed to look consistent
            await s.execute(
                text("UPDATE audit_log SET prev_hash = :h WHERE seq = 2"), {"h": "f" * 64}
            )
            rec = (await s.execute(select(AuditRecord).where(AuditRecord.seq == 2))).scalar_one()
            rec.hash = compute_hash(rec)
        async with db.transaction(readonly=True) as s:
            result = await verify_chain(s)
        assert result.first_break is not None
        assert result.first_break.seq == 2
        assert result.first_break.reason == "previous-hash link does not match"
    finally:
        await db.dispose()
