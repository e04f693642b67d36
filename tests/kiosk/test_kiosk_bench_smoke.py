"""The kiosk benchmark works (two presses on SQLite); its figures come from ``make bench``."""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_kiosk
from benchmarks.__main__ import discover


@pytest.mark.sqlite
async def test_the_kiosk_benchmark_times_presses_through_the_screens(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = await bench_kiosk.bench_database(sqlite_url, presses=2, waiting=5)
    assert line["name"] == "kiosk.press_to_last_byte" and line["backend"] == "sqlite"
    assert line["ops"] == 2 and 0 < line["p50_ms"] <= line["p99_ms"]
    assert 0 < line["baseline_p50_ms"] and line["ratio_to_baseline"] > 0
    assert json.loads(capsys.readouterr().out) == line
    assert "kiosk" in discover()
