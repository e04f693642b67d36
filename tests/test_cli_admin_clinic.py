"""``iqms admin departments`` and ``iqms admin doctors`` through the real CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from iqms.cli import app
from iqms.core.clock import SystemClock
from iqms.core.db import Database
from iqms.core.enums import Role
from iqms.core.security.rbac import Principal
from iqms.core.security.tokens import issue_token
from iqms.core.service import Context
from tests.conftest import make_settings
from tests.test_queue_fixtures import add_user

runner = CliRunner()


@pytest.fixture
def tokens(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Accounts admin, drsmith, drjones (doctors, not yet set up) and their login tokens."""
    settings = make_settings(tmp_path, db_url)
    monkeypatch.setenv("IQMS_DATABASE_URL", db_url)
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IQMS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("IQMS_SECRET_KEY", "test-signing-secret-0123456789abcdef")
    monkeypatch.delenv("IQMS_TOKEN", raising=False)

    async def build() -> dict[str, str]:
        db = Database.from_settings(settings)
        try:
            ctx = Context(db=db, principal=Principal.system("test"), settings=settings)
            out = {}
            for name, role in (("admin", Role.ADMIN), ("drsmith", Role.DOCTOR),
                               ("drjones", Role.DOCTOR)):  # fmt: skip
                user = await add_user(ctx, name, role, f"{name.title()} Person")
                out[name] = issue_token(
                    settings, user_id=user.id, username=name, role=role.value,
                    token_version=1, now=SystemClock().now(),
                )  # fmt: skip
            return out
        finally:
            await db.dispose()

    return asyncio.run(build())


def iqms(token: str, *args: str) -> Result:
    return runner.invoke(app, list(args), env={"IQMS_TOKEN": token})


def test_departments_from_the_command_line(tokens: dict[str, str]) -> None:
    admin = tokens["admin"]
    added = iqms(admin, "admin", "departments", "add", "GEN", "--name", "General Practice",
                 "--prefix", "A", "--target", "3=45", "--json")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["targets"]["3"] == 45
    assert "tickets A-001" in added.stderr
    bad = iqms(admin, "admin", "departments", "add", "PED", "--name", "Paediatrics",
               "--prefix", "P1")  # fmt: skip
    assert bad.exit_code == 7
    assert bad.stderr.startswith("iqms: error: ticket prefix must be 1 to 3")
    bad_target = iqms(admin, "admin", "departments", "add", "PED", "--name", "Paediatrics",
                      "--prefix", "P", "--target", "3:45")  # fmt: skip
    assert bad_target.exit_code == 7 and "triage_targets" in bad_target.stderr
    clash = iqms(admin, "admin", "departments", "add", "ORT", "--name", "Ortho", "--prefix", "a")
    assert clash.exit_code == 6 and "prefix A" in clash.stderr
    assert iqms(admin, "admin", "departments", "add", "PED", "--name", "Paediatrics",
                "--prefix", "P").exit_code == 0  # fmt: skip
    updated = iqms(admin, "admin", "departments", "update", "GEN", "--target", "2=5", "--json")
    assert json.loads(updated.stdout)["target_overrides"] == {"2": 5, "3": 45}
    assert iqms(admin, "admin", "departments", "close", "PED").exit_code == 0
    listed = json.loads(iqms(admin, "admin", "departments", "list", "--json").stdout)
    assert [d["code"] for d in listed] == ["GEN"]
    every = iqms(admin, "admin", "departments", "list", "--all", "--csv").stdout.splitlines()
    assert every[0].startswith("id,code,name,ticket_prefix,active") and len(every) == 3
    table = iqms(admin, "admin", "departments", "show", "gen")
    assert "3:45*" in table.stdout
    assert iqms(tokens["drsmith"], "admin", "departments", "add", "X", "--name", "X",
                "--prefix", "X").exit_code == 4  # fmt: skip


def test_doctors_from_the_command_line(tokens: dict[str, str]) -> None:
    admin = tokens["admin"]
    assert iqms(admin, "admin", "departments", "add", "GEN", "--name", "General",
                "--prefix", "A").exit_code == 0  # fmt: skip
    added = iqms(admin, "admin", "doctors", "add", "drsmith", "-d", "GEN", "--room", "Room 1")
    assert added.exit_code == 0, added.output
    assert "Room 1 (status: off)" in added.stderr
    assert iqms(admin, "admin", "doctors", "add", "drjones", "-d", "GEN",
                "--room", "Room 2").exit_code == 0  # fmt: skip
    again = iqms(admin, "admin", "doctors", "add", "drsmith", "-d", "GEN", "--room", "Room 3")
    assert again.exit_code == 6
    not_doctor = iqms(admin, "admin", "doctors", "add", "admin", "-d", "GEN", "--room", "R")
    assert not_doctor.exit_code == 7 and "not a doctor account" in not_doctor.stderr
    moved = iqms(admin, "admin", "doctors", "room", "drsmith", "Room 4", "--json")
    assert json.loads(moved.stdout)["room"] == "Room 4"
    # A doctor sets their own status, and nobody else's.
    mine = iqms(tokens["drsmith"], "admin", "doctors", "status", "available")
    assert mine.exit_code == 0 and "is now available" in mine.stderr
    theirs = iqms(tokens["drsmith"], "admin", "doctors", "status", "off", "--doctor", "drjones")
    assert theirs.exit_code == 4
    listed = json.loads(iqms(admin, "admin", "doctors", "list", "--json").stdout)
    assert [(d["username"], d["room"], d["status"]) for d in listed] == [
        ("drjones", "Room 2", "off"),
        ("drsmith", "Room 4", "available"),
    ]
    only = iqms(admin, "admin", "doctors", "list", "--status", "available", "--csv").stdout
    assert only.splitlines()[1].split(",")[1] == "drsmith"
