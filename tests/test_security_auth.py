"""Login, lockout, token expiry and revocation, hash upgrades, and the first administrator."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import select

from iqms.core.clock import FrozenClock
from iqms.core.errors import AuthenticationFailed, Conflict, ValidationError
from iqms.core.models import AuditRecord, User
from iqms.core.security.passwords import hash_password
from iqms.core.security.tokens import decode_token
from iqms.core.service import Context
from iqms.core.services import auth, users

PW = "rita-pass-5678"


async def _make(ctx: Context, username: str = "rita", role: str = "staff") -> None:
    await users.create(ctx, username=username, full_name="Rita R", role=role, password=PW)


async def _user(ctx: Context, username: str = "rita") -> User:
    async with ctx.db.transaction(readonly=True) as s:
        return (await s.execute(select(User).where(User.username == username))).scalar_one()


async def _actions(ctx: Context) -> list[str]:
    async with ctx.db.transaction(readonly=True) as s:
        return list(
            (await s.execute(select(AuditRecord.action).order_by(AuditRecord.seq))).scalars()
        )


async def test_login_gives_a_token_for_the_account(ctx: Context, clock: FrozenClock) -> None:
    await _make(ctx)
    result = await auth.login(ctx, username=" RITA ", password=PW)
    assert result.principal.username == "rita" and result.principal.role == "staff"
    assert result.expires_at == clock.now() + timedelta(minutes=480)
    claims = decode_token(ctx.settings, result.token, now=clock.now())
    assert claims.username == "rita" and claims.role == "staff" and claims.token_version == 1
    assert PW not in repr(result) and result.token not in repr(result)
    principal = await auth.authenticate(ctx, token=result.token)
    assert principal == result.principal
    me = await auth.whoami(ctx.as_principal(principal))
    assert me.username == "rita" and me.last_login_at == clock.now()
    assert (await _actions(ctx))[-1] == "auth.login"


async def test_failures_look_the_same_and_are_counted(ctx: Context) -> None:
    await _make(ctx)
    with pytest.raises(AuthenticationFailed) as unknown:
        await auth.login(ctx, username="nobody", password=PW)
    with pytest.raises(AuthenticationFailed) as wrong:
        await auth.login(ctx, username="rita", password="not-the-password")
    assert str(unknown.value) == str(wrong.value)
    assert "wrong username or password" in str(wrong.value)
    # the failed attempt was committed although the login raised
    assert (await _user(ctx)).failed_logins == 1
    assert (await _actions(ctx))[-2:] == ["auth.login_failed", "auth.login_failed"]
    await auth.login(ctx, username="rita", password=PW)
    assert (await _user(ctx)).failed_logins == 0


async def test_lockout_after_repeated_failures(ctx: Context, clock: FrozenClock) -> None:
    ctx = replace(
        ctx,
        settings=ctx.settings.model_copy(update={"lockout_threshold": 3, "lockout_minutes": 10}),
    )
    await _make(ctx)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await auth.login(ctx, username="rita", password="guess-guess-guess")
    locked = await _user(ctx)
    assert locked.locked_until == clock.now() + timedelta(minutes=10)
    # even the right password is refused while locked, with the same message as any failure
    with pytest.raises(AuthenticationFailed) as refused:
        await auth.login(ctx, username="rita", password=PW)
    assert "after 3 failed attempts an account is locked for 10 minutes" in str(refused.value)
    clock.advance(minutes=9)
    with pytest.raises(AuthenticationFailed):
        await auth.login(ctx, username="rita", password=PW)
    clock.advance(minutes=1, seconds=1)
    assert (await auth.login(ctx, username="rita", password=PW)).principal.username == "rita"
    after = await _user(ctx)
    assert after.locked_until is None and after.failed_logins == 0
    assert "auth.locked" in await _actions(ctx)
    assert "auth.login_refused" in await _actions(ctx)


async def test_admin_enable_clears_a_lock(ctx: Context) -> None:
    ctx = replace(ctx, settings=ctx.settings.model_copy(update={"lockout_threshold": 2}))
    await _make(ctx)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await auth.login(ctx, username="rita", password="guess-guess-guess")
    assert (await users.get(ctx, user="rita")).status == "locked"
    assert (await users.enable(ctx, user="rita")).status == "active"
    await auth.login(ctx, username="rita", password=PW)


async def test_token_expiry_follows_the_clock(ctx: Context, clock: FrozenClock) -> None:
    await _make(ctx)
    token = (await auth.login(ctx, username="rita", password=PW)).token
    clock.advance(minutes=480, seconds=-1)
    assert (await auth.authenticate(ctx, token=token)).username == "rita"
    clock.advance(seconds=1)
    with pytest.raises(AuthenticationFailed, match="expired"):
        await auth.authenticate(ctx, token=token)


async def test_forged_and_garbled_tokens_are_refused(ctx: Context, clock: FrozenClock) -> None:
    await _make(ctx)
    token = (await auth.login(ctx, username="rita", password=PW)).token
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "admin"}, "another-secret-0123456789abcdef-xyz")
    for bad in (forged, token[:-3] + "abc", "not-a-token"):
        with pytest.raises(AuthenticationFailed, match="not valid"):
            await auth.authenticate(ctx, token=bad)


async def test_logout_everywhere_revokes_every_token(ctx: Context) -> None:
    await _make(ctx)
    one = await auth.login(ctx, username="rita", password=PW)
    two = await auth.login(ctx, username="rita", password=PW)
    await auth.logout_everywhere(ctx.as_principal(one.principal))
    for token in (one.token, two.token):
        with pytest.raises(AuthenticationFailed, match="revoked"):
            await auth.authenticate(ctx, token=token)


async def test_cheaper_bcrypt_hash_is_upgraded_at_login(ctx: Context) -> None:
    await _make(ctx)
    assert (await _user(ctx)).password_hash.startswith("$2b$04$")
    stronger = replace(ctx, settings=ctx.settings.model_copy(update={"bcrypt_rounds": 5}))
    result = await auth.login(stronger, username="rita", password=PW)
    assert (await _user(ctx)).password_hash.startswith("$2b$05$")
    async with ctx.db.transaction(readonly=True) as s:
        record = (
            await s.execute(select(AuditRecord).where(AuditRecord.action == "auth.login"))
        ).scalar_one()
    assert record.details["rehashed"] is True
    assert result.user.username == "rita"
    # a wrong password never rewrites the hash
    with pytest.raises(AuthenticationFailed):
        await auth.login(
            replace(ctx, settings=ctx.settings.model_copy(update={"bcrypt_rounds": 6})),
            username="rita",
            password="wrong-wrong-wrong",
        )
    assert (await _user(ctx)).password_hash.startswith("$2b$05$")


async def test_scheme_switch_between_bcrypt_and_argon2(ctx: Context) -> None:
    await _make(ctx)
    argon = replace(ctx, settings=ctx.settings.model_copy(update={"password_scheme": "argon2"}))
    await auth.login(argon, username="rita", password=PW)
    assert (await _user(ctx)).password_hash.startswith("$argon2id$")
    # back on bcrypt settings, the argon2 hash still verifies and becomes bcrypt again
    await auth.login(ctx, username="rita", password=PW)
    assert (await _user(ctx)).password_hash.startswith("$2b$04$")


async def test_bootstrap_creates_the_first_admin_only(ctx: Context) -> None:
    await _make(ctx, "rita", "staff")  # other accounts do not count
    with pytest.raises(ValidationError, match="at least 10"):
        await auth.bootstrap(ctx, username="root", full_name="Ada Admin", password="short")
    out = await auth.bootstrap(ctx, username="root", full_name="Ada Admin", password="root-pass-12")
    assert out.role.value == "admin"
    with pytest.raises(Conflict, match="an administrator already exists"):
        await auth.bootstrap(ctx, username="root2", full_name="Eve", password="root-pass-12")
    assert (await auth.login(ctx, username="root", password="root-pass-12")).principal.role == (
        "admin"
    )


async def test_concurrent_bootstraps_create_one_admin(ctx: Context) -> None:
    results = await asyncio.gather(
        *(
            auth.bootstrap(ctx, username=f"root{i}", full_name="Ada", password="root-pass-12")
            for i in range(4)
        ),
        return_exceptions=True,
    )
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))


async def test_passwords_hash_upgrade_keeps_other_hashes_verifiable(ctx: Context) -> None:
    """An account whose hash was written by another installation still logs in."""
    async with ctx.db.transaction() as s:
        s.add(
            User(
                username="legacy",
                full_name="Old Account",
                role="staff",
                password_hash=hash_password(
                    ctx.settings.model_copy(update={"password_scheme": "argon2"}), PW
                ),
            )
        )
    assert (await auth.login(ctx, username="legacy", password=PW)).principal.username == "legacy"
    assert (await _user(ctx, "legacy")).password_hash.startswith("$2b$04$")
