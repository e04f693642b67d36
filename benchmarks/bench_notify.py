"""The notification worker's duplicate window: provider accepted -> result committed.

    python -m benchmarks.bench_notify                     # throwaway PostgreSQL (and SQLite)
    python -m benchmarks.bench_notify --url postgresql://USER@HOST/postgres --messages 500

A worker that dies inside this window leaves a message the provider already
accepted marked ``sending``; the worker that takes it over asks Twilio and does
not send it again, but a provider that cannot be asked (Firebase, the console)
sends it a second time. Each sample is the time from the moment the provider's
``send`` returns (here the console provider, so no network) to the moment the
worker has committed the message as ``sent``. The floor is the same one-row
``UPDATE ... SET status = 'sent'`` in its own transaction on the same database.
On a real provider the window also holds the provider's answer in transit.

One JSON object per line on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import io
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from benchmarks._support import (
    BENCH_NOW,
    Timing,
    add_backend_options,
    bench_settings,
    emit,
    fresh_database,
    percentile,
    progress,
    run_with_backends,
)
from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.enums import NotifyChannel
from iqms.core.notify import outbox
from iqms.core.notify.base import OutgoingMessage
from iqms.core.notify.console import ConsoleProvider
from iqms.core.notify.worker import NotificationWorker

DEFAULT_MESSAGES = 200


class _TimedConsole(ConsoleProvider):
    """The console provider, noting when each send returned (the provider's 'accepted')."""

    def __init__(self) -> None:
        super().__init__(NotifyChannel.SMS, io.StringIO())
        self.accepted_at = 0.0

    def send_blocking(self, message: OutgoingMessage) -> str:
        sid = super().send_blocking(message)
        self.accepted_at = time.perf_counter()
        return sid


async def _queue(db: Database, settings: Any, count: int) -> list[uuid.UUID]:
    ids = []
    async with db.transaction() as s:
        for i in range(count):
            notification_id = await outbox.enqueue_message(
                s,
                settings,
                channel=NotifyChannel.SMS,
                recipient="+447911123456",
                language="en",
                kind="called",
                fields={"ticket": f"B-{i + 1:03d}", "room": "Room 1"},
                now=BENCH_NOW,
            )
            assert notification_id is not None
            ids.append(notification_id)
    return ids


async def _floor(db: Database, ids: Sequence[uuid.UUID]) -> list[float]:
    """One-row UPDATE transactions: what recording a result costs at the least."""
    samples = []
    for notification_id in ids:
        started = time.perf_counter()
        async with db.transaction() as s:
            await s.execute(
                text("UPDATE notifications SET status = 'sent' WHERE id = :id"),
                {"id": notification_id if db.is_postgres else notification_id.hex},
            )
        samples.append(time.perf_counter() - started)
    return samples


async def bench_database(url: str, *, messages: int) -> dict[str, Any]:
    """The duplicate window on one migrated, empty database; returns the result line."""
    settings = bench_settings(url)
    db = Database.from_settings(settings)
    try:
        await _queue(db, settings, messages)
        provider = _TimedConsole()
        worker = NotificationWorker(
            db, settings, clock=FrozenClock(BENCH_NOW), providers={NotifyChannel.SMS: provider}
        )
        windows: list[float] = []
        started = time.perf_counter()
        while (outcome := await worker.process_one()) is not None:
            windows.append(time.perf_counter() - provider.accepted_at)
            if not outcome.recorded:
                raise RuntimeError("a result was not recorded during the benchmark")
        wall = time.perf_counter() - started
        if len(windows) != messages:
            raise RuntimeError(f"sent {len(windows)} of {messages} messages")
        floor = await _floor(db, await _queue(db, settings, messages))
        timing = Timing(windows, wall)
        floor_p50 = percentile(floor, 50)
        line = {
            "name": "notify.duplicate_window",
            "backend": db.backend,
            "callers": 1,
            "waiting": messages,
            "ops": messages,
            **timing.figures(),
            "max_ms": round(1000 * max(windows), 3),
            "floor_p50_ms": round(1000 * floor_p50, 3),
            "ratio_to_floor": round(percentile(windows, 50) / floor_p50, 2),
        }
        emit(line)
        return line
    finally:
        await db.dispose()


async def run(server_url: str | None, *, backends: Sequence[str], messages: int) -> list[Any]:
    results = []
    for backend in backends:
        progress(f"notification duplicate window: {backend}")
        async with fresh_database(backend, server_url) as url:
            results.append(await bench_database(url, messages=messages))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Provider accepted -> result committed, per message (the duplicate window)."
    )
    add_backend_options(parser)
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES, help="messages to send")
    args = parser.parse_args(argv)
    run_with_backends(parser, args, run, messages=args.messages)


if __name__ == "__main__":
    main()
