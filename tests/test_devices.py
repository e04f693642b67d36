"""Device keys through the services, on both backends: a kiosk or display board signs in with
its own key, gets its own role and nothing more, and loses access the moment it is revoked."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.enums import TicketSource
from iqms.core.errors import AuthenticationFailed, Conflict, PermissionDenied, ValidationError
from iqms.core.models import Device, QueueEntry
from iqms.core.security.audit import verify_chain
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import audit, devices, queue, sync, users
from tests.test_queue_fixtures import as_role, small_clinic


async def sign_in(ctx: Context, key: str) -> Context:
    anonymous = ctx.as_principal(Principal.anonymous())
    return ctx.as_principal(await devices.authenticate(anonymous, key=key))


async def test_a_kiosk_key_signs_in_as_that_kiosk_and_issues_tickets(ctx: Context) -> None:
    c = await small_clinic(ctx, doctors=False)
    issued = await devices.add(ctx, name="Entrance-Kiosk", role="kiosk")
    assert issued.device.name == "entrance-kiosk"
    assert issued.device.role == "kiosk" and issued.device.status == "active"
    assert issued.key.startswith("iqmsdk_") and issued.key not in repr(issued)
    async with ctx.db.transaction(readonly=True) as s:
        stored = (await s.execute(select(Device.token_hash))).scalar_one()
    assert stored is not None and issued.key not in stored  # only a hash is kept

    kiosk = await sign_in(ctx, issued.key)
    assert kiosk.principal.role == "kiosk"
    assert kiosk.principal.username == "entrance-kiosk"
    assert kiosk.principal.device_id == issued.device.id
    ticket = await queue.issue(kiosk, department="GEN")
    assert ticket.ticket_number == "A-001" and ticket.source == TicketSource.KIOSK
    async with ctx.db.transaction(readonly=True) as s:
        entry = (await s.execute(select(QueueEntry))).scalar_one()
    assert entry.origin_device_id == issued.device.id
    # The kiosk's actions are in the audit trail under its name and role.
    trail = await audit.show(as_role(ctx, "admin"), action="ticket.issued")
    assert [(r.actor, r.role) for r in trail] == [("entrance-kiosk", "kiosk")]
    assert c.gen.code == "GEN"


async def test_each_key_grants_only_its_devices_role(ctx: Context) -> None:
    await small_clinic(ctx, doctors=False)
    kiosk = await sign_in(ctx, (await devices.add(ctx, name="kiosk-1", role="kiosk")).key)
    board = await sign_in(ctx, (await devices.add(ctx, name="board-1", role="display")).key)
    assert board.principal.role == "display"

    # The board shows the board and nothing else: no tickets, no names, no queue list.
    view = await queue.board(board, department="GEN")
    assert view.department_code == "GEN"
    with pytest.raises(PermissionDenied):
        await queue.issue(board, department="GEN")
    with pytest.raises(PermissionDenied):
        await queue.queue_list(board)
    # The kiosk issues tickets but cannot act as staff (call, list the queue, see devices).
    ticket = await queue.issue(kiosk, department="GEN")
    with pytest.raises(PermissionDenied):
        await queue.queue_list(kiosk)
    with pytest.raises(PermissionDenied):
        await queue.cancel(kiosk, ticket=ticket.id)
    with pytest.raises(PermissionDenied):
        await devices.list_devices(kiosk)
    with pytest.raises(PermissionDenied):
        await devices.add(kiosk, name="sneaky", role="kiosk")


async def test_revoked_key_is_refused_at_once(ctx: Context) -> None:
    c = await small_clinic(ctx, doctors=False)
    issued = await devices.add(ctx, name="kiosk-1", role="kiosk")
    kiosk = await sign_in(ctx, issued.key)  # signed in before the revocation

    revoked = await devices.revoke(as_role(ctx, "admin", username="ada"), device="kiosk-1")
    assert revoked.status == "revoked" and revoked.revoked_at == ctx.now()
    with pytest.raises(AuthenticationFailed, match="key of device kiosk-1 was revoked"):
        await sign_in(ctx, issued.key)
    # A kiosk still running with the old sign-in cannot take numbers or sync either.
    with pytest.raises(PermissionDenied, match="disabled"):
        await sync.reserve_numbers(kiosk, department_id=c.gen.id, size=5)

    listed = {d.name: d for d in await devices.list_devices(as_role(ctx, "staff"))}
    assert listed["kiosk-1"].status == "revoked"
    assert await devices.list_devices(ctx, include_revoked=False) == []
    trail = await audit.show(as_role(ctx, "admin"), action="device.revoked")
    assert [(r.actor, r.details["name"]) for r in trail] == [("ada", "kiosk-1")]


async def test_new_key_replaces_the_old_one_and_brings_a_revoked_device_back(
    ctx: Context,
) -> None:
    first = await devices.add(ctx, name="kiosk-1", role="kiosk")
    await devices.revoke(ctx, device="kiosk-1")
    second = await devices.new_key(ctx, device="kiosk-1")
    assert second.key != first.key and second.device.status == "active"
    assert second.device.id == first.device.id
    with pytest.raises(AuthenticationFailed, match="unknown or was replaced"):
        await sign_in(ctx, first.key)
    assert (await sign_in(ctx, second.key)).principal.device_id == first.device.id
    trail = await audit.show(as_role(ctx, "admin"), action="device.key_replaced")
    assert trail[0].details == {"name": "kiosk-1", "role": "kiosk", "was_revoked": True}


async def test_unknown_and_malformed_keys_get_a_plain_refusal(ctx: Context) -> None:
    await devices.add(ctx, name="kiosk-1", role="kiosk")
    with pytest.raises(AuthenticationFailed, match="unknown or was replaced"):
        await sign_in(ctx, "iqmsdk_" + "x" * 43)
    with pytest.raises(AuthenticationFailed, match="not a device key"):
        await sign_in(ctx, "my-password")
    with pytest.raises(AuthenticationFailed, match="not a device key"):
        await sign_in(ctx, "")


async def test_keys_never_reach_the_audit_trail_and_the_chain_holds(ctx: Context) -> None:
    issued = await devices.add(ctx, name="kiosk-1", role="kiosk")
    replaced = await devices.new_key(ctx, device="kiosk-1")
    await devices.revoke(ctx, device="kiosk-1")
    trail = await audit.show(as_role(ctx, "admin"), action="device.*")
    assert [r.action for r in trail] == ["device.added", "device.key_replaced", "device.revoked"]
    text = repr([r.as_dict() for r in trail])
    assert issued.key not in text and replaced.key not in text
    async with ctx.db.transaction(readonly=True) as s:
        assert (await verify_chain(s)).intact


async def test_last_seen_is_written_sparingly(ctx: Context, clock: FrozenClock) -> None:
    issued = await devices.add(ctx, name="board-1", role="display")
    assert (await devices.get(ctx, device="board-1")).last_seen_at is None
    first_contact = clock.now()
    await sign_in(ctx, issued.key)
    assert (await devices.get(ctx, device="board-1")).last_seen_at == first_contact
    clock.advance(minutes=2)
    await sign_in(ctx, issued.key)  # within the interval: no write
    assert (await devices.get(ctx, device="board-1")).last_seen_at == first_contact
    clock.advance(devices.LAST_SEEN_EVERY)
    await sign_in(ctx, issued.key)
    assert (await devices.get(ctx, device="board-1")).last_seen_at == clock.now()


async def test_bad_names_roles_and_duplicates_are_refused(ctx: Context) -> None:
    await devices.add(ctx, name="kiosk-1", role="kiosk")
    with pytest.raises(Conflict, match="already exists"):
        await devices.add(ctx, name="KIOSK-1", role="display")
    with pytest.raises(ValidationError, match="kiosk or a display board"):
        await devices.add(ctx, name="front-desk", role="staff")
    with pytest.raises(ValidationError, match="device name"):
        await devices.add(ctx, name="front desk!", role="kiosk")
    # A display board is a device, never a person's account.
    with pytest.raises(ValidationError, match="device role"):
        await users.create(
            ctx, username="board", full_name="Board", role="display", password="board-pass-123"
        )
    assert [d.name for d in await devices.list_devices(ctx)] == ["kiosk-1"]


async def test_two_kiosks_issuing_at_the_same_moment_get_consecutive_distinct_numbers(
    ctx: Context, settings, clock: FrozenClock
) -> None:  # type: ignore[no-untyped-def]
    await small_clinic(ctx, doctors=False)
    keys = [(await devices.add(ctx, name=f"kiosk-{n}", role="kiosk")).key for n in (1, 2)]
    # Each kiosk has its own connections to the database, as two machines would.
    databases = [Database.from_settings(settings) for _ in keys]
    try:
        kiosks = [
            await sign_in(
                Context(db=db, principal=ctx.principal, settings=settings, clock=clock), k
            )
            for db, k in zip(databases, keys, strict=True)
        ]
        rounds = 5
        tickets = []
        for _ in range(rounds):
            tickets += await asyncio.gather(*(queue.issue(k, department="GEN") for k in kiosks))
    finally:
        for db in databases:
            await db.dispose()
    numbers = sorted(t.ticket_number for t in tickets)
    assert numbers == [f"A-{n:03d}" for n in range(1, 2 * rounds + 1)]
    async with ctx.db.transaction(readonly=True) as s:
        origins = (await s.execute(select(QueueEntry.origin_device_id))).scalars().all()
    assert len(set(origins)) == 2
