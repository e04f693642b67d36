"""What the reception desk needs from the patients service: find by date of birth, names for
queue views (audited), and a version clash that says who changed what."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import select

from iqms.core.clock import FrozenClock
from iqms.core.enums import Role
from iqms.core.errors import Conflict, PermissionDenied
from iqms.core.models import AuditRecord
from iqms.core.service import Context
from iqms.core.services import patients
from tests.test_queue_fixtures import as_role, as_user


async def test_search_finds_patients_by_date_of_birth_as_typed(ctx: Context) -> None:
    amelia = await patients.register(ctx, full_name="Amelia Hughes", date_of_birth="1984-03-07")
    await patients.register(ctx, full_name="Oliver Brown", date_of_birth="1990-11-02")
    for typed in ("1984-03-07", "07/03/1984", "07.03.1984"):
        found = await patients.search(ctx, query=typed)
        assert [(p.id, p.date_of_birth) for p in found] == [(amelia.id, date(1984, 3, 7))]
    assert await patients.search(ctx, query="31/02/1984") == []  # not a date, nobody's phone


async def test_names_for_a_queue_view_are_audited_and_only_for_staff(ctx: Context) -> None:
    amelia = await patients.register(ctx, full_name="Amelia Hughes")
    oliver = await patients.register(ctx, full_name="Oliver Brown")
    staff = await as_user(ctx, "rita", Role.STAFF)
    found = await patients.names(staff, patient_ids=[amelia.id, oliver.id, uuid.uuid4()])
    assert found == {amelia.id: "Amelia Hughes", oliver.id: "Oliver Brown"}
    async with ctx.db.transaction(readonly=True) as s:
        record = (
            await s.execute(select(AuditRecord).where(AuditRecord.action == "queue.names_viewed"))
        ).scalar_one()
    assert record.actor_name == "rita"
    assert record.details["patients"] == sorted([str(amelia.id), str(oliver.id)])
    assert await patients.names(staff, patient_ids=[]) == {}
    with pytest.raises(PermissionDenied):
        await patients.names(as_role(ctx, "patient", patient_id=amelia.id), patient_ids=[oliver.id])


async def test_a_version_clash_says_who_changed_what_and_when(
    ctx: Context, clock: FrozenClock
) -> None:
    george = await patients.register(ctx, full_name="George Wright", phone="+447911123109")
    sam = await as_user(ctx, "sam", Role.STAFF)
    rita = await as_user(ctx, "rita", Role.STAFF)
    await patients.update(sam, patient=george.id, version=1, phone="+447911123110",
                          notify_channel="sms")  # fmt: skip
    with pytest.raises(Conflict) as clash:
        await patients.update(rita, patient=george.id, version=1, full_name="Georgina Wright")
    message = str(clash.value)
    assert "changed by someone else (sam at 08:00: notify channel, phone)" in message
    assert "reload and try again (version 2, you had 1)" in message
    assert (await patients.get(ctx, patient=george.id)).full_name == "George Wright"
