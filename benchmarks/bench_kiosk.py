"""Kiosk: a patient's press on a service -> the last byte of their ticket at the printer.

    python -m benchmarks.bench_kiosk                      # throwaway PostgreSQL, and SQLite
    python -m benchmarks.bench_kiosk --url postgresql://USER@HOST/postgres --presses 100

The real kiosk console runs headless (Textual's test driver) on a database with
a realistic queue, signed in with its device key, with its offline journal,
live events and printer worker, printing to a network printer on 127.0.0.1
(the tests' fake ESC/POS printer, which answers status queries and notes when
each byte arrived). Each sample runs from the moment the screen handles the
press to the moment the printer receives the ticket's last byte: issue through
the core, estimate, render, status query, send, status query. Before each timed
press the kiosk shows the services for a moment, as a person would read them.

In the same process, the baseline: the same ticket issued and printed through
the kiosk's desk directly (no screens), so ``ratio_to_baseline`` is what the
screens add. The aim is p99 under 300 ms.

One JSON object per line on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textual import events

from benchmarks._support import (
    BENCH_NOW,
    Timing,
    add_backend_options,
    bench_settings,
    bulk_load_waiting,
    emit,
    fresh_database,
    make_clinic,
    progress,
    run_with_backends,
    system_context,
    wait_until,
)
from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.services import devices, selfservice
from iqms.kiosk.app import KioskApp, KioskAuth
from iqms.kiosk.desk import KioskDepartment, TicketDesk
from iqms.kiosk.printer import PrintWorker, TicketPrinter, parse_printer_spec
from iqms.kiosk.screens import ServiceScreen, StartScreen
from tests.kiosk.fake_printer import FakePrinter

DEFAULT_PRESSES = 60
#: a patient looks at the services before pressing one (the screen is drawn by then)
READING_SECONDS = 0.3
WAITING = 200
WAIT_SECONDS = 10.0


def kiosk_settings(url: str, data_dir: Path) -> Settings:
    return bench_settings(
        url,
        data_dir=data_dir,
        config_dir=data_dir / "config",
        sms_provider="none",  # straight from the service to the ticket
        clinic_name="Benchmark Clinic",
    )


def printer_for(settings: Settings, printer: FakePrinter) -> PrintWorker:
    config = dataclasses.replace(parse_printer_spec(printer.spec), profile=settings.printer_profile)
    return PrintWorker(TicketPrinter(config, settings))


async def _until(condition: Any, what: str) -> None:
    # Polled with a plain sleep, not pilot.pause(): that redraws the whole screen each time,
    # which a real terminal never asks for, and the timed press would pay for it.
    await wait_until(condition, what, within=WAIT_SECONDS, poll=0.005)


def press(app: KioskApp, key: str) -> None:
    """A key from the terminal, as the driver hands it over (the Pilot's own press would
    also wait for the app to be idle and redraw, work a real terminal never adds)."""
    event = events.Key(key, key)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


def _ticket_jobs(printer: FakePrinter) -> list[Any]:
    """The printer's jobs that carried a ticket (not only status queries)."""
    return [job for job in printer.jobs if job.ticket_bytes]


def _last_byte(printer: FakePrinter, jobs_before: int) -> float | None:
    """When the newest ticket's last byte arrived (once its job ended), or None yet."""
    jobs = _ticket_jobs(printer)
    if len(jobs) <= jobs_before:
        return None
    return jobs[-1].last_byte_at


async def screens(settings: Settings, key: str, presses: int) -> list[float]:
    """Presses through the real kiosk screens; seconds from press to last byte each."""
    samples: list[float] = []
    with FakePrinter() as printer:
        app = KioskApp(settings, KioskAuth(key), printer=printer_for(settings, printer),
                       clock=FrozenClock(BENCH_NOW))  # fmt: skip
        async with app.run_test(size=(100, 34)) as pilot:
            await _until(lambda: isinstance(app.screen, StartScreen), "the start screen")
            for _ in range(presses):
                await pilot.press("1")  # language
                await _until(lambda: isinstance(app.screen, ServiceScreen), "services")
                await asyncio.sleep(READING_SECONDS)  # a person reads the services first
                issued = len(app.issued)
                jobs = len(_ticket_jobs(printer))
                press(app, "1")  # the service: this is the press that is timed
                await _until(
                    lambda before=issued: len(app.issued) > before and bool(app.issued[-1].results),
                    "the ticket to print",
                )
                ticket = app.issued[-1]
                if not ticket.results[-1].printed:
                    raise RuntimeError(f"the ticket did not print: {ticket.results[-1].status}")
                last = _last_byte(printer, jobs)
                assert last is not None
                samples.append(last - ticket.pressed_at)
                await pilot.press("0")  # done
                await _until(lambda: isinstance(app.screen, StartScreen), "the start")
    return samples


async def baseline(settings: Settings, key: str, presses: int) -> list[float]:
    """The same tickets through the kiosk's desk directly: core + printer, no screens."""
    db = Database.from_settings(settings)
    samples: list[float] = []
    try:
        ctx = system_context(db, settings)
        anonymous = ctx.as_principal(Principal.anonymous())
        kiosk = ctx.as_principal(await devices.authenticate(anonymous, key=key))
        [wait] = await selfservice.department_waits(kiosk)
        department = KioskDepartment(wait.department_id, wait.code, wait.name)
        with FakePrinter() as printer:
            worker = printer_for(settings, printer)
            desk = TicketDesk(settings, worker, ctx=lambda: kiosk)
            await worker.warm_up()
            for _ in range(presses):
                jobs = len(_ticket_jobs(printer))
                pressed = time.perf_counter()
                issued = await desk.issue(department, language="en", pressed_at=pressed)
                result = await desk.print(issued)
                if not result.printed:
                    raise RuntimeError(f"the ticket did not print: {result.status}")
                last = _last_byte(printer, jobs)
                assert last is not None
                samples.append(last - pressed)
            await worker.close()
    finally:
        await db.dispose()
    return samples


async def bench_database(url: str, *, presses: int, waiting: int = WAITING) -> dict[str, Any]:
    """Press -> printed on one migrated, empty database; returns the result line."""
    settings = bench_settings(url)
    db = Database.from_settings(settings)
    backend = db.backend
    try:
        ctx = system_context(db, settings)
        bench = await make_clinic(ctx, doctors=2)
        await bulk_load_waiting(url, bench.department_id, waiting)
        key = (await devices.add(ctx, name="bench-kiosk", role="kiosk")).key
    finally:
        await db.dispose()
    with tempfile.TemporaryDirectory(prefix="iqms-kiosk-bench-") as tmp:
        settings = kiosk_settings(url, Path(tmp))
        started = time.perf_counter()
        base = await baseline(settings, key, presses)
        base_timing = Timing(base, time.perf_counter() - started)
        started = time.perf_counter()
        kiosk = await screens(settings, key, presses)
        timing = Timing(kiosk, time.perf_counter() - started)
    figures = timing.figures()
    base_figures = base_timing.figures("baseline_")
    line = {
        "name": "kiosk.press_to_last_byte",
        "backend": backend,
        "callers": 1,
        "waiting": waiting,
        "ops": presses,
        **figures,
        **base_figures,
        "ratio_to_baseline": round(figures["p50_ms"] / base_figures["baseline_p50_ms"], 2),
        "aim_p99_ms": 300,
    }
    emit(line)
    return line


async def run(server_url: str | None, *, backends: Sequence[str], presses: int) -> list[Any]:
    results = []
    for backend in backends:
        progress(f"kiosk press -> printed: {backend}")
        async with fresh_database(backend, server_url) as url:
            results.append(await bench_database(url, presses=presses))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Kiosk press -> last byte at the printer.")
    add_backend_options(parser)
    parser.add_argument(
        "--presses", type=int, default=DEFAULT_PRESSES, help="tickets to time per backend"
    )
    args = parser.parse_args(argv)
    run_with_backends(parser, args, run, presses=args.presses)


if __name__ == "__main__":
    main()
