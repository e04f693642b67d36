"""Patient logins on the HTTP pages: SMS codes sent and birth-date attempts, for rate limits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from iqms.core.models._base import Base, UUIDPk


class PatientLoginCode(UUIDPk, Base):
    """One patient login challenge: an SMS code sent, or a failed MRN + birth date attempt.

    Only a keyed hash of an SMS code is stored (HMAC with the signing secret),
    never the code. Rows also count the requests and failures that the rate
    limits look at, including requests for phone numbers nobody registered.
    """

    __tablename__ = "patient_login_codes"

    method: Mapped[str] = mapped_column(String(16))  # "sms" or "birth_date"
    # The phone number (E.164) a code was sent to, or the MRN tried.
    lookup: Mapped[str] = mapped_column(String(32))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE")
    )
    code_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
        CheckConstraint("method IN ('sms', 'birth_date')", name="method_values"),
        Index("ix_patient_login_codes_lookup", "method", "lookup", "created_at"),
    )


__all__ = ["PatientLoginCode"]
