"""The offline sync batch format: what a terminal's journal sends to ``sync.push``.

A batch is one device's operations in device order. Every operation carries a
client operation id (so a replay changes nothing), the device's sequence
number, the time it happened on the device and what it was based on. The
models below check the shape of a batch; :func:`parse_batch` turns any input
(JSON text, bytes or a mapping) into a :class:`SyncBatch` or raises
:class:`BatchRejected` listing each problem with its field path. A batch with
any problem is refused as a whole.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    TypeAdapter,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from iqms.core.enums import NotifyChannel
from iqms.core.errors import ValidationError
from iqms.core.schemas.common import (
    BirthDate,
    Language,
    PersonName,
    PhoneE164,
    Schema,
    plain_message,
)
from iqms.core.schemas.patients import NationalId

FORMAT_VERSION = 1
MAX_OPERATIONS = 1000
MAX_BATCH_BYTES = 4_000_000


def _reason_text(value: str) -> str:
    if any(ord(ch) < 32 for ch in value):
        raise ValueError("must not contain control characters")
    return value


Reason = Annotated[str, AfterValidator(_reason_text), Field(min_length=1, max_length=200)]
DeviceName = Annotated[str, AfterValidator(_reason_text), Field(min_length=1, max_length=64)]
Triage = Annotated[int, Field(ge=1, le=5, description="Manchester triage category, 1 = immediate")]


class PatientDetails(Schema):
    """A patient as registered on the terminal."""

    full_name: PersonName
    phone: PhoneE164 = None
    date_of_birth: BirthDate = None
    national_id: NationalId = None
    notify_channel: NotifyChannel = NotifyChannel.NONE
    language: Language = "en"


class PatientChanges(Schema):
    """Fields of a patient changed on the terminal; only the fields given are changed."""

    full_name: PersonName | None = None
    phone: PhoneE164 = None
    date_of_birth: BirthDate = None
    national_id: NationalId = None
    notify_channel: NotifyChannel | None = None
    language: Language | None = None

    @model_validator(mode="after")
    def _name_not_cleared(self) -> PatientChanges:
        for name in ("full_name", "notify_channel", "language"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be cleared")
        return self

    def given(self) -> dict[str, Any]:
        """The fields the terminal set, as plain JSON values."""
        return self.model_dump(mode="json", include=set(self.model_fields_set))


class _Operation(Schema):
    op_id: uuid.UUID = Field(description="Client operation id; a replay with it changes nothing")
    device_seq: int = Field(ge=1, le=2**62, description="The device's own operation counter")
    occurred_at: AwareDatetime = Field(description="When it happened on the device")


class RegisterPatient(_Operation):
    """A new patient registered offline (matched to an existing one when the server knows them)."""

    kind: Literal["patient.register"]
    patient: PatientDetails


class _PatientTarget(_Operation):
    patient_id: uuid.UUID | None = Field(default=None, description="A patient the server knows")
    patient_op_id: uuid.UUID | None = Field(
        default=None, description="The op_id of a patient.register done offline"
    )


class UpdatePatient(_PatientTarget):
    """Contact or identity details changed offline, based on the version the terminal knew."""

    kind: Literal["patient.update"]
    base_version: int | None = Field(
        default=None, ge=1, description="Patient version the change was based on"
    )
    base: PatientChanges | None = Field(
        default=None, description="The values the terminal saw before the change"
    )
    changes: PatientChanges

    @model_validator(mode="after")
    def _check(self) -> UpdatePatient:
        if (self.patient_id is None) == (self.patient_op_id is None):
            raise ValueError("give exactly one of patient_id and patient_op_id")
        if self.patient_id is not None and self.base_version is None:
            raise ValueError("base_version is required when updating a patient the server knows")
        if not self.changes.model_fields_set:
            raise ValueError("changes is empty")
        return self


class IssueTicket(_PatientTarget):
    """A ticket issued offline; ``sequence`` comes from a block reserved by this device."""

    kind: Literal["ticket.issue"]
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None = None
    triage_category: Triage = 4
    sequence: int | None = Field(
        default=None, ge=1, le=9999, description="Ticket number from this device's reserved block"
    )
    status_code: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{16,32}$",
        description="Code of the ticket's status page, printed on the offline ticket",
    )

    @model_validator(mode="after")
    def _check(self) -> IssueTicket:
        if self.patient_id is not None and self.patient_op_id is not None:
            raise ValueError("give at most one of patient_id and patient_op_id")
        return self


class CheckInAppointment(_Operation):
    """A patient checked in for their appointment offline."""

    kind: Literal["appointment.check_in"]
    appointment_id: uuid.UUID
    sequence: int | None = Field(
        default=None, ge=1, le=9999, description="Ticket number from this device's reserved block"
    )


class _TicketTarget(_Operation):
    ticket_id: uuid.UUID | None = Field(default=None, description="A ticket the server knows")
    ticket_op_id: uuid.UUID | None = Field(
        default=None, description="The op_id of a ticket issued offline"
    )

    @model_validator(mode="after")
    def _one_ticket(self) -> _TicketTarget:
        if (self.ticket_id is None) == (self.ticket_op_id is None):
            raise ValueError("give exactly one of ticket_id and ticket_op_id")
        return self


class CancelTicket(_TicketTarget):
    """A waiting patient left (ticket cancelled offline)."""

    kind: Literal["ticket.cancel"]
    reason: Reason | None = None


class SetTriage(_TicketTarget):
    """Staff changed a waiting ticket's triage category offline."""

    kind: Literal["ticket.triage"]
    triage_category: Triage


Operation = Annotated[
    RegisterPatient | UpdatePatient | IssueTicket | CheckInAppointment | CancelTicket | SetTriage,
    Field(discriminator="kind"),
]
OPERATION_KINDS = (
    "patient.register",
    "patient.update",
    "ticket.issue",
    "appointment.check_in",
    "ticket.cancel",
    "ticket.triage",
)


class SyncBatch(Schema):
    """One device's journal entries, oldest first."""

    format: Literal[1] = Field(description="Batch format version")
    device_id: uuid.UUID
    device_name: DeviceName | None = None
    operations: list[Operation] = Field(min_length=1, max_length=MAX_OPERATIONS)

    @model_validator(mode="after")
    def _order_and_references(self) -> SyncBatch:
        problems: list[tuple[str, str]] = []
        seen: dict[uuid.UUID, str] = {}
        last_seq = 0
        for i, op in enumerate(self.operations):
            where = f"operations[{i}]"
            if op.op_id in seen:
                problems.append((f"{where}.op_id", f"repeats the op_id of {seen[op.op_id]}"))
            if op.device_seq <= last_seq:
                problems.append(
                    (f"{where}.device_seq", f"must be greater than the one before ({last_seq})")
                )
            last_seq = max(last_seq, op.device_seq)
            for attr, wanted in (("patient_op_id", "patient.register"), ("ticket_op_id", None)):
                ref = getattr(op, attr, None)
                if ref is None:
                    continue
                if ref == op.op_id:
                    problems.append((f"{where}.{attr}", "refers to the operation itself"))
                    continue
                later = next(
                    (j for j, o in enumerate(self.operations) if o.op_id == ref and j > i), None
                )
                if later is not None:
                    problems.append(
                        (f"{where}.{attr}", f"refers to a later operation (operations[{later}])")
                    )
                    continue
                earlier = next(
                    (o for o in self.operations[:i] if o.op_id == ref and o is not op), None
                )
                accepted = (wanted,) if wanted else ("ticket.issue", "appointment.check_in")
                if earlier is not None and earlier.kind not in accepted:
                    problems.append(
                        (
                            f"{where}.{attr}",
                            f"refers to a {earlier.kind} operation, not {' or '.join(accepted)}",
                        )
                    )
            seen.setdefault(op.op_id, where)
        if problems:
            raise BatchRejected(problems)
        return self


class BatchRejected(ValidationError):
    """A sync batch failed validation; nothing of it was applied."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        first_field, first_msg = problems[0]
        more = len(problems) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        super().__init__(
            f"sync batch refused, nothing applied: {first_field}: {first_msg}{tail}",
            field=first_field,
            problems=[{"field": f, "problem": m} for f, m in problems],
        )
        self.problems = problems


def _loc_text(loc: tuple[int | str, ...]) -> str:
    out = ""
    previous_was_index = True  # a lone operation's path starts with its tag too
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            previous_was_index = True
            continue
        if previous_was_index and part in OPERATION_KINDS:
            previous_was_index = False
            continue  # the union tag pydantic puts in the path
        previous_was_index = False
        if part.startswith("function-") or part.startswith("lax-"):
            continue
        out += f".{part}" if out else part
    return out or "batch"


def _message(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "union_tag_not_found":
        return f"missing operation kind (one of {', '.join(OPERATION_KINDS)})"
    if kind == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag", "?")
        return f"unknown operation kind {tag!r} (one of {', '.join(OPERATION_KINDS)})"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "is required"
    if kind == "literal_error" and err.get("loc") == ("format",):
        return f"unsupported batch format (this server reads format {FORMAT_VERSION})"
    if kind in ("uuid_parsing", "uuid_type"):
        return "must be a UUID (e.g. 3f2c6d1e-8a4b-4c1d-9e2f-0a1b2c3d4e5f)"
    if kind == "timezone_aware":
        return "must include a time zone (e.g. 2026-01-05T09:30:00Z)"
    return plain_message(err)


def parse_batch(data: SyncBatch | Mapping[str, Any] | str | bytes) -> SyncBatch:
    """Validate a batch; raise :class:`BatchRejected` naming every problem found."""
    if isinstance(data, SyncBatch):
        return data
    if isinstance(data, (bytes, bytearray)):
        if len(data) > MAX_BATCH_BYTES:
            raise BatchRejected([("batch", f"is larger than {MAX_BATCH_BYTES} bytes")])
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise BatchRejected([("batch", "is not UTF-8 text")]) from None
    if isinstance(data, str):
        if len(data) > MAX_BATCH_BYTES:
            raise BatchRejected([("batch", f"is larger than {MAX_BATCH_BYTES} bytes")])
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise BatchRejected(
                [
                    (
                        "batch",
                        f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
                    )
                ]
            ) from None
        except RecursionError:
            raise BatchRejected([("batch", "is nested too deeply")]) from None
    if not isinstance(data, Mapping):
        raise BatchRejected(
            [("batch", "must be a JSON object with format, device_id and operations")]
        )
    try:
        return SyncBatch.model_validate(data)
    except BatchRejected:
        raise
    except PydanticValidationError as exc:
        problems = [(_loc_text(tuple(e["loc"])), _message(e)) for e in exc.errors()]
        raise BatchRejected(problems or [("batch", "is invalid")]) from None
    except RecursionError:
        raise BatchRejected([("batch", "is nested too deeply")]) from None


def validate_operation(data: Mapping[str, Any]) -> Operation:
    """Validate one operation (the journal checks each entry before storing it)."""
    try:
        return _OPERATION_ADAPTER.validate_python(data)
    except PydanticValidationError as exc:
        problems = [(_loc_text(tuple(e["loc"])), _message(e)) for e in exc.errors()]
        first_field, first_msg = problems[0]
        raise ValidationError(f"{first_field}: {first_msg}", field=first_field) from None


_OPERATION_ADAPTER: TypeAdapter[Any] = TypeAdapter(Operation)


__all__ = [
    "FORMAT_VERSION",
    "MAX_OPERATIONS",
    "OPERATION_KINDS",
    "BatchRejected",
    "CancelTicket",
    "CheckInAppointment",
    "IssueTicket",
    "Operation",
    "PatientChanges",
    "PatientDetails",
    "RegisterPatient",
    "SetTriage",
    "SyncBatch",
    "UpdatePatient",
    "parse_batch",
    "validate_operation",
]
