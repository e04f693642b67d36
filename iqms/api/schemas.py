"""Request bodies and the few responses the core schemas do not already give.

Outputs are the core's own schemas (``TicketOut``, ``PatientOut``, ``BoardView``,
...); these are the shapes of what clients send, with examples for the docs.
Secrets (passwords, codes) travel only in request bodies, never in URLs.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from iqms.core.enums import DoctorStatus, NotifyChannel, Role
from iqms.core.schemas.common import BirthDate, Language, PersonName, PhoneE164
from iqms.core.schemas.patients import NationalId
from iqms.core.schemas.users import UserOut


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused (a typo is not silently ignored)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---- logging in ---------------------------------------------------------------------------------
class TokenRequest(Body):
    """A staff, doctor, admin (or patient account) login."""

    username: str = Field(min_length=1, max_length=64, examples=["rita"])
    password: str = Field(min_length=1, max_length=200, examples=["correct horse battery"])


class TokenOut(BaseModel):
    """A signed login token: send it as ``Authorization: Bearer <access_token>``."""

    access_token: str
    token_type: str = Field(default="bearer", examples=["bearer"])
    expires_at: datetime
    user: UserOut


class PasswordChange(Body):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=200)


class PatientRegistration(Body):
    """A patient registering themselves on their phone."""

    full_name: PersonName
    phone: PhoneE164 = None
    date_of_birth: BirthDate = None
    national_id: NationalId = None
    notify_channel: NotifyChannel | None = Field(
        default=None, description="sms, push or none (default: sms when a phone is given)"
    )
    language: Language = "en"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "full_name": "Amelia Hughes",
                    "phone": "+447911123456",
                    "date_of_birth": "1984-02-11",
                    "language": "en",
                }
            ]
        }
    )


class CodeRequest(Body):
    """Ask for a login code by SMS (give the date of birth if family members share a phone)."""

    phone: str = Field(min_length=3, max_length=32, examples=["+447911123456"])
    date_of_birth: date | None = Field(default=None, examples=["1984-02-11"])


class CodeLogin(Body):
    """The code from the SMS."""

    phone: str = Field(min_length=3, max_length=32, examples=["+447911123456"])
    code: str = Field(min_length=1, max_length=12, examples=["482913"])
    date_of_birth: date | None = Field(default=None, examples=["1984-02-11"])


class BirthDateLogin(Body):
    """The record number (MRN) and date of birth, where the clinic sends no SMS."""

    mrn: str = Field(min_length=1, max_length=20, examples=["MRN000123"])
    date_of_birth: date = Field(examples=["1984-02-11"])


# ---- patients -----------------------------------------------------------------------------------
class PatientCreateRequest(Body):
    """A patient registered by staff (the MRN is generated)."""

    full_name: PersonName
    phone: PhoneE164 = None
    date_of_birth: BirthDate = None
    national_id: NationalId = None
    notify_channel: NotifyChannel | None = None
    language: Language = "en"
    allow_duplicate: bool = Field(
        default=False,
        description="Register even though a patient with this phone and date of birth exists",
    )


CLEARABLE = ("phone", "date_of_birth", "national_id", "push_token")


class PatientChange(Body):
    """Changes to a patient record: fields left out stay as they are, ``null`` clears one.

    ``version`` is the record's version as read; if someone changed it since,
    the answer is 409 and nothing changes.
    """

    version: int = Field(ge=1, examples=[3])
    full_name: PersonName | None = None
    phone: PhoneE164 = None
    date_of_birth: BirthDate = None
    national_id: NationalId = None
    notify_channel: NotifyChannel | None = None
    language: Language | None = None
    push_token: str | None = Field(default=None, max_length=512)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"version": 3, "phone": "+447911123456"}]}
    )

    def changes(self) -> dict[str, Any]:
        """Keyword arguments for the core's ``patients.update`` ('' clears a field)."""
        out: dict[str, Any] = {}
        for name in self.model_fields_set - {"version"}:
            value = getattr(self, name)
            if value is None:
                if name in CLEARABLE:
                    out[name] = ""
                continue
            out[name] = value.value if isinstance(value, NotifyChannel) else value
        return out


# ---- queue --------------------------------------------------------------------------------------
class IssueTicket(Body):
    """A new ticket (reception or a kiosk online)."""

    department: str = Field(min_length=1, max_length=64, examples=["GEN"])
    patient: str | None = Field(default=None, description="Patient id or MRN", examples=[None])
    triage_category: int | None = Field(default=None, ge=1, le=5, examples=[4])
    doctor: str | None = Field(default=None, description="Reserve for this doctor (username or id)")
    client_op_id: uuid.UUID | None = Field(
        default=None,
        description="The caller's id for this request: a retry after a lost answer "
        "returns the same ticket",
    )


class CategoryChange(Body):
    triage_category: int = Field(ge=1, le=5, examples=[2])


class Reason(Body):
    reason: str | None = Field(default=None, max_length=200)


class Transfer(Body):
    department: str | None = Field(default=None, max_length=64, examples=["XRAY"])
    doctor: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=200)


class CallAs(Body):
    """Staff calling on a doctor's behalf name the doctor; doctors leave it out."""

    doctor: str | None = Field(default=None, max_length=64, examples=["drsmith"])
    include_name: bool = Field(default=False, description="Include the patient's name (audited)")


class Recall(Body):
    no_show_after: int | None = Field(
        default=None, ge=0, description="Mark a no-show once recalled this many times"
    )
    requeue_no_show: bool = False


class NoShow(Body):
    requeue: bool = Field(default=False, description="Put the ticket back in the queue instead")


class DoctorStatusChange(Body):
    status: DoctorStatus
    doctor: str | None = Field(
        default=None, max_length=64, description="Staff name the doctor; doctors leave it out"
    )


# ---- accounts -----------------------------------------------------------------------------------
class UserCreateRequest(Body):
    username: str = Field(min_length=2, max_length=64, examples=["rita"])
    full_name: PersonName
    role: Role
    password: str = Field(min_length=1, max_length=200)
    patient_mrn: str | None = Field(default=None, max_length=20)


class PasswordReset(Body):
    new_password: str = Field(min_length=1, max_length=200)


class RoleChange(Body):
    role: Role
    patient_mrn: str | None = Field(default=None, max_length=20)


class AuditVerifyOut(BaseModel):
    intact: bool
    checked: int
    first_break_seq: int | None = None
    first_break_reason: str | None = None


# ---- offline sync -------------------------------------------------------------------------------
class SyncResultOut(BaseModel):
    op_id: uuid.UUID
    device_seq: int
    kind: str
    result: str = Field(description="applied, duplicate, merged or conflict")
    details: dict[str, Any]
    conflict_id: uuid.UUID | None = None


class SyncPushOut(BaseModel):
    """What the server did with a batch: one result per operation, in device order."""

    device_id: uuid.UUID
    device_name: str
    counts: dict[str, int]
    results: list[SyncResultOut]


class NumbersRequest(Body):
    department_id: uuid.UUID
    size: int = Field(default=20, ge=1, le=100)
    device_id: uuid.UUID | None = None
    device_name: str | None = Field(default=None, max_length=64)


class NumbersOut(BaseModel):
    department_id: uuid.UUID
    department_code: str
    department_name: str
    ticket_prefix: str
    service_date: date
    first_number: int
    last_number: int


SYNC_EXAMPLE: dict[str, Any] = {
    "format": 1,
    "device_id": "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed",
    "device_name": "kiosk-north",
    "operations": [
        {
            "kind": "ticket.issue",
            "op_id": "6f1c1c3e-9a7b-4a8e-9a43-2f1f0f5f2c11",
            "device_seq": 1,
            "occurred_at": "2026-03-02T09:15:00+00:00",
            "department_id": "0d5f8a6e-5d7b-4f43-8f0e-7a0b6e5f1c22",
            "triage_category": 4,
            "sequence": 101,
        }
    ],
}
