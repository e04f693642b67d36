"""Validation messages reach receptionists and admins: plain words, never pydantic's jargon."""

from __future__ import annotations

from typing import Any

import pytest

from iqms.core.config import load_settings
from iqms.core.errors import ConfigError, ValidationError
from iqms.core.schemas.clinic import DepartmentCreate, parse
from iqms.core.schemas.patients import PatientCreate
from iqms.core.schemas.users import UserCreate
from iqms.core.sync.batch import validate_operation

DEPT = {"code": "GEN", "name": "General Practice", "ticket_prefix": "A"}
JARGON = (
    "Input should",
    "String should",
    "Value should",
    "valid integer",
    "Value error",
    "pattern",
)

CASES: list[tuple[type[Any], dict[str, Any], str, str]] = [
    (DepartmentCreate, {**DEPT, "name": "x" * 95}, "name",
     "name: must be at most 80 characters (not 95)"),
    (DepartmentCreate, {**DEPT, "name": "  "}, "name", "name: must not be empty"),
    (DepartmentCreate, {**DEPT, "default_service_minutes": 0}, "default_service_minutes",
     "default service minutes: must be at least 1"),
    (DepartmentCreate, {**DEPT, "default_service_minutes": 500}, "default_service_minutes",
     "default service minutes: must be at most 480"),
    (DepartmentCreate, {**DEPT, "default_service_minutes": "ten"}, "default_service_minutes",
     "default service minutes: must be a whole number"),
    (DepartmentCreate, {**DEPT, "ticket_prefix": "A1"}, "ticket_prefix",
     "ticket prefix must be 1 to 3 letters (like A)"),
    (PatientCreate, {"full_name": "Ann Lee", "language": "english"}, "language",
     "language: must be a language code like en or es"),
    (PatientCreate, {"full_name": "Ann Lee", "notify_channel": "email"}, "notify_channel",
     "notify channel: must be one of sms, push or none"),
    (PatientCreate, {"full_name": "Ann Lee", "date_of_birth": "last year"}, "date_of_birth",
     "date of birth: must be a date like 1984-02-11"),
    (PatientCreate, {"full_name": "x" * 121}, "full_name",
     "full name: must be at most 120 characters (not 121)"),
    (PatientCreate, {}, "full_name", "full name: is required"),
    (PatientCreate, {"full_name": "Ann Lee", "shoe_size": 9}, "shoe_size",
     "shoe size: is not a known field"),
    (UserCreate, {"username": "rita", "full_name": "Rita", "role": "boss"}, "role",
     "role: must be one of admin, staff, doctor, patient or kiosk"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "data", "field", "message"), CASES)
def test_validation_messages_are_plain_words(
    model: type[Any], data: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(model, **data)
    text = str(caught.value)
    assert not any(word in text for word in JARGON), text
    assert caught.value.field == field
    assert text == message


def test_sync_operations_and_settings_use_the_same_words() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_operation(
            {
                "kind": "patient.register",
                "op_id": "8f1d3c52-7c5e-4d36-9d7c-1b2f1f1f1f1f",
                "device_seq": 1,
                "occurred_at": "2026-01-05T09:30:00Z",
                "patient": {"full_name": "y" * 130},
            }
        )
    assert str(caught.value) == "patient.full_name: must be at most 120 characters (not 130)"
    with pytest.raises(ConfigError) as bad:
        load_settings(_env_file=None, db_pool_size=0)
    assert str(bad.value) == "IQMS_DB_POOL_SIZE must be at least 1"
