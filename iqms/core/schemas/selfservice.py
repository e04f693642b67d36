"""What the self-service operations (kiosk, patient pages) hand back: no patient's details."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from iqms.core.schemas.common import Schema
from iqms.core.schemas.queue import Estimate, TicketOut


class DepartmentWait(Schema):
    """An open department and how long a ticket taken there now would wait."""

    department_id: uuid.UUID
    code: str
    name: str
    ticket_prefix: str
    waiting: int = Field(description="Tickets waiting now")
    doctors_available: int = Field(description="Doctors available to call patients now")
    estimate: Estimate = Field(description="Wait of a standard ticket taken now")


class CheckedIn(Schema):
    """An appointment checked in at a kiosk: its ticket, where and when."""

    ticket: TicketOut
    department_name: str
    scheduled_at: datetime
    room: str | None = Field(description="The doctor's room, for an appointment with one doctor")


__all__ = ["CheckedIn", "DepartmentWait"]
