"""A simulated clinic morning through the real core, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from iqms.core import migrate
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import TicketStatus
from iqms.core.errors import Conflict
from iqms.core.models import AuditRecord, Doctor, QueueEntry
from iqms.core.security.audit import verify_chain
from iqms.core.service import Context
from iqms.core.services import clinic
from iqms.simulation.runner import run_day, scratch_dir, simulate
from iqms.simulation.scenario import scenario_from_dict
from tests.conftest import make_settings

DAY = date(2026, 3, 2)

MORNING = {
    "name": "Test morning",
    "opens": "08:00",
    "closes": "10:00",
    "no_show_rate": 0.1,
    "triage_mix": {"1": 0.05, "2": 0.15, "3": 0.3, "4": 0.35, "5": 0.15},
    "departments": [
        {
            "code": "GEN",
            "prefix": "A",
            "service_minutes": {"mean": 9, "sd": 4},
            "arrivals_per_hour": {"08:00": 8, "09:00": 14},
            "doctors": [
                {"name": "Dr One", "room": "Room 1", "shifts": ["08:00-10:00"]},
                {"name": "Dr Two", "room": "Room 2", "shifts": ["08:30-09:30"]},
            ],
        },
        {
            "code": "PED",
            "prefix": "P",
            "service_minutes": {"mean": 12, "sd": 5},
            "arrivals_per_hour": [4, 5],
            "doctors": [{"name": "Dr Three", "room": "Room 3"}],
        },
    ],
}


async def test_a_simulated_morning_runs_through_the_real_queue(
    db: Database, settings: Settings
) -> None:
    scenario = scenario_from_dict(MORNING)
    report = await run_day(scenario, db, settings, seed=7, day=DAY)

    patients = report["patients"]
    assert patients["arrived"] > 10
    assert patients["served"] + patients["no_show"] + patients["unserved"] == patients["arrived"]
    assert patients["served"] > 0

    # The database holds exactly what the report says happened.
    async with db.transaction(readonly=True) as s:
        counts = dict(
            (
                await s.execute(select(QueueEntry.status, func.count()).group_by(QueueEntry.status))
            ).all()
        )
        assert counts.get(TicketStatus.SERVED, 0) == patients["served"]
        assert counts.get(TicketStatus.NO_SHOW, 0) == patients["no_show"]
        assert counts.get(TicketStatus.CANCELLED, 0) == patients["unserved"]
        assert counts.get(TicketStatus.WAITING, 0) == 0
        # Every step was audited by the core, and the chain holds.
        assert (await s.execute(select(func.count()).select_from(AuditRecord))).scalar_one() > (
            patients["arrived"] * 3
        )
        assert (await verify_chain(s)).intact
        # Doctors went off duty at the end of their shifts.
        statuses = {d.status.value for d in (await s.execute(select(Doctor))).scalars()}
        assert statuses == {"off"}
        # Served tickets carry the estimate made when they were issued.
        estimates = (
            await s.execute(
                select(func.count()).where(QueueEntry.estimate_at_issue_minutes.is_not(None))
            )
        ).scalar_one()
        assert estimates == patients["arrived"]

    assert set(report["within_target_pct"]) == {"1", "2", "3", "4", "5", "all"}
    assert set(report["estimate_mae_minutes"]) == {"iqms", "queue_length", "last_to_enter_service"}
    assert all(v is not None and v >= 0 for v in report["estimate_mae_minutes"].values())
    for doctor in report["doctor_utilisation"]:
        assert 0 < doctor["utilisation_pct"] <= 100
    # Dr Two worked one hour (finishing the last patient); Dr One the whole morning or longer.
    hours = {d["doctor"]: d["on_duty_minutes"] for d in report["doctor_utilisation"]}
    assert 60.0 <= hours["Dr Two"] < 90.0
    assert hours["Dr One"] >= 120.0
    assert report["queue_length"]["times"][:3] == ["08:00", "08:30", "09:00"]
    json.dumps(report)  # JSON-ready as it is


async def test_urgent_patients_are_seen_sooner(db: Database, settings: Settings) -> None:
    busy = dict(MORNING, triage_mix={"2": 0.3, "5": 0.7}, no_show_rate=0.0)
    busy["departments"] = [dict(MORNING["departments"][0], arrivals_per_hour=[24])]  # type: ignore[index]
    busy["closes"] = "09:00"
    report = await run_day(scenario_from_dict(busy), db, settings, seed=3, day=DAY)
    waits = report["waits_minutes"]
    assert waits["2"]["count"] > 3 and waits["5"]["count"] > 3
    assert waits["2"]["mean"] < waits["5"]["mean"]


async def test_the_same_seed_gives_the_same_report_and_another_seed_does_not(
    tmp_path: Path,
) -> None:
    scenario = scenario_from_dict(dict(MORNING, closes="09:00"))
    settings = make_settings(tmp_path, "sqlite:///" + str(tmp_path / "unused.db"))

    async def once(seed: int) -> str:
        report = await simulate(scenario, settings, seed=seed, day=DAY)
        return json.dumps(report, sort_keys=True)

    first = await once(11)
    assert await once(11) == first
    assert await once(12) != first


async def test_simulating_on_a_database_that_has_the_departments_says_so(
    db: Database, settings: Settings, ctx: Context
) -> None:
    await clinic.create_department(ctx, code="GEN", name="General", ticket_prefix="Q")
    with pytest.raises(Conflict) as caught:
        await run_day(scenario_from_dict(MORNING), db, settings, seed=1, day=DAY)
    assert "GEN" in str(caught.value)
    assert "empty database" in str(caught.value)


async def test_throwaway_database_is_removed(tmp_path: Path) -> None:
    scratch = Path(scratch_dir() or tempfile.gettempdir())
    before = set(scratch.glob("iqms-sim-*"))
    settings = make_settings(tmp_path, "sqlite:///" + str(tmp_path / "unused.db"))
    small = dict(MORNING, closes="08:30")
    await simulate(scenario_from_dict(small), settings, seed=1, day=DAY)
    assert set(scratch.glob("iqms-sim-*")) == before


async def test_a_given_database_url_is_migrated_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "sim.db"
    settings = make_settings(tmp_path, "sqlite:///" + str(tmp_path / "unused.db"))
    small = dict(MORNING, closes="08:30")
    report = await simulate(
        scenario_from_dict(small), settings, database_url=f"sqlite:///{target}", seed=1, day=DAY
    )
    db = Database(f"sqlite:///{target}")
    try:
        assert await migrate.is_up_to_date(db)
        async with db.transaction(readonly=True) as s:
            kept = (await s.execute(select(func.count()).select_from(QueueEntry))).scalar_one()
        assert kept == report["patients"]["arrived"]
    finally:
        await db.dispose()
