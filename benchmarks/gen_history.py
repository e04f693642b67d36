"""Generate a year of clinic history for report benchmarks.

On PostgreSQL one ``INSERT ... SELECT`` over ``generate_series`` writes a
million queue entries in well under a minute; on SQLite the rows are built in
Python and inserted in batches (use fewer entries there).

    python -m benchmarks.gen_history --url postgresql://USER@HOST/DB --entries 1000000

The database must be migrated (``iqms db upgrade``) and hold no departments
with the generated codes (``BH1`` ...).

Shape of the data: 6 departments (one overrides the urgent target), 4 doctors
each, 50,000 patients, arrivals spread over clinic hours (busier mornings),
Manchester categories about 1/6/20/53/20 %, waits that grow with lower
urgency and at busy hours, 88 % served, 5 % no-shows, 4 % cancelled, 1 %
transferred, the rest still open on the last day.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text

from iqms.core import migrate
from iqms.core.db import Database
from iqms.core.enums import Role, TicketSource, TicketStatus
from iqms.core.models import Department, Doctor, Patient, QueueEntry, User

DEPARTMENTS = [
    ("BH1", "General Practice", "A", None),
    ("BH2", "Paediatrics", "P", {"3": 45}),
    ("BH3", "Orthopaedics", "O", None),
    ("BH4", "Cardiology", "C", None),
    ("BH5", "Dermatology", "D", None),
    ("BH6", "Minor Injuries", "M", None),
]
DOCTORS_PER_DEPARTMENT = 4
PATIENTS = 50_000  # at most; small runs get one patient per 20 tickets


def patients_for(entries: int) -> int:
    return min(PATIENTS, max(100, entries // 20))


# mean wait (minutes) by category: urgent patients wait least
MEAN_WAIT = {1: 1.0, 2: 6.0, 3: 30.0, 4: 55.0, 5: 80.0}


def _doctor_id(dept_index: int, i: int) -> uuid.UUID:
    """The same id PostgreSQL computes with ``md5(...)::uuid``."""
    return uuid.UUID(hashlib.md5(f"iqms-bench-doctor-{dept_index}-{i}".encode()).hexdigest())


def _patient_id(i: int) -> uuid.UUID:
    return uuid.UUID(hashlib.md5(f"iqms-bench-patient-{i}".encode()).hexdigest())


async def _clinic(db: Database, patients: int) -> list[uuid.UUID]:
    """Departments, doctors and patients; returns the department ids in order."""
    async with db.transaction() as s:
        exists = (
            await s.execute(
                select(func.count()).select_from(Department).where(Department.code == "BH1")
            )
        ).scalar_one()
        if exists:
            raise SystemExit("gen_history: this database already holds generated history (BH1)")
        dept_ids = []
        for d_index, (code, name, prefix, overrides) in enumerate(DEPARTMENTS):
            dept = Department(
                id=uuid.uuid4(),
                code=code,
                name=name,
                ticket_prefix=prefix,
                triage_targets=overrides,
            )
            s.add(dept)
            dept_ids.append(dept.id)
            await s.flush()
            for i in range(DOCTORS_PER_DEPARTMENT):
                user = User(
                    id=uuid.uuid4(),
                    username=f"bench_dr_{code.lower()}_{i}",
                    full_name=f"Dr {name.split()[0]} {i + 1}",
                    role=Role.DOCTOR,
                    password_hash="!",
                )
                s.add(user)
                await s.flush()
                s.add(
                    Doctor(
                        id=_doctor_id(d_index, i),
                        user_id=user.id,
                        department_id=dept.id,
                        room=f"Room {d_index * 10 + i + 1}",
                    )
                )
        await s.flush()
        if db.is_postgres:
            await s.execute(text(_PG_PATIENTS), {"patients": patients})
            return dept_ids
        for start in range(0, patients, 5000):
            await s.execute(
                insert(Patient),
                [
                    {"id": _patient_id(i), "mrn": f"B{i:08d}", "full_name": f"Patient {i}"}
                    for i in range(start, min(start + 5000, patients))
                ],
            )
    return dept_ids


_PG_PATIENTS = """
INSERT INTO patients (id, mrn, full_name, notify_channel, language, version, created_at, updated_at)
SELECT md5('iqms-bench-patient-' || i)::uuid, 'B' || lpad(i::text, 8, '0'), 'Patient ' || i,
       'none', 'en', 1, now(), now()
FROM generate_series(0, :patients - 1) AS g(i)
"""

# Layers: random numbers per ticket (OFFSET 0 keeps random() evaluated once per row), then
# category / status / source, then the times. Per-day and per-doctor values come from small
# joined tables so the heavy functions run once per day, not once per ticket.
_PG_INSERT = """
INSERT INTO queue_entries (id, created_at, updated_at, service_date, department_id, sequence,
    ticket_number, patient_id, triage_category, queue_band, source, status, arrived_at, due_at,
    called_at, started_at, finished_at, called_doctor_id, called_room, recall_count)
SELECT
    gen_random_uuid(), arrived, arrived, day, dept_id, seq,
    prefix || '-' || lpad(seq::text, 3, '0'),
    CASE WHEN r_patient < 0.85
         THEN md5('iqms-bench-patient-' || floor(r_patient / 0.85 * :patients)::int)::uuid END,
    category, CASE WHEN category = 1 THEN 0 ELSE 1 END,
    source, status, arrived, arrived + target * interval '1 minute',
    CASE WHEN seen THEN arrived + wait END,
    CASE WHEN status = 'served' THEN arrived + wait + interval '40 seconds' END,
    CASE WHEN status = 'served' THEN arrived + wait + interval '40 seconds' + service END,
    CASE WHEN seen THEN doctor_id END,
    CASE WHEN seen THEN room END,
    0
FROM (
    SELECT *,
        status IN ('served', 'no_show') AS seen,
        (ARRAY[0, 10, 60, 120, 240])[category] AS target,
        (60 * -ln(1 - r_wait) * (ARRAY[1.0, 6.0, 30.0, 55.0, 80.0])[category] * busy)
            * interval '1 second' AS wait,
        (60 * (4 + 9 * -ln(1 - r_service))) * interval '1 second' AS service
    FROM (
        SELECT *,
            CASE WHEN r_cat < 0.01 THEN 1 WHEN r_cat < 0.07 THEN 2 WHEN r_cat < 0.27 THEN 3
                 WHEN r_cat < 0.80 THEN 4 ELSE 5 END AS category,
            CASE WHEN day = CAST(:last_day AS date) AND seq > :per_day - 8 THEN 'waiting'
                 WHEN r_status < 0.88 OR r_status >= 0.98 THEN 'served'
                 WHEN r_status < 0.93 THEN 'no_show'
                 WHEN r_status < 0.97 THEN 'cancelled' ELSE 'transferred' END AS status,
            CASE WHEN r_source < 0.55 THEN 'kiosk' WHEN r_source < 0.90 THEN 'reception'
                 ELSE 'appointment' END AS source
        FROM (
            SELECT d.day, v.dept_id, v.prefix, s.seq, doc.doctor_id, doc.room,
                d.opens_at + (36000 * power((s.seq - 1 + random()) / :per_day, 1.3))
                    * interval '1 second' AS arrived,
                1 + 0.6 * (1 - s.seq::float / :per_day) AS busy,
                random() AS r_cat, random() AS r_patient, random() AS r_source,
                random() AS r_status, random() AS r_wait, random() AS r_service
            FROM (
                SELECT CAST(g.day AS date) AS day,
                       (CAST(g.day AS date) + time '08:00') AT TIME ZONE :tz AS opens_at
                FROM generate_series(CAST(:first_day AS date), CAST(:last_day AS date),
                                     interval '1 day') AS g(day)
            ) AS d
            CROSS JOIN (VALUES {departments}) AS v(dept_id, prefix, dept_index)
            CROSS JOIN generate_series(1, :per_day) AS s(seq)
            JOIN (VALUES {doctors}) AS doc(dept_index, slot, doctor_id, room)
              ON doc.dept_index = v.dept_index AND doc.slot = s.seq % :doctors
            -- every department-day gets ``base`` tickets, the first ``extra`` of them one more
            WHERE s.seq <= :base
               OR (d.day - CAST(:first_day AS date)) * :n_departments + v.dept_index < :extra
            OFFSET 0
        ) AS l1
    ) AS l2
) AS l3
"""


def _spread(entries: int, days: int, departments: int) -> tuple[int, int, int]:
    """Tickets per department-day: (most, base, how many get base + 1), totalling ``entries``."""
    base, extra = divmod(entries, days * departments)
    return base + (1 if extra else 0), base, extra


async def _history_postgres(
    db: Database, dept_ids: list[uuid.UUID], entries: int, first: date, last: date, tz: str
) -> None:
    per_day, base, extra = _spread(entries, (last - first).days + 1, len(dept_ids))
    departments = ", ".join(
        f"(CAST('{d}' AS uuid), '{DEPARTMENTS[i][2]}', {i})" for i, d in enumerate(dept_ids)
    )
    doctors = ", ".join(
        f"({i}, {slot}, CAST('{_doctor_id(i, slot)}' AS uuid), 'Room {i * 10 + slot + 1}')"
        for i in range(len(dept_ids))
        for slot in range(DOCTORS_PER_DEPARTMENT)
    )
    async with db.transaction() as s:
        superuser = (
            await s.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        ).scalar_one()
        if superuser:
            # Bulk load: skip the per-row foreign-key triggers (the generated ids all exist).
            await s.execute(text("SET LOCAL session_replication_role = replica"))
        # Bulk load: building the secondary indexes afterwards is several times faster than
        # maintaining them row by row. All in this transaction: a failure restores them.
        constraints = (
            await s.execute(
                text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'queue_entries'::regclass AND contype = 'u'"
                )
            )
        ).all()
        indexes = (
            await s.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'queue_entries' "
                    "AND indexname NOT IN (SELECT conname FROM pg_constraint "
                    "WHERE conrelid = 'queue_entries'::regclass)"
                )
            )
        ).all()
        for name, _ in constraints:
            await s.execute(text(f'ALTER TABLE queue_entries DROP CONSTRAINT "{name}"'))
        for name, _ in indexes:
            await s.execute(text(f'DROP INDEX "{name}"'))
        await s.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        await s.execute(
            text(_PG_INSERT.format(departments=departments, doctors=doctors)),
            {
                "patients": patients_for(entries),
                "doctors": DOCTORS_PER_DEPARTMENT,
                "per_day": per_day,
                "base": base,
                "extra": extra,
                "n_departments": len(dept_ids),
                "first_day": first,
                "last_day": last,
                "tz": tz,
            },
        )
        for name, definition in constraints:
            await s.execute(text(f'ALTER TABLE queue_entries ADD CONSTRAINT "{name}" {definition}'))
        for _, definition in indexes:
            await s.execute(text(definition))
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE queue_entries"))


def _python_rows(
    dept_ids: list[uuid.UUID],
    entries: int,
    first: date,
    last: date,
    tz: ZoneInfo,
    rng: random.Random,
):  # type: ignore[no-untyped-def]
    days = (last - first).days + 1
    per_day, base, extra = _spread(entries, days, len(dept_ids))
    patients = patients_for(entries)
    for d in range(days):
        day = first + timedelta(days=d)
        for d_index, dept_id in enumerate(dept_ids):
            for seq in range(1, per_day + 1):
                if seq > base and d * len(dept_ids) + d_index >= extra:
                    break
                frac = ((seq - 1 + rng.random()) / per_day) ** 1.3
                local = datetime.combine(day, datetime.min.time()).replace(hour=8) + timedelta(
                    seconds=36000 * frac
                )
                arrived = local.replace(tzinfo=tz).astimezone(UTC)
                r = rng.random()
                category = (
                    1 if r < 0.01 else 2 if r < 0.07 else 3 if r < 0.27 else 4 if r < 0.8 else 5
                )
                target = {1: 0, 2: 10, 3: 60, 4: 120, 5: 240}[category]
                rs = rng.random()
                if day == last and seq > per_day - 8:
                    status = TicketStatus.WAITING
                elif rs < 0.88 or rs >= 0.98:
                    status = TicketStatus.SERVED
                elif rs < 0.93:
                    status = TicketStatus.NO_SHOW
                elif rs < 0.97:
                    status = TicketStatus.CANCELLED
                else:
                    status = TicketStatus.TRANSFERRED
                busy = 1 + 0.6 * (1 - seq / per_day)
                wait = timedelta(minutes=-math.log(1 - rng.random()) * MEAN_WAIT[category] * busy)
                service = timedelta(minutes=4 + 9 * -math.log(1 - rng.random()))
                seen = status in (TicketStatus.SERVED, TicketStatus.NO_SHOW)
                doc = seq % DOCTORS_PER_DEPARTMENT
                rp = rng.random()
                called = arrived + wait if seen else None
                started = called + timedelta(seconds=40) if status == TicketStatus.SERVED else None
                yield {
                    "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                    "created_at": arrived,
                    "updated_at": arrived,
                    "service_date": day,
                    "department_id": dept_id,
                    "sequence": seq,
                    "ticket_number": f"{DEPARTMENTS[d_index][2]}-{seq:03d}",
                    "patient_id": _patient_id(int(rp / 0.85 * patients)) if rp < 0.85 else None,
                    "triage_category": category,
                    "queue_band": 0 if category == 1 else 1,
                    "source": TicketSource.KIOSK if rs < 0.55 else TicketSource.RECEPTION,
                    "status": status,
                    "arrived_at": arrived,
                    "due_at": arrived + timedelta(minutes=target),
                    "called_at": called,
                    "started_at": started,
                    "finished_at": started + service if started else None,
                    "called_doctor_id": _doctor_id(d_index, doc) if seen else None,
                    "called_room": f"Room {d_index * 10 + doc + 1}" if seen else None,
                    "recall_count": 0,
                }


async def _history_python(
    db: Database, dept_ids: list[uuid.UUID], entries: int, first: date, last: date, tz: ZoneInfo
) -> None:
    rng = random.Random(42)
    batch: list[dict[str, object]] = []
    table = QueueEntry.__table__
    async with db.transaction() as s:
        conn = await s.connection()  # Core executemany: no ORM bookkeeping per row
        for row in _python_rows(dept_ids, entries, first, last, tz, rng):
            batch.append(row)
            if len(batch) == 10_000:
                await conn.execute(insert(table), batch)
                batch = []
        if batch:
            await conn.execute(insert(table), batch)


async def generate(
    url: str, *, entries: int, last_day: date, days: int = 365, timezone: str = "Europe/London"
) -> dict[str, object]:
    """Migrate ``url`` and fill it with ``entries`` tickets over ``days`` days ending ``last_day``."""
    db = Database(url)
    started = time.perf_counter()
    try:
        await migrate.upgrade(db)
        dept_ids = await _clinic(db, patients_for(entries))
        first = last_day - timedelta(days=days - 1)
        if db.is_postgres:
            await _history_postgres(db, dept_ids, entries, first, last_day, timezone)
        else:
            await _history_python(db, dept_ids, entries, first, last_day, ZoneInfo(timezone))
        async with db.transaction(readonly=True) as s:
            count = (await s.execute(select(func.count()).select_from(QueueEntry))).scalar_one()
    finally:
        await db.dispose()
    return {
        "benchmark": "gen_history",
        "backend": db.backend,
        "entries": int(count),
        "first_day": first.isoformat(),
        "last_day": last_day.isoformat(),
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="database URL (migrated or empty)")
    parser.add_argument("--entries", type=int, default=1_000_000, help="queue entries to create")
    parser.add_argument("--days", type=int, default=365, help="days of history")
    parser.add_argument(
        "--last-day",
        type=date.fromisoformat,
        default=date(2026, 1, 31),
        help="last service day (YYYY-MM-DD)",
    )
    parser.add_argument("--timezone", default="Europe/London", help="clinic time zone")
    args = parser.parse_args(argv)
    result = asyncio.run(
        generate(
            args.url,
            entries=args.entries,
            last_day=args.last_day,
            days=args.days,
            timezone=args.timezone,
        )
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
