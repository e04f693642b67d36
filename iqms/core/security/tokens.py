"""Signed session tokens (JWT, HS256): subject, role, token version, expiry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from iqms.core.config import Settings
from iqms.core.errors import AuthenticationFailed

ALGORITHM = "HS256"
ISSUER = "iqms"


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    username: str
    role: str
    token_version: int
    expires_at: datetime


def issue_token(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    username: str,
    role: str,
    token_version: int,
    now: datetime,
) -> str:
    """A signed token valid for ``settings.token_lifetime_minutes`` from ``now``."""
    payload = {
        "iss": ISSUER,
        "sub": str(user_id),
        "name": username,
        "role": role,
        "ver": token_version,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=settings.token_lifetime_minutes)).timestamp()),
    }
    import jwt  # with its cryptography backends: only when a login is signed or checked

    return jwt.encode(payload, settings.signing_secret(), algorithm=ALGORITHM)


def token_expiry(settings: Settings, now: datetime) -> datetime:
    """When a token issued at ``now`` expires (whole seconds, as stored in the token)."""
    exp = int((now + timedelta(minutes=settings.token_lifetime_minutes)).timestamp())
    return datetime.fromtimestamp(exp, UTC)


def decode_token(settings: Settings, token: str, *, now: datetime) -> TokenClaims:
    """Check signature and expiry (against ``now``); raise :class:`AuthenticationFailed`."""
    import jwt

    try:
        payload = jwt.decode(
            token,
            settings.signing_secret(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "ver", "role"], "verify_exp": False},
        )
    except jwt.InvalidTokenError:
        raise AuthenticationFailed("your login is not valid; log in again") from None
    if int(payload["exp"]) <= int(now.timestamp()):
        raise AuthenticationFailed("your login has expired; log in again")
    try:
        return TokenClaims(
            user_id=uuid.UUID(payload["sub"]),
            username=str(payload.get("name", "")),
            role=str(payload["role"]),
            token_version=int(payload["ver"]),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (ValueError, TypeError):
        raise AuthenticationFailed("your login is not valid; log in again") from None
