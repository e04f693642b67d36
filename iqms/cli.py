"""The ``iqms`` command: admin work, the consoles, the kiosk, the worker and the demo."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from iqms import __version__
from iqms.commands import admin as admin_commands
from iqms.commands import auth as auth_commands
from iqms.commands import db as db_commands
from iqms.commands import demo as demo_commands
from iqms.commands import queue as queue_commands
from iqms.commands import simulate as simulate_commands
from iqms.commands import sync as sync_commands
from iqms.commands import worker as worker_commands


class IqmsGroup(TyperGroup):
    """The root command: usage errors become one ``iqms: error:`` line with exit code 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.Abort:
            typer.echo("iqms: error: aborted", err=True)
            sys.exit(1)
        except Exception as exc:
            exit_code = getattr(exc, "exit_code", None)
            if not hasattr(exc, "format_message") or exit_code is None:
                raise
            message = exc.format_message().strip()
            if message:  # empty when a group was called without a command: help was shown
                where = getattr(getattr(exc, "ctx", None), "command_path", None)
                hint = f" (see '{where} --help')" if where else ""
                typer.echo(f"iqms: error: {message}{hint}", err=True)
            sys.exit(exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=IqmsGroup,
    name="iqms",
    help="IQMS: queue management for clinics. Start with 'iqms demo'.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"iqms {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """IQMS: queue management for clinics and outpatient departments."""


app.add_typer(db_commands.app, name="db")
app.add_typer(admin_commands.app, name="admin")
app.add_typer(queue_commands.app, name="queue")
app.command(name="demo")(demo_commands.demo)
app.command(name="simulate")(simulate_commands.simulate)
app.command(name="login")(auth_commands.login)
app.command(name="logout")(auth_commands.logout)
app.command(name="whoami")(auth_commands.whoami)
app.command(name="passwd")(auth_commands.passwd)
app.command(name="worker")(worker_commands.worker)
app.add_typer(sync_commands.app, name="sync")


def main() -> None:
    app(prog_name="iqms")


if __name__ == "__main__":
    main()
