"""Every route of the HTTP API as every role: allowed ones get past the permission check,
refused ones get 403, callers without a credential 401 (the table is tests/rbac_expectations.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.routing import APIRoute

from iqms.api.app import create_app
from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.service import Context
from iqms.core.services import queue
from tests.api.conftest import ACCOUNTS, PASSWORD, ApiClinic, asgi_client, bearer, login
from tests.rbac_expectations import ANONYMOUS, ROUTES

# Event streams never end: for them only the refusals (before streaming starts) are checked.
STREAMS = {"GET /t/{code}/events", "GET /board/events"}
# Routes that end the caller's logins: walked last, the role logging in again after each.
REVOKING = ("POST /api/auth/logout-everywhere", "POST /api/auth/password")


@dataclass
class Sample:
    path: str
    body: Any = None
    params: dict[str, Any] = field(default_factory=dict)


def samples(c: ApiClinic, ticket_code: str) -> dict[str, Sample]:
    """A harmless, well-formed request for each route (refused roles must reach the guard)."""
    device = "7d3f0c7e-1b2a-4c5d-8e9f-0a1b2c3d4e5f"
    mrn = c.amelia.mrn  # the patient role's own record
    batch = {
        "format": 1,
        "device_id": device,
        "device_name": "walk-terminal",
        "operations": [
            {
                "kind": "ticket.issue",
                "op_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "walk-op-1")),
                "device_seq": 1,
                "occurred_at": "2026-01-05T07:55:00+00:00",
                "department_id": str(c.gen.id),
            }
        ],
    }
    return {
        "POST /api/auth/token": Sample("/api/auth/token"),  # body filled per role
        "GET /api/auth/me": Sample("/api/auth/me"),
        "POST /api/auth/logout-everywhere": Sample("/api/auth/logout-everywhere"),
        "POST /api/auth/password": Sample(
            "/api/auth/password",
            {"current_password": PASSWORD, "new_password": "a-brand-new-password"},
        ),
        "POST /api/patients/register": Sample(
            "/api/patients/register",
            {"full_name": "Walk Test", "phone": "+447911123777", "date_of_birth": "1970-01-01"},
        ),
        "POST /api/patients/login/code": Sample(
            "/api/patients/login/code", {"phone": "+447911123999"}
        ),
        "POST /api/patients/login/verify": Sample(
            "/api/patients/login/verify", {"phone": "+447911123777", "code": "000000"}
        ),
        "POST /api/patients/login/birth-date": Sample(
            "/api/patients/login/birth-date", {"mrn": mrn, "date_of_birth": "1984-02-11"}
        ),
        "GET /api/patients/me": Sample("/api/patients/me"),
        "PATCH /api/patients/me": Sample("/api/patients/me", {"version": 1, "language": "en"}),
        "GET /api/patients/me/tickets": Sample("/api/patients/me/tickets"),
        "GET /api/patients/{patient}": Sample(f"/api/patients/{mrn}"),
        "GET /api/staff/patients": Sample("/api/staff/patients", params={"q": "Hughes"}),
        "POST /api/staff/patients": Sample("/api/staff/patients", {"full_name": "Walk In"}),
        "GET /api/staff/patients/{patient}": Sample(f"/api/staff/patients/{mrn}"),
        "PATCH /api/staff/patients/{patient}": Sample(
            f"/api/staff/patients/{mrn}", {"version": 1, "language": "en"}
        ),
        "POST /api/staff/tickets": Sample("/api/staff/tickets", {"department": "GEN"}),
        "GET /api/staff/queue": Sample("/api/staff/queue", params={"department": "GEN"}),
        "GET /api/staff/tickets/{ticket}": Sample("/api/staff/tickets/A-001"),
        "POST /api/staff/tickets/{ticket}/category": Sample(
            "/api/staff/tickets/A-002/category", {"triage_category": 3}
        ),
        "POST /api/staff/tickets/{ticket}/cancel": Sample("/api/staff/tickets/A-003/cancel", {}),
        "POST /api/staff/tickets/{ticket}/hold": Sample("/api/staff/tickets/A-004/hold", {}),
        "POST /api/staff/tickets/{ticket}/return": Sample("/api/staff/tickets/A-004/return"),
        "POST /api/staff/tickets/{ticket}/transfer": Sample(
            "/api/staff/tickets/A-005/transfer", {"department": "XRAY"}
        ),
        "GET /api/doctor/queue": Sample("/api/doctor/queue", params={"doctor": "drsmith"}),
        "POST /api/doctor/status": Sample(
            "/api/doctor/status", {"status": "available", "doctor": "drsmith"}
        ),
        "POST /api/doctor/call-next": Sample("/api/doctor/call-next", {"doctor": "drsmith"}),
        "POST /api/doctor/tickets/{ticket}/call": Sample(
            "/api/doctor/tickets/A-006/call", {"doctor": "drsmith"}
        ),
        "POST /api/doctor/tickets/{ticket}/recall": Sample("/api/doctor/tickets/A-006/recall", {}),
        "POST /api/doctor/tickets/{ticket}/start": Sample("/api/doctor/tickets/A-006/start"),
        "POST /api/doctor/tickets/{ticket}/serve": Sample("/api/doctor/tickets/A-006/serve"),
        "POST /api/doctor/tickets/{ticket}/no-show": Sample(
            "/api/doctor/tickets/A-001/no-show", {}
        ),
        # a ticket nobody has: allowed roles get past the guard to "no such ticket" (the moves
        # themselves are tested in test_api_queue.py)
        "POST /api/doctor/tickets/{ticket}/hold": Sample("/api/doctor/tickets/A-999/hold", {}),
        "POST /api/doctor/tickets/{ticket}/return": Sample("/api/doctor/tickets/A-999/return"),
        "POST /api/doctor/tickets/{ticket}/transfer": Sample(
            "/api/doctor/tickets/A-999/transfer", {"department": "XRAY"}
        ),
        "GET /api/admin/users": Sample("/api/admin/users"),
        "POST /api/admin/users": Sample(
            "/api/admin/users",
            {
                "username": "walk-temp",
                "full_name": "Walk Temp",
                "role": "staff",
                "password": "walk-temp-password",
            },
        ),
        "GET /api/admin/users/{user}": Sample("/api/admin/users/walk-temp"),
        "POST /api/admin/users/{user}/disable": Sample("/api/admin/users/walk-temp/disable"),
        "POST /api/admin/users/{user}/enable": Sample("/api/admin/users/walk-temp/enable"),
        "POST /api/admin/users/{user}/password": Sample(
            "/api/admin/users/walk-temp/password", {"new_password": "another-walk-password"}
        ),
        "POST /api/admin/users/{user}/role": Sample(
            "/api/admin/users/walk-temp/role", {"role": "doctor"}
        ),
        "GET /api/admin/reports": Sample(
            "/api/admin/reports", params={"from": "2026-01-01", "to": "2026-01-31"}
        ),
        "GET /api/admin/audit/verify": Sample("/api/admin/audit/verify"),
        "POST /api/sync": Sample("/api/sync", batch),
        "POST /api/sync/numbers": Sample(
            "/api/sync/numbers", {"department_id": str(c.gen.id), "size": 5, "device_id": device}
        ),
        "GET /api/status/{code}": Sample(f"/api/status/{ticket_code}"),
        "GET /api/departments": Sample("/api/departments"),
        "GET /api/board/{department}": Sample("/api/board/GEN"),
        "GET /healthz": Sample("/healthz"),
        "GET /": Sample("/"),
        "GET /t/{code}": Sample(f"/t/{ticket_code}"),
        "GET /t/{code}/events": Sample(f"/t/{ticket_code}/events"),
        "GET /board": Sample("/board", params={"department": "GEN"}),
        "GET /board/events": Sample("/board/events", params={"department": "GEN"}),
    }


def app_routes(app: Any) -> set[str]:
    """Every "METHOD path" the application answers (included routers opened up)."""
    found = set()
    pending = list(app.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # newer FastAPI keeps routers whole
        if included is not None:
            pending.extend(included.routes)
        elif isinstance(route, APIRoute):
            found |= {f"{m} {route.path}" for m in route.methods if m != "HEAD"}
    return found


async def call(client: httpx.AsyncClient, key: str, sample: Sample, token: str | None) -> Any:
    method = key.split(" ", 1)[0]
    return await client.request(
        method,
        sample.path,
        json=sample.body,
        params=sample.params,
        headers=bearer(token) if token else {},
    )


async def test_every_route_as_every_role(
    settings: Settings, db: Database, clock: FrozenClock, ctx: Context, api_clinic: ApiClinic
) -> None:
    app = create_app(
        settings.model_copy(update={"login_rate_limit": 10_000}), database=db, clock=clock
    )
    tickets = [await queue.issue(ctx, department="GEN") for _ in range(8)]
    assert [t.ticket_number for t in tickets][:2] == ["A-001", "A-002"]
    table = samples(api_clinic, tickets[7].status_code or "")
    assert app_routes(app) == set(ROUTES), "routes and tests/rbac_expectations.py ROUTES differ"
    assert set(table) == set(ROUTES)

    problems: list[str] = []
    async with asgi_client(app) as client:
        tokens: dict[str, str | None] = {
            role: await login(client, name) for role, name in ACCOUNTS.items()
        }
        tokens["display"] = api_clinic.device_keys["tv-waiting-room"]
        tokens[ANONYMOUS] = None
        order = [k for k in ROUTES if k not in REVOKING] + list(REVOKING)
        for key in order:
            allowed = ROUTES[key]
            for role, token in tokens.items():
                sample = table[key]
                if key == "POST /api/auth/token":
                    username = ACCOUNTS.get(role, "rita")
                    sample = Sample(sample.path, {"username": username, "password": PASSWORD})
                if role in allowed and key in STREAMS:
                    continue
                response = await call(client, key, sample, token)
                status = response.status_code
                where = f"{key} as {role}: {status} {response.text[:160]}"
                if role in allowed:
                    protected = ANONYMOUS not in allowed
                    if status == 403 or (protected and status == 401) or status >= 500:
                        problems.append(f"allowed but refused: {where}")
                    if key in REVOKING and role in ACCOUNTS:
                        password = "a-brand-new-password" if key.endswith("password") else PASSWORD
                        tokens[role] = await login(client, ACCOUNTS[role], password)
                elif role == ANONYMOUS:
                    if status != 401:
                        problems.append(f"no credential must give 401: {where}")
                elif status != 403:
                    problems.append(f"refused role must get 403: {where}")
                elif response.headers["content-type"].startswith("application/problem+json"):
                    if response.json()["type"] != "urn:iqms:problem:permission-denied":
                        problems.append(f"403 without permission-denied type: {where}")
    assert problems == [], "\n".join(problems)
