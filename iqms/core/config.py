"""Settings: ``IQMS_`` environment variables, a ``.env`` file, sensible defaults.

Secrets are :class:`pydantic.SecretStr` and never appear in ``repr`` or logs.
A bad setting raises :class:`~iqms.core.errors.ConfigError` naming the setting.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from iqms.core.errors import ConfigError

APP_NAME = "iqms"

SUPPORTED_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


class SmsProvider(StrEnum):
    CONSOLE = "console"
    TWILIO = "twilio"
    NONE = "none"


class PushProvider(StrEnum):
    CONSOLE = "console"
    FIREBASE = "firebase"
    NONE = "none"


class PrinterKind(StrEnum):
    DUMMY = "dummy"
    NETWORK = "network"
    USB = "usb"
    FILE = "file"


class AnnounceMode(StrEnum):
    """What a waiting-room board does when a ticket is called."""

    OFF = "off"
    CHIME = "chime"
    VOICE = "voice"


class HashScheme(StrEnum):
    BCRYPT = "bcrypt"
    ARGON2 = "argon2"


def default_data_dir() -> Path:
    """The platform's per-user data directory for IQMS."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_config_dir() -> Path:
    """The platform's per-user config directory (stored login token)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def normalise_database_url(url: str) -> str:
    """Return the URL with the async driver IQMS uses; raise ``ConfigError`` if unusable."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError("IQMS_DATABASE_URL", f"is not a valid database URL ({exc})") from None
    driver = SUPPORTED_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(
            "IQMS_DATABASE_URL",
            f"uses unsupported scheme {parsed.drivername!r}; use sqlite:///PATH "
            "or postgresql+psycopg://USER@HOST/DB",
        )
    if driver.startswith("postgresql") and not parsed.database:
        raise ConfigError("IQMS_DATABASE_URL", "names no database (postgresql://HOST/DATABASE)")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


class Settings(BaseSettings):
    """All IQMS settings. Every field maps to ``IQMS_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="IQMS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # storage
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Directory for the default SQLite database, the secret key and the journal.",
    )
    config_dir: Path = Field(
        default_factory=default_config_dir,
        description="Directory for per-user state such as the stored login token.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file iqms.db in data_dir.",
    )
    db_pool_size: int = Field(default=5, ge=1, le=100, description="PostgreSQL pool size.")
    db_connect_timeout: int = Field(
        default=5, ge=1, le=120, description="Seconds to wait for the database server."
    )

    # security
    secret_key: SecretStr | None = Field(
        default=None, description="Token signing secret; default: generated into secret_key_file."
    )
    secret_key_file: Path | None = Field(
        default=None, description="File holding the signing secret (default data_dir/secret.key)."
    )
    token_lifetime_minutes: int = Field(default=480, ge=1, le=60 * 24 * 30)
    password_scheme: HashScheme = HashScheme.BCRYPT
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    lockout_threshold: int = Field(default=5, ge=1, le=100)
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)

    # clinic
    clinic_name: str = Field(default="IQMS Clinic", min_length=1, max_length=80)
    timezone: str = Field(default="UTC", description="IANA time zone of the clinic.")
    clinic_language: str = Field(
        default="en",
        description="Language of the clinic (e.g. en, es, pt-br): the boards speak calls in it.",
    )

    # notifications
    sms_provider: SmsProvider = SmsProvider.CONSOLE
    push_provider: PushProvider = PushProvider.NONE
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    firebase_credentials_file: Path | None = None
    firebase_project_id: str | None = None
    notify_approaching_threshold: int = Field(default=3, ge=1, le=50)
    notify_max_attempts: int = Field(default=6, ge=1, le=50)
    notify_lease_seconds: int = Field(default=60, ge=5, le=3600)
    notify_max_age_minutes: int = Field(
        default=120,
        ge=1,
        le=7 * 24 * 60,
        description="Queue messages older than this are not sent.",
    )

    # kiosk printer
    printer_kind: PrinterKind = PrinterKind.DUMMY
    printer_host: str | None = None
    printer_port: int = Field(default=9100, ge=1, le=65535)
    printer_usb_vendor: int | None = None
    printer_usb_product: int | None = None
    printer_file: Path | None = None
    printer_profile: str = "TM-T88V"

    # public pages
    public_url: str | None = Field(
        default=None,
        description="Public address of 'iqms serve' (https://...); tickets link to their "
        "status page there.",
    )

    # offline
    device_name: str | None = Field(default=None, description="Name of this terminal or kiosk.")

    # device credentials (kiosks, display boards)
    device_key: SecretStr | None = Field(
        default=None, description="This device's key (overrides the stored key file)."
    )
    device_key_file: Path | None = Field(
        default=None, description="Where this device's key is kept (default data_dir/device.key)."
    )

    # consoles
    tui_idle_lock_minutes: int = Field(
        default=10,
        ge=0,
        le=24 * 60,
        description="Lock a console after this many idle minutes (0: never).",
    )
    tui_theme: str = Field(
        default="iqms",
        description="Console colours: iqms, iqms-light, iqms-high-contrast or a Textual theme.",
    )

    # waiting-room boards
    announce: AnnounceMode = Field(
        default=AnnounceMode.CHIME,
        description="Calls on a board: off, chime, or voice (chime, then the call spoken).",
    )
    audio_player: str | None = Field(
        default=None,
        description="Command that plays a WAV file (its path is appended, or replaces {file}); "
        "default: aplay, paplay, pw-play or afplay, whichever is installed.",
    )

    log_level: str = "WARNING"

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/London)"
            ) from None
        return value

    @field_validator("clinic_language", mode="before")
    @classmethod
    def _check_language(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        code = value.strip().lower().replace("_", "-")
        if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", code):
            raise ValueError(f"{value!r} is not a language code (use one such as en, es or pt-br)")
        return code

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                "must be an http:// or https:// address, like https://queue.clinic.org"
            )
        if parsed.query or parsed.fragment:
            raise ValueError("must not have a query or fragment")
        return value

    def ticket_status_url(self, status_code: str | None) -> str | None:
        """The public status page of a ticket, or None without a public URL (or code)."""
        if not self.public_url or not status_code:
            return None
        return f"{self.public_url}/t/{status_code}"

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            return normalise_database_url(value)
        except ConfigError as exc:
            raise ValueError(exc.problem) from None

    # ---- derived values -------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def effective_database_url(self) -> str:
        """The database URL in use (creates the data directory for the SQLite default)."""
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{self.data_dir / 'iqms.db'}"

    @property
    def effective_device_key_file(self) -> Path:
        return self.device_key_file or (self.data_dir / "device.key")

    @property
    def effective_secret_key_file(self) -> Path:
        return self.secret_key_file or (self.data_dir / "secret.key")

    def signing_secret(self) -> str:
        """The token signing secret: from settings, or read/created in the secret file."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.effective_secret_key_file
        try:
            if path.exists():
                value = path.read_text(encoding="utf-8").strip()
                if not value:
                    raise ConfigError("IQMS_SECRET_KEY_FILE", f"{path} is empty")
                return value
            path.parent.mkdir(parents=True, exist_ok=True)
            value = secrets.token_urlsafe(48)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(value + "\n")
            return value
        except PermissionError:
            raise ConfigError(
                "IQMS_SECRET_KEY_FILE", f"cannot read or create {path}: permission denied"
            ) from None
        except IsADirectoryError:
            raise ConfigError("IQMS_SECRET_KEY_FILE", f"{path} is a directory") from None
        except UnicodeDecodeError:
            raise ConfigError("IQMS_SECRET_KEY_FILE", f"{path} is not a text file") from None
        except OSError as exc:
            raise ConfigError(
                "IQMS_SECRET_KEY_FILE", f"cannot use {path}: {exc.strerror}"
            ) from None

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict with secrets masked (for ``iqms config show``)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "**********"
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, StrEnum):
                value = value.value
            out[name] = value
        out["database_url"] = (
            _hide_password(self.effective_database_url) if self.database_url else None
        )
        return out


def _hide_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; raise ``ConfigError`` naming a bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err.get("loc") or ("?",)
        name = "IQMS_" + str(loc[0]).upper()
        msg = str(err.get("msg", "invalid value"))
        msg = msg.removeprefix("Value error, ")
        raise ConfigError(name, msg) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached)."""
    return load_settings()
