"""The HTTP application: routers over the core services, pages, errors, limits and logging.

``create_app()`` builds it from the ``IQMS_*`` settings (``iqms serve`` runs it
under uvicorn, one instance per worker process); tests pass their own
settings, database and clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from iqms import __version__
from iqms.api import problems
from iqms.api.deps import ApiState
from iqms.api.events import EventHub, StatusCache
from iqms.api.middleware import AccessLog, BodyLimit, SecurityHeaders
from iqms.api.ratelimit import SlidingWindowLimiter
from iqms.api.routes import admin, auth, doctor, pages, patients, public, staff, sync
from iqms.core.clock import Clock, SystemClock
from iqms.core.config import Settings, load_settings
from iqms.core.db import Database
from iqms.core.queue.events import Subscription
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import queue
from iqms.core.sync.batch import MAX_BATCH_BYTES

STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """
The clinic's queue over HTTP, for what a terminal cannot reach: patients' phones,
waiting-room TVs, kiosks in other branches and other hospital systems.

* Log in with `POST /api/auth/token` (staff, doctors, admins) or a patient login
  (`/api/patients/login/...`) and send `Authorization: Bearer <token>`.
* What each role may do is the clinic's permission matrix: a refused call answers 403.
* Every error is a problem-details document (RFC 9457, `application/problem+json`)
  whose `detail` says what went wrong in plain words.
* A ticket's public status is at `GET /api/status/{code}` (the code is printed on the
  ticket as a QR code linking to `/t/{code}`); waiting-room boards at `/board?department=CODE`.
"""

TAGS = [
    {"name": "auth", "description": "Logging in; the caller's own session."},
    {"name": "patients", "description": "Patients on their phones: register, log in, profile."},
    {"name": "staff", "description": "Reception: patients, tickets, triage, the queue."},
    {"name": "doctor", "description": "Doctors: their queue, calling, serving."},
    {"name": "admin", "description": "Administrators: accounts and reports."},
    {"name": "sync", "description": "Offline journals of remote kiosks and terminals."},
    {"name": "queue status", "description": "Ticket status by code, departments, boards."},
    {"name": "server", "description": "Health of the server."},
]


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The IQMS HTTP application (settings from the environment unless given)."""
    settings = settings or load_settings()
    db = database or Database.from_settings(settings)
    clock = clock or SystemClock()

    async def open_subscription() -> Subscription:
        ctx = Context(
            db=db, principal=Principal.system("live pages"), settings=settings, clock=clock
        )
        return await queue.watch(ctx)

    hub = EventHub(open_subscription)
    status_cache = StatusCache(settings.api_status_cache_seconds)
    hub.observe(status_cache.on_event)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await hub.stop()
            if database is None:
                await db.dispose()

    app = FastAPI(
        title=f"IQMS: {settings.clinic_name}",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.iqms = ApiState(
        settings=settings,
        db=db,
        clock=clock,
        hub=hub,
        login_limiter=SlidingWindowLimiter(settings.login_rate_limit),
        status_cache=status_cache,
    )
    problems.install(app)
    for module in (auth, patients, staff, doctor, admin, sync, public, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("api/docs", status_code=307)

    # Added innermost first: the access log sees every answer, limits included.
    app.add_middleware(
        BodyLimit, default=settings.api_max_body_bytes, limits=[("/api/sync", MAX_BATCH_BYTES)]
    )
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog)
    return app


__all__ = ["create_app"]
