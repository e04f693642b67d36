"""A remote kiosk's offline journal over HTTP: applied once, a replay changes nothing, a bad batch
changes nothing; ``iqms sync push --server`` against a real server."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from iqms.cli import app as cli
from iqms.core.clock import FrozenClock, SystemClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import queue
from iqms.core.sync.journal import Journal, NumberBlockInfo
from tests.api.conftest import ApiClinic, bearer, build_clinic, live_server, login
from tests.conftest import make_settings
from tests.test_sync_push import snapshot


async def reserve_over_http(
    api: httpx.AsyncClient, token: str, journal: Journal, department: uuid.UUID
) -> None:
    answer = await api.post(
        "/api/sync/numbers",
        json={
            "department_id": str(department),
            "size": 5,
            "device_id": str(journal.device_id),
            "device_name": journal.device_name,
        },
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text
    block = answer.json()
    journal.add_number_block(
        NumberBlockInfo(
            **{**block, "department_id": uuid.UUID(block["department_id"]),
               "service_date": date.fromisoformat(block["service_date"])}
        )
    )  # fmt: skip


async def test_a_batch_over_http_is_applied_once_and_a_replay_is_a_no_op(
    api: httpx.AsyncClient,
    tokens: dict[str, str],
    ctx: Context,
    clock: FrozenClock,
    settings: Settings,
    tmp_path: Path,
    api_clinic: ApiClinic,
) -> None:
    kiosk = tokens["kiosk"]
    journal = Journal(tmp_path / "branch.db", device_name="kiosk-branch", clock=clock,
                      timezone=settings.tz)  # fmt: skip
    await reserve_over_http(api, kiosk, journal, api_clinic.gen.id)
    offline = journal.issue_ticket(api_clinic.gen.id)
    registered = journal.register_patient({"full_name": "Harry Walker", "language": "es"})
    journal.issue_ticket(api_clinic.gen.id, patient_op_id=registered.op_id)
    batch = journal.next_batch()
    assert batch is not None

    before = await snapshot(ctx)
    bad = json.loads(json.dumps(batch))
    del bad["operations"][1]["device_seq"]
    refused = await api.post("/api/sync", json=bad, headers=bearer(kiosk))
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["field"] == "operations[1].device_seq"
    assert "nothing applied" in refused.json()["detail"]
    assert await snapshot(ctx) == before

    pushed = await api.post("/api/sync", json=batch, headers=bearer(kiosk))
    assert pushed.status_code == 200, pushed.text
    report = pushed.json()
    assert report["device_name"] == "kiosk-branch"
    assert [r["result"] for r in report["results"]] == ["applied", "applied", "applied"]
    assert report["counts"]["applied"] == 3
    assert report["results"][0]["details"]["ticket_number"] == offline.ticket_number
    applied = await snapshot(ctx)
    assert applied != before

    replay = await api.post("/api/sync", json=batch, headers=bearer(kiosk))
    assert replay.status_code == 200
    assert {r["result"] for r in replay.json()["results"]} == {"duplicate"}
    assert await snapshot(ctx) == applied  # not even the audit trail changed

    journal.confirm(report["results"])
    assert journal.pending_count() == 0
    listed = await queue.queue_list(ctx, department="GEN")
    assert offline.ticket_number in [t.ticket_number for t in listed]

    patient = await api.post("/api/sync", json=batch, headers=bearer(tokens["patient"]))
    assert patient.status_code == 403


def test_iqms_sync_push_over_https(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, sqlite_url, device_name="kiosk-branch")
    server_side = Context(
        db=Database.from_settings(settings), principal=Principal.system("setup"),
        settings=settings, clock=SystemClock(),
    )  # fmt: skip
    journal = Journal(tmp_path / "terminal" / "offline-journal.db", device_name="kiosk-branch",
                      timezone=settings.tz)  # fmt: skip

    with live_server(settings) as url:

        async def prepare() -> tuple[str, str]:
            try:
                clinic = await build_clinic(server_side)
            finally:
                await server_side.db.dispose()
            async with httpx.AsyncClient(base_url=url) as client:
                token = await login(client, "kiosk-north")
                await reserve_over_http(client, token, journal, clinic.gen.id)
            return token, clinic.device_keys["kiosk-east"]

        token, device_key = asyncio.run(prepare())
        first = journal.issue_ticket(journal.numbers_left()[0].department_id)
        journal.register_patient({"full_name": "Ivy North"})

        monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path / "terminal"))
        monkeypatch.setenv("IQMS_CONFIG_DIR", str(tmp_path / "terminal-config"))
        monkeypatch.setenv("IQMS_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/not-reachable")
        monkeypatch.setenv("IQMS_DEVICE_NAME", "kiosk-branch")
        monkeypatch.delenv("IQMS_TOKEN", raising=False)
        monkeypatch.delenv("IQMS_DEVICE_KEY", raising=False)
        runner = CliRunner()

        no_login = runner.invoke(cli, ["sync", "push", "--server", url])
        assert no_login.exit_code == 5 and "no login for" in no_login.output
        assert journal.pending_count() == 2

        # With a device key the server knows the kiosk, and takes only that device's journal.
        monkeypatch.setenv("IQMS_DEVICE_KEY", device_key)
        foreign = runner.invoke(cli, ["sync", "push", "--server", url])
        assert foreign.exit_code == 4 and "its own journal" in foreign.output
        assert journal.pending_count() == 2
        monkeypatch.delenv("IQMS_DEVICE_KEY")

        monkeypatch.setenv("IQMS_TOKEN", token)
        pushed = runner.invoke(cli, ["sync", "push", "--server", url, "--json"])
        assert pushed.exit_code == 0, pushed.output
        data = json.loads(pushed.stdout)
        assert data["pushed"] == 2 and data["counts"] == {"applied": 2}
        assert first.ticket_number in pushed.stdout
        assert journal.pending_count() == 0

        journal.issue_ticket(journal.numbers_left()[0].department_id)
        monkeypatch.setenv("IQMS_TOKEN", "not-a-token")
        refused = runner.invoke(cli, ["sync", "push", "--server", url])
        assert refused.exit_code == 5 and "log in again" in refused.output
        assert journal.pending_count() == 1  # kept for the next push

    gone = runner.invoke(cli, ["sync", "push", "--server", url])
    assert gone.exit_code == 8 and "cannot reach the IQMS server" in gone.output
    assert journal.pending_count() == 1
