"""The benchmark code works (tiny sizes, both backends); the figures themselves come from make bench."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from benchmarks import bench_display, bench_events, bench_notify, bench_queue, bench_stack
from benchmarks.__main__ import discover
from benchmarks.__main__ import main as run_all
from iqms.core.db import Database
from iqms.core.enums import TicketStatus
from iqms.core.models import AuditRecord, QueueEntry
from iqms.core.security.audit import verify_chain

REQUIRED = {"name", "backend", "callers", "waiting", "ops_per_s", "p50_ms", "p99_ms"}


async def test_queue_benchmark_runs_services_and_floor(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    results = await bench_queue.bench_database(db_url, waiting=30, callers=[1, 2], ops=4)
    assert [(r["name"], r["callers"]) for r in results] == [
        ("queue.issue", 1),
        ("queue.call_next", 1),
        ("queue.issue", 2),
        ("queue.call_next", 2),
    ]
    for line in results:
        assert REQUIRED <= set(line)
        assert line["waiting"] == 30
        assert line["ops_per_s"] > 0 and line["floor_ops_per_s"] > 0
        assert line["ratio_to_floor"] == pytest.approx(
            line["ops_per_s"] / line["floor_ops_per_s"], rel=0.02, abs=1e-3
        )
        assert 0 < line["p50_ms"] <= line["p99_ms"]
    printed = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert printed == results

    # The floor wrote tickets the application reads like its own, and claimed in queue order.
    db = Database(db_url)
    try:
        async with db.transaction(readonly=True) as s:
            counts = dict(
                (
                    await s.execute(
                        select(QueueEntry.status, func.count()).group_by(QueueEntry.status)
                    )
                ).all()
            )
            numbers = (await s.execute(select(QueueEntry.ticket_number))).scalars().all()
            chain = await verify_chain(s)
            actions = dict(
                (
                    await s.execute(
                        select(AuditRecord.action, func.count()).group_by(AuditRecord.action)
                    )
                ).all()
            )
    finally:
        await db.dispose()
    issued = 2 * (4 + 4)  # services + floor, for 1 and 2 callers
    called = 2 * (4 + 4)
    assert counts[TicketStatus.CALLED] == called
    assert counts[TicketStatus.WAITING] == 30 + issued - called
    assert len(set(numbers)) == len(numbers) == 30 + issued
    # Both wrote their audit records into one chain that still verifies.
    assert chain.intact, chain.first_break
    assert actions["ticket.issued"] == issued and actions["ticket.called"] == called


async def test_event_latency_benchmark_runs(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = await bench_events.bench_database(db_url, events=3, waiting=5)
    assert REQUIRED <= set(line)
    assert line["name"] == "events.call_to_subscriber"
    assert line["p50_ms"] > 0
    assert json.loads(capsys.readouterr().out) == line


async def test_stack_benchmark_splits_transaction_and_statement_costs(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = await bench_stack.bench_database(db_url, ops=20)
    assert [line["name"] for line in lines] == ["stack.raw", "stack.sqlalchemy", "stack.iqms"]
    for line in lines:
        assert REQUIRED <= set(line)
        assert line["ops_per_s"] > 0 and 0 < line["p50_ms"] <= line["p99_ms"]
        assert line["statements"] == 6
        assert {"per_transaction_ms", "per_statement_ms"} <= set(line)
        # each layer's throughput next to the raw driver's, as the line says
        assert line["ratio_to_raw"] == pytest.approx(
            line["ops_per_s"] / lines[0]["ops_per_s"], rel=0.02, abs=1e-3
        )
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == lines


def test_the_runner_finds_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    found = discover()
    assert {"queue", "events", "display", "stack"} <= set(found)
    assert run_all(["--list"]) == 0
    listed = capsys.readouterr().out
    assert "queue:" in listed and "events:" in listed
    with pytest.raises(SystemExit):
        run_all(["--only", "nonsense"])


async def test_notification_window_benchmark_runs(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = await bench_notify.bench_database(db_url, messages=3)
    assert REQUIRED <= set(line)
    assert line["name"] == "notify.duplicate_window" and line["ops"] == 3
    assert 0 < line["p50_ms"] <= line["max_ms"] and line["floor_p50_ms"] > 0
    assert json.loads(capsys.readouterr().out) == line


@pytest.mark.postgresql
async def test_call_to_board_benchmark_runs(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = await bench_display.bench_database(pg_url, calls=2, waiting=5)
    assert REQUIRED <= set(line)
    assert line["name"] == "display.call_to_board"
    assert 0 < line["p50_ms"] <= line["p99_ms"] <= line["max_ms"]
    assert line["subscriber_p50_ms"] > 0 and line["ratio_to_subscriber"] > 0
    assert json.loads(capsys.readouterr().out) == line
