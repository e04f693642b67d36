"""Doctor console: keypress "call next" -> the patient shown, and a new ticket -> its row shown.

    python -m benchmarks.bench_doctor                      # throwaway PostgreSQL, 100,000 waiting
    python -m benchmarks.bench_doctor --url postgresql://USER@HOST/postgres --calls 200

The real console (``iqms.tui.doctor.DoctorConsole``) runs headless under
Textual's Pilot on a migrated database with ``--waiting`` tickets (the first
ones with patient records). Each "call next" sample is the time from the key
press to the patient panel holding the called ticket with the patient's name
and age (the frame that draws it follows within one refresh); then "d" (done)
makes the console idle again. Next to it, in the same run, the floor: the
same two core calls the console makes (``queue.call_next`` and
``patients.get``) straight through the services, without the console.

The live sample is the time from a ticket issued at reception (another
database handle, like another terminal) committing to its row being in the
doctor's queue table (an immediate-category ticket, so it comes first even
with 100,000 waiting): LISTEN/NOTIFY, the reload and the redraw.

One JSON object per line on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select, update

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
    wait_until,
)
from iqms.core.db import Database
from iqms.core.models import QueueEntry
from iqms.core.queue.engine import IS_WAITING, QUEUE_ORDER
from iqms.core.services import patients, queue
from iqms.tui.doctor import DoctorConsole
from iqms.tui.doctor.screen import DoctorScreen
from iqms.tui.doctor.widgets import MyQueue, PatientPanel

DEFAULT_WAITING = 100_000
DEFAULT_CALLS = 100
DEFAULT_ISSUES = 30
#: a sample that takes longer than this is an error, not a figure
DEADLINE = 30.0


async def _name_the_first_tickets(url: str, department_id: uuid.UUID, ctx: Any, count: int) -> int:
    """Give the first ``count`` waiting tickets (calling order) a registered patient."""
    db = Database(url)
    try:
        async with db.transaction() as s:
            ids = (
                (
                    await s.execute(
                        select(QueueEntry.id)
                        .where(QueueEntry.department_id == department_id, IS_WAITING)
                        .order_by(*QUEUE_ORDER)
                        .limit(count)
                    )
                )
                .scalars()
                .all()
            )
        for n, entry_id in enumerate(ids):
            patient = await patients.register(
                ctx,
                full_name=f"Patient Number {n + 1}",
                date_of_birth=f"19{40 + n % 60:02d}-0{1 + n % 9}-1{n % 10}",
                allow_duplicate=True,
            )
            async with db.transaction() as s:
                await s.execute(
                    update(QueueEntry)
                    .where(QueueEntry.id == entry_id)
                    .values(patient_id=patient.id)
                )
        return len(ids)
    finally:
        await db.dispose()


def _panel_shows(screen: DoctorScreen, number: str, *parts: str) -> bool:
    panel = screen.query_one(PatientPanel)
    if panel.ticket is None or panel.ticket.ticket_number != number:
        return False
    who = str(screen.query_one("#who").content)  # type: ignore[attr-defined]
    return all(part in who for part in parts)


def _idle(screen: DoctorScreen) -> bool:
    return screen.current is None and not screen.busy


class Frames:
    """When the console makes the first frame that shows something (what the doctor sees).

    Each frame the console sends to the terminal (headless: composed, then
    dropped) is checked against the expected states right after it was made.
    """

    def __init__(self, app: DoctorConsole) -> None:
        self._probes: list[tuple[Callable[[], bool], asyncio.Future[float]]] = []
        display = app._display

        def timed(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if renderable is None:
                return
            for probe, seen in self._probes:
                if not seen.done() and probe():
                    seen.set_result(time.perf_counter())

        app._display = timed  # type: ignore[method-assign]

    def expect(self, *probes: Callable[[], bool]) -> None:
        """Watch the frames for each of ``probes`` (set them before the key press)."""
        loop = asyncio.get_running_loop()
        self._probes = [(probe, loop.create_future()) for probe in probes]

    async def seen(self) -> list[float]:
        """When the first frame with each probe true was made."""
        try:
            return [await asyncio.wait_for(seen, DEADLINE) for _probe, seen in self._probes]
        except TimeoutError:
            raise RuntimeError(f"no frame showed the expected state within {DEADLINE} s") from None


async def bench_database(
    url: str, *, waiting: int = DEFAULT_WAITING, calls: int = DEFAULT_CALLS,
    issues: int = DEFAULT_ISSUES,
) -> list[dict[str, Any]]:  # fmt: skip
    """The console and its floor on one migrated, empty database; returns the result lines."""
    settings = bench_settings(url)
    db = Database.from_settings(settings)
    reception_db = Database.from_settings(settings)
    try:
        ctx = system_context(db, settings)
        bench = await make_clinic(ctx, doctors=2)
        total = max(waiting, 2 * calls + 10)
        progress(f"doctor console: loading {total:,} waiting tickets ({db.backend})")
        await bulk_load_waiting(url, bench.department_id, total)
        # Every ticket called below belongs to a registered patient (name and age to show).
        named = await _name_the_first_tickets(url, bench.department_id, ctx, 2 * calls)

        # The floor: the core calls behind one "call next" (doctor 2, the same queue).
        floor_doctor = bench.doctor_context(ctx, 1)
        floor: list[float] = []
        started = time.perf_counter()
        for _ in range(calls):
            t0 = time.perf_counter()
            ticket = await queue.call_next(floor_doctor, include_name=True)
            if ticket is None:
                raise RuntimeError("the queue ran dry")
            if ticket.patient_id is not None:
                await patients.get(floor_doctor, patient=ticket.patient_id)
            floor.append(time.perf_counter() - t0)
            await queue.serve(floor_doctor, ticket=ticket.id)
        floor_timing = Timing(floor, time.perf_counter() - started)

        doctor = bench.doctor_context(ctx, 0).principal
        app = DoctorConsole(settings, doctor, clock=ctx.clock)
        shown: list[float] = []
        record: list[float] = []
        arrived: list[float] = []
        frames = Frames(app)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(
                lambda: isinstance(app.screen, DoctorScreen) and app.screen.view is not None,
                "the console",
                within=DEADLINE,
            )
            screen = app.screen
            assert isinstance(screen, DoctorScreen)
            await wait_until(lambda: _idle(screen), "an idle console", within=DEADLINE)
            started = time.perf_counter()
            for _ in range(calls):
                expected = screen.view.waiting[0] if screen.view and screen.view.waiting else None
                if expected is None:
                    raise RuntimeError("the console shows nobody waiting")
                if expected.patient_id is None:
                    raise RuntimeError(f"{expected.ticket_number} has no patient record")
                number = expected.ticket_number
                # The ticket and the name (from the call itself), then the age (from the record).
                frames.expect(
                    lambda n=number: _panel_shows(screen, n, "Patient Number"),
                    lambda n=number: _panel_shows(screen, n, "Patient Number", " y"),
                )
                t0 = time.perf_counter()
                await pilot.press("n")
                with_name, with_age = await frames.seen()
                shown.append(with_name - t0)
                record.append(with_age - t0)
                await pilot.press("d")
                await wait_until(
                    lambda: _idle(screen), "the console idle after done", within=DEADLINE
                )
            wall = time.perf_counter() - started
            console_timing = Timing(shown, wall)
            record_timing = Timing(record, wall)

            table = screen.query_one(MyQueue)
            reception = system_context(reception_db, settings)
            with commit_starts(reception_db) as commits:
                for _ in range(issues):
                    commits.clear()
                    before = set(table.tickets)
                    frames.expect(lambda b=before: bool(set(table.tickets) - b))
                    ticket = await queue.issue(reception, department=bench.department_id,
                                               triage_category=1)  # fmt: skip
                    sent = commits[-1]
                    arrived.append((await frames.seen())[0] - sent)
                    if str(ticket.id) not in table.tickets:
                        raise RuntimeError(f"another row than {ticket.ticket_number} appeared")
                    await wait_until(lambda: _idle(screen), "the console settled", within=DEADLINE)
        live_timing = Timing(arrived, sum(arrived))
        shown_figures, floor_figures = console_timing.figures(), floor_timing.figures("floor_")
        base = {"backend": db.backend, "callers": 1, "waiting": total}
        lines = [
            {
                "name": "doctor.call_next_to_patient_shown",
                **base,
                "ops": calls,
                "named_patients": named,
                **shown_figures,
                **record_timing.figures("with_age_"),
                **floor_figures,
                "ratio_p50_to_floor": round(
                    shown_figures["p50_ms"] / floor_figures["floor_p50_ms"], 2
                ),
            },
            {
                "name": "doctor.issued_to_row_shown",
                **base,
                "ops": issues,
                **live_timing.figures(),
            },
        ]
        for line in lines:
            emit(line)
        return lines
    finally:
        await reception_db.dispose()
        await db.dispose()


async def run(
    server_url: str | None, *, backends: Sequence[str], waiting: int, calls: int, issues: int
) -> list[dict[str, Any]]:
    results = []
    for backend in backends:
        progress(f"doctor console: {backend}")
        async with fresh_database(backend, server_url) as url:
            results += await bench_database(url, waiting=waiting, calls=calls, issues=issues)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Doctor console: call next -> patient shown; issued -> row shown."
    )
    add_backend_options(parser)
    parser.set_defaults(backends="postgresql")
    parser.add_argument("--waiting", type=int, default=DEFAULT_WAITING, help="tickets waiting")
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS, help="calls to time")
    parser.add_argument("--issues", type=int, default=DEFAULT_ISSUES, help="live tickets to time")
    args = parser.parse_args(argv)
    run_with_backends(parser, args, run, waiting=args.waiting, calls=args.calls, issues=args.issues)


if __name__ == "__main__":
    main()
