"""Device keys: what a kiosk or display board presents instead of a person's login.

A key is 256 random bits with a recognisable prefix (``iqmsdk_...``). The
database keeps only its SHA-256 (a key is random, so a slow password hash adds
nothing, and any machine of the clinic can check a key without a shared
secret). The device keeps the key in a file readable by its owner only
(``DATA_DIR/device.key``, mode 600) or gets it from ``IQMS_DEVICE_KEY``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path

from iqms.core.config import Settings
from iqms.core.errors import ConfigError, ValidationError

KEY_PREFIX = "iqmsdk_"
_KEY_RE = re.compile(r"^iqmsdk_[A-Za-z0-9_-]{43}$")


def new_device_key() -> str:
    """A fresh device key (shown once to the administrator, never stored as is)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def clean_device_key(key: str) -> str:
    """The key without surrounding blanks; ``ValidationError`` if it cannot be a device key."""
    value = key.strip()
    if not _KEY_RE.fullmatch(value):
        raise ValidationError(
            f"that is not a device key (a device key starts with {KEY_PREFIX} and has "
            f"{len(KEY_PREFIX) + 43} characters; copy it whole from 'iqms admin devices add')",
            field="key",
        )
    return value


def hash_device_key(key: str) -> str:
    """What the database stores for a key: its SHA-256 in hex."""
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()


# ---- the key kept on the device -------------------------------------------------------------
def stored_device_key(settings: Settings) -> str | None:
    """This device's key: ``IQMS_DEVICE_KEY`` if set, else the key file, else None."""
    if settings.device_key is not None and settings.device_key.get_secret_value().strip():
        return settings.device_key.get_secret_value().strip()
    path = settings.effective_device_key_file
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError("IQMS_DEVICE_KEY_FILE", f"{path} is a directory") from None
    except UnicodeDecodeError:
        raise ConfigError("IQMS_DEVICE_KEY_FILE", f"{path} is not a text file") from None
    except OSError as exc:
        raise ConfigError("IQMS_DEVICE_KEY_FILE", f"cannot read {path}: {exc.strerror}") from None


def key_source(settings: Settings) -> str:
    """Where :func:`stored_device_key` finds the key, for people."""
    if settings.device_key is not None and settings.device_key.get_secret_value().strip():
        return "IQMS_DEVICE_KEY"
    return str(settings.effective_device_key_file)


def store_device_key(settings: Settings, key: str) -> Path:
    """Keep ``key`` in the key file, readable and writable by the owner only (mode 600)."""
    value = clean_device_key(key)
    path = settings.effective_device_key_file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR)
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(
            "IQMS_DEVICE_KEY_FILE", f"cannot write {path}: {exc.strerror or exc}"
        ) from None
    return path


def clear_device_key(settings: Settings) -> bool:
    """Remove the key file; True if there was one."""
    path = settings.effective_device_key_file
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ConfigError("IQMS_DEVICE_KEY_FILE", f"cannot remove {path}: {exc.strerror}") from None
    return True


__all__ = [
    "KEY_PREFIX",
    "clean_device_key",
    "clear_device_key",
    "hash_device_key",
    "key_source",
    "new_device_key",
    "store_device_key",
    "stored_device_key",
]
