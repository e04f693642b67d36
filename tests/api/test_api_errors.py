"""Errors as problem details; bad input changes nothing; limits, lockout, logs without secrets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from iqms.api.app import create_app
from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.models import AuditRecord, Patient, QueueEntry
from iqms.core.service import Context
from iqms.core.services import patients, queue, users
from tests.api.conftest import PASSWORD, ApiClinic, asgi_client, bearer
from tests.conftest import make_settings

PROBLEM = "application/problem+json"


async def counts(db: Database) -> tuple[int, ...]:
    found = []
    async with db.transaction(readonly=True) as s:
        for table in (Patient, QueueEntry, AuditRecord):
            found.append((await s.execute(select(func.count()).select_from(table))).scalar_one())
    return tuple(found)


async def test_malformed_json_and_oversized_bodies_change_nothing(
    api: httpx.AsyncClient, tokens: dict[str, str], db: Database
) -> None:
    staff = bearer(tokens["staff"])
    before = await counts(db)
    broken = await api.post(
        "/api/staff/patients",
        content=b'{"full_name": "Eve Stone", ',
        headers={**staff, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.headers["content-type"] == PROBLEM
    problem = broken.json()
    assert problem["type"] == "urn:iqms:problem:malformed-json"
    assert problem["status"] == 400 and problem["instance"] == "/api/staff/patients"
    assert "not valid JSON" in problem["detail"]

    huge = '{"full_name": "Eve Stone", "national_id": "' + "9" * 70_000 + '"}'
    declared = await api.post(
        "/api/staff/patients", content=huge, headers={**staff, "Content-Type": "application/json"}
    )
    assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM
    assert "larger than 65536 bytes" in declared.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for i in range(0, len(huge), 8192):
            yield huge[i : i + 8192].encode()

    streamed = await api.post(
        "/api/staff/patients",
        content=chunks(),
        headers={**staff, "Content-Type": "application/json"},
    )
    assert (
        streamed.status_code == 413 and streamed.json()["type"] == "urn:iqms:problem:body-too-large"
    )
    assert await counts(db) == before


async def test_domain_errors_map_to_status_codes_in_one_place(
    api: httpx.AsyncClient, tokens: dict[str, str], ctx: Context, api_clinic: ApiClinic
) -> None:
    staff = bearer(tokens["staff"])
    ticket = await queue.issue(ctx, department="GEN")

    missing = await api.get("/api/staff/tickets/A-999", headers=staff)
    assert missing.status_code == 404 and missing.json()["type"] == "urn:iqms:problem:not-found"

    too_soon = await api.post(f"/api/doctor/tickets/{ticket.ticket_number}/serve", headers=staff)
    assert too_soon.status_code == 409
    assert too_soon.json()["type"] == "urn:iqms:problem:invalid-transition"
    assert ticket.ticket_number in too_soon.json()["detail"]

    twin = {"full_name": "Amelia Hughes", "phone": "+447911123401", "date_of_birth": "1984-02-11"}
    duplicate = await api.post("/api/staff/patients", json=twin, headers=staff)
    assert duplicate.status_code == 409 and duplicate.json()["mrn"] == api_clinic.amelia.mrn
    allowed = await api.post(
        "/api/staff/patients", json={**twin, "allow_duplicate": True}, headers=staff
    )
    assert allowed.status_code == 201

    unknown_field = await api.post(
        "/api/staff/tickets", json={"department": "GEN", "colour": "red"}, headers=staff
    )
    assert unknown_field.status_code == 422
    assert unknown_field.json()["errors"] == [
        {"field": "colour", "problem": "Extra inputs are not permitted"}
    ]
    closed = await api.post("/api/staff/tickets", json={"department": "NOPE"}, headers=staff)
    assert closed.status_code == 404 and closed.json()["field"] == "department"

    nowhere = await api.get("/api/nothing-here", headers=staff)
    assert nowhere.status_code == 404 and nowhere.headers["content-type"] == PROBLEM
    wrong_method = await api.delete("/api/staff/queue", headers=staff)
    assert wrong_method.status_code == 405 and wrong_method.headers["content-type"] == PROBLEM


async def test_validation_problems_list_fields_and_never_echo_secrets(
    api: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    admin = bearer(tokens["admin"])
    typed = await api.post(
        "/api/admin/users",
        json={"username": 42, "full_name": "", "role": "wizard", "password": "s3cret-Value-xyz"},
        headers=admin,
    )
    assert typed.status_code == 422
    fields = {e["field"] for e in typed.json()["errors"]}
    assert fields == {"username", "full_name", "role"}
    assert "s3cret-Value-xyz" not in typed.text and "wizard" not in typed.text
    weak = await api.post(
        "/api/admin/users",
        json={"username": "newbie", "full_name": "New Bie", "role": "staff", "password": "short9"},
        headers=admin,
    )
    assert weak.status_code == 422 and weak.json()["field"] == "password"
    assert "short9" not in weak.text


@pytest.fixture
async def sqlite_ctx(tmp_path: Path, sqlite_url: str, clock: FrozenClock) -> AsyncIterator[Context]:
    """A context on a fresh SQLite database (for checks that do not depend on the backend)."""
    from iqms.core.security.rbac import Principal

    settings = make_settings(tmp_path, sqlite_url)
    database = Database.from_settings(settings)
    try:
        yield Context(
            db=database, principal=Principal.system("test"), settings=settings, clock=clock
        )
    finally:
        await database.dispose()


async def test_logins_are_limited_per_address_and_accounts_lock(
    sqlite_ctx: Context, clock: FrozenClock
) -> None:
    await users.create(
        sqlite_ctx, username="rita", full_name="Rita Reception", role="staff", password=PASSWORD
    )
    app = create_app(sqlite_ctx.settings, database=sqlite_ctx.db, clock=clock)
    wrong = {"username": "rita", "password": "not-her-password"}
    async with asgi_client(app, "203.0.113.7") as guesser, asgi_client(app, "198.51.100.2") as desk:
        for _ in range(5):  # the account locks after 5 failures, as in the terminal
            assert (await guesser.post("/api/auth/token", json=wrong)).status_code == 401
        right = {"username": "rita", "password": PASSWORD}
        locked = await desk.post("/api/auth/token", json=right)
        assert locked.status_code == 401 and "locked for 15 minutes" in locked.json()["detail"]
        for _ in range(5):
            await guesser.post("/api/auth/token", json=wrong)
        limited = await guesser.post("/api/auth/token", json=wrong)
        assert limited.status_code == 429 and limited.headers["content-type"] == PROBLEM
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        clock.advance(minutes=16)
        assert (await desk.post("/api/auth/token", json=right)).status_code == 200
        assert (await guesser.post("/api/auth/token", json=right)).status_code == 429


async def test_the_request_log_has_no_bodies_query_strings_or_credentials(
    sqlite_ctx: Context, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    await users.create(
        sqlite_ctx, username="rita", full_name="Rita Reception", role="staff", password=PASSWORD
    )
    amelia = await patients.register(sqlite_ctx, full_name="Amelia Hughes")
    await users.create(
        sqlite_ctx, username="amelia.hughes", full_name="Amelia Hughes", role="patient",
        password=PASSWORD, patient_mrn=amelia.mrn,
    )  # fmt: skip
    app = create_app(sqlite_ctx.settings, database=sqlite_ctx.db, clock=clock)
    caplog.set_level(logging.INFO, logger="iqms.api.access")
    async with asgi_client(app) as client:
        token = (
            await client.post("/api/auth/token", json={"username": "rita", "password": PASSWORD})
        ).json()["access_token"]
        await client.get("/api/staff/queue?status=waiting&status=called", headers=bearer(token))
        await client.get("/board?department=GEN&key=board-secret-key-123")
        await client.post(
            "/api/patients/login/verify", json={"phone": "+447911123401", "code": "482913"}
        )
        await client.post(
            "/api/auth/token", json={"username": "amelia.hughes", "password": PASSWORD}
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "iqms.api.access"]
    assert len(lines) == 5
    assert lines[4].endswith(" patient")  # a patient's name or record number stays out of logs
    assert '"POST /api/auth/token" 200' in lines[0] and lines[0].endswith(" rita")
    assert '"GET /api/staff/queue" 200' in lines[1] and lines[1].endswith(" rita")
    text = "\n".join(lines)
    secrets = (PASSWORD, token, "board-secret-key-123", "482913", "+447911123401", "called")
    for secret in (*secrets, "amelia", amelia.mrn):
        assert secret not in text


async def test_cors_only_for_the_configured_origins(tmp_path: Path, sqlite_url: str) -> None:
    preflight = {
        "Origin": "https://app.clinic.org",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    closed = create_app(make_settings(tmp_path, sqlite_url))
    async with asgi_client(closed) as client:
        answer = await client.options("/api/staff/queue", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    opened = create_app(
        make_settings(tmp_path, sqlite_url, cors_origins="https://app.clinic.org, https://x.org/")
    )
    async with asgi_client(opened) as client:
        answer = await client.options("/api/staff/queue", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://app.clinic.org"
        other = await client.options(
            "/api/staff/queue", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


async def test_a_database_that_does_not_answer_gives_503(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "postgresql://iqms@127.0.0.1:9/clinic", db_connect_timeout=2)
    app = create_app(settings)
    async with asgi_client(app) as client:
        answer = await client.get("/api/status/" + "x" * 22)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert answer.json()["type"] == "urn:iqms:problem:database-unavailable"
        health = await client.get("/healthz")
        assert health.status_code == 503 and "127.0.0.1" not in health.text
