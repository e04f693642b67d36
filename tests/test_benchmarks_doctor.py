"""The doctor console benchmark works (tiny sizes, SQLite); its figures come from make bench."""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_doctor
from benchmarks.__main__ import discover

REQUIRED = {"name", "backend", "callers", "waiting", "ops_per_s", "p50_ms", "p99_ms"}


async def test_doctor_console_benchmark_runs_the_console_and_its_floor(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = await bench_doctor.bench_database(sqlite_url, waiting=12, calls=2, issues=2)
    assert [line["name"] for line in lines] == [
        "doctor.call_next_to_patient_shown",
        "doctor.issued_to_row_shown",
    ]
    called, issued = lines
    assert REQUIRED <= set(called) and REQUIRED <= set(issued)
    assert called["ops"] == 2 and called["named_patients"] == 4
    assert 0 < called["p50_ms"] <= called["with_age_p50_ms"]  # the age comes with the record
    assert called["floor_p50_ms"] > 0 and called["ratio_p50_to_floor"] > 0
    assert issued["ops"] == 2 and issued["p50_ms"] > 0
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == lines
    assert "doctor" in discover()
