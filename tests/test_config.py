"""Settings: defaults, environment, secrets kept secret, bad settings named in one line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from iqms.core.config import Settings, load_settings
from iqms.core.errors import ConfigError


def test_default_database_is_sqlite_in_data_dir(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path / "d")  # type: ignore[call-arg]
    assert s.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'iqms.db'}"
    assert (tmp_path / "d").is_dir()


def test_postgres_url_gets_psycopg_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IQMS_DATABASE_URL", "postgresql://clinic:pw@db.local/iqms")
    s = load_settings(_env_file=None)
    assert s.database_url == "postgresql+psycopg://clinic:pw@db.local/iqms"
    assert "pw" not in str(s.redacted())


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("mysql://x@y/z", "unsupported scheme 'mysql'"), ("not a url", "not a valid database URL")],
)
def test_bad_database_url_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, url: str, fragment: str
) -> None:
    monkeypatch.setenv("IQMS_DATABASE_URL", url)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert str(info.value).startswith("IQMS_DATABASE_URL ")
    assert fragment in str(info.value)


def test_bad_timezone_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IQMS_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="IQMS_TIMEZONE unknown time zone"):
        load_settings(_env_file=None)


def test_secret_generated_once_with_owner_only_permissions(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    first = s.signing_secret()
    assert len(first) >= 32
    mode = stat.S_IMODE(os.stat(tmp_path / "secret.key").st_mode)
    assert mode == 0o600
    assert s.signing_secret() == first


def test_unreadable_secret_file_names_the_setting(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path, secret_key_file=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="IQMS_SECRET_KEY_FILE"):
        s.signing_secret()


def test_secrets_never_in_repr(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path, secret_key="hunter2-hunter2",  # type: ignore[call-arg]
                 twilio_auth_token="tw-secret-token")  # fmt: skip
    assert "hunter2" not in repr(s)
    assert "tw-secret-token" not in repr(s)
    assert "hunter2" not in str(s.redacted())


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("IQMS_CLINIC_NAME=Hillside Surgery\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().clinic_name == "Hillside Surgery"


def _iqms(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iqms", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)  # fmt: skip


def test_cli_malformed_url_is_one_line_and_nonzero(tmp_path: Path) -> None:
    out = _iqms(
        "db", "current", env={"IQMS_DATABASE_URL": "oracle://x/y", "IQMS_DATA_DIR": str(tmp_path)}
    )
    assert out.returncode == 9
    assert out.stderr.strip().splitlines() == [
        "iqms: error: IQMS_DATABASE_URL uses unsupported scheme 'oracle'; use sqlite:///PATH "
        "or postgresql+psycopg://USER@HOST/DB"
    ]
    assert "Traceback" not in out.stderr


def test_cli_unreachable_postgres_is_one_line_naming_host(tmp_path: Path) -> None:
    out = _iqms("db", "upgrade", env={"IQMS_DATABASE_URL": "postgresql://iqms@127.0.0.1:1/clinic",
                                      "IQMS_DATA_DIR": str(tmp_path), "IQMS_DB_CONNECT_TIMEOUT": "2"})  # fmt: skip
    assert out.returncode == 8
    errors = [line for line in out.stderr.splitlines() if line.startswith("iqms: error:")]
    assert len(errors) == 1
    assert "PostgreSQL at 127.0.0.1:1/clinic" in errors[0]
    assert "Traceback" not in out.stderr
