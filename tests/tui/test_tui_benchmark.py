"""The console benchmark works (tiny sizes, SQLite); its figures come from ``make bench``."""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_tui
from benchmarks.__main__ import discover


async def test_the_console_benchmark_runs_and_is_registered(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = await bench_tui.bench_database(sqlite_url, waiting=30, presses=2)
    assert [line["name"] for line in lines] == [
        "tui.start_to_queue",
        "tui.key_to_row",
        "tui.queue_reload",
    ]
    start, key, reload = lines
    assert start["waiting"] == 30 and start["p50_ms"] > 0 and start["floor_ms"] > 0
    assert key["ops"] == 2 and 0 < key["p50_ms"] <= key["p99_ms"] and key["floor_p50_ms"] > 0
    assert reload["ops"] >= 1 and reload["p50_ms"] > 0
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == lines
    assert "tui" in discover()
