"""Validated field types shared by the entity schemas."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field
from pydantic import BaseModel as _BaseModel

DEFAULT_PHONE_REGION = "GB"
MAX_AGE_YEARS = 130


def normalise_phone(value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """A phone number in E.164 (``+447700900123``); raises ``ValueError`` if it is not valid."""
    text = value.strip()
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _phone(value: object) -> object:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if not isinstance(value, str):
        raise ValueError("phone number must be text")
    return normalise_phone(value)


def _collapse(value: object) -> object:
    if isinstance(value, str):
        return re.sub(r"\s+", " ", value).strip()
    return value


def _sane_birth_date(value: date | None) -> date | None:
    if value is None:
        return None
    today = date.today()
    if value > today:
        raise ValueError("date of birth is in the future")
    if value.year < today.year - MAX_AGE_YEARS:
        raise ValueError(f"date of birth is more than {MAX_AGE_YEARS} years ago")
    return value


def _no_control_chars(value: str) -> str:
    if any(ord(ch) < 32 for ch in value):
        raise ValueError("must not contain control characters")
    return value


PhoneE164 = Annotated[
    str | None,
    BeforeValidator(_phone),
    Field(description="Phone number, normalised to E.164", examples=["+447911123456"]),
]
PersonName = Annotated[
    str,
    BeforeValidator(_collapse),
    AfterValidator(_no_control_chars),
    Field(min_length=1, max_length=120, examples=["Amelia Hughes"]),
]
ShortText = Annotated[
    str,
    BeforeValidator(_collapse),
    AfterValidator(_no_control_chars),
    Field(min_length=1, max_length=80),
]
BirthDate = Annotated[date | None, AfterValidator(_sane_birth_date), Field(examples=["1984-02-11"])]
Language = Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$", examples=["en", "es"])]


class Schema(_BaseModel):
    """Base of input/output schemas: strict about unknown fields, readable from ORM objects."""

    model_config = ConfigDict(extra="forbid", from_attributes=True, str_strip_whitespace=True)
