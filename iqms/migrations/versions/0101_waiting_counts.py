"""Waiting counts kept by triggers, the "turn is near" index, the audit chain's tail in one call.

* ``waiting_counts``: waiting tickets per department, lane (doctor or pool)
  and minute of due time, kept by triggers on ``queue_entries`` and filled
  from the tickets waiting now. A ticket's place in line no longer needs a
  count over every ticket ahead of it.
* ``ix_queue_entries_approaching``: waiting tickets of patients not yet told
  that their turn is near, in queue order.
* PostgreSQL: ``iqms_audit_tail()`` takes the audit chain's lock and reads the
  last record in one round trip (a fresh snapshot after the lock).
* ``audit_log_moves_chain_head``: appending an audit record moves the chain
  head in the same statement (no extra round trip per operation).

Revision ID: 0101
Revises: 0104
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0101"
down_revision: str | None = "0104"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPROACHING_WHERE = "status = 'waiting' AND approaching_notified_at IS NULL AND patient_id IS NOT NULL"
BUCKET_COLUMNS = "(department_id, lane_id, queue_band, due_minute)"

# ---- PostgreSQL ----------------------------------------------------------------------------
PG_POOL = "'00000000-0000-0000-0000-000000000000'::uuid"


def _pg_minute(column: str) -> str:
    return f"(date_trunc('minute', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


PG_TRACK_FUNCTION = f"""
CREATE FUNCTION iqms_waiting_counts_track() RETURNS trigger AS $$
DECLARE
    left_over integer;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'waiting' THEN
        UPDATE waiting_counts SET waiting = waiting - 1
         WHERE department_id = OLD.department_id
           AND lane_id = COALESCE(OLD.doctor_id, {PG_POOL})
           AND queue_band = OLD.queue_band
           AND due_minute = {_pg_minute("OLD.due_at")}
        RETURNING waiting INTO left_over;
        IF left_over IS NOT NULL AND left_over <= 0 THEN
            DELETE FROM waiting_counts
             WHERE department_id = OLD.department_id
               AND lane_id = COALESCE(OLD.doctor_id, {PG_POOL})
               AND queue_band = OLD.queue_band
               AND due_minute = {_pg_minute("OLD.due_at")}
               AND waiting <= 0;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'waiting' THEN
        INSERT INTO waiting_counts (id, department_id, lane_id, queue_band, due_minute, waiting)
        VALUES (gen_random_uuid(), NEW.department_id, COALESCE(NEW.doctor_id, {PG_POOL}),
                NEW.queue_band, {_pg_minute("NEW.due_at")}, 1)
        ON CONFLICT {BUCKET_COLUMNS} DO UPDATE SET waiting = waiting_counts.waiting + 1;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

PG_BACKFILL = f"""
INSERT INTO waiting_counts (id, department_id, lane_id, queue_band, due_minute, waiting)
SELECT gen_random_uuid(), department_id, COALESCE(doctor_id, {PG_POOL}), queue_band,
       {_pg_minute("due_at")}, count(*)
  FROM queue_entries WHERE status = 'waiting'
 GROUP BY department_id, COALESCE(doctor_id, {PG_POOL}), queue_band, {_pg_minute("due_at")}
"""

# Lock and read in one call: a VOLATILE function takes a new snapshot for each query
# inside it, so the read sees the record appended by whoever held the lock before.
PG_AUDIT_TAIL_FUNCTION = """
CREATE FUNCTION iqms_audit_tail(lock_key bigint, OUT seq bigint, OUT hash varchar)
RETURNS record AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT a.seq, a.hash INTO seq, hash FROM audit_log a ORDER BY a.seq DESC LIMIT 1;
END;
$$ LANGUAGE plpgsql VOLATILE
"""

PG_HEAD_FOLLOW_FUNCTION = """
CREATE FUNCTION iqms_audit_chain_head_follow() RETURNS trigger AS $$
BEGIN
    UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

# ---- SQLite ---------------------------------------------------------------------------------
# UUIDs are stored as 32 hex digits and times as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC).
SQLITE_POOL = "'00000000000000000000000000000000'"


def _sqlite_minute(column: str) -> str:
    return f"(substr({column}, 1, 16) || ':00.000000')"


def _sqlite_enter(row: str) -> str:
    return f"""
    INSERT INTO waiting_counts (id, department_id, lane_id, queue_band, due_minute, waiting)
    VALUES (lower(hex(randomblob(16))), {row}.department_id, COALESCE({row}.doctor_id, {SQLITE_POOL}),
            {row}.queue_band, {_sqlite_minute(f"{row}.due_at")}, 1)
    ON CONFLICT {BUCKET_COLUMNS} DO UPDATE SET waiting = waiting + 1;"""


def _sqlite_leave(row: str) -> str:
    bucket = (
        f"department_id = {row}.department_id AND lane_id = COALESCE({row}.doctor_id, {SQLITE_POOL})"
        f" AND queue_band = {row}.queue_band AND due_minute = {_sqlite_minute(f'{row}.due_at')}"
    )
    return f"""
    UPDATE waiting_counts SET waiting = waiting - 1 WHERE {bucket};
    DELETE FROM waiting_counts WHERE {bucket} AND waiting <= 0;"""


TRACKED = "status, department_id, doctor_id, queue_band, due_at"

SQLITE_TRIGGERS = {
    "queue_entries_waiting_insert": (
        "AFTER INSERT ON queue_entries WHEN NEW.status = 'waiting'",
        _sqlite_enter("NEW"),
    ),
    "queue_entries_waiting_leave": (
        f"AFTER UPDATE OF {TRACKED} ON queue_entries WHEN OLD.status = 'waiting'",
        _sqlite_leave("OLD"),
    ),
    "queue_entries_waiting_enter": (
        f"AFTER UPDATE OF {TRACKED} ON queue_entries WHEN NEW.status = 'waiting'",
        _sqlite_enter("NEW"),
    ),
    "queue_entries_waiting_delete": (
        "AFTER DELETE ON queue_entries WHEN OLD.status = 'waiting'",
        _sqlite_leave("OLD"),
    ),
}

SQLITE_BACKFILL = f"""
INSERT INTO waiting_counts (id, department_id, lane_id, queue_band, due_minute, waiting)
SELECT lower(hex(randomblob(16))), department_id, COALESCE(doctor_id, {SQLITE_POOL}), queue_band,
       {_sqlite_minute("due_at")}, count(*)
  FROM queue_entries WHERE status = 'waiting'
 GROUP BY department_id, COALESCE(doctor_id, {SQLITE_POOL}), queue_band, {_sqlite_minute("due_at")}
"""


def _run(sql: str) -> None:
    # As written (no bind parameters: ':00' in a time literal is not one).
    op.get_bind().exec_driver_sql(sql)


def upgrade() -> None:
    op.create_table(
        "waiting_counts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("department_id", sa.Uuid(), nullable=False),
        sa.Column("lane_id", sa.Uuid(), nullable=False),
        sa.Column("queue_band", sa.Integer(), nullable=False),
        sa.Column("due_minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_waiting_counts_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waiting_counts")),
        sa.UniqueConstraint(
            "department_id", "lane_id", "queue_band", "due_minute", name="uq_waiting_counts_bucket"
        ),
    )
    with op.batch_alter_table("queue_entries") as batch:
        batch.create_index(
            "ix_queue_entries_approaching",
            [
                "department_id", "status", "approaching_notified_at",
                "queue_band", "due_at", "arrived_at", "sequence",
            ],  # fmt: skip
            unique=False,
            postgresql_where=sa.text(APPROACHING_WHERE),
            sqlite_where=sa.text(APPROACHING_WHERE),
        )
    if op.get_bind().dialect.name == "postgresql":
        _run(PG_TRACK_FUNCTION)
        _run(
            "CREATE TRIGGER queue_entries_waiting_counts AFTER INSERT OR DELETE OR UPDATE OF "
            f"{TRACKED} ON queue_entries FOR EACH ROW EXECUTE FUNCTION iqms_waiting_counts_track()"
        )
        _run(PG_BACKFILL)
        _run(PG_AUDIT_TAIL_FUNCTION)
        _run(PG_HEAD_FOLLOW_FUNCTION)
        _run(
            "CREATE TRIGGER audit_log_moves_chain_head AFTER INSERT ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION iqms_audit_chain_head_follow()"
        )
    else:
        for name, (when, body) in SQLITE_TRIGGERS.items():
            _run(f"CREATE TRIGGER {name} {when} BEGIN {body}\nEND")
        _run(SQLITE_BACKFILL)
        _run(
            "CREATE TRIGGER audit_log_moves_chain_head AFTER INSERT ON audit_log BEGIN "
            "UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _run("DROP TRIGGER IF EXISTS audit_log_moves_chain_head ON audit_log")
        _run("DROP FUNCTION IF EXISTS iqms_audit_chain_head_follow()")
        _run("DROP FUNCTION IF EXISTS iqms_audit_tail(bigint)")
        _run("DROP TRIGGER IF EXISTS queue_entries_waiting_counts ON queue_entries")
        _run("DROP FUNCTION IF EXISTS iqms_waiting_counts_track()")
    else:
        _run("DROP TRIGGER IF EXISTS audit_log_moves_chain_head")
        for name in SQLITE_TRIGGERS:
            _run(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("queue_entries") as batch:
        batch.drop_index("ix_queue_entries_approaching")
    op.drop_table("waiting_counts")
