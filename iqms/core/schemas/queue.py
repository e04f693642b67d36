"""Tickets and queue views as the services hand them back.

Display views (:class:`BoardView`, :class:`TicketStatusView`) carry ticket
numbers and rooms only, never a patient's name. Staff views carry a name only
when asked for (and that read is audited).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from iqms.core.enums import DoctorStatus, TicketSource, TicketStatus
from iqms.core.schemas.common import Schema


class Estimate(Schema):
    """Minutes until the ticket is likely called: median and a 90% bound."""

    p50_minutes: float
    p90_minutes: float
    servers: int = Field(description="Doctors available who can call it")


class TicketOut(Schema):
    """One ticket."""

    id: uuid.UUID
    ticket_number: str
    service_date: date
    department_id: uuid.UUID
    department_code: str
    status: TicketStatus
    triage_category: int
    queue_band: int
    source: TicketSource
    patient_id: uuid.UUID | None
    patient_name: str | None = None
    doctor_id: uuid.UUID | None
    appointment_id: uuid.UUID | None = None
    arrived_at: datetime
    due_at: datetime
    called_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    called_doctor_id: uuid.UUID | None
    called_room: str | None
    recall_count: int
    transferred_from_id: uuid.UUID | None
    estimate_at_issue_minutes: float | None = None
    status_code: str | None = Field(
        default=None, description="Code of the ticket's public status page (printed as QR)"
    )
    status_url: str | None = Field(
        default=None, description="The status page link (when IQMS_PUBLIC_URL is set)"
    )
    position: int | None = Field(
        default=None, description="1 = next to be called (waiting tickets only)"
    )
    estimate: Estimate | None = None
    note: str | None = Field(default=None, description="Reception's note for the doctor")


class TicketStatusView(Schema):
    """What a patient may see about a ticket: where it stands, never who holds it."""

    ticket_number: str
    department_id: uuid.UUID | None = None
    department_code: str
    department_name: str
    status: TicketStatus
    triage_category: int
    position: int | None = Field(description="1 = next (waiting tickets only)")
    ahead: int | None = Field(description="Waiting tickets to be called first")
    estimate: Estimate | None
    room: str | None
    arrived_at: datetime
    called_at: datetime | None
    transferred_to: str | None = Field(
        default=None, description="A transferred ticket: the number the patient waits under now"
    )
    transferred_to_department: str | None = None
    transferred_from: str | None = Field(
        default=None,
        description="The number printed on the ticket, when it has moved to another queue",
    )


class ServingRoom(Schema):
    """One room on the board: who it is calling or seeing now."""

    room: str
    doctor_status: DoctorStatus
    ticket_number: str | None
    ticket_status: TicketStatus | None
    called_at: datetime | None


class BoardTicket(Schema):
    ticket_number: str
    triage_category: int
    estimate: Estimate | None


class RecentCall(Schema):
    ticket_number: str
    room: str | None
    called_at: datetime | None
    recall_count: int


class BoardView(Schema):
    """The waiting-room board of one department: numbers and rooms only."""

    department_id: uuid.UUID
    department_code: str
    department_name: str
    now_serving: list[ServingRoom]
    recent_calls: list[RecentCall]
    next_up: list[BoardTicket]
    waiting_count: int
    generated_at: datetime


class DoctorQueueView(Schema):
    """A doctor's console: their current patients and the tickets they would call next."""

    doctor_id: uuid.UUID
    doctor_name: str
    department_id: uuid.UUID
    department_code: str
    room: str
    status: DoctorStatus
    current: list[TicketOut]
    waiting: list[TicketOut]
    waiting_count: int
    department_name: str = ""
    waiting_by_category: dict[int, int] = Field(
        default_factory=dict, description="Waiting tickets this doctor may call, per category"
    )
    held: list[TicketOut] = Field(
        default_factory=list, description="Tickets this doctor called and put on hold"
    )


class DoctorDay(Schema):
    """A doctor's day so far: patients seen, consultation length, no-shows."""

    doctor_id: uuid.UUID
    service_date: date
    seen: int = Field(description="Patients served today")
    timed: int = Field(description="Of those, consultations with a recorded start")
    mean_consultation_minutes: float | None = Field(
        description="Mean length of the timed consultations (start to done)"
    )
    no_shows: int
    transferred: int = Field(description="Patients this doctor called and transferred")


__all__ = [
    "BoardTicket",
    "BoardView",
    "DoctorDay",
    "DoctorQueueView",
    "Estimate",
    "RecentCall",
    "ServingRoom",
    "TicketOut",
    "TicketStatusView",
]
