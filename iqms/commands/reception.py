"""``iqms reception``: the front desk's console (Textual)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from iqms.commands._common import ExitCode, fail, settings_or_exit
from iqms.core.config import Settings
from iqms.core.errors import AuthenticationFailed

LOG_FILE = "reception.log"


def log_to_file(settings: Settings, name: str) -> Path:
    """Send the console's log (and the details of any bug) to ``DATA_DIR/logs/NAME``."""
    path = settings.data_dir / "logs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("iqms")
    ours.addHandler(handler)
    ours.setLevel(logging.getLevelName(settings.log_level.upper()))
    ours.propagate = False
    return path


def reception(
    department: Annotated[
        list[str] | None,
        typer.Option(
            "--department",
            "-d",
            help="Show only this department (its code, e.g. GEN); repeat for more. Default: all.",
        ),
    ] = None,
    login: Annotated[
        bool,
        typer.Option(
            "--login",
            help="Always ask for username and password, even if 'iqms login' saved a login.",
        ),
    ] = False,
) -> None:
    """Open the reception console: the live queue, patients and doctors, all from the keyboard."""
    settings = settings_or_exit()
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("the reception console needs a terminal (run it in a terminal window)", ExitCode.USAGE)
    from iqms.commands._session import stored_token
    from iqms.tui.auth import PasswordLogin
    from iqms.tui.reception.app import ReceptionApp

    saved = None
    if not login:
        try:
            saved = stored_token(settings)
        except AuthenticationFailed:
            saved = None
    log_to_file(settings, LOG_FILE)
    app = ReceptionApp(settings, PasswordLogin(saved_token=saved), departments=department or ())
    app.run()
    if app.return_code:
        raise typer.Exit(app.return_code)
