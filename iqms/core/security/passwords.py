"""Password hashing (passlib's CryptContext from the maintained ``libpass`` fork) and rules."""

from __future__ import annotations

import secrets
from functools import lru_cache

from passlib.context import CryptContext

from iqms.core.config import HashScheme, Settings
from iqms.core.errors import ValidationError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything longer; refuse rather than truncate


@lru_cache(maxsize=8)
def _context(scheme: HashScheme, bcrypt_rounds: int) -> CryptContext:
    other = HashScheme.ARGON2 if scheme is HashScheme.BCRYPT else HashScheme.BCRYPT
    return CryptContext(
        schemes=[scheme.value, other.value],
        default=scheme.value,
        deprecated="auto",  # hashes of the non-default scheme are upgraded at login
        bcrypt__rounds=bcrypt_rounds,
        bcrypt__min_rounds=bcrypt_rounds,  # older, cheaper hashes count as outdated
    )


def crypt_context(settings: Settings) -> CryptContext:
    return _context(HashScheme(settings.password_scheme), settings.bcrypt_rounds)


def check_password_rules(password: str, *, username: str | None = None) -> None:
    """Raise :class:`ValidationError` (field ``password``) when a password is unacceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters long", field="password"
        )
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValidationError(
            f"password must be at most {MAX_PASSWORD_BYTES} bytes long", field="password"
        )
    if username and password.strip().lower() == username.strip().lower():
        raise ValidationError("password must not be the same as the username", field="password")
    if password.strip() == "":
        raise ValidationError("password must not be blank", field="password")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in password):
        raise ValidationError(
            "password must not contain control characters (such as tab or newline)",
            field="password",
        )


def hash_password(settings: Settings, password: str) -> str:
    return crypt_context(settings).hash(password)


def verify_password(
    settings: Settings, password: str, password_hash: str
) -> tuple[bool, str | None]:
    """Check a password; returns (ok, new_hash_if_the_stored_one_should_be_upgraded)."""
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return False, None
    try:
        return crypt_context(settings).verify_and_update(password, password_hash)
    except ValueError:
        return False, None


@lru_cache(maxsize=8)
def _dummy_hash(scheme: HashScheme, bcrypt_rounds: int) -> str:
    return _context(scheme, bcrypt_rounds).hash(secrets.token_urlsafe(24))


def verify_dummy(settings: Settings, password: str) -> None:
    """Spend as long as a real check does, for an unknown username (no timing hint)."""
    verify_password(
        settings,
        password,
        _dummy_hash(HashScheme(settings.password_scheme), settings.bcrypt_rounds),
    )
