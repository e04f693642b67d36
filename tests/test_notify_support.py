"""Shared helpers of the notification tests (no tests here).

Paid services are faked at the transport only: Twilio's real client talks to a
recording ``twilio.http.HttpClient``; firebase-admin's real client talks to
``responses`` (see the Firebase tests).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import google.oauth2.credentials
from firebase_admin import credentials
from twilio.http import HttpClient
from twilio.http.response import Response

from iqms.core import pipeline
from iqms.core.db import Database
from iqms.core.enums import DoctorStatus, NotifyChannel, Role, TicketSource
from iqms.core.models import Department, Doctor, Patient, QueueEntry, User
from iqms.core.service import Context

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "f" * 32
TWILIO_FROM = "+15017122661"
TWILIO_MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
FCM_URL = "https://fcm.googleapis.com/v1/projects/demo/messages:send"


@dataclass
class RecordedRequest:
    method: str
    url: str
    data: dict[str, Any]
    auth: Any


@dataclass
class RecordingTwilioHttp(HttpClient):
    """Twilio's transport, recording requests and answering from a script (default: 201).

    Like Twilio it remembers the messages it accepted and lists them, newest first, to a
    GET of the Messages resource (filtered by To and From).
    """

    script: deque[tuple[int, dict[str, Any]]] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        import logging

        super().__init__(logging.getLogger("tests.twilio"), False, None)
        self._lock = threading.Lock()

    def answer(self, status: int, body: dict[str, Any] | None = None, times: int = 1) -> None:
        for _ in range(times):
            self.script.append((status, body or {}))

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        with self._lock:
            self.requests.append(RecordedRequest(method, url, dict(data or {}), auth))
            if self.script:
                status, body = self.script.popleft()
            else:
                status, body = 201, {}
            if method.upper() == "GET" and url == TWILIO_MESSAGES_URL and status < 300:
                return self._list(params or {})
            if status < 300 and method.upper() == "POST":
                body = {
                    "sid": "SM" + uuid.uuid4().hex,
                    "status": "queued",
                    "to": (data or {}).get("To"),
                    "from": (data or {}).get("From"),
                    "body": (data or {}).get("Body"),
                    "date_created": format_datetime(self.clock(), usegmt=True),
                    **body,
                }
                self.accepted.append(body)
        return Response(status, json.dumps(body))

    def _list(self, params: dict[str, object]) -> Response:
        found = [
            m
            for m in reversed(self.accepted)
            if all(params.get(k) in (None, m[k.lower()]) for k in ("To", "From"))
        ]
        size = int(str(params.get("PageSize") or 50))
        page = {"messages": found[:size], "next_page_uri": None, "page": 0, "page_size": size}
        return Response(200, json.dumps(page))

    @property
    def sent(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method.upper() == "POST"]


class FakeGoogleCredential(credentials.Base):
    """A credential that needs no network: a fixed OAuth token."""

    def get_credential(self) -> google.oauth2.credentials.Credentials:
        return google.oauth2.credentials.Credentials(token="fake")

    def get_access_token(self) -> credentials.AccessTokenInfo:
        return credentials.AccessTokenInfo("fake", None)


@dataclass
class Clinic:
    department: Department
    doctors: list[Doctor]


async def make_clinic(
    db: Database, *, doctors: int = 1, code: str = "GEN", name: str = "General Practice"
) -> Clinic:
    """A department with available doctors in Room 1, Room 2, ..."""
    async with db.transaction() as s:
        dept = Department(
            id=uuid.uuid4(), code=code, name=name, ticket_prefix=code[0], default_service_minutes=10
        )
        s.add(dept)
        await s.flush()
        made = []
        for i in range(doctors):
            user = User(
                username=f"doc-{code}-{i}",
                full_name=f"Doctor {i}",
                role=Role.DOCTOR,
                password_hash="x",
            )
            s.add(user)
            await s.flush()
            doctor = Doctor(
                id=uuid.uuid4(),
                user_id=user.id,
                department_id=dept.id,
                room=f"Room {i + 1}",
                status=DoctorStatus.AVAILABLE,
            )
            s.add(doctor)
            made.append(doctor)
        await s.flush()
    return Clinic(dept, made)


_mrn = iter(range(1, 1_000_000))


async def make_patient(
    db: Database,
    *,
    channel: NotifyChannel = NotifyChannel.SMS,
    phone: str | None = "+447911123456",
    language: str = "en",
    push_token: str | None = None,
    name: str = "Test Patient",
) -> Patient:
    async with db.transaction() as s:
        patient = Patient(
            id=uuid.uuid4(),
            mrn=f"MRN{next(_mrn):06d}",
            full_name=name,
            phone=phone,
            notify_channel=channel,
            language=language,
            push_token=push_token,
        )
        s.add(patient)
    return patient


async def issue(
    ctx: Context, clinic: Clinic, patient: Patient | None = None, **kw: Any
) -> QueueEntry:
    """A ticket issued through the pipeline (its ``issued`` event runs the triggers)."""
    async with ctx.db.transaction() as s:
        issued = await pipeline.issue_ticket(
            ctx.bind(s),
            department=clinic.department,
            source=kw.pop("source", TicketSource.KIOSK),
            patient_id=patient.id if patient else None,
            **kw,
        )
        return issued.entry
