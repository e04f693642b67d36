"""What a waiting-room board reads: ticket numbers, rooms, counts and the message line.

Nothing here can carry a patient's name: the board view is built from ticket
numbers, rooms and department names only.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from iqms.core.enums import TicketStatus
from iqms.core.schemas.common import Schema, _collapse, _no_control_chars

#: longest message line (two lines on a small monitor, one on a television)
MESSAGE_MAX_LENGTH = 160


def _message_length(value: str) -> str:
    if not value:
        raise ValueError("the message is empty")
    if len(value) > MESSAGE_MAX_LENGTH:
        raise ValueError(
            f"a message is at most {MESSAGE_MAX_LENGTH} characters (this one has {len(value)})"
        )
    return value


MessageText = Annotated[
    str,
    BeforeValidator(_collapse),
    AfterValidator(_no_control_chars),
    AfterValidator(_message_length),
]


class MessageIn(Schema):
    text: MessageText


class BoardCall(Schema):
    """One call on the board: a ticket number and the room it is called to."""

    ticket_number: str
    room: str | None
    department_code: str
    called_at: datetime = Field(description="When it was last called (a recall counts)")
    recall_count: int
    status: TicketStatus


class BoardDepartment(Schema):
    """A department on the board: how many wait and the next numbers in calling order."""

    id: uuid.UUID
    code: str
    name: str
    waiting_count: int
    next_numbers: list[str]


class DisplayMessageOut(Schema):
    """The message line as staff see it (who set it and when)."""

    text: str
    set_at: datetime
    set_by: str


class ClinicBoard(Schema):
    """Everything a waiting-room board shows, for the departments it covers."""

    service_date: date
    calls: list[BoardCall] = Field(description="Latest calls of the day, newest first")
    departments: list[BoardDepartment]
    message: str | None
    generated_at: datetime


__all__ = [
    "MESSAGE_MAX_LENGTH",
    "BoardCall",
    "BoardDepartment",
    "ClinicBoard",
    "DisplayMessageOut",
    "MessageIn",
]
