"""The estimate inputs an operation keeps in memory say what a fresh read of the database says.

Operations keep a department's estimate inputs (who is busy since when, recent
consultation lengths, arrivals) current in place instead of reading them
again; a patient's wait estimate from a busy terminal must still be the one a
terminal that has just started would give.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable

import pytest

from iqms.core.clock import FrozenClock
from iqms.core.errors import Conflict
from iqms.core.models import QueueEntry
from iqms.core.queue import eta
from iqms.core.schemas.queue import TicketOut
from iqms.core.security.rbac import Permission
from iqms.core.service import OPERATIONS, Context, operation, savepoint
from iqms.core.services import queue
from tests.test_queue_fixtures import Clinic, as_doctor, small_clinic
from tests.test_statement_counts import ISSUE, Statements, expected

# the round-trip recorder fixture
from tests.test_statement_counts import statements as statements


async def _kept_and_fresh(
    ctx: Context, department_id: uuid.UUID
) -> tuple[eta.DepartmentState, eta.DepartmentState]:
    async with ctx.db.transaction() as s:
        kept = await eta.department_state(ctx.bind(s), department_id)
        fresh = await eta.load_department_state(s, department_id, now=ctx.now())
    return kept, fresh


def _same(kept: eta.DepartmentState, fresh: eta.DepartmentState) -> None:
    assert [s.doctor_id for s in kept.servers] == [s.doctor_id for s in fresh.servers]
    for k, f in zip(kept.servers, fresh.servers, strict=True):
        assert k.free_in_minutes == pytest.approx(f.free_in_minutes, abs=1e-6), k.doctor_id
        assert k.mean_minutes == pytest.approx(f.mean_minutes, rel=1e-9)
        assert k.cv == pytest.approx(f.cv, rel=1e-9)
    assert kept.stats.samples == fresh.stats.samples
    assert kept.stats.mean_minutes == pytest.approx(fresh.stats.mean_minutes, rel=1e-9)
    assert set(kept.doctor_stats) == set(fresh.doctor_stats)
    for category, rate in fresh.arrival_rates.items():
        assert math.isclose(
            kept.arrival_rates.get(category, 0.0), rate, rel_tol=1e-9, abs_tol=1e-12
        )


async def test_calls_consultations_and_departures_keep_the_inputs_current(
    ctx: Context, clock: FrozenClock
) -> None:
    c = await small_clinic(ctx)
    gen = c.gen.id
    smith = as_doctor(ctx, c.doctors["drsmith"])
    jones = as_doctor(ctx, c.doctors["drjones"])
    tickets = [await queue.issue(ctx, department="GEN") for _ in range(12)]
    await _kept_and_fresh(ctx, gen)  # the inputs are read once here and kept from now on

    seeing: dict[str, uuid.UUID] = {}

    async def calls(name: str, doctor: Context) -> None:
        called = await queue.call_next(doctor)
        assert called is not None
        seeing[name] = called.id

    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("smith calls", lambda: calls("smith", smith)),
        ("jones calls", lambda: calls("jones", jones)),
        ("smith starts", lambda: queue.start(smith, ticket=seeing["smith"])),
        ("a new arrival", lambda: queue.issue(ctx, department="GEN", triage_category=2)),
        ("smith finishes", lambda: queue.serve(smith, ticket=seeing["smith"])),
        ("jones: no-show, back in line",
         lambda: queue.no_show(jones, ticket=seeing["jones"], requeue=True)),
        ("smith calls again", lambda: calls("smith", smith)),
        ("smith: done without start", lambda: queue.serve(smith, ticket=seeing["smith"])),
        ("jones calls again", lambda: calls("jones", jones)),
        ("reception holds jones's patient", lambda: queue.hold(ctx, ticket=seeing["jones"])),
        ("smith calls a third time", lambda: calls("smith", smith)),
        ("smith's patient sent to paediatrics",
         lambda: queue.transfer(ctx, ticket=seeing["smith"], department="PED")),
        ("jones calls a fourth", lambda: calls("jones", jones)),
        ("jones: no-show", lambda: queue.no_show(jones, ticket=seeing["jones"])),
        ("smith calls a fourth", lambda: calls("smith", smith)),
        ("smith's patient held", lambda: queue.hold(smith, ticket=seeing["smith"])),
        ("cancelled from hold", lambda: queue.cancel(ctx, ticket=seeing["smith"])),
        ("a waiting ticket held", lambda: queue.hold(ctx, ticket=tickets[-3].id)),
        ("and returned", lambda: queue.return_to_queue(ctx, ticket=tickets[-3].id)),
        ("a waiting ticket cancelled", lambda: queue.cancel(ctx, ticket=tickets[-1].id)),
        ("category changed", lambda: queue.change_category(ctx, ticket=tickets[-2].id, triage_category=1)),
        ("jones calls a fifth", lambda: calls("jones", jones)),
    ]  # fmt: skip
    busy_seen = 0
    for what, step in steps:
        clock.advance(minutes=4)
        await step()
        kept, fresh = await _kept_and_fresh(ctx, gen)
        try:
            _same(kept, fresh)
        except AssertionError as e:
            raise AssertionError(f"after '{what}': {e}") from e
        busy_seen += sum(1 for s in fresh.servers if s.free_in_minutes > 0)
    assert busy_seen > 0  # the steps did keep doctors busy, so "who is busy" was compared
    assert fresh.stats.samples == 2  # two consultations finished


async def test_issue_after_a_consultation_reads_no_estimate_inputs(
    ctx: Context, clock: FrozenClock, statements: Statements
) -> None:
    c: Clinic = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    await queue.issue(ctx, department="GEN")  # reads the inputs once
    called = await queue.call_next(smith)
    assert called is not None
    clock.advance(minutes=3)
    await queue.start(smith, ticket=called.id)
    clock.advance(minutes=9)
    await queue.serve(smith, ticket=called.id)
    with statements.recording() as seen:
        issued = await queue.issue(ctx, department="GEN")
    assert len(seen) == expected(ctx, ISSUE), seen
    # ... and its estimate is the one a fresh read of the database gives (the 12 minutes from
    # the call to the end count as the department's first consultation)
    kept, fresh = await _kept_and_fresh(ctx, c.gen.id)
    assert kept.stats.samples == fresh.stats.samples == 1
    async with ctx.db.transaction() as s:
        entry = await s.get(QueueEntry, issued.id)
        assert entry is not None
        again = await eta.estimate_for_entry(s, entry, now=ctx.now(), settings=ctx.settings)
    assert issued.estimate is not None
    assert issued.estimate.p50_minutes == pytest.approx(again.p50_minutes, abs=0.05)
    assert issued.estimate.p90_minutes == pytest.approx(again.p90_minutes, abs=0.05)


def _then_fails(step: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[None]]:
    """An operation that runs ``step`` and then fails, as a later step of a larger one can."""

    @operation(Permission.QUEUE_CALL)
    async def step_then_fail(ctx: Context, *, ticket: uuid.UUID) -> None:
        await step(ctx, ticket=ticket)  # joins this operation's transaction
        raise Conflict("a later step failed")

    # not one of the core's operations (the RBAC tests walk those)
    OPERATIONS.pop(f"{step_then_fail.__module__}.{step_then_fail.__qualname__}")
    return step_then_fail


async def _ten_minutes_with_a_patient(
    ctx: Context, clock: FrozenClock
) -> tuple[Clinic, Context, TicketOut]:
    """Dr Smith called a patient ten minutes ago: the clinic, Dr Smith, the ticket."""
    c = await small_clinic(ctx)
    smith = as_doctor(ctx, c.doctors["drsmith"])
    await queue.issue(ctx, department="GEN")
    called = await queue.call_next(smith)
    assert called is not None
    clock.advance(minutes=10)
    return c, smith, called


async def test_a_change_that_does_not_commit_leaves_the_inputs_as_the_database_has_them(
    ctx: Context, clock: FrozenClock
) -> None:
    c, smith, called = await _ten_minutes_with_a_patient(ctx, clock)
    before, _ = await _kept_and_fresh(ctx, c.gen.id)
    with pytest.raises(Conflict):
        await _then_fails(queue.serve)(smith, ticket=called.id)
    kept, fresh = await _kept_and_fresh(ctx, c.gen.id)
    _same(kept, fresh)
    assert fresh.stats.samples == 0  # the consultation was not recorded as finished
    busy = [s for s in fresh.servers if s.doctor_id == c.doctors["drsmith"].id]
    assert busy and busy[0].free_in_minutes > 0  # Dr Smith is still with the patient
    assert kept.servers == before.servers


async def test_a_change_undone_by_its_savepoint_leaves_the_inputs_as_the_database_has_them(
    ctx: Context, clock: FrozenClock
) -> None:
    # An offline batch applies each operation in a savepoint: a refused one is rolled back
    # while the batch goes on and commits.
    c, _, called = await _ten_minutes_with_a_patient(ctx, clock)
    await _kept_and_fresh(ctx, c.gen.id)
    async with ctx.db.transaction() as s:
        inner = ctx.bind(s)
        with pytest.raises(Conflict):
            async with savepoint(inner):
                await queue.serve(inner, ticket=called.id)  # joins the transaction
                raise Conflict("the batch refuses this operation")
        await queue.issue(inner, department="GEN")  # the rest of the batch goes on
    kept, fresh = await _kept_and_fresh(ctx, c.gen.id)
    _same(kept, fresh)
    assert fresh.stats.samples == 0  # the consultation was not recorded as finished
