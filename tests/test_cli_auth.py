"""``iqms login / logout / whoami / passwd`` and ``iqms admin bootstrap`` through the real CLI."""

from __future__ import annotations

import json
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from iqms.cli import app
from iqms.core.config import load_settings
from iqms.core.security.tokens import issue_token
from tests.terminal import run_at_terminal

runner = CliRunner()
ROOT_PW = "root-pass-1234"
RITA_PW = "rita-pass-5678"


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at the test database; return the config directory (saved login)."""
    config_dir = tmp_path / "config"
    monkeypatch.setenv("IQMS_DATABASE_URL", db_url)
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IQMS_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("IQMS_SECRET_KEY", "cli-test-secret-0123456789abcdef")
    monkeypatch.setenv("IQMS_BCRYPT_ROUNDS", "4")
    monkeypatch.delenv("IQMS_TOKEN", raising=False)
    return config_dir


def iqms(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


def bootstrap_and_login() -> None:
    result = iqms(
        "admin", "bootstrap", "root", "--full-name", "Ada Admin", "--password-stdin",
        input=ROOT_PW + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = iqms("login", "root", "--password-stdin", input=ROOT_PW + "\n")
    assert result.exit_code == 0, result.output


def test_bootstrap_login_whoami_logout(cli_env: Path) -> None:
    result = iqms("whoami")
    assert result.exit_code == 5
    assert (
        result.stderr.strip() == "iqms: error: not logged in; run 'iqms login' (or set IQMS_TOKEN)"
    )

    bootstrap_and_login()
    token_file = cli_env / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    result = iqms("whoami")
    assert result.exit_code == 0, result.output
    assert "username: root" in result.stdout and "role: admin" in result.stdout
    data = json.loads(iqms("whoami", "--json").stdout)
    assert data["username"] == "root" and data["full_name"] == "Ada Admin"

    again = iqms(
        "admin", "bootstrap", "eve", "--full-name", "Eve", "--password-stdin", input=ROOT_PW + "\n"
    )
    assert again.exit_code == 6
    assert "an administrator already exists" in again.stderr

    result = iqms("logout")
    assert result.exit_code == 0 and "Logged out." in result.stderr
    assert not token_file.exists()
    assert iqms("whoami").exit_code == 5


def test_login_prompts_at_the_terminal_without_echo(cli_env: Path) -> None:
    bootstrap_and_login()
    iqms("logout")
    typed = run_at_terminal(["login"], ["root", ROOT_PW])
    assert typed.exit_code == 0, typed.screen
    assert "Username: " in typed.screen and "Password: " in typed.screen
    assert "root" in typed.screen  # the username is shown as it is typed ...
    assert ROOT_PW not in typed.screen  # ... the password is not
    assert iqms("whoami").exit_code == 0


def test_password_is_never_taken_as_an_argument(cli_env: Path) -> None:
    bootstrap_and_login()
    result = iqms("login", "root", ROOT_PW)
    assert result.exit_code == 2
    assert ROOT_PW not in result.stdout


def test_wrong_password_and_unknown_user_get_the_same_answer(cli_env: Path) -> None:
    bootstrap_and_login()
    wrong = iqms("login", "root", "--password-stdin", input="not-the-password\n")
    assert iqms("login", "root", "--password-stdin", input=ROOT_PW + "\n").exit_code == 0
    unknown = iqms("login", "nobody", "--password-stdin", input="not-the-password\n")
    assert wrong.exit_code == unknown.exit_code == 5
    assert wrong.stderr == unknown.stderr
    assert wrong.stderr.startswith("iqms: error: login failed: wrong username or password")
    # whoever tried to log in is not left working as root without knowing it
    assert wrong.stderr.strip().endswith("; the earlier login on this computer has ended")
    assert iqms("whoami").exit_code == 5


def test_iqms_token_overrides_the_saved_login(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap_and_login()
    add = iqms(
        "admin", "users", "add", "rita", "--full-name", "Rita R", "--role", "staff",
        "--password-stdin", input=RITA_PW + "\n",
    )  # fmt: skip
    assert add.exit_code == 0, add.output
    printed = iqms("login", "rita", "--password-stdin", "--print-token", input=RITA_PW + "\n")
    assert printed.exit_code == 0, printed.output
    token = printed.stdout.strip()
    assert token.count(".") == 2
    monkeypatch.setenv("IQMS_TOKEN", token)
    assert "username: rita" in iqms("whoami").stdout
    assert iqms("admin", "users", "list").exit_code == 4
    monkeypatch.delenv("IQMS_TOKEN")
    assert "username: root" in iqms("whoami").stdout


def test_expired_and_revoked_logins_are_refused(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap_and_login()
    settings = load_settings()
    data = json.loads(iqms("admin", "users", "list", "--json").stdout)
    root_id = uuid.UUID(data[0]["id"])
    old = issue_token(
        settings, user_id=root_id, username="root", role="admin", token_version=1,
        now=datetime.now(UTC) - timedelta(days=2),
    )  # fmt: skip
    monkeypatch.setenv("IQMS_TOKEN", old)
    result = iqms("whoami")
    assert result.exit_code == 5
    assert "expired" in result.stderr
    monkeypatch.delenv("IQMS_TOKEN")
    saved = (cli_env / "token").read_text()
    assert iqms("logout", "--everywhere").exit_code == 0
    monkeypatch.setenv("IQMS_TOKEN", saved.strip())
    result = iqms("whoami")
    assert result.exit_code == 5
    assert "revoked" in result.stderr


def test_passwd_changes_the_password_and_keeps_this_login(cli_env: Path) -> None:
    bootstrap_and_login()
    old_token = (cli_env / "token").read_text()
    result = iqms("passwd", "--password-stdin", input=f"{ROOT_PW}\nnew-root-pass-99\n")
    assert result.exit_code == 0, result.output
    assert "new-root-pass-99" not in result.output and ROOT_PW not in result.output
    assert (cli_env / "token").read_text() != old_token
    assert iqms("whoami").exit_code == 0
    bad = iqms("passwd", "--password-stdin", input="wrong-current-pw\nanother-pass-99\n")
    assert bad.exit_code == 5
    assert "current password is not correct" in bad.stderr
    iqms("logout")
    assert iqms("login", "root", "--password-stdin", input=ROOT_PW + "\n").exit_code == 5
    ok = iqms("login", "root", "--password-stdin", input="new-root-pass-99\n")
    assert ok.exit_code == 0


def test_interactive_passwd_needs_matching_confirmation(cli_env: Path) -> None:
    bootstrap_and_login()
    changed = run_at_terminal(["passwd"], [ROOT_PW, "new-root-pass-99", "new-root-pass-99"])
    assert changed.exit_code == 0, changed.screen
    assert "new-root-pass-99" not in changed.screen
    assert iqms("whoami").exit_code == 0
    typed = ["new-root-pass-99", "third-pass-999", "third-pass-998"]  # a typo in the repeat
    again = run_at_terminal(["passwd"], [*typed, "third-pass-999", "third-pass-999"])
    assert again.exit_code == 0, again.screen
    assert again.screen.count("New password: ") == 2  # asked again after the mismatch
    assert "third-pass" not in again.screen
    assert iqms("whoami").exit_code == 0
    assert iqms("login", "root", "--password-stdin", input="third-pass-999\n").exit_code == 0


def test_login_needs_username_with_password_stdin(cli_env: Path) -> None:
    result = iqms("login", "--password-stdin", input=ROOT_PW + "\n")
    assert result.exit_code == 2
    assert "USERNAME" in result.stderr
    empty = iqms("login", "root", "--password-stdin", input="")
    assert empty.exit_code == 2
    assert "expected a password on standard input" in empty.stderr


def test_bootstrap_on_a_database_without_schema_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQMS_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IQMS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("IQMS_BCRYPT_ROUNDS", "4")
    result = iqms(
        "admin", "bootstrap", "root", "--full-name", "Ada", "--password-stdin", input=ROOT_PW + "\n"
    )
    assert result.exit_code == 8
    assert result.stderr.strip().endswith("or create it with 'iqms db upgrade')")
    (tmp_path / "new.db").touch()  # an empty database
    result = iqms(
        "admin", "bootstrap", "root", "--full-name", "Ada", "--password-stdin", input=ROOT_PW + "\n"
    )
    assert result.exit_code == 8
    assert result.stderr.strip().endswith("has no IQMS schema yet; run 'iqms db upgrade'")
    assert iqms("db", "upgrade").exit_code == 0
    result = iqms(
        "admin", "bootstrap", "root", "--full-name", "Ada", "--password-stdin", input=ROOT_PW + "\n"
    )
    assert result.exit_code == 0, result.output
