"""The demo clinic: a separate SQLite database seeded with departments, staff, patients, tickets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from iqms.core import migrate
from iqms.core.clock import Clock, FrozenClock, SystemClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import (
    DoctorStatus,
    NotifyChannel,
    Role,
    TicketSource,
    TriageCategory,
)
from iqms.core.security.rbac import Principal
from iqms.core.service import Context

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


# Harry Walker has an appointment in Orthopaedics later today.
APPOINTMENT_PATIENT = 7


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
    """Build the clinic through the core services, in one transaction.

    The seeding runs on a clock that starts an hour ago and moves forward to
    each ticket's arrival, so numbers, due times, wait estimates and the
    audit trail are exactly what the live system would have produced.
    """
    from iqms.core.services import clinic, patients, queue, users

    now = clock.now()
    seeding = FrozenClock(now - timedelta(minutes=60))
    async with db.transaction() as session:
        ctx = Context(
            db=db, principal=Principal.system("demo"), settings=settings, clock=seeding
        ).bind(session)
        for code, name, prefix in DEPARTMENTS:
            await clinic.create_department(ctx, code=code, name=name, ticket_prefix=prefix)
            summary.departments.append((code, name, prefix))
        for username, full_name, role in STAFF:
            password = f"{username}-{secrets.token_hex(4)}"
            await users.create(
                ctx, username=username, full_name=full_name, role=role, password=password
            )
            summary.accounts.append((username, role.value, password))
        for username, full_name, code, room in DOCTORS:
            password = f"{username}-{secrets.token_hex(4)}"
            await users.create(
                ctx, username=username, full_name=full_name, role=Role.DOCTOR, password=password
            )
            doctor = await clinic.create_doctor(ctx, user=username, department=code, room=room)
            await clinic.set_doctor_status(ctx, doctor=doctor.id, status=DoctorStatus.AVAILABLE)
            summary.accounts.append((username, Role.DOCTOR.value, password))
            summary.doctors.append((full_name, code, room))
        registered = []
        for name, phone, dob, channel, lang in PATIENTS:
            registered.append(
                await patients.register(
                    ctx,
                    full_name=name,
                    phone=phone,
                    date_of_birth=date.fromisoformat(dob),
                    notify_channel=channel.value,
                    language=lang,
                )
            )
        summary.patients = len(registered)
        for code, patient_index, category, minutes_ago in sorted(TICKETS, key=lambda t: -t[3]):
            seeding.set(now - timedelta(minutes=minutes_ago))
            ticket = await queue.issue(
                ctx,
                department=code,
                patient=registered[patient_index].id if patient_index is not None else None,
                triage_category=int(category),
                source=TicketSource.RECEPTION if patient_index is not None else TicketSource.KIOSK,
            )
            summary.waiting.append((ticket.ticket_number, code, int(category)))
        # An appointment later today, to check in from the kiosk or reception.
        seeding.set(now)
        await clinic.book_appointment(
            ctx,
            patient=registered[APPOINTMENT_PATIENT].id,
            department="ORT",
            doctor="drgarcia",
            scheduled_at=now + timedelta(minutes=40),
        )
