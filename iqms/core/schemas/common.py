"""Validated field types shared by the entity schemas."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any

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


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# Patterns of the shared field types, said as people say them.
_PATTERN_WORDS = {
    r"^[a-z]{2}(-[A-Z]{2})?$": "must be a language code like en or es",
}


def plain_message(err: Mapping[str, Any]) -> str:
    """One pydantic error in plain words: "must be at most 80 characters", "is required"."""
    kind = str(err.get("type", ""))
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    given = err.get("input")
    if kind in ("value_error", "assertion_error"):
        msg = str(err.get("msg", "is not valid"))
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ").strip()
    if kind in ("string_too_long", "too_long"):
        limit = ctx.get("max_length")
        if isinstance(given, str) or kind == "string_too_long":
            size = f" (not {len(given)})" if isinstance(given, str) else ""
            return f"must be at most {_plural(limit, 'character')}{size}"
        return f"must have at most {_plural(limit, 'item')}"
    if kind in ("string_too_short", "too_short"):
        limit = ctx.get("min_length")
        if limit == 1:
            return "must not be empty"
        if isinstance(given, str) or kind == "string_too_short":
            return f"must be at least {_plural(limit, 'character')}"
        return f"must have at least {_plural(limit, 'item')}"
    if kind == "string_pattern_mismatch":
        return _PATTERN_WORDS.get(str(ctx.get("pattern")), "is not in the expected form")
    simple = {
        "missing": "is required",
        "extra_forbidden": "is not a known field",
        "string_type": "must be text",
        "int_parsing": "must be a whole number",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "bool_parsing": "must be yes or no (true or false)",
        "bool_type": "must be yes or no (true or false)",
        "date_parsing": "must be a date like 1984-02-11",
        "date_from_datetime_parsing": "must be a date like 1984-02-11",
        "date_type": "must be a date like 1984-02-11",
        "datetime_parsing": "must be a date and time like 2026-01-05T09:30:00Z",
        "datetime_from_date_parsing": "must be a date and time like 2026-01-05T09:30:00Z",
        "datetime_type": "must be a date and time like 2026-01-05T09:30:00Z",
        "timezone_aware": "must include a time zone (e.g. 2026-01-05T09:30:00Z)",
        "uuid_parsing": "must be an id (a UUID like 3f2c6d1e-8a4b-4c1d-9e2f-0a1b2c3d4e5f)",
        "uuid_type": "must be an id (a UUID like 3f2c6d1e-8a4b-4c1d-9e2f-0a1b2c3d4e5f)",
        "dict_type": "must be a set of names and values",
        "list_type": "must be a list",
        "url_parsing": "must be a web address like https://clinic.example",
        "url_scheme": "must be a web address starting with http:// or https://",
    }
    if kind in simple:
        return simple[kind]
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}"
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"must be one of {expected}" if " or " in expected else f"must be {expected}"
    msg = str(err.get("msg", "is not valid")).strip()
    return msg.splitlines()[0] if msg else "is not valid"


def describe_error(err: Mapping[str, Any]) -> tuple[str | None, str]:
    """The field an error is about (``full_name``) and the sentence for people
    ("full name: must not be empty"; a message that names its field already stays as it is)."""
    loc = tuple(err.get("loc", ()))
    field = ".".join(str(p) for p in loc) or None
    label = ".".join(str(p).replace("_", " ") for p in loc)
    message = plain_message(err)
    if not label or message.startswith(label):
        return field, message
    return field, f"{label}: {message}"


class Schema(_BaseModel):
    """Base of input/output schemas: strict about unknown fields, readable from ORM objects."""

    model_config = ConfigDict(extra="forbid", from_attributes=True, str_strip_whitespace=True)
