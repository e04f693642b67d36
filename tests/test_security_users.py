"""Accounts: administrators create, change, disable and enable users; every change is audited."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from iqms.core.enums import Role
from iqms.core.errors import AuthenticationFailed, Conflict, NotFound, ValidationError
from iqms.core.models import AuditRecord, Patient, User
from iqms.core.security.audit import verify_chain
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import auth, users

ADMIN_PW = "admin-pass-1234"
RITA_PW = "rita-pass-5678"


async def _admin_ctx(ctx: Context) -> Context:
    await users.create(ctx, username="boss", full_name="Bo Boss", role="admin", password=ADMIN_PW)
    result = await auth.login(ctx, username="boss", password=ADMIN_PW)
    return ctx.as_principal(result.principal)


async def _audit(ctx: Context, action: str) -> list[AuditRecord]:
    async with ctx.db.transaction(readonly=True) as s:
        rows = (
            await s.execute(
                select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq)
            )
        ).scalars()
        return list(rows.all())


async def test_create_list_get_and_audit(ctx: Context) -> None:
    admin = await _admin_ctx(ctx)
    rita = await users.create(
        admin, username="  Rita ", full_name="Rita  Reception", role=Role.STAFF, password=RITA_PW
    )
    assert rita.username == "rita"
    assert rita.full_name == "Rita Reception"
    assert rita.role is Role.STAFF and rita.active and not rita.locked
    listed = await users.list_users(admin)
    assert [u.username for u in listed] == ["boss", "rita"]
    assert [u.username for u in await users.list_users(admin, role="staff")] == ["rita"]
    assert (await users.get(admin, user="RITA")).id == rita.id
    assert (await users.get(admin, user=rita.id)).username == "rita"
    created = await _audit(ctx, "user.created")
    assert [r.details["username"] for r in created] == ["boss", "rita"]
    assert created[1].actor_name == "boss" and created[1].role == "admin"
    assert created[1].target_id == str(rita.id)
    async with ctx.db.transaction(readonly=True) as s:
        assert (await verify_chain(s)).intact


async def test_create_rejects_bad_input_with_clear_messages(ctx: Context) -> None:
    admin = await _admin_ctx(ctx)
    cases: list[tuple[dict[str, object], str]] = [
        ({"username": "x", "password": RITA_PW}, "username must be 2 to 64"),
        ({"username": "rita", "password": "short"}, "at least 10 characters"),
        ({"username": "rita", "password": "é" * 40}, "at most 72 bytes"),
        ({"username": "rita1234567", "password": "RITA1234567"}, "same as the username"),
        ({"username": "rita", "password": RITA_PW, "role": "nurse"}, "role"),
        ({"username": "rita", "password": RITA_PW, "role": "patient"}, "MRN"),
        (
            {"username": "rita", "password": RITA_PW, "patient_mrn": "MRN1"},
            "only patient accounts",
        ),
    ]
    for overrides, message in cases:
        args: dict[str, object] = {"full_name": "Rita R", "role": "staff", **overrides}
        with pytest.raises(ValidationError, match=message):
            await users.create(admin, **args)  # type: ignore[arg-type]
    await users.create(admin, username="rita", full_name="R", role="staff", password=RITA_PW)
    with pytest.raises(Conflict, match="already taken"):
        await users.create(admin, username="RITA", full_name="R", role="staff", password=RITA_PW)
    with pytest.raises(NotFound, match="no account named 'nobody'"):
        await users.get(admin, user="nobody")
    # nothing half-created: only the two valid accounts exist
    assert [u.username for u in await users.list_users(admin)] == ["boss", "rita"]


async def test_patient_account_links_to_its_record(ctx: Context) -> None:
    admin = await _admin_ctx(ctx)
    async with ctx.db.transaction() as s:
        patient = Patient(id=uuid.uuid4(), mrn="MRN000001", full_name="Amelia Hughes")
        s.add(patient)
    out = await users.create(
        admin,
        username="amelia",
        full_name="Amelia Hughes",
        role="patient",
        password="amelia-pass-1",
        patient_mrn="MRN000001",
    )
    assert out.patient_id == patient.id
    with pytest.raises(Conflict, match="already has an account"):
        await users.create(
            admin,
            username="amelia2",
            full_name="Amelia Hughes",
            role="patient",
            password="amelia-pass-1",
            patient_mrn="MRN000001",
        )
    with pytest.raises(NotFound, match="no patient with MRN"):
        await users.create(
            admin,
            username="ghost",
            full_name="G",
            role="patient",
            password="ghost-pass-12",
            patient_mrn="MRN999",
        )
    login = await auth.login(ctx, username="amelia", password="amelia-pass-1")
    assert login.principal.patient_id == patient.id
    assert login.principal.role == "patient"


async def test_disable_enable_and_last_admin_protection(ctx: Context) -> None:
    admin = await _admin_ctx(ctx)
    await users.create(admin, username="rita", full_name="R", role="staff", password=RITA_PW)
    token = (await auth.login(ctx, username="rita", password=RITA_PW)).token

    out = await users.disable(admin, user="rita")
    assert not out.active and out.status == "disabled"
    with pytest.raises(AuthenticationFailed, match="disabled"):
        await auth.authenticate(ctx, token=token)
    with pytest.raises(AuthenticationFailed, match="disabled; ask an administrator"):
        await auth.login(ctx, username="rita", password=RITA_PW)
    assert (await users.enable(admin, user="rita")).active
    assert (await auth.login(ctx, username="rita", password=RITA_PW)).user.username == "rita"

    with pytest.raises(Conflict, match="your own account"):
        await users.disable(admin, user="boss")
    with pytest.raises(Conflict, match="last active administrator"):
        await users.disable(ctx, user="boss")
    with pytest.raises(Conflict, match="last active administrator"):
        await users.set_role(admin, user="boss", role="staff")
    await users.set_role(admin, user="rita", role="admin")
    assert (await users.set_role(admin, user="boss", role="staff")).role is Role.STAFF
    actions = [r.action for r in await _audit(ctx, "user.disabled")]
    assert actions == ["user.disabled"]
    assert len(await _audit(ctx, "user.role_changed")) == 2


async def test_set_role_revokes_logins_and_applies_the_new_role(ctx: Context) -> None:
    admin = await _admin_ctx(ctx)
    await users.create(admin, username="rita", full_name="R", role="staff", password=RITA_PW)
    old = (await auth.login(ctx, username="rita", password=RITA_PW)).token
    await users.set_role(admin, user="rita", role="doctor")
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await auth.authenticate(ctx, token=old)
    again = await auth.login(ctx, username="rita", password=RITA_PW)
    assert again.principal.role == "doctor"
    record = (await _audit(ctx, "user.role_changed"))[0]
    assert record.details == {"username": "rita", "from": "staff", "to": "doctor"}


async def test_update_full_name(ctx: Context) -> None:
    admin = await _admin_ctx(ctx)
    await users.create(admin, username="rita", full_name="R", role="staff", password=RITA_PW)
    out = await users.update(admin, user="rita", full_name="Rita Reception")
    assert out.full_name == "Rita Reception"
    with pytest.raises(ValidationError, match="full name: must not be empty"):
        await users.update(admin, user="rita", full_name="")
    assert (await users.get(admin, user="rita")).full_name == "Rita Reception"
    assert (await _audit(ctx, "user.updated"))[0].details["changed"] == ["full_name"]


async def test_change_own_and_reset_password_revoke_old_tokens(ctx: Context) -> None:
    admin = await _admin_ctx(ctx)
    await users.create(admin, username="rita", full_name="R", role="staff", password=RITA_PW)
    first = await auth.login(ctx, username="rita", password=RITA_PW)
    rita = ctx.as_principal(first.principal)

    with pytest.raises(AuthenticationFailed, match="current password is not correct"):
        await users.change_own_password(
            rita, current_password="wrong-password", new_password="brand-new-pass"
        )
    with pytest.raises(ValidationError, match="at least 10"):
        await users.change_own_password(rita, current_password=RITA_PW, new_password="short")
    fresh = await users.change_own_password(
        rita, current_password=RITA_PW, new_password="brand-new-pass"
    )
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await auth.authenticate(ctx, token=first.token)
    assert (await auth.authenticate(ctx, token=fresh.token)).username == "rita"
    with pytest.raises(AuthenticationFailed, match="wrong username or password"):
        await auth.login(ctx, username="rita", password=RITA_PW)
    await auth.login(ctx, username="rita", password="brand-new-pass")

    await users.reset_password(admin, user="rita", new_password="reset-by-admin-1")
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await auth.authenticate(ctx, token=fresh.token)
    await auth.login(ctx, username="rita", password="reset-by-admin-1")
    # the kiosk device account has no password of its own to change
    kiosk = ctx.as_principal(Principal(user_id=uuid.uuid4(), username="kiosk1", role="kiosk"))
    from iqms.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        await users.change_own_password(kiosk, current_password="a", new_password="b")
    async with ctx.db.transaction(readonly=True) as s:
        stored = (await s.execute(select(User).where(User.username == "rita"))).scalar_one()
        assert stored.token_version == 3
