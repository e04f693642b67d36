"""What the waiting-room boards show besides the queue: the message line set by staff."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from iqms.core.models._base import Base, UUIDPk

#: the scope of the clinic-wide message (the only one today)
CLINIC_SCOPE = "clinic"


class DisplayMessage(UUIDPk, Base):
    """The message line of the boards (one row per scope; no row: no message)."""

    __tablename__ = "display_messages"

    scope: Mapped[str] = mapped_column(String(16), unique=True, default=CLINIC_SCOPE)
    text: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime]
    set_by: Mapped[str] = mapped_column(String(64))
