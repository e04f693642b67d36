"""``iqms admin users ...`` through the real CLI: what an administrator types and sees."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from iqms.cli import app
from tests.terminal import run_at_terminal

runner = CliRunner()
ROOT_PW = "root-pass-1234"
RITA_PW = "rita-pass-5678"


@pytest.fixture
def admin_cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI on the test database, logged in as the first administrator ``root``."""
    monkeypatch.setenv("IQMS_DATABASE_URL", db_url)
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IQMS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("IQMS_SECRET_KEY", "cli-test-secret-0123456789abcdef")
    monkeypatch.setenv("IQMS_BCRYPT_ROUNDS", "4")
    monkeypatch.delenv("IQMS_TOKEN", raising=False)
    boot = iqms(
        "admin", "bootstrap", "root", "--full-name", "Ada Admin", "--password-stdin",
        input=ROOT_PW + "\n",
    )  # fmt: skip
    assert boot.exit_code == 0, boot.output
    assert iqms("login", "root", "--password-stdin", input=ROOT_PW + "\n").exit_code == 0


def iqms(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


def add(username: str, role: str = "staff", password: str = RITA_PW, *extra: str) -> Result:
    return iqms(
        "admin", "users", "add", username, "--full-name", f"{username.title()} Person",
        "--role", role, "--password-stdin", *extra, input=password + "\n",
    )  # fmt: skip


def listed() -> dict[str, dict[str, object]]:
    result = iqms("admin", "users", "list", "--json")
    assert result.exit_code == 0, result.output
    return {row["username"]: row for row in json.loads(result.stdout)}


def test_add_and_list_accounts(admin_cli: None) -> None:
    result = add("rita")
    assert result.exit_code == 0, result.output
    assert "Created staff account rita." in result.stderr
    assert RITA_PW not in result.output
    assert add("drsmith", "doctor", "smith-pass-123").exit_code == 0

    table = iqms("admin", "users", "list")
    assert table.exit_code == 0
    for expected in ("rita", "Rita Person", "staff", "drsmith", "doctor", "active"):
        assert expected in table.stdout
    rows = listed()
    assert sorted(rows) == ["drsmith", "rita", "root"]
    assert rows["rita"]["role"] == "staff" and rows["rita"]["status"] == "active"
    only_doctors = json.loads(iqms("admin", "users", "list", "--role", "doctor", "--json").stdout)
    assert [r["username"] for r in only_doctors] == ["drsmith"]
    parsed = list(csv.DictReader(io.StringIO(iqms("admin", "users", "list", "--csv").stdout)))
    assert [r["username"] for r in parsed] == ["drsmith", "rita", "root"]
    assert "password" not in " ".join(parsed[0].keys())


def test_add_refuses_bad_input_without_creating_anything(admin_cli: None) -> None:
    short = add("rita", password="short")
    assert short.exit_code == 7
    assert "password must be at least 10 characters long" in short.stderr
    assert "short" not in short.stderr.replace("at least", "")
    bad_name = add("r")
    assert bad_name.exit_code == 7 and "username must be 2 to 64" in bad_name.stderr
    bad_role = add("rita", "nurse")
    assert bad_role.exit_code == 2
    patient_without_record = add("amelia", "patient")
    assert patient_without_record.exit_code == 7 and "MRN" in patient_without_record.stderr
    assert sorted(listed()) == ["root"]
    assert add("rita").exit_code == 0
    dup = add("RITA")
    assert dup.exit_code == 6 and "already taken" in dup.stderr
    mismatch = run_at_terminal(
        ["admin", "users", "add", "bob", "--full-name", "Bob", "--role", "staff"],
        ["bob-pass-12345", "bob-pass-12346", "bob-pass-12345", "bob-pass-12345"],
    )
    assert mismatch.exit_code == 0, mismatch.screen  # asked again after the mismatch
    assert mismatch.screen.count("Password for bob: ") == 2
    assert "bob-pass" not in mismatch.screen


def test_disable_enable_reset_and_set_role(admin_cli: None) -> None:
    assert add("rita").exit_code == 0
    result = iqms("admin", "users", "disable", "rita")
    assert result.exit_code == 0 and "disabled" in result.stderr
    assert listed()["rita"]["status"] == "disabled"
    refused = iqms("login", "rita", "--password-stdin", "--print-token", input=RITA_PW + "\n")
    assert refused.exit_code == 5 and "disabled" in refused.stderr
    assert iqms("admin", "users", "enable", "rita").exit_code == 0
    assert listed()["rita"]["status"] == "active"

    reset = iqms(
        "admin", "users", "reset-password", "rita", "--password-stdin", input="fresh-pass-777\n"
    )
    assert reset.exit_code == 0, reset.output
    assert "fresh-pass-777" not in reset.output
    old = iqms("login", "rita", "--password-stdin", "--print-token", input=RITA_PW + "\n")
    assert old.exit_code == 5
    new = iqms("login", "rita", "--password-stdin", "--print-token", input="fresh-pass-777\n")
    assert new.exit_code == 0

    role = iqms("admin", "users", "set-role", "rita", "doctor")
    assert role.exit_code == 0 and "now doctor" in role.stderr
    assert listed()["rita"]["role"] == "doctor"
    last = iqms("admin", "users", "set-role", "root", "staff")
    assert last.exit_code == 6 and "last active administrator" in last.stderr
    self_disable = iqms("admin", "users", "disable", "root")
    assert self_disable.exit_code == 6


def test_unknown_accounts_and_non_admins(admin_cli: None, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = iqms("admin", "users", "disable", "ghost")
    assert missing.exit_code == 3
    assert missing.stderr.strip() == "iqms: error: no account named 'ghost'"
    assert add("rita").exit_code == 0
    token = iqms("login", "rita", "--password-stdin", "--print-token", input=RITA_PW + "\n")
    monkeypatch.setenv("IQMS_TOKEN", token.stdout.strip())
    for args in (["list"], ["disable", "root"], ["set-role", "rita", "admin"]):
        denied = iqms("admin", "users", *args)
        assert denied.exit_code == 4, args
        assert denied.stderr.startswith("iqms: error: reception staff cannot ")
        assert "accounts (logged in as rita)" in denied.stderr
    assert iqms("admin", "audit", "show").exit_code == 4
    monkeypatch.delenv("IQMS_TOKEN")
    assert listed()["root"]["role"] == "admin"
