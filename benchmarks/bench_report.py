"""Time the report (and a streaming export) on a year of generated history.

    python -m benchmarks.bench_report                 # 100,000 entries, PostgreSQL and SQLite
    python -m benchmarks.bench_report --url postgresql://USER@HOST/postgres --entries 1000000
    python -m benchmarks.bench_report --backends sqlite

Prints one JSON object per line: the history generation, then each report
scope (whole clinic for a year, one department, one doctor, one month) and a
full-year queue export with the growth of the process's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks._support import (
    add_backend_options,
    chosen_backends,
    emit,
    postgres_server,
    progress,
)
from benchmarks.gen_history import generate
from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import exports, reports

LAST_DAY = date(2026, 1, 31)
TIMEZONE = "Europe/London"


async def _timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - started)
    return min(times), sum(times) / len(times), result


async def run(url: str, entries: int, repeat: int) -> None:
    gen = await generate(url, entries=entries, last_day=LAST_DAY, timezone=TIMEZONE)
    emit(gen)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, timezone=TIMEZONE, secret_key="benchmark-secret-key"
    )
    db = Database.from_settings(settings)
    ctx = Context(
        db=db, principal=Principal.system("bench"), settings=settings, clock=FrozenClock()
    )
    year_from = LAST_DAY - timedelta(days=364)
    scopes: list[tuple[str, dict[str, Any]]] = [
        ("report.year", {"date_from": year_from, "date_to": LAST_DAY}),
        ("report.year_department", {"date_from": year_from, "date_to": LAST_DAY,
                                    "department": "BH1"}),
        ("report.year_doctor", {"date_from": year_from, "date_to": LAST_DAY,
                                "doctor": "bench_dr_bh1_0"}),
        ("report.month", {"date_from": LAST_DAY.replace(day=1), "date_to": LAST_DAY}),
    ]  # fmt: skip
    try:
        for name, kwargs in scopes:
            best, mean, report = await _timed(
                lambda kw=kwargs: reports.clinic_report(ctx, **kw), repeat
            )
            emit(
                {
                    "benchmark": name,
                    "backend": db.backend,
                    "entries": gen["entries"],
                    "tickets_in_scope": report.outcomes.total,
                    "seconds_best": round(best, 3),
                    "seconds_mean": round(mean, 3),
                    "repeat": repeat,
                }
            )
        rows = 0

        def count(batch: list[dict[str, Any]]) -> None:
            nonlocal rows
            rows += len(batch)

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        await exports.export_queue_history(
            ctx, date_from=year_from, date_to=LAST_DAY, on_rows=count, batch_size=2000
        )
        seconds = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        emit(
            {
                "benchmark": "export.queue_year",
                "backend": db.backend,
                "rows": rows,
                "seconds": round(seconds, 3),
                # growth of the process's peak memory while streaming every row
                "peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
            }
        )
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time iqms admin report on generated history.")
    add_backend_options(parser)
    parser.add_argument("--entries", type=int, default=100_000, help="queue entries")
    parser.add_argument("--repeat", type=int, default=3, help="runs per report scope")
    args = parser.parse_args(argv)
    backends = chosen_backends(parser, args)
    if "postgresql" in backends:
        progress(f"report benchmarks: postgresql, {args.entries} entries")
        with postgres_server(args.url) as server:
            name = f"bench_{uuid.uuid4().hex[:10]}"
            server.create_database(name)
            try:
                asyncio.run(run(server.url(name), args.entries, args.repeat))
            finally:
                server.drop_database(name)
    if "sqlite" in backends:
        progress(f"report benchmarks: sqlite, {args.entries} entries")
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.entries, args.repeat))


if __name__ == "__main__":
    main()
