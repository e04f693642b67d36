"""Patients: registration with generated MRNs, audited reads, optimistic updates, search."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import select

from iqms.core.errors import Conflict, PermissionDenied, ValidationError
from iqms.core.models import AuditRecord
from iqms.core.service import Context
from iqms.core.services import patients
from tests.test_queue_fixtures import as_role


async def _audit(ctx: Context) -> list[tuple[str, str | None]]:
    async with ctx.db.transaction(readonly=True) as s:
        rows = await s.execute(
            select(AuditRecord.action, AuditRecord.target_id).order_by(AuditRecord.seq)
        )
        return [(a, t) for a, t in rows]


async def test_register_generates_mrns_and_normalises_input(ctx: Context) -> None:
    a = await patients.register(
        ctx, full_name="  Amelia   Hughes ", phone="07911 123101", date_of_birth="1984-02-11"
    )
    b = await patients.register(ctx, full_name="Oliver Brown", notify_channel="sms")
    assert (a.mrn, b.mrn) == ("MRN000001", "MRN000002")
    assert a.full_name == "Amelia Hughes" and a.phone == "+447911123101"
    assert a.date_of_birth == date(1984, 2, 11) and a.version == 1
    assert (await _audit(ctx))[-1] == ("patient.registered", str(b.id))


async def test_concurrent_registrations_get_unique_mrns(ctx: Context) -> None:
    made = await asyncio.gather(
        *[patients.register(ctx, full_name=f"Walk In {i}") for i in range(8)]
    )
    assert sorted(p.mrn for p in made) == [f"MRN{i:06d}" for i in range(1, 9)]


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"phone": "12"}, "phone"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"national_id": "x!"}, "national_id"),
        ({"language": "english"}, "language"),
        ({"notify_channel": "pigeon"}, "notify_channel"),
        ({"full_name": ""}, "full_name"),
    ],
)
async def test_bad_input_names_the_field_and_saves_nothing(
    ctx: Context, fields: dict[str, object], bad_field: str
) -> None:
    values: dict[str, object] = {"full_name": "Jack Evans"}
    values.update(fields)
    with pytest.raises(ValidationError) as err:
        await patients.register(ctx, **values)  # type: ignore[arg-type]
    assert err.value.field == bad_field
    assert await _audit(ctx) == []


async def test_likely_duplicates_are_refused_unless_confirmed(ctx: Context) -> None:
    first = await patients.register(
        ctx, full_name="Lucia Garcia", phone="+34600900108", date_of_birth="1995-06-17"
    )
    with pytest.raises(Conflict, match=first.mrn):
        await patients.register(
            ctx, full_name="Lucía García", phone="+34 600 900 108", date_of_birth="1995-06-17"
        )
    twin = await patients.register(
        ctx,
        full_name="Ana Garcia",
        phone="+34600900108",
        date_of_birth="1995-06-17",
        allow_duplicate=True,
    )
    assert twin.mrn == "MRN000002"
    await patients.register(ctx, full_name="Noah Taylor", national_id="AB 123 456")
    with pytest.raises(Conflict) as same_id:
        await patients.register(
            ctx, full_name="N Taylor", national_id="ab123456", allow_duplicate=True
        )
    assert same_id.value.details["field"] == "national_id"


async def test_reading_a_record_is_audited_and_patients_see_only_their_own(
    ctx: Context,
) -> None:
    mine = await patients.register(ctx, full_name="Mia Roberts")
    other = await patients.register(ctx, full_name="Harry Walker")
    got = await patients.get(ctx, patient=mine.mrn)
    assert got.full_name == "Mia Roberts"
    assert (await _audit(ctx))[-1] == ("patient.viewed", str(mine.id))
    me = as_role(ctx, "patient", patient_id=mine.id)
    assert (await patients.get(me, patient="me")).mrn == mine.mrn
    with pytest.raises(PermissionDenied):
        await patients.get(me, patient=other.mrn)
    with pytest.raises(PermissionDenied):
        await patients.search(me, query="Harry")


async def test_update_checks_the_version(ctx: Context) -> None:
    p = await patients.register(ctx, full_name="George Wright", phone="+447911123109")
    changed = await patients.update(ctx, patient=p.id, version=1, notify_channel="sms")
    assert changed.version == 2 and changed.notify_channel == "sms"
    with pytest.raises(Conflict, match="changed by someone else") as stale:
        await patients.update(ctx, patient=p.id, version=1, full_name="Georgina Wright")
    assert stale.value.details["field"] == "version"
    assert (await patients.get(ctx, patient=p.id)).full_name == "George Wright"
    cleared = await patients.update(ctx, patient=p.mrn, version=2, phone="")
    assert cleared.phone is None and cleared.version == 3
    unchanged = await patients.update(ctx, patient=p.mrn, version=3, full_name="George Wright")
    assert unchanged.version == 3
    with pytest.raises(ValidationError) as bad:
        await patients.update(ctx, patient=p.mrn, version=3, phone="not a phone")
    assert bad.value.field == "phone"


async def test_search_by_name_mrn_or_phone_is_audited(ctx: Context) -> None:
    amelia = await patients.register(ctx, full_name="Amelia Hughes", phone="+447911123101")
    await patients.register(ctx, full_name="Oliver Brown", phone="+447911123102")
    await patients.register(ctx, full_name="Amelie 100% Real_Name")
    assert [m.full_name for m in await patients.search(ctx, query="amel")] == [
        "Amelia Hughes",
        "Amelie 100% Real_Name",
    ]
    assert [m.mrn for m in await patients.search(ctx, query="mrn000002")] == ["MRN000002"]
    assert [m.id for m in await patients.search(ctx, query="07911 123101")] == [amelia.id]
    assert [m.full_name for m in await patients.search(ctx, query="amelia hug")] == [
        "Amelia Hughes"
    ]
    assert await patients.search(ctx, query="100%") != []
    assert await patients.search(ctx, query="0%R") == []
    assert (await _audit(ctx))[-1][0] == "patient.searched"
    with pytest.raises(ValidationError):
        await patients.search(ctx, query="a")
