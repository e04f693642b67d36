"""Users (staff, doctors, patients, device accounts) and patients."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from iqms.core.enums import NotifyChannel, Role
from iqms.core.models._base import Base, Timestamps, UUIDPk, enum_column


class User(UUIDPk, Timestamps, Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(enum_column(Role, name="role"))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    token_version: Mapped[int] = mapped_column(default=1)
    last_login_at: Mapped[datetime | None]
    # A patient account sees its own profile and tickets.
    patient_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("patients.id", ondelete="SET NULL"), unique=True
    )

    __table_args__ = (
        CheckConstraint("failed_logins >= 0", name="failed_logins_nonnegative"),
        CheckConstraint("token_version >= 1", name="token_version_positive"),
    )


class Patient(UUIDPk, Timestamps, Base):
    __tablename__ = "patients"

    mrn: Mapped[str] = mapped_column(String(20), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(16))
    date_of_birth: Mapped[date | None]
    national_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    notify_channel: Mapped[NotifyChannel] = mapped_column(
        enum_column(NotifyChannel, name="notify_channel"), default=NotifyChannel.NONE
    )
    language: Mapped[str] = mapped_column(String(8), default="en")
    push_token: Mapped[str | None] = mapped_column(String(512))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_patients_phone_dob", "phone", "date_of_birth"),)
