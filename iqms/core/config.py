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
from iqms.core.schemas.common import plain_message

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
    SERIAL = "serial"
    FILE = "file"


class AnnounceMode(StrEnum):
    """What a waiting-room board does when a ticket is called."""

    OFF = "off"
    CHIME = "chime"
    VOICE = "voice"


class HashScheme(StrEnum):
    BCRYPT = "bcrypt"
    ARGON2 = "argon2"


class PatientLogin(StrEnum):
    """How patients log in to the HTTP pages (``auto``: SMS codes if SMS is on, else birth date)."""

    AUTO = "auto"
    SMS = "sms"
    BIRTH_DATE = "birth_date"
    OFF = "off"


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
    db_lock_timeout: float = Field(
        default=30,
        ge=0.1,
        le=600,
        description="Seconds a write waits while another program holds the SQLite file's lock.",
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
    printer_serial_device: str | None = Field(
        default=None, description="Serial port of a serial printer, e.g. /dev/ttyUSB0 or COM3."
    )
    printer_baudrate: int = Field(default=9600, ge=1200, le=921600)
    printer_profile: str = "TM-T88V"
    printer_timeout_seconds: float = Field(
        default=5.0, ge=0.2, le=60, description="Longest a ticket may take to print."
    )
    printer_query_status: bool = Field(
        default=True,
        description="Ask the printer for its status (DLE EOT) before and after each ticket; "
        "turn off for printers that never answer.",
    )

    # public pages
    public_url: str | None = Field(
        default=None,
        description="Public address of 'iqms serve' (https://...); tickets link to their "
        "status page there.",
    )

    # HTTP API (iqms serve)
    cors_origins: str | None = Field(
        default=None,
        description="Comma-separated web origins allowed to call the API from a browser "
        "(https://app.clinic.org); none by default.",
    )
    api_max_body_bytes: int = Field(
        default=65_536,
        ge=1024,
        le=10_000_000,
        description="Largest request body the API accepts (offline sync batches may be larger).",
    )
    api_status_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="How long the API keeps a ticket's public status between queue events "
        "(0: read it from the database every time).",
    )
    login_rate_limit: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Login attempts per minute from one client address before it must wait.",
    )
    patient_login: PatientLogin = Field(
        default=PatientLogin.AUTO,
        description="Patient login on the HTTP pages: sms (one-time code), birth_date "
        "(MRN + date of birth), off, or auto (sms when an SMS provider is set).",
    )
    patient_code_minutes: int = Field(
        default=10, ge=1, le=60, description="How long a patient's SMS login code is valid."
    )
    patient_code_requests: int = Field(
        default=5,
        ge=1,
        le=100,
        description="SMS login codes one phone number may ask for per hour.",
    )

    # offline
    device_name: str | None = Field(default=None, description="Name of this terminal or kiosk.")

    # kiosk screens
    kiosk_idle_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="The kiosk returns to its start screen after this many idle seconds.",
    )
    kiosk_admin_pin: SecretStr | None = Field(
        default=None,
        description="PIN (4-12 digits) that lets staff quit the kiosk from its screen.",
    )

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

    @field_validator("printer_usb_vendor", "printer_usb_product", mode="before")
    @classmethod
    def _usb_id(cls, value: object) -> object:
        # USB ids are written in hex (0x04b8) on the device and in lsusb.
        if isinstance(value, str) and value.strip():
            text = value.strip().lower()
            try:
                return int(text, 16)
            except ValueError:
                raise ValueError(f"{value!r} is not a USB id (hex, like 0x04b8)") from None
        return value

    @field_validator("kiosk_admin_pin")
    @classmethod
    def _check_pin(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not re.fullmatch(r"\d{4,12}", value.get_secret_value().strip()):
            raise ValueError("must be 4 to 12 digits")
        return SecretStr(value.get_secret_value().strip())

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

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        origins = []
        for item in value.split(","):
            origin = item.strip().rstrip("/")
            if not origin:
                continue
            parsed = urlsplit(origin)
            if origin != "*" and (
                parsed.scheme not in ("http", "https")
                or not parsed.netloc
                or parsed.path
                or parsed.query
            ):
                raise ValueError(
                    f"{origin!r} is not an origin; list addresses like https://app.clinic.org, "
                    "separated by commas"
                )
            origins.append(origin)
        return ",".join(origins) or None

    @property
    def cors_origin_list(self) -> list[str]:
        """The web origins allowed to call the API from a browser."""
        return self.cors_origins.split(",") if self.cors_origins else []

    @property
    def effective_patient_login(self) -> PatientLogin:
        """How patients log in: ``auto`` resolved by whether SMS can be sent."""
        if self.patient_login is PatientLogin.AUTO:
            return (
                PatientLogin.SMS
                if self.sms_provider != SmsProvider.NONE
                else PatientLogin.BIRTH_DATE
            )
        return self.patient_login

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
        raise ConfigError(name, plain_message(err)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached)."""
    return load_settings()
