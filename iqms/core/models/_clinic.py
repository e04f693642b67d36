"""Departments, doctors, appointments and devices."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from iqms.core.enums import AppointmentStatus, DeviceKind, DoctorStatus
from iqms.core.models._base import Base, Timestamps, UUIDPk, enum_column


class Department(UUIDPk, Timestamps, Base):
    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    ticket_prefix: Mapped[str] = mapped_column(String(3), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    # {"2": 15, ...}: minutes overriding DEFAULT_TRIAGE_TARGET_MINUTES per category.
    triage_targets: Mapped[dict[str, Any] | None]
    # Typical consultation length, used by wait estimates before there is history.
    default_service_minutes: Mapped[int] = mapped_column(default=12)


class Doctor(UUIDPk, Timestamps, Base):
    __tablename__ = "doctors"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), unique=True
    )
    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT")
    )
    room: Mapped[str] = mapped_column(String(20))
    status: Mapped[DoctorStatus] = mapped_column(
        enum_column(DoctorStatus, name="doctor_status"), default=DoctorStatus.OFF
    )
    status_changed_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_doctors_department_status", "department_id", "status"),)


class Appointment(UUIDPk, Timestamps, Base):
    __tablename__ = "appointments"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT")
    )
    doctor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("doctors.id", ondelete="SET NULL")
    )
    scheduled_at: Mapped[datetime]
    status: Mapped[AppointmentStatus] = mapped_column(
        enum_column(AppointmentStatus, name="appointment_status"), default=AppointmentStatus.BOOKED
    )
    checked_in_at: Mapped[datetime | None]
    # What the patient types at a kiosk to check in (8 digits; NULL for older appointments).
    booking_code: Mapped[str | None] = mapped_column(String(12))

    __table_args__ = (
        Index("ix_appointments_department_scheduled", "department_id", "scheduled_at"),
        Index("ix_appointments_patient", "patient_id"),
        Index("ix_appointments_booking_code", "booking_code", unique=True),
    )


class Device(UUIDPk, Timestamps, Base):
    """A kiosk, display board or terminal; kiosks and boards sign in with a device key."""

    __tablename__ = "devices"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[DeviceKind] = mapped_column(enum_column(DeviceKind, name="device_kind"))
    # SHA-256 of the device key (the key itself is shown once and never stored).
    token_hash: Mapped[str | None] = mapped_column(String(255))
    key_issued_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # The device's login account (role kiosk), if it has one.
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(default=True)
    last_seen_at: Mapped[datetime | None]
    # What the device last reported about its hardware (e.g. the ticket printer); NULL: fine.
    fault_state: Mapped[str | None] = mapped_column(String(32))
    fault_message: Mapped[str | None] = mapped_column(String(200))
    fault_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_devices_token_hash", "token_hash", unique=True),)
