"""The demo clinic: a separate SQLite database seeded with departments, staff, patients, tickets."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from iqms.core import migrate
from iqms.core.clock import Clock, SystemClock, service_date
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import (
    DEFAULT_TRIAGE_TARGET_MINUTES,
    DoctorStatus,
    NotifyChannel,
    Role,
    TicketSource,
    TriageCategory,
)
from iqms.core.models import Department, Doctor, Patient, QueueEntry, TicketCounter, User
from iqms.core.security.passwords import hash_password

DEPARTMENTS = [
    ("GEN", "General Practice", "A"),
    ("PED", "Paediatrics", "P"),
    ("ORT", "Orthopaedics", "O"),
]

STAFF = [
    ("admin", "Alex Admin", Role.ADMIN),
    ("reception", "Rita Reception", Role.STAFF),
    ("kiosk1", "Entrance kiosk", Role.KIOSK),
]

DOCTORS = [
    ("drsmith", "Dr Sam Smith", "GEN", "Room 1"),
    ("drjones", "Dr Jo Jones", "GEN", "Room 2"),
    ("drpatel", "Dr Priya Patel", "PED", "Room 5"),
    ("drgarcia", "Dr Luis Garcia", "ORT", "Room 8"),
]

PATIENTS = [
    ("Amelia Hughes", "+447911123101", "1984-02-11", NotifyChannel.SMS, "en"),
    ("Oliver Brown", "+447911123102", "1979-07-30", NotifyChannel.SMS, "en"),
    ("Isla Wilson", "+447911123103", "2016-05-02", NotifyChannel.SMS, "en"),
    ("Noah Taylor", None, "1990-12-19", NotifyChannel.NONE, "en"),
    ("Sofía Martínez", "+34600900104", "1972-03-08", NotifyChannel.SMS, "es"),
    ("Jack Evans", "+447911123105", "1958-09-14", NotifyChannel.SMS, "en"),
    ("Mia Roberts", "+447911123106", "2019-01-25", NotifyChannel.SMS, "en"),
    ("Harry Walker", "+447911123107", "1966-11-03", NotifyChannel.NONE, "en"),
    ("Lucía García", "+34600900108", "1995-06-17", NotifyChannel.SMS, "es"),
    ("George Wright", "+447911123109", "1948-04-29", NotifyChannel.SMS, "en"),
]

# (department, patient index or None for an anonymous walk-in, category, minutes ago)
TICKETS = [
    ("GEN", 0, TriageCategory.STANDARD, 50),
    ("GEN", 1, TriageCategory.URGENT, 35),
    ("GEN", None, TriageCategory.STANDARD, 30),
    ("GEN", 3, TriageCategory.NON_URGENT, 25),
    ("GEN", 4, TriageCategory.VERY_URGENT, 5),
    ("PED", 2, TriageCategory.STANDARD, 40),
    ("PED", 6, TriageCategory.URGENT, 12),
    ("ORT", 5, TriageCategory.STANDARD, 45),
    ("ORT", 9, TriageCategory.NON_URGENT, 20),
    ("GEN", 8, TriageCategory.STANDARD, 2),
]


@dataclass
class DemoSummary:
    database_url: str
    path: Path
    accounts: list[tuple[str, str, str]] = field(default_factory=list)  # username, role, password
    departments: list[tuple[str, str, str]] = field(default_factory=list)  # code, name, prefix
    doctors: list[tuple[str, str, str]] = field(default_factory=list)  # name, department, room
    patients: int = 0
    waiting: list[tuple[str, str, int]] = field(
        default_factory=list
    )  # ticket, department, category


def demo_database_path(settings: Settings) -> Path:
    return settings.data_dir / "demo" / "iqms-demo.db"


async def create_demo(
    settings: Settings, *, path: Path | None = None, clock: Clock | None = None
) -> DemoSummary:
    """Create (or re-create) the demo database and seed the demo clinic."""
    clock = clock or SystemClock()
    path = path or demo_database_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url)
    summary = DemoSummary(database_url=f"sqlite:///{path}", path=path)
    try:
        await migrate.upgrade(db)
        await _seed(db, settings, clock, summary)
    finally:
        await db.dispose()
    return summary


async def _seed(db: Database, settings: Settings, clock: Clock, summary: DemoSummary) -> None:
    now = clock.now()
    today = service_date(now, settings.tz)
    async with db.transaction() as s:
        depts: dict[str, Department] = {}
        for code, name, prefix in DEPARTMENTS:
            dept = Department(id=uuid.uuid4(), code=code, name=name, ticket_prefix=prefix)
            s.add(dept)
            depts[code] = dept
            summary.departments.append((code, name, prefix))
        for username, full_name, role in STAFF:
            password = f"{username}-{secrets.token_hex(4)}"
            s.add(User(username=username, full_name=full_name, role=role,
                       password_hash=hash_password(settings, password)))  # fmt: skip
            summary.accounts.append((username, role.value, password))
        await s.flush()
        for username, full_name, code, room in DOCTORS:
            password = f"{username}-{secrets.token_hex(4)}"
            user = User(id=uuid.uuid4(), username=username, full_name=full_name, role=Role.DOCTOR,
                        password_hash=hash_password(settings, password))  # fmt: skip
            s.add(user)
            await s.flush()
            s.add(Doctor(user_id=user.id, department_id=depts[code].id, room=room,
                         status=DoctorStatus.AVAILABLE, status_changed_at=now))  # fmt: skip
            summary.accounts.append((username, Role.DOCTOR.value, password))
            summary.doctors.append((full_name, code, room))
        patients: list[Patient] = []
        for i, (name, phone, dob, channel, lang) in enumerate(PATIENTS, start=1):
            p = Patient(id=uuid.uuid4(), mrn=f"MRN{i:06d}", full_name=name, phone=phone,
                        date_of_birth=date.fromisoformat(dob), notify_channel=channel, language=lang)  # fmt: skip
            s.add(p)
            patients.append(p)
        summary.patients = len(patients)
        await s.flush()
        counters: dict[str, int] = {}
        for code, patient_index, category, minutes_ago in sorted(TICKETS, key=lambda t: -t[3]):
            dept = depts[code]
            counters[code] = counters.get(code, 0) + 1
            seq = counters[code]
            arrived = now - timedelta(minutes=minutes_ago)
            number = f"{dept.ticket_prefix}-{seq:03d}"
            s.add(
                QueueEntry(
                    service_date=today, department_id=dept.id, sequence=seq, ticket_number=number,
                    patient_id=patients[patient_index].id if patient_index is not None else None,
                    triage_category=int(category), queue_band=0 if category == TriageCategory.IMMEDIATE else 1,
                    source=TicketSource.RECEPTION if patient_index is not None else TicketSource.KIOSK,
                    arrived_at=arrived,
                    due_at=arrived + timedelta(minutes=DEFAULT_TRIAGE_TARGET_MINUTES[category]),
                )
            )  # fmt: skip
            summary.waiting.append((number, code, int(category)))
        for code, last in counters.items():
            s.add(TicketCounter(department_id=depts[code].id, service_date=today, last_number=last))
