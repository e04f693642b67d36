"""Appointment booking codes: what a patient types at a kiosk to check in.

Revision ID: 0108
Revises: 0101
Create Date: 2026-12-06 10:00:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0108"
down_revision: str | None = "0101"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CODE_DIGITS = 8


def upgrade() -> None:
    # A plain ADD COLUMN and a unique index: no table copy on SQLite (a copy of appointments
    # would clear the tickets that refer to them).
    op.add_column("appointments", sa.Column("booking_code", sa.String(length=12), nullable=True))
    op.create_index("ix_appointments_booking_code", "appointments", ["booking_code"], unique=True)
    # Appointments still to come get a code too, so their patients can check in at a kiosk.
    bind = op.get_bind()
    appointments = sa.table(
        "appointments",
        sa.column("id", sa.Uuid()),
        sa.column("status", sa.String()),
        sa.column("booking_code", sa.String()),
    )
    ids = bind.execute(
        sa.select(appointments.c.id).where(appointments.c.status == "booked")
    ).scalars()
    used: set[str] = set()
    for appointment_id in list(ids):
        code = _new_code(used)
        bind.execute(
            appointments.update()
            .where(appointments.c.id == appointment_id)
            .values(booking_code=code)
        )


def _new_code(used: set[str]) -> str:
    while True:
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        if code not in used:
            used.add(code)
            return code


def downgrade() -> None:
    op.drop_index("ix_appointments_booking_code", table_name="appointments")
    op.execute("ALTER TABLE appointments DROP COLUMN booking_code")
