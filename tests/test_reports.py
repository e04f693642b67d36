"""Clinic reports: numbers computed in the database match the ones worked out by hand."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from iqms.core.enums import Role, TicketSource, TicketStatus
from iqms.core.errors import NotFound, PermissionDenied, ValidationError
from iqms.core.models import AuditRecord, Department, Doctor, Patient, QueueEntry, User
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import reports

D1, D2 = date(2026, 1, 12), date(2026, 1, 13)


@dataclass
class Clinic:
    """Ids of the seeded clinic, for building more history in a test."""

    departments: dict[str, uuid.UUID] = field(default_factory=dict)
    doctors: dict[str, uuid.UUID] = field(default_factory=dict)
    patients: list[uuid.UUID] = field(default_factory=list)
    sequences: dict[tuple[uuid.UUID, date], int] = field(default_factory=dict)


async def seed_clinic(ctx: Context) -> Clinic:
    """Two departments (GEN overrides the category 3 target to 30 min), three doctors."""
    clinic = Clinic()
    async with ctx.db.transaction() as s:
        for code, name, prefix, overrides in (
            ("GEN", "General Practice", "A", {"3": 30}),
            ("PED", "Paediatrics", "P", None),
        ):
            dept = Department(
                id=uuid.uuid4(),
                code=code,
                name=name,
                ticket_prefix=prefix,
                triage_targets=overrides,
            )
            s.add(dept)
            clinic.departments[code] = dept.id
        await s.flush()
        for username, full_name, code, room in (
            ("drsmith", "Dr Sam Smith", "GEN", "Room 1"),
            ("drjones", "Dr Jo Jones", "GEN", "Room 2"),
            ("drpatel", "Dr Priya Patel", "PED", "Room 5"),
        ):
            user = User(
                id=uuid.uuid4(),
                username=username,
                full_name=full_name,
                role=Role.DOCTOR,
                password_hash="x",
            )
            s.add(user)
            await s.flush()
            doctor = Doctor(
                id=uuid.uuid4(), user_id=user.id, department_id=clinic.departments[code], room=room
            )
            s.add(doctor)
            clinic.doctors[username] = doctor.id
        for i in range(1, 9):
            patient = Patient(id=uuid.uuid4(), mrn=f"MRN{i:06d}", full_name=f"Patient {i}")
            s.add(patient)
            clinic.patients.append(patient.id)
    return clinic


def entry(
    clinic: Clinic,
    day: date,
    dept: str,
    category: int,
    status: TicketStatus,
    arrive: str,
    *,
    wait: float | None = None,
    service: float | None = None,
    doctor: str | None = None,
    reserved_for: str | None = None,
    patient: int | None = None,
    source: TicketSource | None = None,
    arrived_on: date | None = None,
) -> QueueEntry:
    """A ticket with history; ``arrive`` is UTC ``HH:MM``, wait/service in minutes."""
    dept_id = clinic.departments[dept]
    key = (dept_id, day)
    clinic.sequences[key] = seq = clinic.sequences.get(key, 0) + 1
    hh, mm = map(int, arrive.split(":"))
    arrived = datetime.combine(arrived_on or day, datetime.min.time(), UTC).replace(
        hour=hh, minute=mm
    )
    called = arrived + timedelta(minutes=wait) if wait is not None else None
    started = called + timedelta(seconds=30) if called and service is not None else None
    finished = started + timedelta(minutes=service) if started and service is not None else None
    return QueueEntry(
        id=uuid.uuid4(),
        service_date=day,
        department_id=dept_id,
        sequence=seq,
        ticket_number=f"{dept[0]}-{seq:03d}",
        patient_id=clinic.patients[patient - 1] if patient else None,
        doctor_id=clinic.doctors[reserved_for] if reserved_for else None,
        triage_category=category,
        queue_band=0 if category == 1 else 1,
        source=source or (TicketSource.RECEPTION if patient else TicketSource.KIOSK),
        status=status,
        arrived_at=arrived,
        due_at=arrived + timedelta(minutes=60),
        called_at=called,
        started_at=started,
        finished_at=finished,
        called_doctor_id=clinic.doctors[doctor] if doctor else None,
        called_room="Room" if doctor else None,
    )


async def seed_history(ctx: Context) -> Clinic:
    """Twelve tickets over two days (plus one outside the range) with known outcomes."""
    c = await seed_clinic(ctx)
    S = TicketStatus
    async with ctx.db.transaction() as s:
        transferred = entry(c, D1, "PED", 4, S.TRANSFERRED, "11:00", patient=7)
        s.add_all(
            [
                entry(c, D1, "GEN", 4, S.SERVED, "09:00", wait=10, service=12, doctor="drsmith", patient=1),
                entry(c, D1, "GEN", 4, S.SERVED, "09:10", wait=20, service=8, doctor="drsmith", patient=2),
                entry(c, D1, "GEN", 3, S.SERVED, "09:20", wait=40, service=15, doctor="drjones", patient=3),
                entry(c, D1, "GEN", 2, S.SERVED, "10:05", wait=5, service=20, doctor="drjones", patient=4),
                entry(c, D1, "GEN", 4, S.NO_SHOW, "10:15", wait=30, doctor="drsmith", patient=5),
                entry(c, D1, "GEN", 5, S.CANCELLED, "10:30"),
                entry(c, D1, "PED", 3, S.SERVED, "09:30", wait=50, service=10, doctor="drpatel", patient=6),
                transferred,
            ]
        )  # fmt: skip
        await s.flush()
        moved = entry(c, D1, "GEN", 4, S.SERVED, "11:00", wait=130, service=5, doctor="drsmith",
                      patient=7, source=TicketSource.TRANSFER)  # fmt: skip
        moved.transferred_from_id = transferred.id
        s.add_all(
            [
                moved,
                entry(c, D2, "GEN", 1, S.SERVED, "14:00", wait=0, service=30, doctor="drjones", patient=1),
                entry(c, D2, "GEN", 4, S.WAITING, "15:00", reserved_for="drsmith", patient=8),
                entry(c, D2, "GEN", 4, S.SERVED, "14:20", wait=25, service=10, doctor="drsmith"),
                # outside the range
                entry(c, date(2026, 1, 20), "GEN", 4, S.SERVED, "09:00", wait=100, service=9, doctor="drsmith"),
            ]
        )  # fmt: skip
    return c


def by_key(rows: list[reports.Breakdown]) -> dict[str, reports.Distribution]:
    return {r.key: r.minutes for r in rows}


def dist(count: int, mean: float, median: float, p90: float) -> reports.Distribution:
    return reports.Distribution(count, *(pytest.approx(v, abs=1e-3) for v in (mean, median, p90)))


async def test_report_numbers_match_hand_computed_values(ctx: Context) -> None:
    await seed_history(ctx)
    r = await reports.clinic_report(ctx, date_from=D1, date_to=D2)

    assert r.outcomes == reports.Outcomes(
        total=12, served=8, no_show=1, cancelled=1, transferred=1, open=1
    )
    assert r.outcomes.no_show_rate == pytest.approx(0.1)
    assert r.outcomes.cancellation_rate == pytest.approx(0.1)
    assert (r.patients, r.walk_ins, r.open_days) == (8, 2, 2)
    assert r.by_source == {"kiosk": 2, "reception": 9, "transfer": 1}
    depts = {d.code: d for d in r.by_department}
    assert depts["GEN"].name == "General Practice"
    assert depts["GEN"].outcomes == reports.Outcomes(10, 7, 1, 1, 0, 1)
    assert depts["PED"].outcomes == reports.Outcomes(2, 1, 0, 0, 1, 0)
    assert [(d.day, d.outcomes.total) for d in r.by_day] == [(D1, 9), (D2, 3)]

    # waits: 0 5 10 20 25 30 40 50 130 (the transferred original is not counted twice)
    assert r.waits == dist(9, 310 / 9, 25, 66)
    assert by_key(r.waits_by_department) == {
        "GEN": dist(8, 32.5, 22.5, 67),
        "PED": dist(1, 50, 50, 50),
    }
    assert by_key(r.waits_by_category) == {
        "1": dist(1, 0, 0, 0),
        "2": dist(1, 5, 5, 5),
        "3": dist(2, 45, 45, 49),
        "4": dist(5, 43, 25, 90),
    }
    assert by_key(r.waits_by_hour) == {
        "09": dist(4, 30, 30, 47),
        "10": dist(2, 17.5, 17.5, 27.5),
        "11": dist(1, 130, 130, 130),
        "14": dist(2, 12.5, 12.5, 22.5),
    }
    assert [(b.key, b.label) for b in r.waits_by_doctor] == [
        ("drjones", "Dr Jo Jones"),
        ("drpatel", "Dr Priya Patel"),
        ("drsmith", "Dr Sam Smith"),
    ]
    assert by_key(r.waits_by_doctor)["drsmith"] == dist(5, 43, 25, 90)
    assert by_key(r.waits_by_doctor)["drjones"] == dist(3, 15, 5, 33)

    # consultations: 5 8 10 10 12 15 20 30
    assert r.service_times == dist(8, 13.75, 11, 23)
    assert by_key(r.service_by_doctor)["drjones"] == dist(3, 65 / 3, 20, 28)

    triage = {t.category: t for t in r.triage}
    assert (triage[1].seen, triage[1].within_target) == (1, 1)  # 0 min wait, target 0
    assert (triage[2].seen, triage[2].within_target) == (1, 1)
    # GEN's category 3 target is 30 min (override): 40 min misses it; PED's 50 of 60 is in.
    assert (triage[3].target_min, triage[3].target_max) == (30, 60)
    assert (triage[3].seen, triage[3].within_target, triage[3].percent_within) == (2, 1, 50.0)
    assert (triage[4].seen, triage[4].within_target, triage[4].percent_within) == (5, 4, 80.0)
    assert (triage[5].seen, triage[5].percent_within) == (0, None)

    assert [(h.hour, h.arrivals) for h in r.arrivals_by_hour] == [
        (9, 4), (10, 3), (11, 2), (14, 2), (15, 1),
    ]  # fmt: skip
    assert [h.hour for h in r.busiest_hours] == [9, 10, 11]
    assert r.busiest_hours[0].per_open_day == 2.0


async def test_department_and_doctor_scopes(ctx: Context) -> None:
    await seed_history(ctx)
    gen = await reports.clinic_report(ctx, date_from=D1, date_to=D2, department="gen")
    assert gen.scope.department_name == "General Practice"
    assert gen.outcomes.total == 10
    assert gen.waits == dist(8, 32.5, 22.5, 67)
    gen_cat3 = next(t for t in gen.triage if t.category == 3)
    assert (gen_cat3.target_min, gen_cat3.target_max, gen_cat3.within_target) == (30, 30, 0)

    smith = await reports.clinic_report(ctx, date_from=D1, date_to=D2, doctor="drsmith")
    assert smith.scope.doctor_name == "Dr Sam Smith"
    # seen by Dr Smith, plus the ticket still waiting for him
    assert smith.outcomes == reports.Outcomes(6, 4, 1, 0, 0, 1)
    assert smith.waits == dist(5, 43, 25, 90)
    assert [b.key for b in smith.waits_by_doctor] == ["drsmith"]

    day2 = await reports.clinic_report(ctx, date_from=D2, date_to=D2)
    assert day2.outcomes.total == 3
    assert day2.waits == dist(2, 12.5, 12.5, 22.5)


async def test_empty_range_gives_zeros_not_errors(ctx: Context) -> None:
    await seed_history(ctx)
    r = await reports.clinic_report(ctx, date_from=date(2025, 1, 1), date_to=date(2025, 1, 31))
    assert r.outcomes.total == 0
    assert r.outcomes.no_show_rate is None
    assert r.waits == reports.Distribution(0, None, None, None)
    assert r.waits_by_hour == [] and r.busiest_hours == []
    assert all(t.seen == 0 for t in r.triage)


async def test_hours_are_clinic_time_across_daylight_saving(ctx: Context) -> None:
    """Europe/London: GMT until 01:00 UTC on 29 March 2026, then BST (UTC+1)."""
    c = await seed_clinic(ctx)
    S = TicketStatus
    async with ctx.db.transaction() as s:
        s.add_all(
            [
                entry(c, date(2026, 3, 28), "GEN", 4, S.SERVED, "08:30", wait=10, service=5, doctor="drsmith"),
                # 00:30 UTC is 00:30 GMT; 01:30 UTC is already 02:30 BST
                entry(c, date(2026, 3, 29), "GEN", 4, S.SERVED, "00:30", wait=20, service=5, doctor="drsmith"),
                entry(c, date(2026, 3, 29), "GEN", 4, S.SERVED, "01:30", wait=30, service=5, doctor="drsmith"),
                entry(c, date(2026, 6, 10), "GEN", 4, S.SERVED, "08:30", wait=40, service=5, doctor="drsmith"),
            ]
        )  # fmt: skip
    r = await reports.clinic_report(ctx, date_from=date(2026, 3, 28), date_to=date(2026, 6, 10))
    assert {b.key: b.minutes.mean for b in r.waits_by_hour} == {
        "00": 20,
        "02": 30,
        "08": 10,
        "09": 40,
    }


async def test_report_is_audited_and_admin_only(ctx: Context) -> None:
    await seed_history(ctx)
    await reports.clinic_report(ctx, date_from=D1, date_to=D2, doctor="drsmith")
    async with ctx.db.transaction(readonly=True) as s:
        rec = (
            await s.execute(select(AuditRecord).where(AuditRecord.action == "report.viewed"))
        ).scalar_one()
    assert rec.details["doctor"] == "drsmith"
    assert rec.details["date_from"] == "2026-01-12"

    for role in (Role.STAFF, Role.DOCTOR, Role.PATIENT, Role.KIOSK):
        who = ctx.as_principal(Principal(user_id=uuid.uuid4(), username="someone", role=role))
        with pytest.raises(PermissionDenied):
            await reports.clinic_report(who, date_from=D1, date_to=D2)
    admin = ctx.as_principal(Principal(user_id=uuid.uuid4(), username="boss", role=Role.ADMIN))
    assert (await reports.clinic_report(admin, date_from=D1, date_to=D2)).outcomes.total == 12


async def test_bad_scope_is_a_clear_error(ctx: Context) -> None:
    await seed_clinic(ctx)
    with pytest.raises(ValidationError) as exc:
        await reports.clinic_report(ctx, date_from=D2, date_to=D1)
    assert exc.value.field == "date_from"
    assert "after the end date" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        await reports.clinic_report(ctx, date_from=date(2000, 1, 1), date_to=date(2026, 1, 1))
    assert exc.value.field == "date_to"
    with pytest.raises(NotFound, match="no department with code 'XYZ'"):
        await reports.clinic_report(ctx, date_from=D1, date_to=D2, department="XYZ")
    with pytest.raises(NotFound, match="no doctor with username 'nobody'"):
        await reports.clinic_report(ctx, date_from=D1, date_to=D2, doctor="nobody")


async def test_targets_count_whole_minutes(ctx: Context) -> None:
    """10 min 59 s meets a 10-minute target, 11 min misses it; 'immediate' is within the minute."""
    c = await seed_clinic(ctx)
    S = TicketStatus
    async with ctx.db.transaction() as s:
        s.add_all(
            [
                entry(c, D1, "PED", 2, S.SERVED, "09:00", wait=10 + 59 / 60, service=5, doctor="drpatel"),
                entry(c, D1, "PED", 2, S.SERVED, "09:05", wait=11, service=5, doctor="drpatel"),
                entry(c, D1, "PED", 1, S.SERVED, "09:10", wait=0.5, service=5, doctor="drpatel"),
                entry(c, D1, "PED", 1, S.SERVED, "09:15", wait=1, service=5, doctor="drpatel"),
            ]
        )  # fmt: skip
    r = await reports.clinic_report(ctx, date_from=D1, date_to=D1)
    triage = {t.category: (t.seen, t.within_target) for t in r.triage}
    assert triage[2] == (2, 1)
    assert triage[1] == (2, 1)
