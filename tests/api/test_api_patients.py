"""Patients on their phones: self-registration, SMS code and birth-date logins, their own records."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from iqms.api.app import create_app
from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.models import Notification, PatientLoginCode
from iqms.core.service import Context
from iqms.core.services import patients, queue
from tests.api.conftest import ApiClinic, asgi_client, bearer, sent_code

AMELIA_PHONE = "+447911123401"


async def verify(api: httpx.AsyncClient, phone: str, code: str, **extra: str) -> httpx.Response:
    return await api.post(
        "/api/patients/login/verify", json={"phone": phone, "code": code, **extra}
    )


async def codes_queued(db: Database, phone: str) -> int:
    async with db.transaction(readonly=True) as s:
        return int(
            (
                await s.execute(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.recipient == phone, Notification.template == "login_code")
                )
            ).scalar_one()
        )


async def test_a_patient_registers_logs_in_by_sms_and_sees_their_ticket(
    api: httpx.AsyncClient, db: Database, ctx: Context, api_clinic: ApiClinic
) -> None:
    response = await api.post(
        "/api/patients/register",
        json={
            "full_name": "Nuria Vidal",
            "phone": "+34 612 345 678",
            "date_of_birth": "1975-05-20",
            "language": "es",
        },
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["login"] == "sms" and answer["mrn"] is None
    assert answer["code"] == {"sent_to": "+34*****5678", "expires_in_minutes": 10}

    code = await sent_code(db, "+34612345678")
    async with db.transaction(readonly=True) as s:
        sms = (
            await s.execute(select(Notification).where(Notification.recipient == "+34612345678"))
        ).scalar_one()
        stored = (await s.execute(select(PatientLoginCode))).scalars().all()
    assert sms.language == "es" and "codigo de acceso es" in sms.body
    assert [c.code_hash for c in stored if c.code_hash] and all(
        code not in (c.code_hash or "") and code not in c.lookup for c in stored
    )  # only a keyed hash of the code is kept

    login = await verify(api, "+34612345678", code)
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    assert login.json()["user"]["role"] == "patient"
    me = (await api.get("/api/patients/me", headers=bearer(token))).json()
    assert me["full_name"] == "Nuria Vidal" and me["language"] == "es"
    assert me["notify_channel"] == "sms"

    changed = await api.patch(
        "/api/patients/me",
        json={"version": me["version"], "notify_channel": "none"},
        headers=bearer(token),
    )
    assert changed.status_code == 200 and changed.json()["notify_channel"] == "none"
    stale = await api.patch(
        "/api/patients/me", json={"version": me["version"], "language": "en"}, headers=bearer(token)
    )
    assert stale.status_code == 409 and "changed by someone else" in stale.json()["detail"]

    await queue.issue(ctx, department="GEN")  # someone else first
    mine = await queue.issue(ctx, department="GEN", patient=me["mrn"])
    tickets = (await api.get("/api/patients/me/tickets", headers=bearer(token))).json()
    assert [t["ticket_number"] for t in tickets] == [mine.ticket_number]
    assert tickets[0]["position"] == 2 and tickets[0]["ahead"] == 1
    assert tickets[0]["estimate"]["servers"] == 2  # drsmith and drjones are on duty

    again = await verify(api, "+34612345678", code)  # a code works once
    assert again.status_code == 401 and "expired or was already used" in again.json()["detail"]


async def test_wrong_codes_use_up_the_code_and_codes_expire(
    api: httpx.AsyncClient, db: Database, clock: FrozenClock, api_clinic: ApiClinic
) -> None:
    assert (
        await api.post("/api/patients/login/code", json={"phone": AMELIA_PHONE})
    ).status_code == 202
    code = await sent_code(db, AMELIA_PHONE)
    wrong = "000000" if code != "000000" else "111111"
    first = await verify(api, AMELIA_PHONE, wrong)
    assert first.status_code == 401
    assert first.json()["detail"] == "wrong code; 4 tries left"
    assert first.headers["www-authenticate"] == "Bearer"
    for _ in range(4):
        last = await verify(api, AMELIA_PHONE, wrong)
    assert last.json()["detail"] == "wrong code; ask for a new code"
    dead = await verify(api, AMELIA_PHONE, code)  # too late: five wrong tries killed it
    assert dead.status_code == 401 and "ask for a new code" in dead.json()["detail"]

    clock.advance(seconds=1)
    await api.post("/api/patients/login/code", json={"phone": AMELIA_PHONE})
    fresh = await sent_code(db, AMELIA_PHONE)
    clock.advance(minutes=11)
    expired = await verify(api, AMELIA_PHONE, fresh)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]

    await api.post("/api/patients/login/code", json={"phone": AMELIA_PHONE})
    ok = await verify(api, AMELIA_PHONE, " ".join(await sent_code(db, AMELIA_PHONE)))
    assert ok.status_code == 200  # spaces typed into the code do not matter
    assert ok.json()["user"]["username"] == "amelia"  # the patient's existing account


async def test_codes_per_phone_are_rate_limited_and_unknown_numbers_look_the_same(
    api: httpx.AsyncClient, db: Database, clock: FrozenClock, api_clinic: ApiClinic
) -> None:
    answers = [
        await api.post("/api/patients/login/code", json={"phone": AMELIA_PHONE}) for _ in range(5)
    ]
    assert {a.status_code for a in answers} == {202}
    sixth = await api.post("/api/patients/login/code", json={"phone": AMELIA_PHONE})
    assert sixth.status_code == 429
    assert sixth.headers["content-type"] == "application/problem+json"
    assert 3500 < int(sixth.headers["retry-after"]) <= 3601
    assert "too many codes" in sixth.json()["detail"]
    assert await codes_queued(db, AMELIA_PHONE) == 5

    unknown = await api.post("/api/patients/login/code", json={"phone": "+447911123999"})
    assert unknown.status_code == 202
    assert unknown.json().keys() == answers[0].json().keys()
    assert await codes_queued(db, "+447911123999") == 0  # nobody to send to, nothing says so

    clock.advance(minutes=61)
    assert (
        await api.post("/api/patients/login/code", json={"phone": AMELIA_PHONE})
    ).status_code == 202


async def test_a_patient_reaches_only_their_own_records(
    api: httpx.AsyncClient, tokens: dict[str, str], ctx: Context, api_clinic: ApiClinic
) -> None:
    amelia, oliver = api_clinic.amelia, api_clinic.oliver
    theirs = await queue.issue(ctx, department="GEN", patient=oliver.mrn)
    mine = await queue.issue(ctx, department="GEN", patient=amelia.mrn)
    me = bearer(tokens["patient"])  # amelia

    own = await api.get(f"/api/patients/{amelia.mrn}", headers=me)
    assert own.status_code == 200 and own.json()["full_name"] == "Amelia Hughes"
    for method, path, body in (
        ("GET", f"/api/patients/{oliver.mrn}", None),
        ("GET", f"/api/patients/{oliver.id}", None),
        ("GET", f"/api/staff/patients/{oliver.mrn}", None),
        ("PATCH", f"/api/staff/patients/{oliver.mrn}", {"version": 1, "phone": AMELIA_PHONE}),
        ("GET", "/api/staff/patients", None),
        ("GET", f"/api/staff/tickets/{theirs.ticket_number}", None),
        ("GET", "/api/staff/queue", None),
    ):
        params = {"q": "Oliver"} if path == "/api/staff/patients" else None
        response = await api.request(method, path, json=body, params=params, headers=me)
        assert response.status_code == 403, (method, path, response.text)
        assert "Brown" not in response.text and "+447911123402" not in response.text
    tickets = (await api.get("/api/patients/me/tickets", headers=me)).json()
    assert [t["ticket_number"] for t in tickets] == [mine.ticket_number]
    assert (await patients.get(ctx, patient=oliver.mrn)).phone == "+447911123402"  # unchanged


async def test_several_patients_on_one_phone_give_their_date_of_birth(
    api: httpx.AsyncClient, db: Database, ctx: Context, api_clinic: ApiClinic
) -> None:
    await patients.register(
        ctx, full_name="Amelia's Son", phone=AMELIA_PHONE, date_of_birth="2015-09-01",
        allow_duplicate=True,
    )  # fmt: skip
    await api.post("/api/patients/login/code", json={"phone": AMELIA_PHONE})
    code = await sent_code(db, AMELIA_PHONE)
    which = await verify(api, AMELIA_PHONE, code)
    assert which.status_code == 422 and which.json()["field"] == "date_of_birth"
    son = await verify(api, AMELIA_PHONE, code, date_of_birth="2015-09-01")
    assert son.status_code == 200, son.text  # the code was not used up by the question
    token = son.json()["access_token"]
    me = (await api.get("/api/patients/me", headers=bearer(token))).json()
    assert me["full_name"] == "Amelia's Son"


async def test_mrn_and_birth_date_where_the_clinic_sends_no_sms(
    settings: Settings, db: Database, clock: FrozenClock, api_clinic: ApiClinic
) -> None:
    no_sms = settings.model_copy(update={"sms_provider": "none", "login_rate_limit": 1000})
    app = create_app(no_sms, database=db, clock=clock)
    mrn = api_clinic.amelia.mrn
    async with asgi_client(app) as api:
        good = {"mrn": mrn.lower(), "date_of_birth": "1984-02-11"}
        ok = await api.post("/api/patients/login/birth-date", json=good)
        assert ok.status_code == 200, ok.text
        refused = await api.post("/api/patients/login/code", json={"phone": AMELIA_PHONE})
        assert refused.status_code == 422 and "record number (MRN)" in refused.json()["detail"]

        bad = {"mrn": mrn, "date_of_birth": "1984-02-12"}
        for _ in range(5):
            failed = await api.post("/api/patients/login/birth-date", json=bad)
            assert failed.status_code == 401
        assert "do not match" in failed.json()["detail"]
        locked = await api.post("/api/patients/login/birth-date", json=good)
        assert locked.status_code == 429 and "too many failed logins" in locked.json()["detail"]
        clock.advance(minutes=16)
        assert (await api.post("/api/patients/login/birth-date", json=good)).status_code == 200

        new = await api.post(
            "/api/patients/register",
            json={"full_name": "Tom Reed", "date_of_birth": "1999-12-31"},
        )
        assert new.status_code == 201 and new.json()["mrn"].startswith("MRN")
        again = await api.post(
            "/api/patients/register",
            json={"full_name": "A Hughes", "phone": AMELIA_PHONE, "date_of_birth": "1984-02-11"},
        )
        assert again.status_code == 409 and mrn not in again.text
