"""Call to waiting-room board: a doctor's call committed -> the board showing the number as current.

    python -m benchmarks.bench_display                    # throwaway PostgreSQL (and SQLite)
    python -m benchmarks.bench_display --url postgresql://USER@HOST/postgres --calls 200

The board is the real ``BoardApp`` (headless, 120x40) on its own database
handle, following the live events (LISTEN/NOTIFY on PostgreSQL, polling on
SQLite) and reloading the core's board view after each. A doctor calls,
starts and serves patients in turn from a queue of ``--waiting`` tickets.
Each sample is the time from the moment the calling transaction starts its
COMMIT to the moment the board's "now calling" holds that number (it is drawn
on the next frame); ``view_p50_ms``/``view_p99_ms`` go on until the board has
reloaded the core's view with it (counts and next numbers updated too). In the same process and for the same calls, a plain
event subscriber gives the baseline: the time the event itself takes to
arrive; ``ratio_to_subscriber`` is the board's median over the subscriber's.
The goal: on PostgreSQL, a call is on the board within 1 s.

One JSON object per line on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._support import (
    BENCH_NOW,
    Timing,
    add_backend_options,
    bench_settings,
    bulk_load_waiting,
    commit_starts,
    emit,
    fresh_database,
    make_clinic,
    percentile,
    percentile_ms,
    progress,
    run_with_backends,
    system_context,
    wait_until,
)
from iqms.announce import Announcer
from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.queue.events import TicketCalled, subscribe
from iqms.core.security.rbac import Principal
from iqms.core.services import queue
from iqms.tui.display import BoardApp
from iqms.tui.display.bigtext import BigText

DEFAULT_CALLS = 100
WAITING = 1_000
TIMEOUT = 10.0
BOARD_SIZE = (120, 40)


async def bench_database(url: str, *, calls: int, waiting: int = WAITING) -> dict[str, Any]:
    """Call-to-board latency on one migrated, empty database; returns the result line."""
    with tempfile.TemporaryDirectory(prefix="iqms-bench-board-") as tmp:
        settings = bench_settings(url, data_dir=Path(tmp), announce="off")
        db = Database.from_settings(settings)
        try:
            ctx = system_context(db, settings)
            clock = ctx.clock
            assert isinstance(clock, FrozenClock)
            bench = await make_clinic(ctx, doctors=1)
            await bulk_load_waiting(url, bench.department_id, max(waiting, calls))
            doctor = bench.doctor_context(ctx, 0)
            board = BoardApp(
                settings,
                Principal(user_id=None, username="bench-board", role="display"),
                clock=FrozenClock(BENCH_NOW),
                announcer=Announcer("off"),
            )
            board_latencies: list[float] = []
            view_latencies: list[float] = []
            event_latencies: list[float] = []
            listener_db = Database(url)
            try:
                async with (
                    board.run_test(size=BOARD_SIZE),
                    subscribe(listener_db, department_id=bench.department_id) as feed,
                ):
                    await wait_until(
                        lambda: board.board.view is not None,
                        "the board's first view",
                        within=TIMEOUT,
                    )
                    await wait_until(lambda: board.listening, "the board's live events listener",
                                     within=TIMEOUT)  # fmt: skip
                    current = board.board.query_one("#current-ticket", BigText)

                    def loaded_top() -> str | None:
                        view = board.board.loaded_view
                        return view.calls[0].ticket_number if view and view.calls else None

                    arrived: dict[Any, float] = {}

                    async def subscriber() -> None:
                        async for got in feed:
                            if isinstance(got, TicketCalled):
                                arrived[got.entry_id] = time.perf_counter()

                    listening = asyncio.create_task(subscriber())
                    with commit_starts(db) as commits:
                        started = time.perf_counter()
                        for _ in range(calls):
                            clock.advance(seconds=30)
                            commits.clear()
                            ticket = await queue.call_next(doctor)
                            if ticket is None:
                                raise RuntimeError("the queue ran dry during the benchmark")
                            sent = commits[-1]
                            await wait_until(lambda t=ticket: current.text == t.ticket_number,
                                             f"{ticket.ticket_number} on the board",
                                             within=TIMEOUT)  # fmt: skip
                            board_latencies.append(time.perf_counter() - sent)
                            await wait_until(lambda t=ticket: loaded_top() == t.ticket_number,
                                             f"{ticket.ticket_number} in a reloaded view",
                                             within=TIMEOUT)  # fmt: skip
                            view_latencies.append(time.perf_counter() - sent)
                            await wait_until(lambda t=ticket: t.id in arrived,
                                             "the subscriber's event", within=TIMEOUT)  # fmt: skip
                            event_latencies.append(arrived[ticket.id] - sent)
                            # The patient goes in and is seen: the board reloads for those too.
                            await queue.start(doctor, ticket=ticket.id)
                            await queue.serve(doctor, ticket=ticket.id)
                        listening.cancel()
                        wall = time.perf_counter() - started
            finally:
                await listener_db.dispose()
            timing = Timing(board_latencies, wall)
            baseline_p50 = percentile(event_latencies, 50)
            line = {
                "name": "display.call_to_board",
                "backend": db.backend,
                "callers": 1,
                "waiting": max(waiting, calls),
                "ops": calls,
                **timing.figures(),
                "max_ms": round(1000 * max(board_latencies), 3),
                "view_p50_ms": percentile_ms(view_latencies, 50),
                "view_p99_ms": percentile_ms(view_latencies, 99),
                "subscriber_p50_ms": percentile_ms(event_latencies, 50),
                "subscriber_p99_ms": percentile_ms(event_latencies, 99),
                "ratio_to_subscriber": round(percentile(board_latencies, 50) / baseline_p50, 2),
                "within_1s": sum(1 for x in board_latencies if x <= 1.0) / len(board_latencies),
                "view_within_1s": sum(1 for x in view_latencies if x <= 1.0) / len(view_latencies),
            }
            emit(line)
            return line
        finally:
            await db.dispose()


async def run(server_url: str | None, *, backends: Sequence[str], calls: int) -> list[Any]:
    results = []
    for backend in backends:
        progress(f"call to board: {backend}")
        async with fresh_database(backend, server_url) as url:
            results.append(await bench_database(url, calls=calls))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Call committed -> number on the board.")
    add_backend_options(parser)
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS, help="calls to time")
    args = parser.parse_args(argv)
    run_with_backends(parser, args, run, calls=args.calls)


if __name__ == "__main__":
    main()
