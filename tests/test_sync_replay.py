"""Property: any batch, however its operations turn out, is applied once; replaying it changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import SyncResult
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, patients, queue, sync
from tests.test_sync_push import make_clinic, snapshot

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=6)


@st.composite
def batch_for(
    draw: st.DrawFn, known: dict[str, list[str]], device_id: uuid.UUID, block: tuple[int, int]
) -> dict[str, Any]:
    """A well-formed batch whose operations may or may not make sense on the server."""
    ops: list[dict[str, Any]] = []
    for seq in range(1, draw(st.integers(1, 8)) + 1):
        kind = draw(st.sampled_from(["patient.register", "patient.update", "ticket.issue",
                                     "appointment.check_in", "ticket.cancel", "ticket.triage"]))  # fmt: skip
        op: dict[str, Any] = {
            "kind": kind,
            "op_id": str(uuid.uuid4()),  # fresh ids: the database outlives the examples
            "device_seq": seq,
            "occurred_at": (
                T0 + timedelta(minutes=draw(st.integers(-60 * 24, 60 * 7)))
            ).isoformat(),
        }
        regs = [o["op_id"] for o in ops if o["kind"] == "patient.register"]
        tickets = [o["op_id"] for o in ops if o["kind"] == "ticket.issue"]
        if kind == "patient.register":
            op["patient"] = {
                "full_name": draw(st.sampled_from(["Amelia Hughes", "Oliver Brown", "Ann Lee"])),
                "phone": draw(st.sampled_from([None, "+447911123101", "+447911123102"])),
                "date_of_birth": draw(st.sampled_from([None, "1984-02-11"])),
                "national_id": draw(st.sampled_from([None, "QQ123456", "ZZ999999"])),
            }
        elif kind == "patient.update":
            if regs and draw(st.booleans()):
                op["patient_op_id"] = draw(st.sampled_from(regs))
            else:
                op["patient_id"] = draw(st.sampled_from([*known["patients"], str(uuid.uuid4())]))
                op["base_version"] = draw(st.integers(1, 3))
            op["changes"] = draw(
                st.sampled_from(
                    [
                        {"phone": "+447911123199"},
                        {"language": "es"},
                        {"full_name": "Amelia Jones"},
                        {"phone": None},
                    ]
                )
            )
        elif kind == "ticket.issue":
            op["department_id"] = draw(st.sampled_from([*known["departments"], str(uuid.uuid4())]))
            op["triage_category"] = draw(st.integers(1, 5))
            offset = draw(st.one_of(st.none(), st.integers(0, 5)))  # past the block end too
            op["sequence"] = None if offset is None else block[0] + offset
            if regs and draw(st.booleans()):
                op["patient_op_id"] = draw(st.sampled_from(regs))
            elif draw(st.booleans()):
                op["patient_id"] = draw(st.sampled_from(known["patients"]))
        elif kind == "appointment.check_in":
            op["appointment_id"] = draw(
                st.sampled_from([*known["appointments"], str(uuid.uuid4())])
            )
        else:
            if tickets and draw(st.booleans()):
                op["ticket_op_id"] = draw(st.sampled_from(tickets))
            else:
                op["ticket_id"] = draw(st.sampled_from([*known["tickets"], str(uuid.uuid4())]))
            if kind == "ticket.triage":
                op["triage_category"] = draw(st.integers(1, 5))
        ops.append(op)
    return {"format": 1, "device_id": str(device_id), "device_name": "fuzz", "operations": ops}


def test_every_batch_is_applied_once_and_a_replay_changes_nothing(settings: Settings) -> None:
    clock = FrozenClock(NOW)

    def context(db: Database) -> Context:
        return Context(db=db, principal=Principal.system("desk"), settings=settings, clock=clock)

    async def prepare() -> dict[str, list[str]]:
        db = Database.from_settings(settings)
        ctx = context(db)
        try:
            c = await make_clinic(ctx)
            amelia = await patients.register(ctx, full_name="Amelia Hughes",
                                             phone="+447911123101",
                                             date_of_birth=date(1984, 2, 11))  # fmt: skip
            appt = await clinic.book_appointment(ctx, patient=amelia.id, department=c.gen,
                                                 scheduled_at=NOW + timedelta(minutes=30))  # fmt: skip
            ticket = await queue.issue(ctx, department=c.ped)
            return {
                "departments": [str(c.gen), str(c.ped)],
                "patients": [str(amelia.id)],
                "appointments": [str(appt.id)],
                "tickets": [str(ticket.id)],
            }
        finally:
            await db.dispose()

    known = asyncio.run(prepare())

    @hsettings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        async def attempt() -> None:
            db = Database.from_settings(settings)
            ctx = context(db)
            try:
                device_id = uuid.uuid4()
                gen = uuid.UUID(known["departments"][0])
                block = await sync.reserve_numbers(ctx, department_id=gen, size=3,
                                                   device_id=device_id)  # fmt: skip
                span = (block.first_number, block.last_number)
                batch = data.draw(batch_for(known, device_id, span))
                first = await sync.push(ctx, batch=batch)
                assert [str(r.op_id) for r in first.results] == [
                    o["op_id"] for o in batch["operations"]
                ]
                assert SyncResult.DUPLICATE not in {r.result for r in first.results}
                for res in first.results:
                    if res.result == SyncResult.CONFLICT:
                        assert res.reason and res.conflict_id  # never silently dropped
                before = await snapshot(ctx)
                again = await sync.push(ctx, batch=batch)
                assert {r.result for r in again.results} == {SyncResult.DUPLICATE}
                assert [r.details.get("original_result") for r in again.results] == [
                    r.result.value for r in first.results
                ]
                assert await snapshot(ctx) == before
            finally:
                await db.dispose()

        asyncio.run(attempt())

    check()
