"""The audit chain head: deleting the newest audit records is detected by ``audit verify``; an
anchor noted elsewhere catches someone who rewrites the log and the head together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from iqms.core import migrate
from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.models import AuditChainHead, AuditRecord
from iqms.core.security.audit import compute_hash
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import audit, users
from tests.conftest import make_settings
from tests.test_security_audit import _cli_as_admin, iqms


def tamper(url: str, *statements: str, owner: bool = False) -> None:
    """Change the database behind IQMS's back; ``owner`` first switches off PostgreSQL's
    guards, as only the database owner (or a superuser) can."""

    async def go() -> None:
        db = Database(url)
        try:
            async with db.transaction() as s:
                if owner and db.is_postgres:
                    for table in ("audit_log", "audit_chain_head"):
                        await s.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
                for statement in statements:
                    await s.execute(text(statement))
        finally:
            await db.dispose()

    asyncio.run(go())


def head_of(url: str) -> str:
    async def go() -> str:
        db = Database(url)
        try:
            async with db.transaction(readonly=True) as s:
                row = (await s.execute(select(AuditChainHead.seq, AuditChainHead.hash))).one()
        finally:
            await db.dispose()
        return f"{row.seq}:{row.hash}"

    return asyncio.run(go())


def test_deleting_the_newest_records_is_detected(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli_as_admin(db_url, tmp_path, monkeypatch)  # bootstrap, login, three accounts: 5 records
    ok = iqms("admin", "audit", "verify")
    assert ok.exit_code == 0, ok.output
    noted = head_of(db_url)
    assert ok.stdout == f"audit trail intact: 5 records; head {noted}\n"
    assert noted.startswith("5:")

    tamper(db_url, "DELETE FROM audit_log WHERE seq >= 4", owner=True)
    broken = iqms("admin", "audit", "verify")
    assert broken.exit_code == 1
    assert broken.stderr == (
        "iqms: error: audit trail broken at record 4: records 4-5 missing: the newest records "
        "were deleted (3 records before it are intact)\n"
    )

    # Whoever can also rewind the head gets past verify (documented); the anchor kept
    # outside the database does not.
    tamper(
        db_url,
        "UPDATE audit_chain_head SET seq = 3, "
        "hash = (SELECT hash FROM audit_log WHERE seq = 3) WHERE id = 1",
        owner=True,
    )
    assert iqms("admin", "audit", "verify").exit_code == 0
    anchored = iqms("admin", "audit", "verify", "--anchor", noted)
    assert anchored.exit_code == 1
    assert "record 5 of the anchor noted earlier is missing" in anchored.stderr


async def test_postgresql_only_moves_the_head_forward_to_a_real_record(
    pg_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, pg_url)
    db = Database.from_settings(settings)
    ctx = Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
    try:
        for name in ("rita", "sam"):
            await users.create(
                ctx, username=name, full_name=name, role="staff", password=f"{name}-pass-1234"
            )
        for statement in (
            "UPDATE audit_chain_head SET seq = 1, "
            "hash = (SELECT hash FROM audit_log WHERE seq = 1)",  # rewind
            "UPDATE audit_chain_head SET seq = 3, hash = repeat('a', 64)",  # forge ahead
            "DELETE FROM audit_chain_head",
            "TRUNCATE audit_chain_head",
            "INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, repeat('0', 64))",
        ):
            with pytest.raises(DBAPIError, match="audit_chain_head only moves forward"):
                async with db.transaction() as s:
                    await s.execute(text(statement))
        result = await audit.verify(ctx)
        assert result.intact and (result.checked, result.head_seq) == (2, 2)
    finally:
        await db.dispose()


def test_an_anchor_catches_a_consistently_rewritten_log(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli_as_admin(sqlite_url, tmp_path, monkeypatch)
    noted = head_of(sqlite_url)

    async def rewrite_history() -> None:  # change record 2, re-hash everything after it
        db = Database(sqlite_url)
        try:
            async with db.transaction() as s:
                rows = (await s.execute(select(AuditRecord).order_by(AuditRecord.seq))).scalars()
                prev = None
                for rec in rows.all():
                    if rec.seq == 2:
                        rec.details = {"forged": True}
                    if prev is not None:
                        rec.prev_hash = prev
                    rec.hash = compute_hash(rec)
                    prev = rec.hash
                await s.flush()
                await s.execute(text("UPDATE audit_chain_head SET hash = :h"), {"h": prev})
        finally:
            await db.dispose()

    asyncio.run(rewrite_history())
    assert iqms("admin", "audit", "verify").exit_code == 0  # consistent: verify alone cannot tell
    caught = iqms("admin", "audit", "verify", "--anchor", noted, "--json")
    assert caught.exit_code == 1
    assert '"first_bad_seq": 5' in caught.stdout
    assert "does not match the anchor noted earlier (rewritten since)" in caught.stdout
    bad = iqms("admin", "audit", "verify", "--anchor", "five")
    assert bad.exit_code == 7 and "--anchor: write SEQ:HASH" in bad.stderr


async def test_upgrading_an_existing_trail_starts_the_head_at_its_newest_record(
    db: Database, ctx: Context
) -> None:
    await migrate.downgrade(db, "0003")
    async with db.transaction() as s:  # three records written by a version before the head
        for seq in (1, 2, 3):
            prev = (
                await s.execute(select(AuditRecord.hash).where(AuditRecord.seq == seq - 1))
            ).scalar_one_or_none()
            rec = AuditRecord(
                seq=seq, at=ctx.now(), actor_name="old", role="system", action="old.step",
                details={"n": seq}, prev_hash=prev or "0" * 64,
            )  # fmt: skip
            rec.hash = compute_hash(rec)
            s.add(rec)
            await s.flush()
        await s.execute(
            text(
                "INSERT INTO notifications (id, channel, recipient, template, language, payload, "
                "body, status, attempts, next_attempt_at, last_error, created_at, updated_at) "
                "VALUES (:id, 'sms', '+447911123101', 'issued', 'en', '{}', 'x', 'failed', 0, :t, "
                ":e, :t, :t)"
            ),
            {
                "id": "0" * 31 + "1" if db.is_sqlite else "00000000-0000-0000-0000-000000000001",
                "t": ctx.now(),
                "e": "not sent: a later message about this ticket replaced it",
            },
        )
    await migrate.upgrade(db)
    result = await audit.verify(ctx)
    assert result.intact and (result.checked, result.head_seq) == (3, 3)
    await users.create(ctx, username="rita", full_name="R", role="staff", password="rita-pass-12")
    result = await audit.verify(ctx)
    assert result.intact and result.head_seq == 4
    async with db.transaction(readonly=True) as s:
        status = (await s.execute(text("SELECT status FROM notifications"))).scalar_one()
    assert status == "superseded"
