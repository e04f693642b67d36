"""Audit chain head; 'superseded' messages; when a message's send began.

- ``audit_chain_head``: one row holding the sequence number and hash of the newest
  audit record, moved forward by every append in the same transaction, so deleting
  the newest audit records shows up in ``iqms admin audit verify``. On PostgreSQL
  the row may only move forward to a record that exists, and is never deleted.
- ``notifications.status`` gains ``superseded`` (a later message about the same
  ticket replaced it), which until now was recorded as ``failed``.
- ``notifications.send_started_at``: when the send in flight began, kept when a
  worker stops mid-send, so the next worker first asks the provider whether the
  message already went out.

Revision ID: 0103
Revises: 0102
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0103"
down_revision: str | None = "0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
SUPERSEDED_ERROR = "not sent: a later message about this ticket replaced it"
OLD_STATUSES = ("pending", "sending", "sent", "failed", "dead")
NEW_STATUSES = (*OLD_STATUSES, "superseded")

HEAD_GUARD_FUNCTION = """
CREATE FUNCTION iqms_audit_chain_head_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'audit_chain_head only moves forward: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.id <> OLD.id OR NEW.seq <= OLD.seq OR NOT EXISTS (
        SELECT 1 FROM audit_log WHERE seq = NEW.seq AND hash = NEW.hash
    ) THEN
        RAISE EXCEPTION 'audit_chain_head only moves forward to an existing audit record'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


def _status_check(statuses: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_head_single_row")),
        sa.CheckConstraint("seq >= 0", name=op.f("ck_audit_chain_head_seq_nonnegative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    newest = bind.execute(
        sa.text("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    ).first()
    bind.execute(
        sa.text("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, :seq, :hash)"),
        {"seq": newest.seq if newest else 0, "hash": newest.hash if newest else GENESIS_HASH},
    )
    if bind.dialect.name == "postgresql":
        op.execute(HEAD_GUARD_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_chain_head_forward_only BEFORE INSERT OR UPDATE OR DELETE "
            "ON audit_chain_head FOR EACH ROW EXECUTE FUNCTION iqms_audit_chain_head_guard()"
        )
        op.execute(
            "CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION iqms_audit_chain_head_guard()"
        )

    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint(op.f("ck_notifications_notification_status"), type_="check")
        batch.alter_column(
            "status",
            existing_type=sa.String(length=11),
            type_=sa.String(length=14),
            existing_nullable=False,
        )
        batch.create_check_constraint(
            op.f("ck_notifications_notification_status"), _status_check(NEW_STATUSES)
        )
        batch.add_column(sa.Column("send_started_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        sa.text(
            "UPDATE notifications SET status = 'superseded' "
            "WHERE status = 'failed' AND last_error = :reason"
        ).bindparams(reason=SUPERSEDED_ERROR)
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE notifications SET status = 'failed', last_error = :reason "
            "WHERE status = 'superseded'"
        ).bindparams(reason=SUPERSEDED_ERROR)
    )
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("send_started_at")
        batch.drop_constraint(op.f("ck_notifications_notification_status"), type_="check")
        batch.alter_column(
            "status",
            existing_type=sa.String(length=14),
            type_=sa.String(length=11),
            existing_nullable=False,
        )
        batch.create_check_constraint(
            op.f("ck_notifications_notification_status"), _status_check(OLD_STATUSES)
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_forward_only ON audit_chain_head")
        op.execute("DROP FUNCTION IF EXISTS iqms_audit_chain_head_guard()")
    op.drop_table("audit_chain_head")
