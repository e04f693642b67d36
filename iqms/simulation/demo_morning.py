"""The demo's simulated morning: yesterday at the demo clinic, through the real engine.

Run on the freshly seeded demo database, it gives a new user a report to read
and leaves real history behind: served tickets (so wait estimates and reports
have service times to learn from) and a full audit trail. It uses the demo's
own departments and doctors, on the previous day, so today's waiting tickets
are not touched; the doctors' statuses are put back as they were.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from iqms.core.clock import SystemClock, service_date
from iqms.core.config import PushProvider, Settings, SmsProvider
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic
from iqms.simulation.runner import Progress, run_day
from iqms.simulation.scenario import Scenario, scenario_from_dict

OPENS, CLOSES = "08:00", "11:00"
#: patients per hour per doctor on duty, hour by hour: a rush after opening
HOURLY_LOAD_PER_DOCTOR = (3.5, 5.5, 4.0)
DEMO_SEED = 20240


async def demo_scenario(ctx: Context) -> Scenario:
    """A three-hour morning built from the departments and doctors in the database."""
    departments = []
    for dept in await clinic.list_departments(ctx):
        doctors = await clinic.list_doctors(ctx, department=dept.id)
        if not doctors:
            continue
        per_doctor = 60.0 / max(dept.default_service_minutes, 1)
        rates = [
            round(load * len(doctors) * per_doctor / 5.0, 2) for load in HOURLY_LOAD_PER_DOCTOR
        ]
        departments.append(
            {
                "code": dept.code,
                "name": dept.name,
                "prefix": dept.ticket_prefix,
                "service_minutes": {
                    "mean": dept.default_service_minutes,
                    "sd": dept.default_service_minutes * 0.45,
                },
                "arrivals_per_hour": rates,
                "doctors": [
                    {"name": d.full_name, "room": d.room, "username": d.username} for d in doctors
                ],
            }
        )
    return scenario_from_dict(
        {
            "name": "Yesterday morning at the demo clinic",
            "opens": OPENS,
            "closes": CLOSES,
            "no_show_rate": 0.05,
            "departments": departments,
            "use_existing_clinic": True,
        }
    )


async def simulate_demo_morning(
    settings: Settings,
    database_url: str,
    *,
    progress: Progress | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Simulate yesterday morning on the demo database and return the report."""
    run_settings = settings.model_copy(
        update={
            "database_url": database_url,
            "sms_provider": SmsProvider.NONE,
            "push_provider": PushProvider.NONE,
        }
    )
    db = Database(database_url)
    try:
        ctx = Context(db=db, principal=Principal.system("demo"), settings=run_settings)
        scenario = await demo_scenario(ctx)
        before = {d.id: d.status for d in await clinic.list_doctors(ctx)}
        day = (today or service_date(SystemClock().now(), settings.tz)) - timedelta(days=1)
        report = await run_day(
            scenario, db, run_settings, seed=DEMO_SEED, day=day, progress=progress
        )
        # Back to how the demo left them, stamped with the real time.
        for doctor_id, status in before.items():
            await clinic.set_doctor_status(ctx, doctor=doctor_id, status=status)
        return report
    finally:
        await db.dispose()


__all__ = ["demo_scenario", "simulate_demo_morning"]
