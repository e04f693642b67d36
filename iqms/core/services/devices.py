"""Devices: kiosks and display boards, their keys, and signing in with a key.

A kiosk or display board runs all day, so it does not sign in with a person's
8-hour login: an administrator adds it (``add``), which returns its key once;
the device keeps the key and presents it (``authenticate``) to get a
:class:`~iqms.core.security.rbac.Principal` with the device's own role and
nothing more. Keys can be revoked (``revoke``) or replaced (``new_key``); every
change is audited. Devices are named by id or name (``device=``).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from iqms.core.enums import PrinterState
from iqms.core.errors import (
    AuthenticationFailed,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from iqms.core.models import Device
from iqms.core.queue.events import PrinterFault, publish
from iqms.core.schemas.clinic import parse
from iqms.core.schemas.devices import KEY_ROLES, DeviceCreate, DeviceOut, IssuedDeviceKey
from iqms.core.security.audit import log_action
from iqms.core.security.device_keys import clean_device_key, hash_device_key, new_device_key
from iqms.core.security.rbac import Permission, Principal
from iqms.core.service import Context, operation

log = logging.getLogger(__name__)

#: ``last_seen_at`` is written at most this often per device (a board may ask every request).
LAST_SEEN_EVERY = timedelta(minutes=5)


# ---- helpers ------------------------------------------------------------------------------------
def device_out(device: Device) -> DeviceOut:
    """A device as administrators see it (never its key hash)."""
    role = KEY_ROLES.get(device.kind) if device.key_issued_at is not None else None
    if device.revoked_at is not None or not device.active:
        status = "revoked"
    elif device.token_hash is None:
        status = "no key"
    else:
        status = "active"
    return DeviceOut(
        id=device.id,
        name=device.name,
        kind=device.kind,
        role=role,
        status=status,
        key_issued_at=device.key_issued_at,
        revoked_at=device.revoked_at,
        last_seen_at=device.last_seen_at,
        created_at=device.created_at,
        fault_state=device.fault_state,
        fault_message=device.fault_message,
        fault_at=device.fault_at,
    )


async def _find(ctx: Context, device: uuid.UUID | str, *, for_update: bool = False) -> Device:
    if isinstance(device, uuid.UUID):
        stmt = select(Device).where(Device.id == device)
        label = str(device)
    else:
        label = str(device).strip().lower()
        try:
            stmt = select(Device).where(Device.id == uuid.UUID(label))
        except ValueError:
            stmt = select(Device).where(Device.name == label)
    if for_update:
        stmt = stmt.with_for_update()
    found = (await ctx.s.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no device named {label!r} (see 'iqms admin devices list')")
    return found


def _give_key(ctx: Context, device: Device) -> str:
    key = new_device_key()
    device.token_hash = hash_device_key(key)
    device.key_issued_at = ctx.now()
    device.revoked_at = None
    device.active = True
    return key


# ---- administration -----------------------------------------------------------------------------
@operation(Permission.DEVICES_MANAGE)
async def add(ctx: Context, *, name: str, role: str) -> IssuedDeviceKey:
    """Add a kiosk or display board; its key is returned once and never shown again."""
    data = parse(DeviceCreate, name=name, role=role)
    taken = (
        await ctx.s.execute(select(Device.id).where(Device.name == data.name))
    ).scalar_one_or_none()
    if taken is not None:
        raise Conflict(
            f"a device named {data.name!r} already exists; choose another name, or give it a "
            f"new key with 'iqms admin devices new-key {data.name}'"
        )
    device = Device(id=uuid.uuid4(), name=data.name, kind=data.kind, active=True)
    key = _give_key(ctx, device)
    ctx.s.add(device)
    try:
        await ctx.s.flush()
    except IntegrityError:  # a concurrent add won the race; the transaction rolls back
        raise Conflict(f"a device named {data.name!r} was added at the same moment") from None
    await log_action(
        ctx,
        action="device.added",
        target=("device", device.id),
        details={"name": device.name, "role": data.role.value},
    )
    return IssuedDeviceKey(device=device_out(device), key=key)


@operation(Permission.DEVICES_VIEW, readonly=True)
async def list_devices(ctx: Context, *, include_revoked: bool = True) -> list[DeviceOut]:
    """Every device by name, with its key status, last contact and last reported fault."""
    stmt = select(Device).order_by(Device.name)
    if not include_revoked:
        stmt = stmt.where(Device.active, Device.revoked_at.is_(None))
    return [device_out(d) for d in (await ctx.s.execute(stmt)).scalars()]


@operation(Permission.DEVICES_VIEW, readonly=True)
async def get(ctx: Context, *, device: uuid.UUID | str) -> DeviceOut:
    """One device by id or name."""
    return device_out(await _find(ctx, device))


@operation(Permission.DEVICES_MANAGE)
async def revoke(ctx: Context, *, device: uuid.UUID | str) -> DeviceOut:
    """Revoke a device's key at once: the device can no longer sign in or sync."""
    found = await _find(ctx, device, for_update=True)
    if found.revoked_at is not None:
        return device_out(found)
    # The hash stays, so the revoked key is recognised and refused with a clear reason.
    found.revoked_at = ctx.now()
    found.active = False
    await log_action(
        ctx,
        action="device.revoked",
        target=("device", found.id),
        details={"name": found.name, "kind": found.kind.value},
    )
    return device_out(found)


@operation(Permission.DEVICES_MANAGE)
async def new_key(ctx: Context, *, device: uuid.UUID | str) -> IssuedDeviceKey:
    """Give a kiosk or board a new key (the old one stops working; a revoked device returns)."""
    found = await _find(ctx, device, for_update=True)
    role = KEY_ROLES.get(found.kind)
    if role is None:
        raise Conflict(
            f"{found.name} is a {found.kind.value}: terminals sign in with staff logins, "
            "not a device key"
        )
    was_revoked = found.revoked_at is not None or not found.active
    key = _give_key(ctx, found)
    await log_action(
        ctx,
        action="device.key_replaced",
        target=("device", found.id),
        details={"name": found.name, "role": role.value, "was_revoked": was_revoked},
    )
    return IssuedDeviceKey(device=device_out(found), key=key)


# ---- hardware faults ----------------------------------------------------------------------------
MAX_FAULT_MESSAGE = 200


@operation(Permission.DEVICE_REPORT)
async def report_printer(
    ctx: Context, *, state: PrinterState | str, message: str | None = None
) -> bool:
    """Record the calling kiosk's printer state; a change is published for reception to see.

    Returns True when the state changed (and was published), False when it was already known.
    """
    try:
        printer_state = PrinterState(state)
    except ValueError:
        raise ValidationError(
            f"unknown printer state {state!r} (one of {', '.join(s.value for s in PrinterState)})",
            field="state",
        ) from None
    text = " ".join((message or printer_state.value.replace("_", " ")).split())
    text = text[:MAX_FAULT_MESSAGE]
    if ctx.principal.device_id is None:
        raise ValidationError("only a device can report its printer", field="device")
    device = await ctx.s.get(Device, ctx.principal.device_id, with_for_update=True)
    if device is None:
        raise NotFound(f"no device with id {ctx.principal.device_id}")
    if not device.active or device.revoked_at is not None:
        raise PermissionDenied(f"device {device.name} is revoked; ask an administrator")
    fine = printer_state.severity == "ok"
    new_state = None if fine else printer_state.value
    new_message = None if fine else text
    if device.fault_state == new_state and (fine or device.fault_message == new_message):
        return False
    now = ctx.now()
    device.fault_state, device.fault_message, device.fault_at = new_state, new_message, now
    device.last_seen_at = now
    await publish(
        ctx,
        PrinterFault(
            device_id=device.id,
            device_name=device.name,
            state=printer_state.value,
            severity=printer_state.severity,
            message=text,
            occurred_at=now,
        ),
    )
    await log_action(
        ctx,
        action="device.printer_ok" if fine else "device.printer_fault",
        target=("device", device.id),
        details={"name": device.name, "state": printer_state.value, "message": text},
    )
    return True


# ---- signing in ---------------------------------------------------------------------------------
def device_principal(device: Device) -> Principal:
    """The principal a device acts as: its own role, its name, its id."""
    role = KEY_ROLES[device.kind]
    return Principal(user_id=None, username=device.name, role=role.value, device_id=device.id)


@operation(None, public=True, readonly=True)
async def authenticate(ctx: Context, *, key: str) -> Principal:
    """The principal of a device key, if the key is current and the device not revoked."""
    try:
        digest = hash_device_key(clean_device_key(key))
    except ValidationError:
        raise AuthenticationFailed(
            "this is not a device key; store the key printed by 'iqms admin devices add'"
        ) from None
    device = (
        await ctx.s.execute(select(Device).where(Device.token_hash == digest))
    ).scalar_one_or_none()
    if device is None:
        log.warning("refused an unknown or replaced device key")
        raise AuthenticationFailed(
            "this device key is unknown or was replaced by a newer one; ask an administrator "
            "for a new key ('iqms admin devices new-key NAME')"
        )
    if not device.active or device.revoked_at is not None or device.kind not in KEY_ROLES:
        when = device.revoked_at or device.updated_at
        local = when.astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M")
        log.warning("refused the revoked key of device %s", device.name)
        raise AuthenticationFailed(
            f"the key of device {device.name} was revoked ({local}); "
            "ask an administrator for a new key"
        )
    principal = device_principal(device)
    now = ctx.now()
    if device.last_seen_at is None or now - device.last_seen_at >= LAST_SEEN_EVERY:
        await _touch(ctx, device.id, now)
    return principal


async def _touch(ctx: Context, device_id: uuid.UUID, now: datetime) -> None:
    """Note the device's contact, at most every :data:`LAST_SEEN_EVERY` (one short write)."""
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Device)
            .where(
                Device.id == device_id,
                or_(Device.last_seen_at.is_(None), Device.last_seen_at <= now - LAST_SEEN_EVERY),
            )
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )


__all__ = [
    "LAST_SEEN_EVERY",
    "add",
    "authenticate",
    "device_out",
    "device_principal",
    "get",
    "list_devices",
    "new_key",
    "report_printer",
    "revoke",
]
