"""Accounts: what an administrator types in, and what the services hand back.

Passwords are never part of these models: they travel as separate arguments,
so no validation error or ``repr`` can ever echo one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import BeforeValidator, Field

from iqms.core.enums import DEVICE_ONLY_ROLES, Role
from iqms.core.errors import ValidationError
from iqms.core.schemas.common import PersonName, Schema, describe_error
from iqms.core.security.rbac import Principal

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def normalise_username(value: object) -> str:
    """Usernames are case-insensitive: stored lower-case, 2-64 of a-z 0-9 . _ -."""
    if not isinstance(value, str):
        raise ValueError("username must be text")
    name = value.strip().lower()
    if not USERNAME_RE.fullmatch(name):
        raise ValueError(
            "username must be 2 to 64 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


Username = Annotated[str, BeforeValidator(normalise_username), Field(examples=["rita"])]

#: Roles a login account may hold (a display board is a device, never an account).
ACCOUNT_ROLES = tuple(role for role in Role if role not in DEVICE_ONLY_ROLES)


def account_role(value: object) -> Role:
    """One of the roles a person's account may hold, said plainly when it is not."""
    text = value.value if isinstance(value, Role) else str(value).strip().lower()
    if text in {role.value for role in DEVICE_ONLY_ROLES}:
        raise ValueError(
            f"{text} is a device role, not an account role: add the device with "
            f"'iqms admin devices add NAME --role {text}'"
        )
    if text not in {role.value for role in ACCOUNT_ROLES}:
        names = [role.value for role in ACCOUNT_ROLES]
        raise ValueError(f"must be one of {', '.join(names[:-1])} or {names[-1]}")
    return Role(text)


AccountRole = Annotated[Role, BeforeValidator(account_role), Field(examples=["staff"])]
MRN = Annotated[str, Field(min_length=1, max_length=20, examples=["MRN000123"])]


class UserCreate(Schema):
    """A new account (the password is passed separately)."""

    username: Username
    full_name: PersonName
    role: AccountRole
    patient_mrn: MRN | None = Field(
        default=None, description="For a patient account: the MRN of the patient's record."
    )


class UserUpdate(Schema):
    """Changes an administrator may make to an account's profile."""

    full_name: PersonName | None = None
    patient_mrn: MRN | None = None


class UserOut(Schema):
    """An account as administrators and the account holder see it (never the hash)."""

    id: uuid.UUID
    username: str
    full_name: str
    role: Role
    active: bool
    locked: bool
    locked_until: datetime | None
    failed_logins: int
    last_login_at: datetime | None
    created_at: datetime
    patient_id: uuid.UUID | None = None
    doctor_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None

    @property
    def status(self) -> str:
        if not self.active:
            return "disabled"
        return "locked" if self.locked else "active"


@dataclass(frozen=True)
class LoginResult:
    """A successful login: the signed token to present, who it is for, and when it expires."""

    token: str
    principal: Principal
    expires_at: datetime
    user: UserOut

    def __repr__(self) -> str:  # the token is a credential: keep it out of reprs and logs
        return f"LoginResult(user={self.user.username!r}, expires_at={self.expires_at!r})"


M = TypeVar("M", bound=pydantic.BaseModel)


def parse(model: type[M], **data: Any) -> M:
    """Validate input into ``model``; raise the core :class:`ValidationError` naming the field."""
    try:
        return model(**data)
    except pydantic.ValidationError as exc:
        field, message = describe_error(exc.errors()[0])
        raise ValidationError(message, field=field) from None
