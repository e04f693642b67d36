"""``iqms doctor``: the doctor console in this terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from iqms.commands._common import ExitCode, fail, settings_or_exit
from iqms.commands._session import stored_token
from iqms.core.errors import AuthenticationFailed


def doctor(
    room: Annotated[
        str | None,
        typer.Option(
            "--room",
            help="The room you work in now: patients are called to it (refused while a "
            "patient is called to your old room).",
        ),
    ] = None,
) -> None:
    """Open the doctor console: call, see and finish patients from the consulting room.

    Log in with your doctor account (a login saved by 'iqms login' is reused).
    Every action is one key, shown at the bottom of the screen; Ctrl+P finds
    them by name, Ctrl+L locks the console, Ctrl+Q quits.
    """
    settings = settings_or_exit()
    try:
        token = stored_token(settings)
    except AuthenticationFailed as exc:
        fail(str(exc), ExitCode.NOT_AUTHENTICATED)
    from iqms.tui.auth import PasswordLogin
    from iqms.tui.doctor import DoctorConsole
    from iqms.tui.logfile import log_to_file

    log_to_file(settings, "doctor-console")
    app = DoctorConsole(settings, PasswordLogin(saved_token=token), room=room)
    app.run()
    if app.return_code:
        raise typer.Exit(app.return_code)
