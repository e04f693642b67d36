"""Live-event latency: a doctor's call committed -> the event in a subscriber's hands.

    python -m benchmarks.bench_events                     # throwaway PostgreSQL (and SQLite)
    python -m benchmarks.bench_events --url postgresql://USER@HOST/postgres --events 500

The subscriber is ``iqms.core.queue.events.subscribe`` on its own database handle,
as a display board or console in another process would use it (LISTEN/NOTIFY
on PostgreSQL; on SQLite the polling fallback, for comparison). Each sample
is the time from the moment the calling transaction starts its COMMIT to the
moment the subscriber yields the matching ``TicketCalled`` event.

One JSON object per line on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from benchmarks._support import (
    Timing,
    add_backend_options,
    bench_settings,
    bulk_load_waiting,
    commit_starts,
    emit,
    fresh_database,
    make_clinic,
    progress,
    run_with_backends,
    system_context,
)
from iqms.core.db import Database
from iqms.core.queue.events import TicketCalled, subscribe
from iqms.core.services import queue

DEFAULT_EVENTS = 100
WAITING = 1_000
RECEIVE_TIMEOUT = 10.0


async def bench_database(url: str, *, events: int, waiting: int = WAITING) -> dict[str, Any]:
    """Event latency on one migrated, empty database; returns the result line."""
    settings = bench_settings(url)
    db = Database.from_settings(settings)
    listener_db = Database(url)
    try:
        ctx = system_context(db, settings)
        bench = await make_clinic(ctx, doctors=1)
        await bulk_load_waiting(url, bench.department_id, max(waiting, events))
        doctor = bench.doctor_context(ctx, 0)
        latencies: list[float] = []
        async with subscribe(listener_db, department_id=bench.department_id) as feed:
            with commit_starts(db) as commits:
                started = time.perf_counter()
                for _ in range(events):
                    commits.clear()
                    ticket = await queue.call_next(doctor)
                    if ticket is None:
                        raise RuntimeError("the queue ran dry during the benchmark")
                    sent = commits[-1]
                    while True:
                        got = await feed.next(within=RECEIVE_TIMEOUT)
                        if got is None:
                            raise RuntimeError(
                                f"no event for {ticket.ticket_number} within {RECEIVE_TIMEOUT} s"
                            )
                        if isinstance(got, TicketCalled) and got.entry_id == ticket.id:
                            latencies.append(time.perf_counter() - sent)
                            break
                wall = time.perf_counter() - started
        timing = Timing(latencies, wall)
        line = {
            "name": "events.call_to_subscriber",
            "backend": db.backend,
            "callers": 1,
            "waiting": max(waiting, events),
            "ops": events,
            **timing.figures(),
        }
        emit(line)
        return line
    finally:
        await listener_db.dispose()
        await db.dispose()


async def run(server_url: str | None, *, backends: Sequence[str], events: int) -> list[Any]:
    results = []
    for backend in backends:
        progress(f"event latency: {backend}")
        async with fresh_database(backend, server_url) as url:
            results.append(await bench_database(url, events=events))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Commit -> subscriber latency of live events.")
    add_backend_options(parser)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="calls to time")
    args = parser.parse_args(argv)
    run_with_backends(parser, args, run, events=args.events)


if __name__ == "__main__":
    main()
