"""Ticket status code: the unguessable key of a ticket's public status page.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Tickets issued before this revision have no status page (NULL).
    with op.batch_alter_table("queue_entries") as batch:
        batch.add_column(sa.Column("status_code", sa.String(length=32), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_queue_entries_status_code"), ["status_code"]
        )


def downgrade() -> None:
    with op.batch_alter_table("queue_entries") as batch:
        batch.drop_constraint(op.f("uq_queue_entries_status_code"), type_="unique")
        batch.drop_column("status_code")
