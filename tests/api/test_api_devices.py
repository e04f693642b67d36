"""Kiosks and display boards over HTTP with their device keys: what each may do, revocation."""

from __future__ import annotations

import uuid

import httpx

from iqms.core.service import Context
from iqms.core.services import devices, display, queue
from tests.api.conftest import ApiClinic


async def test_a_display_board_key_shows_boards_and_nothing_else(
    api: httpx.AsyncClient, ctx: Context, api_clinic: ApiClinic
) -> None:
    key = api_clinic.device_keys["tv-waiting-room"]
    await queue.issue(ctx, department="GEN")
    for header in (f"Device {key}", f"Bearer {key}"):
        board = await api.get("/api/board/GEN", headers={"Authorization": header})
        assert board.status_code == 200, board.text
        assert [t["ticket_number"] for t in board.json()["next_up"]] == ["A-001"]
    device = {"Authorization": f"Device {key}"}
    assert (await api.get("/api/departments", headers=device)).status_code == 200
    for path in ("/api/staff/queue", "/api/patients/me", "/api/auth/me"):
        refused = await api.get(path, headers=device)
        assert refused.status_code == 403, (path, refused.text)

    opened = await api.get(f"/board?department=GEN&key={key}")
    assert opened.status_code == 303 and opened.headers["location"] == "?department=GEN"
    cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/board" in cookie
    page = await api.get("/board?department=GEN")  # the client kept the cookie
    assert page.status_code == 200 and "A-001" in page.text
    assert "board-message" not in page.text  # no message line until staff set one
    await display.set_message(ctx, text="Flu vaccinations today, ask at reception")
    page = await api.get("/board?department=GEN")
    assert "Flu vaccinations today, ask at reception" in page.text  # the same line as iqms display

    await devices.revoke(ctx, device="tv-waiting-room")
    gone = await api.get("/api/board/GEN", headers=device)
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]
    dark = await api.get("/board?department=GEN")
    assert dark.status_code == 401 and "needs a key" in dark.text


async def test_a_kiosk_key_issues_tickets_and_pushes_only_its_own_journal(
    api: httpx.AsyncClient, ctx: Context, api_clinic: ApiClinic
) -> None:
    key = api_clinic.device_keys["kiosk-east"]
    kiosk = {"Authorization": f"Device {key}"}
    issued = await api.post("/api/staff/tickets", json={"department": "GEN"}, headers=kiosk)
    assert issued.status_code == 201 and issued.json()["source"] == "kiosk"
    assert (await api.get("/api/staff/queue", headers=kiosk)).status_code == 403

    own = (await devices.get(ctx, device="kiosk-east")).id

    def batch(device_id: uuid.UUID) -> dict[str, object]:
        return {
            "format": 1,
            "device_id": str(device_id),
            "device_name": "kiosk-east",
            "operations": [
                {
                    "kind": "patient.register",
                    "op_id": str(uuid.uuid4()),
                    "device_seq": 1,
                    "occurred_at": "2026-01-05T07:59:00+00:00",
                    "patient": {"full_name": "Rosa Diaz"},
                }
            ],
        }

    pushed = await api.post("/api/sync", json=batch(own), headers=kiosk)
    assert pushed.status_code == 200 and pushed.json()["counts"]["applied"] == 1
    other = await api.post("/api/sync", json=batch(uuid.uuid4()), headers=kiosk)
    assert other.status_code == 403 and "its own journal" in other.json()["detail"]


async def test_unusable_credentials_are_refused_plainly(
    api: httpx.AsyncClient, api_clinic: ApiClinic
) -> None:
    for header, words in (
        ("Basic cml0YTpwYXNz", "must be 'Bearer <token>'"),
        ("Device iqmsdk_" + "x" * 43, "unknown or was replaced"),
        ("Device iqmsdk_short", "not a device key"),
        ("Bearer not.a.token", "not valid"),
    ):
        answer = await api.get("/api/departments", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert words in answer.json()["detail"], answer.json()["detail"]
