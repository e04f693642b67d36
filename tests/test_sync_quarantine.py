"""One damaged row in the offline journal never blocks the rest: it is set aside with a clear
reason (and kept), the others are pushed, and ``iqms sync status`` shows it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sqlalchemy import select

from iqms.core.clock import FrozenClock
from iqms.core.enums import SyncResult
from iqms.core.models import Patient
from iqms.core.service import Context
from iqms.core.sync.connectivity import Connectivity
from tests.test_cli_sync import iqms, terminal_cli  # noqa: F401 - the CLI fixture
from tests.test_sync_push import T0, journal_for, kiosk_context


def damage(journal_path: Path, statement: str) -> None:
    with sqlite3.connect(journal_path) as conn:
        conn.execute(statement)


async def patients_named(ctx: Context) -> list[str]:
    async with ctx.db.transaction(readonly=True) as s:
        return list(
            (await s.execute(select(Patient.full_name).order_by(Patient.full_name))).scalars()
        )


async def test_an_unreadable_entry_is_set_aside_and_the_others_push(
    ctx: Context, clock: FrozenClock, tmp_path: Path
) -> None:
    clock.set(T0)
    kiosk = await kiosk_context(ctx, "kiosk1")
    journal = journal_for(tmp_path, "kiosk1", clock)
    for name in ("Ann Lee", "Bob Ray", "Cy Moss"):
        journal.register_patient({"full_name": name})
    damage(
        journal.path, 'UPDATE operations SET body = \'{"kind": "patient.reg\' WHERE device_seq = 2'
    )

    summary = await Connectivity(kiosk, journal).push_pending()
    assert (summary.pushed, summary.counts, summary.quarantined) == (2, {"applied": 2}, 1)
    assert await patients_named(ctx) == ["Ann Lee", "Cy Moss"]
    assert journal.pending_count() == 0
    (aside,) = journal.status().quarantined
    assert (aside.device_seq, aside.kind) == (2, "patient.register")
    assert aside.reason == "damaged: its operation is not readable JSON"
    assert aside.body == '{"kind": "patient.reg'  # kept as it was, for IT
    again = await Connectivity(kiosk, journal).push_pending()
    assert (again.pushed, again.quarantined) == (0, 0)


async def test_an_entry_the_server_refuses_is_set_aside_and_the_others_push(
    ctx: Context, clock: FrozenClock, tmp_path: Path
) -> None:
    clock.set(T0)
    kiosk = await kiosk_context(ctx, "kiosk1")
    journal = journal_for(tmp_path, "kiosk1", clock)
    first = journal.register_patient({"full_name": "Ann Lee"})
    assert (await Connectivity(kiosk, journal).push_pending()).pushed == 1
    # The journal's sequence counter goes back (a restored backup, a damaged file):
    # its next entry reuses a number the server has already seen for this device.
    damage(journal.path, "UPDATE meta SET value = '1' WHERE key = 'next_seq'")
    reused = journal.register_patient({"full_name": "Bob Ray"})
    journal.register_patient({"full_name": "Cy Moss"})
    assert reused.device_seq == first.device_seq

    summary = await Connectivity(kiosk, journal).push_pending()
    assert (summary.pushed, summary.quarantined) == (1, 1)
    assert summary.counts == {SyncResult.APPLIED.value: 1}
    assert await patients_named(ctx) == ["Ann Lee", "Cy Moss"]
    (aside,) = journal.quarantined()
    assert aside.op_id == str(reused.op_id)
    assert aside.reason == (
        f"refused by the server: device_seq: sequence 1 of this device was already used by "
        f"operation {first.op_id}"
    )
    assert json.loads(aside.body or "")["patient"]["full_name"] == "Bob Ray"


def test_sync_status_and_push_show_what_was_set_aside(terminal_cli: None, tmp_path: Path) -> None:  # noqa: F811
    from iqms.core.config import load_settings
    from iqms.core.sync.journal import Journal

    journal = Journal.for_settings(load_settings())
    journal.register_patient({"full_name": "Ann Lee"})
    journal.register_patient({"full_name": "Bob Ray"})
    damage(journal.path, "UPDATE operations SET op_id = 'not-an-id' WHERE device_seq = 1")

    pushed = iqms("sync", "push")
    assert pushed.exit_code == 0, pushed.output
    assert "Pushed 1 operations: 1 applied." in pushed.stderr
    assert (
        "1 damaged operation(s) set aside in the journal so the rest could go: "
        "see 'iqms sync status'." in pushed.stderr
    )
    status = iqms("sync", "status", "--no-check")
    assert status.exit_code == 0, status.output
    assert "pending operations: 0" in status.stdout
    assert (
        "set aside (#1): patient.register: damaged: its operation id or time is not readable"
        in status.stdout
    )
    listed = json.loads(iqms("sync", "status", "--no-check", "--json").stdout)
    assert [(a["seq"], a["op_id"]) for a in listed["set_aside"]] == [(1, "not-an-id")]
