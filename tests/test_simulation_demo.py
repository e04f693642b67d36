"""``iqms demo`` ends with a simulated morning on the demo clinic, leaving today's queue alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from iqms.cli import app
from iqms.core.db import Database
from iqms.core.enums import DoctorStatus, TicketStatus
from iqms.core.models import Doctor, QueueEntry
from iqms.core.security.audit import verify_chain

runner = CliRunner()


def test_demo_prints_a_simulated_morning_and_keeps_todays_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IQMS_BCRYPT_ROUNDS", "4")
    monkeypatch.delenv("IQMS_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "IQMS demo clinic" in out  # the summary is still there
    assert "Yesterday morning at the demo clinic" in out
    assert "Waits until called, by triage category" in out
    assert "IQMS estimate" in out

    async def inspect() -> None:
        db = Database(f"sqlite:///{tmp_path / 'demo' / 'iqms-demo.db'}")
        try:
            async with db.transaction(readonly=True) as s:
                rows = (
                    await s.execute(
                        select(QueueEntry.service_date, QueueEntry.status, func.count()).group_by(
                            QueueEntry.service_date, QueueEntry.status
                        )
                    )
                ).all()
                by_day: dict[object, dict[TicketStatus, int]] = {}
                for day, status, count in rows:
                    by_day.setdefault(day, {})[status] = count
                today, yesterday = max(by_day), min(by_day)
                assert (today - yesterday).days == 1
                assert by_day[today] == {TicketStatus.WAITING: 10}  # the demo's own tickets
                assert by_day[yesterday].get(TicketStatus.SERVED, 0) > 20
                assert TicketStatus.WAITING not in by_day[yesterday]
                statuses = {d.status for d in (await s.execute(select(Doctor))).scalars()}
                assert statuses == {DoctorStatus.AVAILABLE}
                assert (await verify_chain(s)).intact
        finally:
            await db.dispose()

    asyncio.run(inspect())


def test_demo_without_the_simulation_is_quick_and_plain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IQMS_BCRYPT_ROUNDS", "4")
    monkeypatch.delenv("IQMS_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["demo", "--no-simulate"])
    assert result.exit_code == 0, result.output
    assert "IQMS demo clinic" in result.stdout
    assert "Yesterday morning" not in result.stdout
