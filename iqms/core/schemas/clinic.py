"""Clinic setup: departments, doctors and appointments, as typed in and as handed back."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import AwareDatetime, BeforeValidator, Field, field_validator

from iqms.core.enums import AppointmentStatus, DoctorStatus
from iqms.core.errors import ValidationError
from iqms.core.queue import policy as queue_policy
from iqms.core.schemas.common import Schema, ShortText, describe_error

M = TypeVar("M", bound=pydantic.BaseModel)


def parse(model: type[M], **data: Any) -> M:
    """Validate input into ``model``; raise the core :class:`ValidationError` naming the field."""
    try:
        return model(**data)
    except pydantic.ValidationError as exc:
        field, message = describe_error(exc.errors()[0])
        raise ValidationError(message, field=field) from None


def _code(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("department code must be text")
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z0-9][A-Z0-9_-]{0,15}", code):
        raise ValueError(
            "department code must be 1 to 16 letters, digits, '-' or '_' (like GEN or XRAY)"
        )
    return code


def _prefix(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("ticket prefix must be text")
    prefix = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{1,3}", prefix):
        raise ValueError("ticket prefix must be 1 to 3 letters (like A)")
    return prefix


def _room(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("room must be text")
    room = re.sub(r"\s+", " ", value).strip()
    if not 1 <= len(room) <= 20 or any(ord(ch) < 32 for ch in room):
        raise ValueError("room must be 1 to 20 printable characters (like Room 3)")
    return room


DepartmentCode = Annotated[
    str, BeforeValidator(_code), Field(examples=["GEN"], description="Short code")
]
TicketPrefix = Annotated[
    str,
    BeforeValidator(_prefix),
    Field(examples=["A"], description="1-3 letters before the number"),
]
Room = Annotated[str, BeforeValidator(_room), Field(examples=["Room 3"])]
ServiceMinutes = Annotated[int, Field(ge=1, le=480, description="Typical consultation minutes")]


class _TargetsMixin(Schema):
    triage_targets: dict[str, int] | None = Field(
        default=None,
        description="Target wait minutes overriding the defaults, by category: {'2': 15}",
        examples=[{"3": 45}],
    )

    @field_validator("triage_targets", mode="before")
    @classmethod
    def _check_targets(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError("must map categories 1-5 to minutes")
        try:
            return queue_policy.normalise_targets(value)
        except ValidationError as exc:
            raise ValueError(exc.message) from None


class DepartmentCreate(_TargetsMixin):
    """A new department (service) of the clinic."""

    code: DepartmentCode
    name: ShortText
    ticket_prefix: TicketPrefix
    default_service_minutes: ServiceMinutes = 12


class DepartmentUpdate(_TargetsMixin):
    """Changes to a department; ``None`` leaves a field as it is."""

    name: ShortText | None = None
    ticket_prefix: TicketPrefix | None = None
    default_service_minutes: ServiceMinutes | None = None
    active: bool | None = None
    clear_targets: bool = False


class DepartmentOut(Schema):
    """A department, with its effective triage targets (defaults plus overrides)."""

    id: uuid.UUID
    code: str
    name: str
    ticket_prefix: str
    active: bool
    default_service_minutes: int
    target_overrides: dict[str, int]
    targets: dict[int, int]


class DoctorCreate(Schema):
    """Make an existing doctor account a doctor of a department, in a room."""

    room: Room


class DoctorOut(Schema):
    """A doctor as staff and displays see them."""

    id: uuid.UUID
    user_id: uuid.UUID
    username: str
    full_name: str
    department_id: uuid.UUID
    department_code: str
    room: str
    status: DoctorStatus
    status_changed_at: datetime | None


class AppointmentBook(Schema):
    """A booked appointment time (must include the time zone)."""

    scheduled_at: AwareDatetime


class AppointmentOut(Schema):
    """An appointment; ``ticket`` is set once the patient checked in."""

    id: uuid.UUID
    patient_id: uuid.UUID
    patient_mrn: str
    department_id: uuid.UUID
    department_code: str
    doctor_id: uuid.UUID | None
    scheduled_at: datetime
    status: AppointmentStatus
    checked_in_at: datetime | None
    ticket: str | None = None
    booking_code: str | None = Field(
        default=None, description="What the patient types at a kiosk to check in (8 digits)"
    )


__all__ = [
    "AppointmentBook",
    "AppointmentOut",
    "DepartmentCreate",
    "DepartmentOut",
    "DepartmentUpdate",
    "DoctorCreate",
    "DoctorOut",
    "parse",
]
