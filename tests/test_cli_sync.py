"""``iqms sync status|push`` and ``iqms admin sync conflicts|resolve`` through the real CLI."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from iqms.cli import app
from iqms.core.config import load_settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, sync
from iqms.core.sync.journal import Journal

runner = CliRunner()
ROOT_PW = "root-pass-1234"


def iqms(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


@pytest.fixture
def terminal_cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI of a desk terminal on the test database, logged in as an administrator."""
    monkeypatch.setenv("IQMS_DATABASE_URL", db_url)
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IQMS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("IQMS_SECRET_KEY", "cli-test-secret-0123456789abcdef")
    monkeypatch.setenv("IQMS_BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("IQMS_DEVICE_NAME", "desk-2")
    monkeypatch.delenv("IQMS_TOKEN", raising=False)
    boot = iqms("admin", "bootstrap", "root", "--full-name", "Ada Admin", "--password-stdin",
                input=ROOT_PW + "\n")  # fmt: skip
    assert boot.exit_code == 0, boot.output
    assert iqms("login", "root", "--password-stdin", input=ROOT_PW + "\n").exit_code == 0


def record_offline_work() -> Journal:
    """While online the terminal reserved numbers; then it worked offline."""
    settings = load_settings()
    journal = Journal.for_settings(settings)

    async def prepare() -> None:
        db = Database.from_settings(settings)
        ctx = Context(db=db, principal=Principal.system("setup"), settings=settings)
        try:
            gen = await clinic.create_department(ctx, code="GEN", name="General Practice",
                                                 ticket_prefix="A")  # fmt: skip
            block = await sync.reserve_numbers(ctx, department_id=gen.id, size=5,
                                               device_id=journal.device_id,
                                               device_name=journal.device_name)  # fmt: skip
            journal.add_number_block(block)
            journal.issue_ticket(gen.id)
            reg = journal.register_patient({"full_name": "Harry Walker"})
            journal.issue_ticket(gen.id, patient_op_id=reg.op_id, triage_category=3)
            journal.update_patient(patient_id=uuid.uuid4(), base_version=2,
                                   changes={"phone": "+447911123107"})  # fmt: skip
        finally:
            await db.dispose()

    asyncio.run(prepare())
    return journal


def test_status_push_and_resolve_a_conflict(terminal_cli: None) -> None:
    empty = iqms("sync", "status")
    assert empty.exit_code == 0, empty.output
    assert "pending operations: 0" in empty.stdout
    assert "last successful sync: never" in empty.stdout
    assert "central database: reachable" in empty.stdout
    assert "desk-2" in empty.stdout

    journal = record_offline_work()
    status = json.loads(iqms("sync", "status", "--json").stdout)
    assert status["pending"] == 4
    assert status["numbers_left"] == {"GEN": 3}
    assert status["device_id"] == str(journal.device_id)

    pushed = iqms("sync", "push")
    assert pushed.exit_code == 0, pushed.output
    for expected in ("ticket A-001", "ticket A-002", "patient MRN000001", "conflict"):
        assert expected in pushed.stdout
    assert "Pushed 4 operations: 3 applied, 1 conflict." in pushed.stderr
    assert "iqms admin sync conflicts" in pushed.stderr
    assert journal.pending_count() == 0
    again = iqms("sync", "push", "--json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["pushed"] == 0
    assert "Nothing to push" in again.stderr
    after = iqms("sync", "status")
    assert "pending operations: 0" in after.stdout
    assert "(3 applied, 1 conflict)" in after.stdout

    listed = iqms("admin", "sync", "conflicts")
    assert listed.exit_code == 0
    assert "patient.update" in listed.stdout and "desk-2" in listed.stdout
    assert "1 open conflict" in listed.stderr
    [conflict] = json.loads(iqms("admin", "sync", "conflicts", "--json").stdout)
    assert "does not exist on the server" in conflict["reason"]
    short = conflict["id"][:8]

    nothing = iqms("admin", "sync", "resolve", short, "--action", "apply")
    assert nothing.exit_code == 7
    assert "nothing to apply" in nothing.stderr
    unknown = iqms("admin", "sync", "resolve", "abcdef12", "--action", "keep")
    assert unknown.exit_code == 3 and "no sync conflict" in unknown.stderr
    bad = iqms("admin", "sync", "resolve", short, "--action", "shrug")
    assert bad.exit_code == 2
    done = iqms("admin", "sync", "resolve", short, "--action", "keep",
                "--note", "patient record was merged by hand")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"Resolved conflict {short}: kept the central data" in done.stderr
    assert json.loads(iqms("admin", "sync", "conflicts", "--json").stdout) == []
    everything = json.loads(iqms("admin", "sync", "conflicts", "--all", "--json").stdout)
    assert everything[0]["status"] == "resolved"
    assert everything[0]["resolution"].endswith("patient record was merged by hand")


def test_pushing_without_the_database_keeps_the_journal(
    terminal_cli: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = record_offline_work()
    monkeypatch.setenv("IQMS_DATABASE_URL", "postgresql://iqms@127.0.0.1:1/iqms")
    monkeypatch.setenv("IQMS_DB_CONNECT_TIMEOUT", "1")
    failed = iqms("sync", "push")
    assert failed.exit_code == 8
    assert failed.stderr.startswith("iqms: error: cannot reach the database")
    assert failed.stdout == ""
    assert journal.pending_count() == 4
    status = iqms("sync", "status")
    assert status.exit_code == 0
    assert "pending operations: 4" in status.stdout
    assert "central database: unreachable: cannot reach the database" in status.stdout


def test_push_needs_a_login(terminal_cli: None) -> None:
    record_offline_work()
    assert iqms("logout").exit_code == 0
    result = iqms("sync", "push")
    assert result.exit_code == 5
    assert "not logged in" in result.stderr
    assert iqms("admin", "sync", "conflicts").exit_code == 5
