"""A visit over HTTP: reception registers and triages, the doctor calls and serves, the patient's
status link follows the ticket (no names), the board shows the rooms."""

from __future__ import annotations

import uuid

import httpx

from iqms.api.app import create_app
from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from tests.api.conftest import API_TEST_SETTINGS, ApiClinic, asgi_client, bearer, login


async def test_reception_to_room_over_http(
    settings: Settings, db: Database, clock: FrozenClock, api_clinic: ApiClinic
) -> None:
    public = settings.model_copy(
        update={**API_TEST_SETTINGS, "public_url": "https://queue.riverside.example"}
    )
    app = create_app(public, database=db, clock=clock)
    async with asgi_client(app) as api:
        staff = bearer(await login(api, "rita"))
        smith = bearer(await login(api, "drsmith"))
        jones = bearer(await login(api, "drjones"))

        patient = await api.post(
            "/api/staff/patients",
            json={
                "full_name": "Grace Field",
                "phone": "07911 123403",
                "date_of_birth": "1961-03-04",
            },
            headers=staff,
        )
        assert patient.status_code == 201 and patient.json()["phone"] == "+447911123403"
        mrn = patient.json()["mrn"]
        await api.post("/api/staff/tickets", json={"department": "GEN"}, headers=staff)
        op = str(uuid.uuid4())
        issued = await api.post(
            "/api/staff/tickets",
            json={"department": "GEN", "patient": mrn, "client_op_id": op},
            headers=staff,
        )
        assert issued.status_code == 201, issued.text
        ticket = issued.json()
        assert ticket["ticket_number"] == "A-002" and ticket["position"] == 2
        assert ticket["status_url"] == f"https://queue.riverside.example/t/{ticket['status_code']}"
        retry = await api.post(
            "/api/staff/tickets",
            json={"department": "GEN", "patient": mrn, "client_op_id": op},
            headers=staff,
        )
        assert retry.json()["id"] == ticket["id"]  # a retried request gets the same ticket

        urgent = await api.post(
            "/api/staff/tickets/A-002/category", json={"triage_category": 2}, headers=staff
        )
        assert urgent.status_code == 200 and urgent.json()["position"] == 1

        code = ticket["status_code"]
        waiting = (await api.get(f"/api/status/{code}")).json()  # no login: the code is the key
        assert waiting["status"] == "waiting" and waiting["position"] == 1
        assert waiting["estimate"]["servers"] == 2
        assert (
            waiting["ticket_number"] == "A-002" and waiting["department_name"] == "General Practice"
        )

        mine = (await api.get("/api/doctor/queue", headers=smith)).json()
        assert [t["ticket_number"] for t in mine["waiting"]] == ["A-002", "A-001"]
        assert all(t["patient_name"] is None for t in mine["waiting"])
        called = await api.post("/api/doctor/call-next", json={}, headers=smith)
        assert called.status_code == 200
        assert (
            called.json()["ticket_number"] == "A-002" and called.json()["called_room"] == "Room 1"
        )

        status = await api.get(f"/api/status/{code}")
        assert status.json()["status"] == "called" and status.json()["room"] == "Room 1"
        assert "Grace" not in status.text and "Field" not in status.text and mrn not in status.text
        page = await api.get(f"/t/{code}")
        assert page.status_code == 200 and "Please go to Room 1 now" in page.text
        assert "Grace" not in page.text
        spanish = await api.get(f"/t/{code}", headers={"Accept-Language": "es-ES,es;q=0.9"})
        assert "Pase ahora a Room 1" in spanish.text

        board = (await api.get("/api/board/GEN", headers=staff)).json()
        serving = {r["room"]: r["ticket_number"] for r in board["now_serving"]}
        assert serving == {"Room 1": "A-002", "Room 2": None}
        assert [t["ticket_number"] for t in board["next_up"]] == ["A-001"]

        assert (await api.post("/api/doctor/tickets/A-002/start", headers=smith)).status_code == 200
        other_doctor = await api.post("/api/doctor/tickets/A-002/serve", headers=jones)
        assert other_doctor.status_code == 403  # drjones did not call A-002
        served = await api.post("/api/doctor/tickets/A-002/serve", headers=smith)
        assert served.json()["status"] == "served"
        done = await api.get(f"/t/{code}")
        assert "Your visit is complete" in done.text

        nobody = await api.post("/api/doctor/call-next", json={}, headers=smith)
        assert nobody.json()["ticket_number"] == "A-001"
        empty = await api.post("/api/doctor/call-next", json={}, headers=smith)
        assert empty.status_code == 200 and empty.json() is None  # nobody left waiting


async def test_the_status_link_follows_a_transfer(
    api: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    staff = bearer(tokens["staff"])
    ticket = (
        await api.post("/api/staff/tickets", json={"department": "GEN"}, headers=staff)
    ).json()
    moved = await api.post(
        f"/api/staff/tickets/{ticket['ticket_number']}/transfer",
        json={"department": "XRAY", "reason": "needs an x-ray first"},
        headers=staff,
    )
    assert moved.status_code == 200 and moved.json()["ticket_number"] == "X-001"
    status = (await api.get(f"/api/status/{ticket['status_code']}")).json()
    assert status["ticket_number"] == "X-001" and status["transferred_from"] == "A-001"
    assert status["department_name"] == "Radiology" and status["status"] == "waiting"
    page = await api.get(f"/t/{ticket['status_code']}")
    assert "Ticket A-001 moved here; your new number is X-001." in page.text
    unknown = await api.get("/t/" + "Q" * 22)
    assert unknown.status_code == 404 and "cannot find this ticket" in unknown.text


async def test_a_doctor_holds_returns_and_transfers_the_patients_they_called(
    api: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    staff, smith = bearer(tokens["staff"]), bearer(tokens["doctor"])
    jones = bearer(await login(api, "drjones"))
    for _ in range(3):
        await api.post("/api/staff/tickets", json={"department": "GEN"}, headers=staff)
    called = await api.post("/api/doctor/call-next", json={}, headers=smith)
    assert called.json()["ticket_number"] == "A-001"

    # Another doctor may not move Dr Smith's patient.
    refused = await api.post("/api/doctor/tickets/A-001/hold", json={}, headers=jones)
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:iqms:problem:permission-denied"
    assert "not a patient you called" in refused.json()["detail"]

    held = await api.post(
        "/api/doctor/tickets/A-001/hold", json={"reason": "sent for a blood test"}, headers=smith
    )
    assert held.status_code == 200 and held.json()["status"] == "held"
    queue_now = await api.get("/api/staff/queue", params={"department": "GEN"}, headers=staff)
    statuses = {t["ticket_number"]: t["status"] for t in queue_now.json()}
    assert statuses["A-001"] == "held"

    back = await api.post("/api/doctor/tickets/A-001/return", headers=smith)
    assert back.status_code == 200 and back.json()["status"] == "waiting"
    assert back.json()["position"] == 1  # its original place: first in line again
    nobodys = await api.post("/api/doctor/tickets/A-001/return", headers=jones)
    assert nobodys.status_code == 403  # waiting again: no doctor's patient now

    again = await api.post("/api/doctor/call-next", json={}, headers=jones)
    assert again.json()["ticket_number"] == "A-001"
    moved = await api.post(
        "/api/doctor/tickets/A-001/transfer",
        json={"department": "XRAY", "reason": "needs an x-ray"},
        headers=jones,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["ticket_number"] == "X-001" and moved.json()["status"] == "waiting"
    not_his = await api.post(
        "/api/doctor/tickets/A-002/transfer", json={"department": "XRAY"}, headers=smith
    )
    assert not_his.status_code == 403  # A-002 waits; Dr Smith did not call it
