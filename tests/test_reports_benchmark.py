"""The report benchmark's history generator and timing code work (tiny sizes, both backends);
the figures themselves come from ``python -m benchmarks.bench_report``."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from benchmarks import bench_report
from benchmarks.gen_history import generate
from iqms.core.db import Database
from iqms.core.models import QueueEntry


async def test_generated_history_looks_like_a_clinic_year(db_url: str) -> None:
    result = await generate(db_url, entries=400, last_day=bench_report.LAST_DAY, days=20)
    assert result["entries"] == 400
    db = Database(db_url)
    try:
        async with db.transaction(readonly=True) as s:
            days, categories, statuses, patients = (
                await s.execute(
                    select(
                        func.count(func.distinct(QueueEntry.service_date)),
                        func.count(func.distinct(QueueEntry.triage_category)),
                        func.count(func.distinct(QueueEntry.status)),
                        func.count(func.distinct(QueueEntry.patient_id)),
                    )
                )
            ).one()
            waits_ok = (
                await s.execute(
                    select(func.count()).where(
                        QueueEntry.called_at.is_not(None),
                        QueueEntry.called_at < QueueEntry.arrived_at,
                    )
                )
            ).scalar_one()
    finally:
        await db.dispose()
    assert days == 20 and categories >= 4 and statuses >= 3
    assert 50 <= patients <= 100, "returning patients as well as new ones"
    assert waits_ok == 0, "nobody is called before arriving"


async def test_benchmark_prints_json_lines(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    await bench_report.run(db_url, entries=300, repeat=1)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    names = [line["benchmark"] for line in lines]
    assert names == [
        "gen_history",
        "report.year",
        "report.year_department",
        "report.year_doctor",
        "report.month",
        "export.queue_year",
    ]
    year = lines[1]
    assert year["tickets_in_scope"] == 300 and year["seconds_best"] > 0
    assert lines[-1]["rows"] == 300
