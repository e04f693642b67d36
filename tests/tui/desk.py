"""A small clinic morning for the reception tests: two departments, doctors, patients, tickets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.enums import Role
from iqms.core.schemas.clinic import DoctorOut
from iqms.core.schemas.patients import PatientOut
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, patients, queue
from iqms.tui.reception.app import ReceptionApp
from tests.test_queue_fixtures import Clinic, as_doctor
from tests.tui.support import add_account, screen_text, wait_until

if TYPE_CHECKING:
    from iqms.tui.reception.queue_screen import QueueScreen

#: the morning the tests run at: Monday 5 January 2026, 09:30 in London (UTC in winter)
MORNING = FrozenClock().now().replace(hour=9, minute=30)


@dataclass
class Desk:
    """The seeded clinic: departments, doctors, the patients and who is at the desk."""

    clinic: Clinic
    amelia: PatientOut
    oliver: PatientOut
    george: PatientOut
    rita: Principal

    @property
    def gen(self) -> uuid.UUID:
        return self.clinic.gen.id


async def add_doctor(
    core: Context, username: str, full_name: str, department: str, room: str
) -> DoctorOut:
    await add_account(core, username, Role.DOCTOR, full_name)
    doc = await clinic.create_doctor(core, user=username, department=department, room=room)
    return await clinic.set_doctor_status(core, doctor=doc.id, status="available")


async def desk_clinic(core: Context) -> Clinic:
    """GEN (prefix A, urgent seen within 30 min) and PED (prefix P), with three doctors."""
    gen = await clinic.create_department(
        core, code="GEN", name="General Practice", ticket_prefix="A", triage_targets={"3": 30}
    )
    ped = await clinic.create_department(core, code="PED", name="Paediatrics", ticket_prefix="P")
    c = Clinic(gen=gen, ped=ped)
    c.doctors["drsmith"] = await add_doctor(core, "drsmith", "Dr Sam Smith", "GEN", "Room 1")
    c.doctors["drjones"] = await add_doctor(core, "drjones", "Dr Ada Jones", "GEN", "Room 2")
    c.doctors["drpatel"] = await add_doctor(core, "drpatel", "Dr Priya Patel", "PED", "Room 5")
    return c


async def seed_desk(core: Context, clock: FrozenClock, *, morning: datetime = MORNING) -> Desk:
    """GEN (A, Dr Smith room 1, Dr Jones room 2) and PED (P, Dr Patel room 5), four tickets.

    09:00 A-001 Amelia Hughes (standard), 09:10 A-002 walk-in (urgent), 09:15 P-001 Oliver
    Brown, 09:20 A-003 George Wright called by Dr Smith; the clock then stands at 09:30
    (or the same half hour before ``morning``).
    """
    clock.set(morning - timedelta(minutes=30))
    c = await desk_clinic(core)
    amelia = await patients.register(core, full_name="Amelia Hughes", phone="+447911123101",
                                     date_of_birth="1984-03-07")  # fmt: skip
    oliver = await patients.register(core, full_name="Oliver Brown", date_of_birth="2019-06-30")
    george = await patients.register(core, full_name="George Wright", phone="+447911123109")
    await queue.issue(core, department="GEN", patient=amelia.id)
    clock.advance(minutes=10)
    await queue.issue(core, department="GEN", triage_category=3)
    clock.advance(minutes=5)
    await queue.issue(core, department="PED", patient=oliver.id)
    clock.advance(minutes=5)
    await queue.issue(core, department="GEN", patient=george.id, triage_category=2)
    await queue.call(as_doctor(core, c.doctors["drsmith"]), ticket="A-003")
    clock.set(morning)
    rita_id = await add_account(core, "rita", Role.STAFF, "Rita Reception")
    rita = Principal(user_id=rita_id, username="rita", role="staff")
    return Desk(clinic=c, amelia=amelia, oliver=oliver, george=george, rita=rita)


async def book(core: Context, patient: PatientOut, minutes_from_now: int) -> uuid.UUID:
    appointment = await clinic.book_appointment(
        core,
        patient=patient.id,
        department="GEN",
        scheduled_at=core.now() + timedelta(minutes=minutes_from_now),
    )
    return appointment.id


def reception(settings: Settings, auth: Any, clock: FrozenClock, **options: Any) -> ReceptionApp:
    """The console; without the offline journal unless asked (its number blocks move numbers on)."""
    options.setdefault("heartbeat_seconds", 0.5)
    options.setdefault("offline", False)
    return ReceptionApp(settings, auth, clock=clock, **options)


def on_queue(app: ReceptionApp) -> bool:
    from iqms.tui.reception.queue_screen import QueueScreen

    return (
        app.signed_in
        and isinstance(app.screen, QueueScreen)
        and app.loaded.is_set()
        and "tickets" in screen_text(app)
    )


async def open_queue(pilot: Any) -> None:
    await wait_until(pilot, lambda: on_queue(pilot.app), what="the queue")


@asynccontextmanager
async def queue_open(app: ReceptionApp, size: tuple[int, int] = (100, 30)) -> AsyncIterator[Any]:
    """The console running in a terminal of ``size``, signed in, its queue loaded: the pilot."""
    async with app.run_test(size=size) as pilot:
        await open_queue(pilot)
        yield pilot


def queue_screen(app: ReceptionApp) -> QueueScreen:
    from iqms.tui.reception.queue_screen import QueueScreen

    screen = app.screen
    assert isinstance(screen, QueueScreen), screen
    return screen


def row_of(app: ReceptionApp, number: str) -> str:
    """The table line of a ticket, as shown."""
    return next(line for line in screen_text(app).splitlines() if f" {number} " in line)


async def select(pilot: Any, number: str) -> None:
    """Put the cursor on a ticket with the search box (as the desk does), then back to the table."""
    await pilot.press("slash", *number, "enter")
    screen = queue_screen(pilot.app)
    await wait_until(pilot, lambda: screen.selected() is not None
                     and screen.selected().ticket_number == number)  # type: ignore[union-attr]  # fmt: skip
    await pilot.press("escape")


__all__ = [
    "MORNING",
    "Desk",
    "book",
    "on_queue",
    "open_queue",
    "queue_open",
    "queue_screen",
    "reception",
    "row_of",
    "seed_desk",
    "select",
]
