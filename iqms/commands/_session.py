"""The logged-in user of the CLI: the stored token (or ``IQMS_TOKEN``) turned into a core Context."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from iqms.commands._common import run
from iqms.core import migrate
from iqms.core.clock import SystemClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.errors import AuthenticationFailed
from iqms.core.security.rbac import Principal
from iqms.core.security.sessions import resolve_principal
from iqms.core.service import Context

TOKEN_ENV = "IQMS_TOKEN"

T = TypeVar("T")


def token_path(settings: Settings) -> Path:
    return settings.config_dir / "token"


def stored_token(settings: Settings) -> str | None:
    """``IQMS_TOKEN`` if set, else the token saved by ``iqms login``."""
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env.strip()
    path = token_path(settings)
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthenticationFailed(
            f"cannot read the stored login at {path}: {exc.strerror}"
        ) from None


def store_token(settings: Settings, token: str) -> Path:
    """Save the token readable by the owner only."""
    path = token_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR)
    tmp.replace(path)
    return path


def clear_token(settings: Settings) -> bool:
    path = token_path(settings)
    if path.exists():
        path.unlink()
        return True
    return False


@contextlib.asynccontextmanager
async def open_context(settings: Settings, *, login: bool = True) -> AsyncIterator[Context]:
    """A core Context for a command: the logged-in user's (default) or the system's."""
    db = Database.from_settings(settings)
    clock = SystemClock()
    try:
        await migrate.require_current(db)
        if login:
            token = stored_token(settings)
            if not token:
                raise AuthenticationFailed("not logged in; run 'iqms login' (or set IQMS_TOKEN)")
            async with db.transaction(readonly=True) as session:
                principal = await resolve_principal(session, settings, token, now=clock.now())
        else:
            principal = Principal.system("cli")
        yield Context(db=db, principal=principal, settings=settings, clock=clock)
    finally:
        await db.dispose()


def run_as_user(settings: Settings, body: Callable[[Context], Awaitable[T]]) -> T:
    """Run one core call as the logged-in user; core errors become one line and an exit code."""

    async def go() -> T:
        async with open_context(settings) as ctx:
            return await body(ctx)

    return run(go)
