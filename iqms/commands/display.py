"""``iqms display``: the waiting-room display board, full screen, signed in by its device key."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from iqms.commands._common import ExitCode, fail, settings_or_exit
from iqms.commands._session import stored_token
from iqms.core.config import AnnounceMode, Settings
from iqms.core.errors import ConfigError
from iqms.core.security.device_keys import stored_device_key
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import auth, devices

#: the board's log, beside the database: nothing may be printed over the screen
LOG_FILE = "display.log"
LOG_BYTES = 1_000_000


def _sign_in(settings: Settings) -> Callable[[Context], Awaitable[Principal]]:
    """The device key of this computer, or else the login saved by ``iqms login``."""
    try:
        key = stored_device_key(settings)
    except ConfigError as exc:
        fail(str(exc), ExitCode.CONFIG)
    if key:

        async def with_key(ctx: Context) -> Principal:
            return await devices.authenticate(ctx, key=key)

        return with_key
    token = stored_token(settings)
    if token:

        async def with_login(ctx: Context) -> Principal:
            return await auth.authenticate(ctx, token=token)

        return with_login
    fail(
        "this computer has no device key: an administrator runs 'iqms admin devices add "
        "NAME --role display' and you store the key here with 'iqms device set-key' "
        "(or log in with 'iqms login' to try the board)",
        ExitCode.NOT_AUTHENTICATED,
    )


@contextlib.contextmanager
def _log_to_file(settings: Settings) -> Iterator[Path]:
    """While the board runs, log lines go to ``DATA_DIR/display.log`` (rotated), not the screen."""
    path = settings.data_dir / LOG_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_BYTES, backupCount=3, encoding="utf-8"
        )
    except OSError as exc:
        fail(f"cannot write the board's log {path}: {exc.strerror}", ExitCode.CONFIG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    configured = logging.getLevelName(settings.log_level.upper())
    ours = logging.getLogger("iqms")
    saved = (ours.level, ours.propagate)
    ours.addHandler(handler)
    ours.setLevel(configured if isinstance(configured, int) else logging.WARNING)
    ours.propagate = False
    try:
        yield path
    finally:
        ours.removeHandler(handler)
        handler.close()
        ours.setLevel(saved[0])
        ours.propagate = saved[1]


def _departments(values: list[str] | None) -> list[str]:
    return [code.strip().upper() for v in values or [] for code in v.split(",") if code.strip()]


def display(
    department: Annotated[
        list[str] | None,
        typer.Option(
            "--department",
            "-d",
            help="Show only this department (code, like GEN); repeat it or separate codes "
            "with commas for more. Default: every open department.",
        ),
    ] = None,
    rows: Annotated[
        int,
        typer.Option("--rows", min=1, max=10, help="How many calls to show, the newest large."),
    ] = 5,
    announce: Annotated[
        AnnounceMode | None,
        typer.Option(
            "--announce",
            help="When a ticket is called: off, chime, or voice (the chime, then the call "
            "spoken with espeak-ng). Default: IQMS_ANNOUNCE (chime).",
        ),
    ] = None,
    high_contrast: Annotated[
        bool,
        typer.Option("--high-contrast", help="Black and white with yellow: for bright rooms."),
    ] = False,
) -> None:
    """Show the waiting-room display board full screen: calls, queues, announcements (no names)."""
    settings = settings_or_exit()
    if high_contrast:
        settings = settings.model_copy(update={"tui_theme": "iqms-high-contrast"})
    mode = announce or settings.announce
    authenticate = _sign_in(settings)

    from iqms.announce import Announcer
    from iqms.tui.display import BoardApp

    try:
        announcer = Announcer(
            mode.value, language=settings.clinic_language, player=settings.audio_player
        )
    except ValueError as exc:
        fail(f"IQMS_CLINIC_LANGUAGE: {exc}", ExitCode.CONFIG)
    with _log_to_file(settings):
        app = BoardApp(
            settings,
            authenticate,
            departments=_departments(department),
            rows=rows,
            announcer=announcer,
        )
        app.run()
    code = app.return_code or 0
    if code:
        raise typer.Exit(code)
