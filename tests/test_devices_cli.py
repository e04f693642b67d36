"""``iqms admin devices`` and ``iqms device`` through the real CLI: an administrator adds a kiosk,
the kiosk stores its key (never typed on a command line), and a revoked key stops working."""

from __future__ import annotations

import csv
import io
import json
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from iqms.cli import app
from iqms.core.enums import Role
from iqms.core.service import Context
from tests.conftest import make_settings
from tests.system import cli_environment, login_token, run_as_system
from tests.test_queue_fixtures import add_user

runner = CliRunner()


@dataclass
class Setup:
    admin_token: str
    staff_token: str
    data_dir: Path


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    settings = make_settings(tmp_path, sqlite_url)
    cli_environment(monkeypatch, tmp_path, sqlite_url, IQMS_TIMEZONE="Europe/London",
                    unset=("IQMS_TOKEN", "IQMS_DEVICE_KEY", "IQMS_DEVICE_KEY_FILE"))  # fmt: skip

    async def seed(ctx: Context) -> tuple[str, str]:
        tokens = []
        for name, role in (("ada", Role.ADMIN), ("rita", Role.STAFF)):
            user = await add_user(ctx, name, role)
            tokens.append(login_token(settings, user.id, name, role))
        return tokens[0], tokens[1]

    admin, staff = run_as_system(settings, seed)
    return Setup(admin, staff, tmp_path / "data")


def iqms(*args: str, token: str | None = None, input: str | None = None, **env: str) -> Result:
    environment = {"IQMS_TOKEN": token} if token else {}
    environment.update(env)
    return runner.invoke(app, list(args), input=input, env=environment, prog_name="iqms")


def add_kiosk(cli: Setup, name: str = "entrance-kiosk", role: str = "kiosk") -> str:
    result = iqms("admin", "devices", "add", name, "--role", role, token=cli.admin_token)
    assert result.exit_code == 0, result.stderr
    assert f"Added {role} {name}" in result.stderr and "iqms device set-key" in result.stderr
    key = result.stdout.strip()
    assert key.startswith("iqmsdk_")
    return key


def test_admin_adds_a_kiosk_and_the_kiosk_stores_its_key(cli: Setup) -> None:
    key = add_kiosk(cli)
    stored = iqms("device", "set-key", "--stdin", input=key + "\n")
    assert stored.exit_code == 0, stored.stderr
    assert "Stored the key of kiosk entrance-kiosk" in stored.stderr
    assert key not in stored.output
    path = cli.data_dir / "device.key"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    status = iqms("device", "status", "--json")
    assert status.exit_code == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["device"] == "entrance-kiosk" and data["role"] == "kiosk"
    assert data["key_from"] == str(path)

    listed = json.loads(iqms("admin", "devices", "list", "--json", token=cli.admin_token).stdout)
    assert [(d["name"], d["role"], d["status"]) for d in listed] == [
        ("entrance-kiosk", "kiosk", "active")
    ]
    assert listed[0]["last_seen_at"] is not None  # the kiosk checked in
    assert key not in json.dumps(listed)
    rows = list(csv.DictReader(io.StringIO(iqms("admin", "devices", "list", "--csv",
                                                 token=cli.staff_token).stdout)))  # fmt: skip
    assert rows[0]["name"] == "entrance-kiosk" and rows[0]["kind"] == "kiosk"
    table = iqms("admin", "devices", "list", token=cli.admin_token)
    assert "entrance-kiosk" in table.stdout and "active" in table.stdout


def test_the_key_can_be_typed_at_a_hidden_prompt(cli: Setup) -> None:
    key = add_kiosk(cli, "board-1", "display")
    typed = iqms("device", "set-key", input=key + "\n")
    assert typed.exit_code == 0, typed.stderr
    assert "Device key:" in typed.stderr and key not in typed.output
    assert "Stored the key of display board-1" in typed.stderr


def test_a_wrong_or_malformed_key_is_not_stored(cli: Setup) -> None:
    add_kiosk(cli)
    wrong = iqms("device", "set-key", "--stdin", input="iqmsdk_" + "A" * 43 + "\n")
    assert wrong.exit_code == 5
    assert wrong.stderr.startswith("iqms: error: this device key is unknown")
    garbage = iqms("device", "set-key", "--stdin", input="hunter2\n")
    assert garbage.exit_code == 7 and "not a device key" in garbage.stderr
    assert not (cli.data_dir / "device.key").exists()
    nothing = iqms("device", "status")
    assert nothing.exit_code == 5 and "has no device key" in nothing.stderr


def test_revoking_stops_the_device_and_a_new_key_brings_it_back(cli: Setup) -> None:
    key = add_kiosk(cli)
    assert iqms("device", "set-key", "--stdin", input=key + "\n").exit_code == 0
    staff_try = iqms("admin", "devices", "revoke", "entrance-kiosk", token=cli.staff_token)
    assert staff_try.exit_code == 4
    revoked = iqms("admin", "devices", "revoke", "entrance-kiosk", token=cli.admin_token)
    assert revoked.exit_code == 0 and "is revoked" in revoked.stderr
    refused = iqms("device", "status")
    assert refused.exit_code == 5
    assert "key of device entrance-kiosk was revoked" in refused.stderr

    renewed = iqms("admin", "devices", "new-key", "entrance-kiosk", "--json", token=cli.admin_token)
    assert renewed.exit_code == 0, renewed.stderr
    new_key = json.loads(renewed.stdout)["key"]
    assert new_key != key
    # IQMS_DEVICE_KEY overrides the (old) stored key.
    via_env = iqms("device", "status", "--json", IQMS_DEVICE_KEY=new_key)
    assert via_env.exit_code == 0, via_env.stderr
    assert json.loads(via_env.stdout)["key_from"] == "IQMS_DEVICE_KEY"

    cleared = iqms("device", "clear-key")
    assert cleared.exit_code == 0 and "Removed the device key" in cleared.stderr
    assert not (cli.data_dir / "device.key").exists()


def test_bad_requests_get_one_line(cli: Setup) -> None:
    add_kiosk(cli)
    again = iqms("admin", "devices", "add", "Entrance-Kiosk", "--role", "display",
                 token=cli.admin_token)  # fmt: skip
    assert again.exit_code == 6 and "already exists" in again.stderr
    bad_role = iqms("admin", "devices", "add", "desk", "--role", "staff", token=cli.admin_token)
    assert bad_role.exit_code == 2
    missing = iqms("admin", "devices", "revoke", "nope", token=cli.admin_token)
    assert missing.exit_code == 3 and "no device named 'nope'" in missing.stderr
    assert all(len(r.stderr.strip().splitlines()) == 1 for r in (again, bad_role, missing))
