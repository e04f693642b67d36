"""The HTTP API under test: the real application over httpx, a clinic built through the services.

The clinic is built once per backend (through the services) and each test gets
a fresh copy of that database. ``api`` talks to the ASGI application in-process
(httpx's ASGI transport); ``live_server`` runs the same application under
uvicorn on 127.0.0.1 in a thread, for what needs a real socket (event streams,
the browser, ``iqms sync push --server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from iqms.api.app import create_app
from iqms.core.clock import Clock, FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.enums import DoctorStatus
from iqms.core.models import Notification
from iqms.core.schemas.clinic import DepartmentOut, DoctorOut
from iqms.core.schemas.patients import PatientOut
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, devices, patients, users
from tests.conftest import TEMPLATE_DB, PgState, make_settings, require_pg
from tests.pgcluster import PostgresServer

PASSWORD = "correct-horse-battery"
API_TEST_SETTINGS = {"login_rate_limit": 1000, "api_status_cache_seconds": 0}
# The account that logs in for each role (display boards have no account: a device key).
ACCOUNTS = {
    "admin": "alex",
    "staff": "rita",
    "doctor": "drsmith",
    "patient": "amelia",
    "kiosk": "kiosk-north",
}


@dataclass
class ApiClinic:
    """GEN (prefix A) with drsmith (Room 1) and drjones (Room 2); XRAY (prefix X) with drlee."""

    gen: DepartmentOut
    xray: DepartmentOut
    doctors: dict[str, DoctorOut]
    amelia: PatientOut
    oliver: PatientOut
    device_keys: dict[str, str] = field(default_factory=dict)


async def build_clinic(ctx: Context) -> ApiClinic:
    gen = await clinic.create_department(
        ctx, code="GEN", name="General Practice", ticket_prefix="A"
    )
    xray = await clinic.create_department(ctx, code="XRAY", name="Radiology", ticket_prefix="X")
    amelia = await patients.register(
        ctx, full_name="Amelia Hughes", phone="+447911123401", date_of_birth="1984-02-11",
        notify_channel="sms", language="en",
    )  # fmt: skip
    oliver = await patients.register(
        ctx, full_name="Oliver Brown", phone="+447911123402", date_of_birth="1990-07-30",
        notify_channel="sms", language="es",
    )  # fmt: skip
    accounts = [
        ("alex", "Alex Admin", "admin", None),
        ("rita", "Rita Reception", "staff", None),
        ("drsmith", "Dr Sam Smith", "doctor", None),
        ("drjones", "Dr Jo Jones", "doctor", None),
        ("drlee", "Dr Li Lee", "doctor", None),
        ("amelia", "Amelia Hughes", "patient", amelia.mrn),
        ("oliver", "Oliver Brown", "patient", oliver.mrn),
        ("kiosk-north", "Kiosk North", "kiosk", None),
    ]
    for username, name, role, mrn in accounts:
        await users.create(
            ctx, username=username, full_name=name, role=role, password=PASSWORD, patient_mrn=mrn
        )
    doctors = {}
    for username, dept, room in (
        ("drsmith", "GEN", "Room 1"),
        ("drjones", "GEN", "Room 2"),
        ("drlee", "XRAY", "Room 9"),
    ):
        doc = await clinic.create_doctor(ctx, user=username, department=dept, room=room)
        doctors[username] = await clinic.set_doctor_status(
            ctx, doctor=doc.id, status=DoctorStatus.AVAILABLE
        )
    keys = {
        name: (await devices.add(ctx, name=name, role=role)).key
        for name, role in (("tv-waiting-room", "display"), ("kiosk-east", "kiosk"))
    }
    return ApiClinic(
        gen=gen, xray=xray, doctors=doctors, amelia=amelia, oliver=oliver, device_keys=keys
    )


@contextlib.asynccontextmanager
async def asgi_client(app: Any, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A client of the application in-process, from ``address``; its start-up and shutdown run."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


# ---- the clinic, built once per backend and copied for each test -----------------------------
API_TEMPLATE_DB = "iqms_api_template"


def _build_into(url: str, tmp: Path) -> ApiClinic:
    """Build the clinic into a migrated database, as the ``ctx`` fixture would (frozen clock)."""
    settings = make_settings(tmp, url)

    async def go() -> ApiClinic:
        database = Database.from_settings(settings)
        ctx = Context(db=database, principal=Principal.system("test"), settings=settings,
                      clock=FrozenClock())  # fmt: skip
        try:
            return await build_clinic(ctx)
        finally:
            await database.dispose()

    return asyncio.run(go())


@pytest.fixture(scope="session")
def api_sqlite_template(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, ApiClinic]:
    base = tmp_path_factory.mktemp("api-sqlite")
    path = base / "api-template.db"
    shutil.copyfile(sqlite_template, path)
    return path, _build_into(f"sqlite+aiosqlite:///{path}", base)


@pytest.fixture(scope="session")
def api_pg_template(
    pg_server: PgState, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PostgresServer, ApiClinic]:
    server = require_pg(pg_server)
    server.create_database(API_TEMPLATE_DB, template=TEMPLATE_DB)
    built = _build_into(server.url(API_TEMPLATE_DB), tmp_path_factory.mktemp("api-pg"))
    return server, built


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ]
)
def api_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, ApiClinic]]:
    """A fresh copy of the clinic's database on each backend in turn."""
    if request.param == "sqlite":
        template, built = request.getfixturevalue("api_sqlite_template")
        path = tmp_path / "iqms.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}", built
        return
    server, built = request.getfixturevalue("api_pg_template")
    name = f"t_{uuid.uuid4().hex[:16]}"
    server.create_database(name, template=API_TEMPLATE_DB)
    try:
        yield server.url(name), built
    finally:
        server.drop_database(name)


@pytest.fixture
def db_url(api_database: tuple[str, ApiClinic]) -> str:
    """The API tests' database: the clinic is already in it."""
    return api_database[0]


@pytest.fixture
def api_clinic(api_database: tuple[str, ApiClinic]) -> ApiClinic:
    return api_database[1]


@pytest.fixture
async def api(
    settings: Settings, db: Database, clock: FrozenClock, api_clinic: ApiClinic
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the application on the test database, the clinic in place.

    The per-address login limit is raised and ticket statuses are read afresh each
    time (a kept answer lags a queue event by up to one event delivery); both have
    their own tests with the defaults.
    """
    app = create_app(settings.model_copy(update=API_TEST_SETTINGS), database=db, clock=clock)
    async with asgi_client(app) as client:
        yield client


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    response = await client.post(
        "/api/auth/token", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def tokens(api: httpx.AsyncClient, api_clinic: ApiClinic) -> dict[str, str]:
    """A credential for each role: logins from ``POST /api/auth/token``, a board's device key."""
    found = {role: await login(api, username) for role, username in ACCOUNTS.items()}
    found["display"] = api_clinic.device_keys["tv-waiting-room"]
    return found


async def sent_code(db: Database, phone: str) -> str:
    """The login code in the newest SMS queued for ``phone`` (what the patient's phone shows)."""
    async with db.transaction(readonly=True) as s:
        body = (
            await s.execute(
                select(Notification.body)
                .where(Notification.recipient == phone, Notification.template == "login_code")
                .order_by(Notification.created_at.desc(), Notification.id)
                .limit(1)
            )
        ).scalar_one()
    found = re.search(r"\b(\d{6})\b", body)
    assert found, body
    return found.group(1)


@contextlib.contextmanager
def live_server(
    settings: Settings, *, clock: Clock | None = None, **uvicorn_options: Any
) -> Iterator[str]:
    """The application under uvicorn on 127.0.0.1 (own database connections), in a thread."""
    import uvicorn

    app = create_app(settings, clock=clock)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
        **uvicorn_options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="iqms-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
