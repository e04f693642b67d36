"""Run a simulated clinic day on a real database and return its report."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from iqms.core import migrate
from iqms.core.clock import FrozenClock, SystemClock, service_date
from iqms.core.config import PushProvider, Settings, SmsProvider, normalise_database_url
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.simulation.engine import CoreEngine
from iqms.simulation.model import ClinicDay
from iqms.simulation.scenario import Scenario
from iqms.simulation.stats import build_report

Progress = Callable[[float, float], None]


#: memory-backed scratch space (Linux); the throwaway database runs about twice as fast there
MEMORY_TMP = Path("/dev/shm")


def scratch_dir() -> str | None:
    """Where the throwaway database goes: memory-backed if the system has it, else the temp dir."""
    if MEMORY_TMP.is_dir() and os.access(MEMORY_TMP, os.W_OK | os.X_OK):
        return str(MEMORY_TMP)
    return None


def local_midnight(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time(0), tzinfo=settings.tz)


async def run_day(
    scenario: Scenario,
    db: Database,
    settings: Settings,
    *,
    seed: int,
    day: date,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Simulate ``scenario`` on ``day`` against an already migrated database."""
    midnight = local_midnight(day, settings)
    clock = FrozenClock(midnight + timedelta(minutes=scenario.opens))

    def set_clock(minute: float) -> None:
        clock.set(midnight + timedelta(minutes=minute))

    ctx = Context(db=db, principal=Principal.system("simulator"), settings=settings, clock=clock)
    simulation = ClinicDay(
        scenario,
        CoreEngine(ctx),
        seed=seed,
        set_clock=set_clock,
        day=day.isoformat(),
        progress=progress,
    )
    record = await simulation.run()
    return build_report(record)


async def simulate(
    scenario: Scenario,
    settings: Settings,
    *,
    database_url: str | None = None,
    seed: int | None = None,
    day: date | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Simulate a day on ``database_url`` (migrated first) or on a throwaway SQLite file.

    The throwaway database is deleted afterwards. Its simulated doctor
    accounts get cheap password hashes: nobody ever logs in with them.
    """
    tmpdir: Path | None = None
    if database_url is None:
        tmpdir = Path(tempfile.mkdtemp(prefix="iqms-sim-", dir=scratch_dir()))
        url = f"sqlite+aiosqlite:///{tmpdir / 'simulation.db'}"
        run_settings = settings.model_copy(update={"database_url": url, "bcrypt_rounds": 4})
    else:
        url = normalise_database_url(database_url)
        run_settings = settings.model_copy(update={"database_url": url})
    # Simulated patients are anonymous walk-ins: there is nobody to send a message to.
    run_settings = run_settings.model_copy(
        update={"sms_provider": SmsProvider.NONE, "push_provider": PushProvider.NONE}
    )
    chosen_day = day or scenario.day or service_date(SystemClock().now(), settings.tz)
    db = Database(url, connect_timeout=settings.db_connect_timeout)
    try:
        await db.check()
        await migrate.upgrade(db)
        return await run_day(
            scenario,
            db,
            run_settings,
            seed=scenario.seed if seed is None else seed,
            day=chosen_day,
            progress=progress,
        )
    finally:
        await db.dispose()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


__all__ = ["local_midnight", "run_day", "scratch_dir", "simulate"]
