"""``iqms device ...``: this computer as a kiosk or display board, signed in by its device key.

The key is typed at a prompt that does not echo, or read from standard input
with ``--stdin``; never taken as an argument value (it would end up in the
shell history and the process list). It is kept in ``DATA_DIR/device.key``
(mode 600); ``IQMS_DEVICE_KEY`` overrides the file.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar

import click
import typer

from iqms.commands._common import ExitCode, JsonOpt, fail, info, kv, print_json, run
from iqms.commands._common import settings_or_exit as _settings
from iqms.core.clock import Clock, SystemClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.errors import (
    AuthenticationFailed,
    ConfigError,
    DatabaseUnavailable,
    ValidationError,
)
from iqms.core.security.device_keys import (
    clean_device_key,
    clear_device_key,
    key_source,
    store_device_key,
    stored_device_key,
)
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import devices

T = TypeVar("T")

app = typer.Typer(
    help="This computer as a kiosk or display board: store, check or remove its device key.",
    no_args_is_help=True,
)


def device_key_or_fail(settings: Settings) -> str:
    """The stored device key, or an error saying how to store one."""
    key = stored_device_key(settings)
    if not key:
        raise AuthenticationFailed(
            "this computer has no device key; an administrator runs 'iqms admin devices add "
            "NAME --role kiosk' and you store the key here with 'iqms device set-key'"
        )
    return key


@contextlib.asynccontextmanager
async def open_device_context(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None
) -> AsyncIterator[Context]:
    """A core Context acting as this device (its key's role), for kiosks and display boards."""
    key = device_key_or_fail(settings)
    own_db = db is None
    database = db or Database.from_settings(settings)
    ctx = Context(
        db=database,
        principal=Principal.anonymous(),
        settings=settings,
        clock=clock or SystemClock(),
    )
    try:
        principal = await devices.authenticate(ctx, key=key)
        yield ctx.as_principal(principal)
    finally:
        if own_db:
            await database.dispose()


def _read_key(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            fail("expected the device key on standard input", ExitCode.USAGE)
        return line.strip()
    try:
        return str(typer.prompt("Device key", hide_input=True, err=True)).strip()
    except click.Abort:
        fail("no device key given", ExitCode.USAGE)


async def _authenticate(settings: Settings, key: str) -> Principal:
    db = Database.from_settings(settings)
    try:
        ctx = Context(db=db, principal=Principal.anonymous(), settings=settings)
        return await devices.authenticate(ctx, key=key)
    finally:
        await db.dispose()


def _config_step(step: Callable[[], T]) -> T:
    """Run a local file step; a bad key file setting becomes one line and exit code 9."""
    try:
        return step()
    except ConfigError as exc:
        fail(str(exc), ExitCode.CONFIG)


@app.command("set-key")
def set_key(
    from_stdin: Annotated[
        bool,
        typer.Option("--stdin", help="Read the key from standard input instead of prompting."),
    ] = False,
) -> None:
    """Store this device's key (asked for without echo), after checking it with the database."""
    settings = _settings()
    try:
        key = clean_device_key(_read_key(from_stdin))
    except ValidationError as exc:
        fail(str(exc), ExitCode.INVALID)

    async def check() -> Principal | None:
        try:
            return await _authenticate(settings, key)
        except DatabaseUnavailable as exc:
            info(f"warning: could not check the key now ({exc}); storing it anyway")
            return None

    principal = run(check)  # a refused key stops here (exit 5) and is not stored
    path = _config_step(lambda: store_device_key(settings, key))
    who = f"{principal.role} {principal.username}" if principal else "this device"
    info(f"Stored the key of {who} in {path} (readable by this user only).")
    if settings.device_key is not None:
        info("note: IQMS_DEVICE_KEY is set and takes precedence over the stored key.")


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Show which device this computer signs in as, checking its key with the database."""
    settings = _settings()

    async def check() -> Principal:
        return await _authenticate(settings, device_key_or_fail(settings))

    principal = run(check)
    data = {
        "device": principal.username,
        "role": principal.role,
        "device_id": str(principal.device_id),
        "key_from": key_source(settings),
    }
    if as_json:
        print_json(data)
    else:
        kv((k.replace("_", " "), v) for k, v in data.items())


@app.command("clear-key")
def clear_key() -> None:
    """Remove the stored device key from this computer (the key stays valid until revoked)."""
    settings = _settings()
    if _config_step(lambda: clear_device_key(settings)):
        info(f"Removed the device key {settings.effective_device_key_file}.")
    else:
        info("No device key was stored on this computer.")
