"""Devices (kiosks, display boards, terminals) as an administrator adds them and sees them."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, Field

from iqms.core.enums import DeviceKind, Role
from iqms.core.schemas.common import Schema

DEVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,47}$")

#: The role a device key grants, by kind of device. Terminals sign in with people's logins.
KEY_ROLES: dict[DeviceKind, Role] = {
    DeviceKind.KIOSK: Role.KIOSK,
    DeviceKind.DISPLAY: Role.DISPLAY,
}


def normalise_device_name(value: object) -> str:
    """Device names are case-insensitive: stored lower-case, 1-48 of a-z 0-9 . _ -."""
    if not isinstance(value, str):
        raise ValueError("device name must be text")
    name = value.strip().lower()
    if not DEVICE_NAME_RE.fullmatch(name):
        raise ValueError(
            "device name must be 1 to 48 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (like entrance-kiosk)"
        )
    return name


DeviceName = Annotated[
    str, BeforeValidator(normalise_device_name), Field(examples=["entrance-kiosk"])
]


def _key_role(value: object) -> object:
    text = str(getattr(value, "value", value)).strip().lower()
    if text not in {r.value for r in KEY_ROLES.values()}:
        raise ValueError("a device key is for a kiosk or a display board (kiosk or display)")
    return text


class DeviceCreate(Schema):
    """A new kiosk or display board."""

    name: DeviceName
    role: Annotated[Role, BeforeValidator(_key_role)]

    @property
    def kind(self) -> DeviceKind:
        return next(kind for kind, role in KEY_ROLES.items() if role == self.role)


class DeviceOut(Schema):
    """A device as administrators and reception see it (never its key)."""

    id: uuid.UUID
    name: str
    kind: DeviceKind
    role: Role | None = Field(description="What its key may do; None: no key (a terminal)")
    status: str = Field(description="active, revoked, or 'no key'")
    key_issued_at: datetime | None
    revoked_at: datetime | None
    last_seen_at: datetime | None
    created_at: datetime
    fault_state: str | None = Field(
        default=None, description="The last hardware fault reported (None: all fine)"
    )
    fault_message: str | None = None
    fault_at: datetime | None = None


@dataclass(frozen=True)
class IssuedDeviceKey:
    """A device and its new key: the only moment the key exists outside the device."""

    device: DeviceOut
    key: str

    def __repr__(self) -> str:  # the key is a credential: keep it out of reprs and logs
        return f"IssuedDeviceKey(device={self.device.name!r})"


__all__ = [
    "KEY_ROLES",
    "DeviceCreate",
    "DeviceName",
    "DeviceOut",
    "IssuedDeviceKey",
    "normalise_device_name",
]
