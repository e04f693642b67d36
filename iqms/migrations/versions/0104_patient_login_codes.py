"""Patient logins on the HTTP pages: SMS login codes (hashed) and attempts, for rate limits.

Revision ID: 0104
Revises: 0103
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0104"
down_revision: str | None = "0103"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "patient_login_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("lookup", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "attempts >= 0", name=op.f("ck_patient_login_codes_attempts_nonnegative")
        ),
        sa.CheckConstraint(
            "method IN ('sms', 'birth_date')", name=op.f("ck_patient_login_codes_method_values")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_login_codes_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_login_codes")),
    )
    op.create_index(
        "ix_patient_login_codes_lookup",
        "patient_login_codes",
        ["method", "lookup", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_patient_login_codes_lookup", table_name="patient_login_codes")
    op.drop_table("patient_login_codes")
