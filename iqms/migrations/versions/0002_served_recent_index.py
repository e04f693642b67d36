"""Index of served tickets by department and finish time (recent consultation lengths).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 03:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_queue_entries_served_recent",
        "queue_entries",
        ["department_id", "finished_at"],
        unique=False,
        postgresql_where=sa.text("status = 'served'"),
        sqlite_where=sa.text("status = 'served'"),
    )


def downgrade() -> None:
    op.drop_index("ix_queue_entries_served_recent", table_name="queue_entries")
