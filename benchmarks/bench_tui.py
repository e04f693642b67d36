"""Reception console speed with 1,000 waiting tickets: first screen after start, key -> row.

    python -m benchmarks.bench_tui                       # throwaway PostgreSQL, and SQLite
    python -m benchmarks.bench_tui --backends sqlite --presses 50

The console runs headless (Textual's test driver, 120x40) on its own database
handle, signed in as a receptionist, with live events on, exactly as
``iqms reception`` runs it. Two figures per backend:

* ``tui.start_to_queue``: from starting the app to the queue table drawn with
  every waiting ticket (what the receptionist first sees). Its floor is a bare
  Textual app drawing a table of the same size from memory.
* ``tui.key_to_row``: from pressing ``h`` (hold, then return) on a ticket to
  its row's new line rendered for the screen (the console's update, before
  the reload that follows the live event). Its floor is the same core call made directly.
  ``cpu_*`` figures are this process's CPU time for the same span: what it
  costs on a machine with nothing else running.
* ``tui.queue_reload``: reading the whole queue again and redrawing it, as the
  console does after each burst of live events.

One JSON object per line on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from benchmarks._support import (
    BENCH_NOW,
    Timing,
    add_backend_options,
    bench_settings,
    bulk_load_waiting,
    emit,
    fresh_database,
    make_clinic,
    percentile_ms,
    progress,
    run_with_backends,
    system_context,
    wait_until,
)
from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.enums import Role
from iqms.core.security.rbac import Principal
from iqms.core.services import queue, users

WAITING = 1_000
PRESSES = 20
SIZE = (120, 40)
ROW_TIMEOUT = 10.0


class BareTable(App[None]):
    """The floor: Textual drawing a table of the same size, with no database at all."""

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in ("No.", "Patient", "Triage", "Waited", "Due", "Est.", "Doctor", "Status"):
            table.add_column(column)
        for i in range(self.rows):
            table.add_row(
                f"B-{i + 1:03d}", f"Patient {i}", " 4 ", "12m", "in 1h", "~5m", "", "waiting"
            )


async def floor_start(rows: int) -> float:
    app = BareTable(rows)
    started = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            lambda: app.query_one(DataTable).row_count == rows, "the bare table", within=ROW_TIMEOUT
        )
        await pilot.pause()
        took = time.perf_counter() - started
    return took


async def bench_database(
    url: str, *, waiting: int = WAITING, presses: int = PRESSES
) -> list[dict[str, Any]]:
    """Both figures on one migrated, empty database; returns the result lines."""
    from iqms.tui.reception.app import ReceptionApp
    from iqms.tui.reception.queue_screen import QueueScreen

    settings = bench_settings(url)
    db = Database.from_settings(settings)
    try:
        ctx = system_context(db, settings)
        bench = await make_clinic(ctx, doctors=2)
        account = await users.create(ctx, username="bench-desk", full_name="Desk Bench",
                                     role=Role.STAFF, password="bench-password-desk")  # fmt: skip
        desk = Principal(user_id=account.id, username="bench-desk", role=Role.STAFF.value)
        await bulk_load_waiting(url, bench.department_id, waiting)
        # the floor of a key: the core call itself (hold, then return), made directly
        staff = ctx.as_principal(desk)
        floor: list[float] = []
        for i in range(presses):
            started = time.perf_counter()
            if i % 2 == 0:
                await queue.hold(staff, ticket="B-002")
            else:
                await queue.return_to_queue(staff, ticket="B-002")
            floor.append(time.perf_counter() - started)
        if presses % 2:
            await queue.return_to_queue(staff, ticket="B-002")
    finally:
        await db.dispose()

    bare = await floor_start(waiting)
    app = ReceptionApp(settings, desk, clock=FrozenClock(BENCH_NOW), offline=False)
    started = time.perf_counter()
    latencies: list[float] = []
    cpu_times: list[float] = []  # this process's CPU time: what the figure costs without load
    cpu_started = time.process_time()
    async with app.run_test(size=SIZE) as pilot:

        def table_full() -> bool:
            screen = app.screen
            return isinstance(screen, QueueScreen) and len(screen.shown) >= waiting

        await wait_until(table_full, "the full queue table", within=60)
        first = time.perf_counter() - started
        first_cpu = time.process_time() - cpu_started
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        target = next(t for t in app.tickets if t.ticket_number == "B-002")
        key = str(target.id)
        table = screen.table
        table.move_to(list(screen.shown).index(key))
        await pilot.pause()

        # what the list last rendered for the row, as the screen is painted
        painted: dict[str, str] = {}
        render_line = table.render_line

        def render_and_note(y: int) -> Any:
            strip = render_line(y)
            index = y + int(table.scroll_offset.y)
            if index < len(table.rows) and table.rows[index][0] == key:
                painted[key] = table.line(index).plain
            return strip

        table.render_line = render_and_note  # type: ignore[method-assign]

        def drawn(key: str, status: str) -> bool:  # the row's new line painted
            return status in painted.get(key, "")

        def quiet() -> bool:  # no reload of the queue running or due
            return not (app._refreshing or app._refresh_scheduled)

        wall_started = time.perf_counter()
        for i in range(presses):
            wanted = "on hold" if i % 2 == 0 else "waiting"
            await wait_until(quiet, "the queue reloads to finish", within=60)
            await pilot.pause(0.05)
            painted.clear()
            sent = time.perf_counter()
            cpu = time.process_time()
            # The press runs alongside: Pilot.press returns only once the app is idle again,
            # which includes the reload that follows; the row changes before that.
            pressing = asyncio.create_task(pilot.press("h"))
            await wait_until(
                lambda wanted=wanted: drawn(key, wanted),
                f"the row to show {wanted!r}",
                within=ROW_TIMEOUT,
            )
            latencies.append(time.perf_counter() - sent)
            cpu_times.append(time.process_time() - cpu)
            await pressing
            # then the live event of the change arrives and the whole queue is read again
            await pilot.pause(0.4)
            await wait_until(quiet, "the queue reloads to finish", within=60)
        wall = time.perf_counter() - wall_started
        reloads = list(app.reload_seconds)
    backend = db.backend
    key_figures = Timing(latencies, wall).figures()
    floor_p50_ms = percentile_ms(floor, 50)
    lines = [
        {
            "name": "tui.start_to_queue",
            "backend": backend,
            "callers": 1,
            "waiting": waiting,
            "ops_per_s": round(1 / first, 2),
            "p50_ms": round(first * 1000, 1),
            "p99_ms": round(first * 1000, 1),
            "cpu_ms": round(first_cpu * 1000, 1),
            "floor_ms": round(bare * 1000, 1),
            "ratio_to_floor": round(first / bare, 2),
        },
        {
            "name": "tui.key_to_row",
            "backend": backend,
            "callers": 1,
            "waiting": waiting,
            "ops": presses,
            **key_figures,
            "cpu_p50_ms": percentile_ms(cpu_times, 50, 1),
            "floor_p50_ms": floor_p50_ms,
            "ratio_to_floor": round(key_figures["p50_ms"] / max(floor_p50_ms, 1e-6), 2),
        },
        {
            "name": "tui.queue_reload",
            "backend": backend,
            "callers": 1,
            "waiting": waiting,
            "ops": len(reloads),
            **Timing(reloads, sum(reloads)).figures(),
        },
    ]
    for line in lines:
        emit(line)
    return lines


async def run(
    server_url: str | None, *, backends: Sequence[str], waiting: int, presses: int
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for backend in backends:
        progress(f"reception console: {backend}, {waiting} waiting")
        async with fresh_database(backend, server_url) as url:
            results += await bench_database(url, waiting=waiting, presses=presses)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Reception console: start and key -> row.")
    add_backend_options(parser)
    parser.add_argument("--waiting", type=int, default=WAITING, help="waiting tickets")
    parser.add_argument("--presses", type=int, default=PRESSES, help="keys to time")
    args = parser.parse_args(argv)
    run_with_backends(parser, args, run, waiting=args.waiting, presses=args.presses)


if __name__ == "__main__":
    main()


__all__ = ["bench_database", "main", "run"]
