"""The API benchmark's code works (tiny sizes); its figures come from ``make bench``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchmarks import bench_api
from tests.api.conftest import live_server
from tests.conftest import make_settings


def test_seed_and_open_loop_measure_a_running_server(tmp_path: Path, sqlite_url: str) -> None:
    codes = asyncio.run(bench_api.seed(sqlite_url, 3))
    assert len(set(codes)) == 3
    with live_server(make_settings(tmp_path, sqlite_url)) as url:
        measured = asyncio.run(bench_api.measure(url, codes, rate=40, seconds=0.5))
    for figures in measured:
        assert figures["requests"] == 20 and figures["errors"] == 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
        assert figures["sent_to_answer_p50_ms"] <= figures["p99_ms"]
