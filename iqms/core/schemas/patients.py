"""Patients: registration and changes as typed in, records as handed back."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BeforeValidator, Field

from iqms.core.enums import NotifyChannel
from iqms.core.schemas.common import BirthDate, Language, PersonName, PhoneE164, Schema


def _national_id(value: object) -> object:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if not isinstance(value, str):
        raise ValueError("national id must be text")
    cleaned = re.sub(r"[\s-]+", "", value).upper()
    if not re.fullmatch(r"[A-Z0-9]{4,32}", cleaned):
        raise ValueError("national id must be 4 to 32 letters or digits")
    return cleaned


NationalId = Annotated[
    str | None,
    BeforeValidator(_national_id),
    Field(description="National identity number (spaces and dashes removed)"),
]
PushToken = Annotated[str | None, Field(max_length=512)]


class PatientCreate(Schema):
    """A new patient record (the MRN is generated)."""

    full_name: PersonName
    phone: PhoneE164 = None
    date_of_birth: BirthDate = None
    national_id: NationalId = None
    notify_channel: NotifyChannel = NotifyChannel.NONE
    language: Language = "en"
    push_token: PushToken = None


class PatientUpdate(Schema):
    """Changes to a patient record; ``None`` leaves a field as it is."""

    full_name: PersonName | None = None
    phone: PhoneE164 = None
    date_of_birth: BirthDate = None
    national_id: NationalId = None
    notify_channel: NotifyChannel | None = None
    language: Language | None = None
    push_token: PushToken = None


class PatientOut(Schema):
    """A patient record (the push token is never handed out)."""

    id: uuid.UUID
    mrn: str
    full_name: str
    phone: str | None
    date_of_birth: date | None
    national_id: str | None
    notify_channel: NotifyChannel
    language: str
    has_push_token: bool
    version: int
    created_at: datetime
    updated_at: datetime


class PatientMatch(Schema):
    """One search result: enough to pick the right person at the desk."""

    id: uuid.UUID
    mrn: str
    full_name: str
    phone: str | None
    date_of_birth: date | None


__all__ = ["NationalId", "PatientCreate", "PatientMatch", "PatientOut", "PatientUpdate"]
