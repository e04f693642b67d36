"""Round trips of the hot operations, pinned: a doctor's "call next" and a kiosk's "issue".

Each statement sent to the database is a round trip a receptionist or doctor
waits for (on a clinic LAN, to another machine). The counts are those
SQLAlchemy hands to the driver (``before_cursor_execute``): on PostgreSQL the
driver's own BEGIN and COMMIT come on top; on SQLite ``BEGIN IMMEDIATE`` is
one of them. A change that adds a statement to these paths fails here; if
the extra statement is worth it, change the number with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event

from iqms.core.db import Database
from iqms.core.enums import NotifyChannel
from iqms.core.service import Context
from iqms.core.services import patients, queue
from tests.test_queue_fixtures import Clinic, as_doctor, as_role, small_clinic

#: (PostgreSQL, SQLite) statements of one operation
#: PostgreSQL: the claim reads the doctor; SQLite: the doctor first, then the claim
CALL_NEXT = (4, 6)  # (doctor,) claim, event, audit tail, audit record (+ BEGIN)
CALL_NEXT_SOMEONE_TO_TELL = (5, 7)  # ... plus the "your turn is near" check
ISSUE = (7, 8)  # department, number, place in line, ticket, event, audit tail, record (+ BEGIN)
ISSUE_COLD = (10, 11)  # ... plus the estimate inputs: service times, doctors, arrivals


@dataclass
class Statements:
    """Statements sent on the database's engines while recording."""

    seen: list[str] = field(default_factory=list)
    on: bool = False

    def __call__(self, *args: Any) -> None:
        if self.on:
            self.seen.append(" ".join(str(args[2]).split()))

    @contextmanager
    def recording(self) -> Iterator[list[str]]:
        self.seen, self.on = [], True
        try:
            yield self.seen
        finally:
            self.on = False


@pytest.fixture
async def statements(db: Database) -> AsyncIterator[Statements]:
    recorder = Statements()
    engines = {db.engine.sync_engine, db.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", recorder)
    yield recorder
    for engine in engines:
        event.remove(engine, "before_cursor_execute", recorder)


def expected(ctx: Context, counts: tuple[int, int]) -> int:
    return counts[0] if ctx.db.is_postgres else counts[1]


async def _queue_of(ctx: Context, how_many: int) -> Clinic:
    c = await small_clinic(ctx)
    for _ in range(how_many):
        await queue.issue(ctx, department="GEN")
    return c


async def test_call_next_round_trips(ctx: Context, statements: Statements) -> None:
    c = await _queue_of(ctx, 6)
    doctor = as_doctor(ctx, c.doctors["drsmith"])
    await queue.call_next(doctor)
    with statements.recording() as seen:
        called = await queue.call_next(doctor)
    assert called is not None and called.ticket_number == "A-002"
    assert len(seen) == expected(ctx, CALL_NEXT), seen


async def test_call_next_checks_turn_is_near_only_when_someone_waits_to_be_told(
    ctx: Context, statements: Statements
) -> None:
    c = await _queue_of(ctx, 5)
    reception = as_role(ctx, "staff")
    patient = await patients.register(
        reception, full_name="Ada Lovelace", phone="+447911123456", notify_channel=NotifyChannel.SMS
    )
    await queue.issue(ctx, department="GEN", patient=patient.id)  # 5 ahead: not near yet
    doctor = as_doctor(ctx, c.doctors["drsmith"])
    with statements.recording() as seen:
        await queue.call_next(doctor)  # 4 ahead now: still not near, but checked
    assert len(seen) == expected(ctx, CALL_NEXT_SOMEONE_TO_TELL), seen


async def test_issue_round_trips_do_not_grow_with_the_queue(
    ctx: Context, statements: Statements
) -> None:
    await _queue_of(ctx, 3)
    with statements.recording() as seen:
        short = await queue.issue(ctx, department="GEN")
    assert len(seen) == expected(ctx, ISSUE), seen
    for _ in range(40):
        await queue.issue(ctx, department="GEN")
    with statements.recording() as seen:
        longer = await queue.issue(ctx, department="GEN")
    assert len(seen) == expected(ctx, ISSUE), seen
    assert (short.position, longer.position) == (4, 45)


async def test_first_issue_reads_the_estimate_inputs_once(
    ctx: Context, statements: Statements
) -> None:
    await small_clinic(ctx)
    with statements.recording() as seen:
        await queue.issue(ctx, department="GEN")
    assert len(seen) == expected(ctx, ISSUE_COLD), seen
