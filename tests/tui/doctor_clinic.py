"""A small clinic for the doctor console tests, built through the core services."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual.pilot import Pilot

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.enums import Role
from iqms.core.schemas.queue import TicketOut
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, patients, queue
from iqms.tui.doctor import DoctorConsole
from iqms.tui.doctor.screen import DoctorScreen
from tests.tui.support import add_account, screen_text, wait_until

#: how long a step may take before a test gives up (a busy 2-core machine runs other suites)
STEP_SECONDS = 15.0


@dataclass
class DoctorClinic:
    """GEN (prefix A, category 3 within 30 min) and PED; Dr Sam Smith (Room 1), Dr Jo Jones."""

    smith: Principal
    jones: Principal
    doctor_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    patients: dict[str, uuid.UUID] = field(default_factory=dict)


async def add_doctor(
    core: Context, username: str, full_name: str, room: str, department: str = "GEN"
) -> Principal:
    user_id = await add_account(core, username, Role.DOCTOR, full_name)
    doctor = await clinic.create_doctor(core, user=username, department=department, room=room)
    await clinic.set_doctor_status(core, doctor=doctor.id, status="available")
    return Principal(user_id=user_id, username=username, role="doctor", doctor_id=doctor.id)


async def doctor_clinic(core: Context) -> DoctorClinic:
    await clinic.create_department(
        core, code="GEN", name="General Practice", ticket_prefix="A", triage_targets={"3": 30}
    )
    await clinic.create_department(core, code="PED", name="Paediatrics", ticket_prefix="P")
    smith = await add_doctor(core, "drsmith", "Dr Sam Smith", "Room 1")
    jones = await add_doctor(core, "drjones", "Dr Jo Jones", "Room 2")
    found = DoctorClinic(smith=smith, jones=jones)
    found.doctor_ids = {"drsmith": smith.doctor_id, "drjones": jones.doctor_id}  # type: ignore[dict-item]
    for name, born in (
        ("Amelia Hughes", "1950-02-01"),
        ("Oliver Brown", "1988-11-23"),
        ("Mia Wilson", "2024-09-10"),
    ):
        patient = await patients.register(core, full_name=name, date_of_birth=born)
        found.patients[name] = patient.id
    return found


async def issue(
    core: Context, patient: uuid.UUID | None = None, *, category: int = 4, **extra: Any
) -> TicketOut:
    """A ticket issued at reception (as another terminal would)."""
    return await queue.issue(
        core, department="GEN", patient=patient, triage_category=category, **extra
    )


def doctor_app(
    settings: Settings, principal: Principal, clock: FrozenClock, **options: Any
) -> DoctorConsole:
    return DoctorConsole(settings, principal, clock=clock, **options)


def on_doctor_screen(app: DoctorConsole) -> bool:
    screen = app.screen
    return app.signed_in and isinstance(screen, DoctorScreen) and screen.view is not None


def doctor_screen(app: DoctorConsole) -> DoctorScreen:
    screen = app.screen
    assert isinstance(screen, DoctorScreen)
    return screen


async def until(
    pilot: Pilot[Any], condition: Callable[[], bool], *, within: float = STEP_SECONDS,
    what: str = "",
) -> float:  # fmt: skip
    """Let the console run until ``condition()`` holds (see ``wait_until``)."""
    return await wait_until(pilot, condition, within=within, what=what)


def shows(app: DoctorConsole, *texts: str) -> bool:
    """True when the screen shows every one of ``texts``."""
    text = screen_text(app)
    return all(t in text for t in texts)


async def call_next(pilot: Pilot[Any], *shown: str) -> None:
    """``n``: the next patient called; waits until the screen shows ``shown`` and CALLED."""
    await pilot.press("n")
    await until(pilot, lambda: shows(pilot.app, *shown, "CALLED"))  # type: ignore[arg-type]


async def start(pilot: Pilot[Any], shown: str = "IN SERVICE") -> None:
    """``s``: the consultation started; waits until the screen shows ``shown``."""
    await pilot.press("s")
    await until(pilot, lambda: shows(pilot.app, shown))  # type: ignore[arg-type]


def noticed(app: DoctorConsole, text: str) -> bool:
    """True when a notification (a toast) said ``text``."""
    return any(text in message for _severity, _title, message in app.notices)


__all__ = [
    "DoctorClinic",
    "add_doctor",
    "call_next",
    "doctor_app",
    "doctor_clinic",
    "doctor_screen",
    "issue",
    "noticed",
    "on_doctor_screen",
    "shows",
    "start",
    "until",
]
