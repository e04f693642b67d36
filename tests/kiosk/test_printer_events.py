"""A kiosk's printer faults reach reception as live events (both backends), carry no patient
data, are stored on the device for consoles that start later, and survive a lost database."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iqms.commands.queue import _event_line
from iqms.core.db import Database
from iqms.core.enums import PrinterState
from iqms.core.errors import PermissionDenied
from iqms.core.queue.events import PrinterFault, subscribe
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import audit, devices
from iqms.kiosk.faults import FaultReporter
from iqms.kiosk.printer import PrinterStatus
from tests.conftest import make_settings
from tests.test_queue_fixtures import as_role

WAIT = 5.0


async def kiosk_ctx(ctx: Context, name: str = "entrance") -> Context:
    issued = await devices.add(ctx, name=name, role="kiosk")
    anonymous = ctx.as_principal(Principal.anonymous())
    return ctx.as_principal(await devices.authenticate(anonymous, key=issued.key))


async def test_reception_sees_the_fault_and_its_clearing_live(ctx: Context) -> None:
    kiosk = await kiosk_ctx(ctx)
    reporter = FaultReporter(kiosk)
    staff = as_role(ctx, "staff")
    async with subscribe(ctx.db, department_id=None, poll_interval=0.02) as events:
        assert await reporter.report(PrinterStatus.of(PrinterState.PAPER_OUT))
        fault = await events.next(within=WAIT)
        # The same state again is not news.
        assert not await reporter.report(PrinterStatus.of(PrinterState.PAPER_OUT))
        assert await reporter.report(PrinterStatus.of(PrinterState.READY))
        cleared = await events.next(within=WAIT)
        assert await events.next(within=0.3) is None

    assert isinstance(fault, PrinterFault) and isinstance(cleared, PrinterFault)
    assert (fault.device_name, fault.state, fault.severity) == ("entrance", "paper_out", "fault")
    assert fault.message == "the printer is out of paper" and not fault.cleared
    assert fault.device_id == kiosk.principal.device_id
    assert cleared.cleared and cleared.state == "ready"
    # Nothing about any patient or ticket travels with it.
    assert set(fault.to_payload()) == {
        "kind", "device_id", "device_name", "state", "severity", "message", "occurred_at",
        "department_id",
    }  # fmt: skip
    trail = await audit.show(as_role(ctx, "admin"), action="device.printer_*")
    assert [(r.action, r.actor) for r in trail] == [
        ("device.printer_fault", "entrance"),
        ("device.printer_ok", "entrance"),
    ]
    [device] = await devices.list_devices(staff)
    assert device.fault_state is None


async def test_a_console_started_later_sees_the_current_fault(ctx: Context) -> None:
    kiosk = await kiosk_ctx(ctx)
    await FaultReporter(kiosk).report(
        PrinterStatus.of(PrinterState.PAPER_LOW, "paper is running low: change the roll soon")
    )
    [device] = await devices.list_devices(as_role(ctx, "staff"))
    assert (device.fault_state, device.fault_message) == (
        "paper_low",
        "paper is running low: change the roll soon",
    )
    assert device.fault_at == ctx.now()


async def test_only_a_live_kiosk_reports_its_own_printer(ctx: Context) -> None:
    kiosk = await kiosk_ctx(ctx)
    with pytest.raises(PermissionDenied):
        await devices.report_printer(as_role(ctx, "staff"), state="paper_out")
    await devices.revoke(ctx, device="entrance")
    with pytest.raises(PermissionDenied, match="revoked"):
        await devices.report_printer(kiosk, state="paper_out")


async def test_a_fault_while_the_database_is_away_is_sent_when_it_returns(ctx: Context) -> None:
    kiosk = await kiosk_ctx(ctx)
    lost = Database("postgresql+psycopg://iqms@127.0.0.1:1/iqms", connect_timeout=1)
    reporter = FaultReporter(dataclasses.replace(kiosk, db=lost))
    try:
        assert not await reporter.report(PrinterStatus.of(PrinterState.COVER_OPEN))
        assert not await reporter.report(PrinterStatus.of(PrinterState.PAPER_OUT))
    finally:
        await lost.dispose()
    assert reporter.pending is not None and reporter.pending.state == PrinterState.PAPER_OUT
    reporter.ctx = kiosk  # the database is back
    assert await reporter.flush()
    assert reporter.pending is None
    [device] = await devices.list_devices(ctx)
    assert device.fault_state == "paper_out"  # the latest state, not the history


def test_queue_watch_shows_printer_faults(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    event = PrinterFault(
        device_id=uuid.uuid4(), device_name="entrance", state="paper_out", severity="fault",
        message="the printer is out of paper", occurred_at=datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    line = _event_line(settings, event, {})
    assert line.split() == "09:30:00 printer-fault entrance: the printer is out of paper".split()
