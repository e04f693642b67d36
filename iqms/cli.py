"""The ``iqms`` command: admin work, the consoles, the kiosk, the worker and the demo."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from iqms import __version__
from iqms.commands._echo import one_line, remember
from iqms.commands._lazy import LazyCommand, LazyGroup

# Every subcommand of ``iqms``, imported only when it runs (so --help and --version are
# instant). The one-line help is what ``iqms --help`` lists; a test keeps it equal to the
# command's own.
COMMANDS: dict[str, LazyCommand] = {
    "demo": LazyCommand(
        "iqms.commands.demo:demo",
        "Create a fresh demo clinic (separate SQLite database) and show what is in it.",
    ),
    "simulate": LazyCommand(
        "iqms.commands.simulate:simulate",
        "Simulate a clinic day through the real queue engine and report waits and estimate "
        "accuracy.",
    ),
    "login": LazyCommand(
        "iqms.commands.auth:login",
        "Log in; the login is saved for this user of this computer until it expires.",
    ),
    "logout": LazyCommand(
        "iqms.commands.auth:logout", "Log out: forget the saved login on this computer."
    ),
    "whoami": LazyCommand(
        "iqms.commands.auth:whoami", "Show who is logged in, with which role, and until when."
    ),
    "passwd": LazyCommand(
        "iqms.commands.auth:passwd",
        "Change your own password (other logins of your account end).",
    ),
    "reception": LazyCommand(
        "iqms.commands.reception:reception",
        "Open the reception console: the live queue, patients and doctors, all from the keyboard.",
    ),
    "worker": LazyCommand(
        "iqms.commands.worker:worker",
        "Send patient messages (SMS, push) from the outbox until stopped with Ctrl-C.",
    ),
    "db": LazyCommand("iqms.commands.db:app", "Create, upgrade and inspect the database schema."),
    "admin": LazyCommand(
        "iqms.commands.admin:app",
        "Administration: accounts, clinic setup, audit, notifications, reports.",
    ),
    "patients": LazyCommand(
        "iqms.commands.patients:app",
        "Patients: register, find, show and change records (every read is audited).",
    ),
    "doctor": LazyCommand(
        "iqms.commands.doctor:doctor",
        "Open the doctor console: call, see and finish patients from the consulting room.",
    ),
    "queue": LazyCommand(
        "iqms.commands.queue:app",
        "The queue: issue tickets, call patients, serve, list, watch live events.",
    ),
    "serve": LazyCommand(
        "iqms.commands.serve:serve",
        "Serve the HTTP API, patients' ticket pages and waiting-room boards until Ctrl-C.",
    ),
    "kiosk": LazyCommand(
        "iqms.commands.kiosk:kiosk",
        "Run this computer as the self-service ticket kiosk (full screen, signed in by its key).",
    ),
    "display": LazyCommand(
        "iqms.commands.display:display",
        "Show the waiting-room display board full screen: calls, queues, announcements (no names).",
    ),
    "device": LazyCommand(
        "iqms.commands.device:app",
        "This computer as a kiosk or display board: store, check or remove its device key.",
    ),
    "sync": LazyCommand(
        "iqms.commands.sync:app",
        "Offline sync: what this terminal recorded while the database was away, and pushing it.",
    ),
}


class IqmsGroup(LazyGroup):
    """The root command: usage errors become one ``iqms: error:`` line with exit code 2."""

    lazy_commands = COMMANDS

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        remember(sys.argv[1:] if args is None else args)
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
                typer.echo(f"iqms: error: {one_line(message)}{hint}", err=True)
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


def main() -> None:
    app(prog_name="iqms")


if __name__ == "__main__":
    main()
