"""Ticket note for the doctor; an index of a doctor's tickets by day (the doctor console).

Revision ID: 0106
Revises: 0108
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0106"
down_revision: str | None = "0108"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One added nullable column: SQLite alters the table in place (no copy).
    op.add_column("queue_entries", sa.Column("note", sa.String(length=300), nullable=True))
    op.create_index(
        "ix_queue_entries_called_doctor_day",
        "queue_entries",
        ["called_doctor_id", "service_date"],
    )


def downgrade() -> None:
    op.drop_index("ix_queue_entries_called_doctor_day", table_name="queue_entries")
    # Plain DROP COLUMN on both backends (SQLite 3.35+), without a batch copy of the table.
    op.execute("ALTER TABLE queue_entries DROP COLUMN note")
