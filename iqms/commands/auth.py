"""``iqms login``, ``logout``, ``whoami`` and ``passwd``: the logged-in user of this terminal.

Passwords are typed at a prompt that does not echo, or read from standard
input with ``--password-stdin`` (as ``docker login`` does); never taken as an
argument value, where they would end up in the shell history and process list.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Annotated

import click
import typer

from iqms.commands._common import (
    ExitCode,
    JsonOpt,
    fail,
    info,
    kv,
    local_time,
    print_json,
    require_terminal,
    run,
)
from iqms.commands._common import settings_or_exit as _settings
from iqms.commands._session import (
    TOKEN_ENV,
    clear_token,
    open_context,
    run_as_user,
    store_token,
    stored_token,
)
from iqms.core.config import Settings
from iqms.core.errors import AuthenticationFailed, IQMSError
from iqms.core.schemas.users import LoginResult
from iqms.core.security.rbac import Principal
from iqms.core.security.tokens import decode_token
from iqms.core.services import auth, users

PasswordStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from standard input (first line) instead of prompting.",
    ),
]


def read_stdin_lines(count: int, what: str) -> list[str]:
    """``count`` lines from standard input, without their line endings."""
    stream = sys.stdin
    lines = []
    for _ in range(count):
        line = stream.readline()
        if not line:
            fail(f"expected {what} on standard input", ExitCode.USAGE)
        lines.append(line.rstrip("\r\n"))
    return lines


def read_password(password_stdin: bool, prompt: str = "Password", *, confirm: bool = False) -> str:
    """A password from standard input, or typed at a prompt without echo."""
    if password_stdin:
        password = read_stdin_lines(1, "a password")[0]
    else:
        require_terminal("the password", "use --password-stdin to read it from standard input")
        try:
            password = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
        except click.Abort:
            fail("no password given", ExitCode.USAGE)
    if password == "":
        fail("the password is empty", ExitCode.INVALID)
    return password


def _save_login(settings: Settings, result: LoginResult, *, print_token: bool) -> None:
    until = local_time(settings, result.expires_at, "%Y-%m-%d %H:%M %Z") or "-"
    if print_token:
        typer.echo(result.token)
        info(f"Logged in as {result.user.username} ({result.user.role.value}) until {until}.")
        return
    path = store_token(settings, result.token)
    info(
        f"Logged in as {result.user.username} ({result.user.role.value}) until {until}; "
        f"login saved in {path}."
    )
    if os.environ.get(TOKEN_ENV):
        info(f"Note: {TOKEN_ENV} is set and is used instead of the saved login.")


def login(
    username: Annotated[
        str | None, typer.Argument(help="Your username (asked for when left out).")
    ] = None,
    password_stdin: PasswordStdinOpt = False,
    print_token: Annotated[
        bool,
        typer.Option(
            "--print-token",
            help=f"Print the login token on standard output (for {TOKEN_ENV}) instead of saving it.",
        ),
    ] = False,
) -> None:
    """Log in; the login is saved for this user of this computer until it expires."""
    settings = _settings()
    if username is None:
        if password_stdin:
            fail("give the USERNAME when the password comes from standard input", ExitCode.USAGE)
        require_terminal("the username", "give it as an argument: iqms login USERNAME")
        username = typer.prompt("Username", err=True)
    password = read_password(password_stdin)

    async def go() -> LoginResult:
        async with open_context(settings, login=False) as ctx:
            try:
                return await auth.login(
                    ctx.as_principal(Principal.anonymous()), username=username, password=password
                )
            except AuthenticationFailed as exc:
                # Whoever was logged in here before must not stay logged in unnoticed: the
                # person at the keyboard now believes they are someone else.
                if not print_token and clear_token(settings):
                    raise AuthenticationFailed(
                        f"{exc}; the earlier login on this computer has ended"
                    ) from None
                raise

    _save_login(settings, run(go), print_token=print_token)


def logout(
    everywhere: Annotated[
        bool,
        typer.Option(
            "--everywhere", help="Also end this account's logins on every other terminal."
        ),
    ] = False,
) -> None:
    """Log out: forget the saved login on this computer."""
    settings = _settings()
    if everywhere:

        async def go() -> None:
            async with open_context(settings) as ctx:
                await auth.logout_everywhere(ctx)

        run(go)
        info("Every login of this account has ended.")
    if clear_token(settings):
        info("Logged out.")
    elif not everywhere:
        info("Not logged in on this computer.")
    if os.environ.get(TOKEN_ENV) and not everywhere:
        info(f"Note: {TOKEN_ENV} is still set in this environment.")


def whoami(as_json: JsonOpt = False) -> None:
    """Show who is logged in, with which role, and until when."""
    settings = _settings()

    me = run_as_user(settings, lambda ctx: auth.whoami(ctx))
    token = stored_token(settings)
    expires: datetime | None = None
    if token:
        try:
            expires = decode_token(settings, token, now=datetime.now().astimezone()).expires_at
        except IQMSError:  # it was valid a moment ago; it may have just expired
            expires = None
    data = {
        "username": me.username,
        "full_name": me.full_name,
        "role": me.role.value,
        "doctor_id": me.doctor_id,
        "patient_id": me.patient_id,
        "device_id": me.device_id,
        "login_expires_at": expires,
    }
    if as_json:
        print_json(data)
        return
    kv(
        [
            ("username", me.username),
            ("name", me.full_name),
            ("role", me.role.value),
            *[(k, v) for k, v in data.items() if k.endswith("_id") and v is not None],
            ("login expires", local_time(settings, expires, "%Y-%m-%d %H:%M %Z") or "-"),
        ]
    )


def passwd(password_stdin: PasswordStdinOpt = False) -> None:
    """Change your own password (other logins of your account end)."""
    settings = _settings()
    if password_stdin:
        current, new = read_stdin_lines(2, "the current and the new password, one per line")
    else:
        current = read_password(False, "Current password")
        new = read_password(False, "New password", confirm=True)
    from_env = bool(os.environ.get(TOKEN_ENV))

    result = run_as_user(
        settings,
        lambda ctx: users.change_own_password(ctx, current_password=current, new_password=new),
    )
    info("Password changed; your other logins have ended.")
    if from_env:
        info(f"The token in {TOKEN_ENV} no longer works; log in again.")
    else:
        store_token(settings, result.token)
