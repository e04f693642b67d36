"""The public ticket status: answers are kept between queue events, and a call still shows at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from iqms.api.app import create_app
from iqms.api.events import StatusCache
from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.queue.events import Resync, TicketCalled
from iqms.core.service import Context
from iqms.core.services import queue
from tests.api.conftest import ApiClinic, asgi_client


async def test_status_answers_are_kept_until_the_queue_moves(
    settings: Settings, db: Database, clock: FrozenClock, ctx: Context, api_clinic: ApiClinic
) -> None:
    app = create_app(settings, database=db, clock=clock)  # the default: kept for 30 s
    ticket = await queue.issue(ctx, department="GEN")
    path = f"/api/status/{ticket.status_code}"
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    event.listen(db.read_engine.sync_engine, "before_cursor_execute", count)
    try:
        async with asgi_client(app) as api:
            assert (await api.get(path)).json()["status"] == "waiting"
            hub = app.state.iqms.hub
            for _ in range(100):  # the event subscription comes up in the background
                if hub.live:
                    break
                await asyncio.sleep(0.05)
            assert hub.live
            first = await api.get(path)
            read = len(statements)
            answers = [await api.get(path) for _ in range(20)]
            assert {a.text for a in answers} == {first.text}
            assert len(statements) == read  # no database reads for the repeats
            assert answers[0].headers["cache-control"] == "no-store"  # browsers keep nothing

            await queue.call_next(ctx, doctor="drsmith")
            deadline = time.monotonic() + 2.0
            status = first.json()
            while status["status"] != "called" and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                status = (await api.get(path)).json()
            assert status["status"] == "called" and status["room"] == "Room 1"
    finally:
        event.remove(db.read_engine.sync_engine, "before_cursor_execute", count)


def test_the_cache_drops_what_an_event_concerns_and_expires() -> None:
    now = [100.0]
    cache = StatusCache(10, clock=lambda: now[0], jitter=lambda: 0.5)  # lifetime 9 s
    gen, xray = uuid.uuid4(), uuid.uuid4()
    generation = cache.generation
    cache.put("code-a", gen, b"a", generation=generation)
    cache.put("code-b", xray, b"b", generation=generation)
    assert cache.get("code-a") == b"a" and cache.get("code-b") == b"b"

    called = TicketCalled(
        entry_id=uuid.uuid4(), department_id=gen, ticket_number="A-001", triage_category=4,
        occurred_at=datetime.now(UTC),
    )  # fmt: skip
    cache.on_event(called)
    assert cache.get("code-a") is None and cache.get("code-b") == b"b"
    cache.put("code-a", gen, b"stale", generation=generation)  # read before the event
    assert cache.get("code-a") is None

    now[0] += 8.9
    assert cache.get("code-b") == b"b"
    now[0] += 0.2
    assert cache.get("code-b") is None  # estimates follow the clock
    cache.put("code-b", xray, b"b2", generation=cache.generation)
    cache.on_event(Resync("reconnected"))
    assert len(cache) == 0
