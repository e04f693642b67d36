"""``iqms kiosk``: this computer as the self-service ticket kiosk (full screen)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from iqms.commands._common import ExitCode, fail, info, run, settings_or_exit
from iqms.core.config import Settings
from iqms.core.errors import AuthenticationFailed, ConfigError
from iqms.core.security.device_keys import stored_device_key

LOG_FILE = "kiosk.log"


@contextlib.contextmanager
def _log_to_file(settings: Settings) -> Iterator[Path]:
    """Log to ``DATA_DIR/kiosk.log`` while the kiosk runs (the screen belongs to patients)."""
    path = settings.data_dir / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = logging.getLevelName(settings.log_level.upper())
    saved = (list(root.handlers), root.level)
    for old in saved[0]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else logging.WARNING)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
        for old in saved[0]:
            root.addHandler(old)
        root.setLevel(saved[1])


def kiosk(
    printer: Annotated[
        str | None,
        typer.Option(
            "--printer",
            metavar="SPEC",
            help="Use this printer instead of the IQMS_PRINTER_* settings: network:HOST[:PORT], "
            "usb:VENDOR:PRODUCT, serial:PORT[:BAUD], file:PATH or dummy (numbers on screen).",
        ),
    ] = None,
    department: Annotated[
        list[str] | None,
        typer.Option(
            "--department",
            "-d",
            metavar="CODE",
            help="Offer only this service (repeat for several); default: every open one.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Check the device key, the database, the services and the printer, then exit.",
        ),
    ] = False,
) -> None:
    """Run this computer as the self-service ticket kiosk (full screen, signed in by its key)."""
    settings = settings_or_exit()
    from iqms.kiosk.printer import PrintWorker

    try:
        worker = PrintWorker.for_settings(settings, printer)
    except ConfigError as exc:
        fail(str(exc), ExitCode.CONFIG)
    key = _device_key(settings)
    if check:
        _check(settings, key, worker, department)
        return

    from iqms.kiosk.app import KioskApp, KioskAuth

    with _log_to_file(settings) as log_path:
        app = KioskApp(
            settings,
            KioskAuth(key),
            printer=worker,
            departments=department,
            stop_on_signals=True,
        )
        app.run()
    if app.return_code:
        info(f"(the kiosk's log: {log_path})")
        sys.exit(app.return_code)


def _device_key(settings: Settings) -> str:
    try:
        key = stored_device_key(settings)
    except ConfigError as exc:
        fail(str(exc), ExitCode.CONFIG)
    if not key:
        fail(
            "this computer has no device key: an administrator runs 'iqms admin devices add "
            "NAME --role kiosk', then store the key here with 'iqms device set-key'",
            ExitCode.NOT_AUTHENTICATED,
        )
    return key


def _check(settings: Settings, key: str, worker: object, departments: list[str] | None) -> None:
    from iqms.core.db import Database
    from iqms.core.security.rbac import Principal
    from iqms.core.service import Context
    from iqms.core.services import devices, selfservice
    from iqms.kiosk.printer import PrintWorker

    assert isinstance(worker, PrintWorker)

    async def checks() -> bool:
        db = Database.from_settings(settings)
        try:
            ctx = Context(db=db, principal=Principal.anonymous(), settings=settings)
            principal = await devices.authenticate(ctx, key=key)
            if principal.role != "kiosk":
                raise AuthenticationFailed(
                    f"{principal.username} is a {principal.role} device, not a kiosk"
                )
            info(f"device: {principal.username} (kiosk)")
            waits = await selfservice.department_waits(
                ctx.as_principal(principal), departments=departments
            )
            names = ", ".join(f"{w.code} {w.name}" for w in waits) or "none open"
            info(f"services: {names}")
        finally:
            await db.dispose()
        status = await worker.check()
        await worker.close()
        where = worker.printer.config.describe()
        info(
            f"printer: {status.message if where in status.message else f'{where}: {status.message}'}"
        )
        return status.can_print or status.state == "no_printer"

    if not run(checks):
        raise typer.Exit(int(ExitCode.FAILURE))
