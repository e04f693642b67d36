"""Wait estimates read from the database: on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import DEFAULT_TRIAGE_TARGET_MINUTES, DoctorStatus, Role, TicketStatus
from iqms.core.models import Department, Doctor, QueueEntry, User
from iqms.core.queue.eta import estimate_for_entry, estimates_for_department, load_department_state


class Clinic:
    """A department with doctors and tickets written straight into the test database."""

    def __init__(self, db: Database, now: datetime) -> None:
        self.db = db
        self.now = now
        self.department_id = uuid.uuid4()
        self.doctors: list[uuid.UUID] = []
        self.seq = 0

    async def setup(self, *, doctors: int, default_minutes: int = 12) -> None:
        async with self.db.transaction() as s:
            s.add(
                Department(
                    id=self.department_id,
                    code="GEN",
                    name="General",
                    ticket_prefix="A",
                    default_service_minutes=default_minutes,
                )
            )
            for i in range(doctors):
                user = User(
                    username=f"doc{i}", full_name=f"Doctor {i}", role=Role.DOCTOR, password_hash="x"
                )
                s.add(user)
                await s.flush()
                doctor = Doctor(
                    user_id=user.id,
                    department_id=self.department_id,
                    room=f"Room {i + 1}",
                    status=DoctorStatus.AVAILABLE,
                )
                s.add(doctor)
                await s.flush()
                self.doctors.append(doctor.id)

    async def ticket(
        self,
        *,
        minutes_ago: float,
        category: int = 4,
        status: TicketStatus = TicketStatus.WAITING,
        doctor_id: uuid.UUID | None = None,
        called_by: uuid.UUID | None = None,
        called_minutes_ago: float | None = None,
        service_minutes: float | None = None,
    ) -> uuid.UUID:
        self.seq += 1
        arrived = self.now - timedelta(minutes=minutes_ago)
        entry = QueueEntry(
            service_date=self.now.date(),
            department_id=self.department_id,
            sequence=self.seq,
            ticket_number=f"A-{self.seq:03d}",
            doctor_id=doctor_id,
            triage_category=category,
            queue_band=0 if category == 1 else 1,
            source="kiosk",
            status=status,
            arrived_at=arrived,
            due_at=arrived + timedelta(minutes=DEFAULT_TRIAGE_TARGET_MINUTES[category]),  # type: ignore[index]
        )
        if called_minutes_ago is not None:
            entry.called_at = self.now - timedelta(minutes=called_minutes_ago)
            entry.started_at = entry.called_at
            entry.called_doctor_id = called_by
            if service_minutes is not None:
                entry.finished_at = entry.called_at + timedelta(minutes=service_minutes)
        async with self.db.transaction() as s:
            s.add(entry)
        return entry.id

    async def set_status(self, doctor_id: uuid.UUID, status: DoctorStatus) -> None:
        async with self.db.transaction() as s:
            doctor = await s.get(Doctor, doctor_id)
            assert doctor is not None
            doctor.status = status

    async def estimate(self, entry_id: uuid.UUID, settings: Settings):  # type: ignore[no-untyped-def]
        async with self.db.transaction(readonly=True) as s:
            entry = await s.get(QueueEntry, entry_id)
            assert entry is not None
            return await estimate_for_entry(s, entry, now=self.now, settings=settings)

    async def estimates(self, settings: Settings):  # type: ignore[no-untyped-def]
        async with self.db.transaction(readonly=True) as s:
            return await estimates_for_department(
                s, self.department_id, now=self.now, settings=settings
            )


async def _history(clinic: Clinic, minutes: float, count: int, doctor: uuid.UUID) -> None:
    """``count`` served tickets earlier today, each taking ``minutes``."""
    for i in range(count):
        start = 300 - i * minutes
        await clinic.ticket(
            minutes_ago=start + 5,
            status=TicketStatus.SERVED,
            called_by=doctor,
            called_minutes_ago=start,
            service_minutes=minutes,
        )


async def test_position_counts_tickets_ahead_in_queue_order(
    db: Database, settings: Settings, clock: FrozenClock
) -> None:
    clinic = Clinic(db, clock.now())
    await clinic.setup(doctors=1)
    standard_early = await clinic.ticket(minutes_ago=50, category=4)
    standard_late = await clinic.ticket(minutes_ago=20, category=4)
    urgent = await clinic.ticket(minutes_ago=5, category=3)  # due in 55, before both standards
    immediate = await clinic.ticket(minutes_ago=1, category=1)

    positions = {k: (await clinic.estimate(v, settings)).position for k, v in {
        "immediate": immediate, "urgent": urgent, "early": standard_early, "late": standard_late,
    }.items()}  # fmt: skip
    assert positions == {"immediate": 0, "urgent": 1, "early": 2, "late": 3}


async def test_department_estimates_agree_with_single_estimates(
    db: Database, settings: Settings, clock: FrozenClock
) -> None:
    clinic = Clinic(db, clock.now())
    await clinic.setup(doctors=2)
    await _history(clinic, 15, 10, clinic.doctors[0])
    await clinic.ticket(
        minutes_ago=30, status=TicketStatus.IN_SERVICE, called_by=clinic.doctors[0],
        called_minutes_ago=6,
    )  # fmt: skip
    ids = [
        await clinic.ticket(minutes_ago=40 - i * 3, category=3 if i % 4 == 0 else 4)
        for i in range(9)
    ]
    ids.append(await clinic.ticket(minutes_ago=2, doctor_id=clinic.doctors[1]))
    everything = await clinic.estimates(settings)
    assert set(everything) == set(ids)
    for entry_id in ids:
        assert everything[entry_id] == await clinic.estimate(entry_id, settings)
    waits = sorted(e.p50_minutes for e in everything.values())
    assert waits[-1] > waits[0]
    # A board asks for the front of the queue only: same figures, fewer tickets.
    async with db.transaction(readonly=True) as s:
        front = await estimates_for_department(
            s, clinic.department_id, now=clinic.now, settings=settings, limit=3
        )
    assert len(front) == 3
    assert sorted(e.position for e in front.values()) == [0, 1, 2]
    assert all(everything[k] == v for k, v in front.items())


async def test_service_history_sets_the_pace(
    db: Database, settings: Settings, clock: FrozenClock
) -> None:
    clinic = Clinic(db, clock.now())
    await clinic.setup(doctors=1, default_minutes=10)
    entry = await clinic.ticket(minutes_ago=1)
    for _ in range(4):
        await clinic.ticket(minutes_ago=30)
    before = await clinic.estimate(entry, settings)
    assert before.position == 4
    # four ahead at the default ten minutes
    assert 30 < before.p50_minutes < 45

    await _history(clinic, 25, 20, clinic.doctors[0])
    after = await clinic.estimate(entry, settings)
    assert after.p50_minutes > 1.8 * before.p50_minutes


async def test_per_doctor_pace_is_learnt(
    db: Database, settings: Settings, clock: FrozenClock
) -> None:
    clinic = Clinic(db, clock.now())
    await clinic.setup(doctors=2)
    fast, slow = clinic.doctors
    await _history(clinic, 6, 15, fast)
    await _history(clinic, 24, 15, slow)
    async with db.transaction(readonly=True) as s:
        state = await load_department_state(s, clinic.department_id, now=clinic.now)
    assert state.doctor_stats[fast].mean_minutes < 10 < 18 < state.doctor_stats[slow].mean_minutes
    for_fast = await clinic.ticket(minutes_ago=1, doctor_id=fast)
    for_slow = await clinic.ticket(minutes_ago=1, doctor_id=slow)
    for _ in range(3):
        await clinic.ticket(minutes_ago=20, doctor_id=fast)
        await clinic.ticket(minutes_ago=20, doctor_id=slow)
    fast_estimate = await clinic.estimate(for_fast, settings)
    slow_estimate = await clinic.estimate(for_slow, settings)
    assert fast_estimate.servers == slow_estimate.servers == 1
    assert fast_estimate.position == slow_estimate.position == 3
    assert slow_estimate.p50_minutes > 2 * fast_estimate.p50_minutes


async def test_paused_doctors_are_not_counted(
    db: Database, settings: Settings, clock: FrozenClock
) -> None:
    clinic = Clinic(db, clock.now())
    await clinic.setup(doctors=3)
    entry = await clinic.ticket(minutes_ago=1)
    for _ in range(6):
        await clinic.ticket(minutes_ago=15)
    all_in = await clinic.estimate(entry, settings)
    await clinic.set_status(clinic.doctors[1], DoctorStatus.PAUSED)
    await clinic.set_status(clinic.doctors[2], DoctorStatus.OFF)
    one_left = await clinic.estimate(entry, settings)
    assert (all_in.servers, one_left.servers) == (3, 1)
    assert one_left.p50_minutes > 2 * all_in.p50_minutes


async def test_time_already_spent_with_the_doctor_counts(
    db: Database, settings: Settings, clock: FrozenClock
) -> None:
    clinic = Clinic(db, clock.now())
    await clinic.setup(doctors=1, default_minutes=20)
    await clinic.ticket(
        minutes_ago=40, status=TicketStatus.IN_SERVICE, called_by=clinic.doctors[0],
        called_minutes_ago=2,
    )  # fmt: skip
    entry = await clinic.ticket(minutes_ago=1)
    just_started = await clinic.estimate(entry, settings)
    clinic.now += timedelta(minutes=15)
    nearly_done = await clinic.estimate(entry, settings)
    assert just_started.position == nearly_done.position == 0
    assert nearly_done.p50_minutes < just_started.p50_minutes - 5


async def test_a_ticket_no_longer_waiting_has_no_wait(
    db: Database, settings: Settings, clock: FrozenClock
) -> None:
    clinic = Clinic(db, clock.now())
    await clinic.setup(doctors=1)
    await clinic.ticket(minutes_ago=10)
    called = await clinic.ticket(
        minutes_ago=5, status=TicketStatus.CALLED, called_by=clinic.doctors[0], called_minutes_ago=1
    )
    estimate = await clinic.estimate(called, settings)
    assert (estimate.p50_minutes, estimate.p90_minutes, estimate.position) == (0.0, 0.0, 0)
    assert called not in await clinic.estimates(settings)
