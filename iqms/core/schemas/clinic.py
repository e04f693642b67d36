"""Clinic setup: departments, doctors and appointments, as typed in and as handed back."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import AwareDatetime, BeforeValidator, Field, field_validator

from iqms.core import queue_policy
from iqms.core.enums import AppointmentStatus, DoctorStatus
from iqms.core.errors import ValidationError
from iqms.core.schemas.common import Schema, ShortText

M = TypeVar("M", bound=pydantic.BaseModel)


def parse(model: type[M], **data: Any) -> M:
    """Validate input into ``model``; raise the core :class:`ValidationError` naming the field."""
    try:
        return model(**data)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or None
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        raise ValidationError(f"{field}: {msg}" if field else msg, field=field) from None


def _upper_code(value: object) -> object:
    if isinstance(value, str):
        return value.strip().upper()
    return value


DepartmentCode = Annotated[
    str,
    BeforeValidator(_upper_code),
    Field(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,15}$", examples=["GEN"], description="Short code"),
]
TicketPrefix = Annotated[
    str,
    BeforeValidator(_upper_code),
    Field(pattern=r"^[A-Z]{1,3}$", examples=["A"], description="1-3 letters before the number"),
]
Room = Annotated[
    str,
    BeforeValidator(lambda v: re.sub(r"\s+", " ", v).strip() if isinstance(v, str) else v),
    Field(min_length=1, max_length=20, pattern=r"^[^\x00-\x1f]+$", examples=["Room 3"]),
]
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
