"""The ``iqms`` command: admin work, the consoles, the kiosk, the worker and the demo."""

from __future__ import annotations

from typing import Annotated

import typer

from iqms import __version__
from iqms.commands import admin as admin_commands
from iqms.commands import auth as auth_commands
from iqms.commands import db as db_commands
from iqms.commands import demo as demo_commands
from iqms.commands import queue as queue_commands
from iqms.commands import simulate as simulate_commands
from iqms.commands import sync as sync_commands
from iqms.commands import worker as worker_commands

app = typer.Typer(
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
