"""Patients on their own phones: self-registration and logging in, as typed in and handed back."""

from __future__ import annotations

from pydantic import Field

from iqms.core.config import PatientLogin
from iqms.core.enums import NotifyChannel
from iqms.core.schemas.common import BirthDate, Language, PersonName, PhoneE164, Schema
from iqms.core.schemas.patients import NationalId


class SelfRegistration(Schema):
    """A patient registering themselves (the MRN is generated)."""

    full_name: PersonName
    phone: PhoneE164 = None
    date_of_birth: BirthDate = None
    national_id: NationalId = None
    notify_channel: NotifyChannel | None = Field(
        default=None,
        description="How to tell the patient their turn is near; default: SMS when a phone "
        "number is given and the clinic sends SMS, else none.",
    )
    language: Language = "en"


class LoginCodeSent(Schema):
    """A login code was sent by SMS, if the number belongs to a registered patient.

    The answer is the same whether or not it does, so nobody can find out who
    is registered by asking.
    """

    sent_to: str = Field(description="The phone number, partly masked", examples=["+44*******3456"])
    expires_in_minutes: int = Field(examples=[10])


class SelfRegistrationResult(Schema):
    """What a self-registering patient does next: enter the SMS code, or log in with the MRN."""

    login: PatientLogin = Field(description="sms: a code was sent; birth_date: use the MRN")
    code: LoginCodeSent | None = None
    mrn: str | None = Field(
        default=None, description="The new record number (birth-date login only)"
    )


__all__ = ["LoginCodeSent", "SelfRegistration", "SelfRegistrationResult"]
