"""Device keys: kiosks and display boards sign in with a revocable key; devices report faults.

Revision ID: 0102
Revises: 0003
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0102"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Only added columns and an index: SQLite alters the table in place (no copy), so rows
    # referring to devices (sync records, number blocks, tickets) are untouched.
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("key_issued_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("fault_state", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("fault_message", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("fault_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_devices_token_hash", ["token_hash"], unique=True)


def downgrade() -> None:
    # Plain DROP COLUMN on both backends (SQLite 3.35+): a batch copy of the table would
    # delete the rows that refer to devices (their foreign keys cascade).
    op.drop_index("ix_devices_token_hash", table_name="devices")
    for column in ("fault_at", "fault_message", "fault_state", "revoked_at", "key_issued_at"):
        op.execute(f"ALTER TABLE devices DROP COLUMN {column}")
