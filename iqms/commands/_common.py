"""What every command shares: exit codes, one-line errors, output formats, running the core."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from iqms.commands._echo import one_line
from iqms.core import errors
from iqms.core.config import Settings, load_settings

T = TypeVar("T")


class ExitCode(IntEnum):
    """Exit codes of every ``iqms`` command (documented in the README)."""

    OK = 0
    FAILURE = 1  # a check failed (e.g. a broken audit chain) or an unexpected error
    USAGE = 2  # bad command line (unknown option, missing argument)
    NOT_FOUND = 3
    PERMISSION_DENIED = 4
    NOT_AUTHENTICATED = 5  # not logged in, wrong password, token expired or revoked
    CONFLICT = 6  # duplicate, stale version, already exists
    INVALID = 7  # input rejected or a ticket cannot make that move
    CONNECTION = 8  # the database cannot be reached or used (missing, damaged, locked, old schema)
    CONFIG = 9  # a setting is missing or wrong
    INTERRUPTED = 130


ERROR_EXIT_CODES: list[tuple[type[errors.IQMSError], ExitCode]] = [
    (errors.ConfigError, ExitCode.CONFIG),
    (errors.DatabaseUnavailable, ExitCode.CONNECTION),
    (errors.SchemaOutOfDate, ExitCode.CONNECTION),
    (errors.NotFound, ExitCode.NOT_FOUND),
    (errors.PermissionDenied, ExitCode.PERMISSION_DENIED),
    (errors.AuthenticationFailed, ExitCode.NOT_AUTHENTICATED),
    (errors.Conflict, ExitCode.CONFLICT),
    (errors.ValidationError, ExitCode.INVALID),
    (errors.InvalidTransition, ExitCode.INVALID),
    (errors.NotificationError, ExitCode.FAILURE),
]


def exit_code_for(exc: BaseException) -> ExitCode:
    for cls, code in ERROR_EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return ExitCode.FAILURE


def fail(message: str, code: ExitCode = ExitCode.FAILURE) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    typer.echo(f"iqms: error: {one_line(message)}", err=True)
    raise typer.Exit(int(code))


def info(message: str) -> None:
    """A diagnostic line on stderr (stdout carries data only)."""
    typer.echo(message, err=True)


def have_terminal() -> bool:
    """True if someone can be asked at a terminal (standard input, or the controlling one)."""
    if sys.stdin is not None and sys.stdin.isatty():
        return True
    if os.name == "nt":
        return False
    try:  # getpass asks on /dev/tty even when standard input is a pipe
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def require_terminal(what: str, instead: str) -> None:
    """Refuse to prompt for ``what`` when there is no terminal; say what to use instead."""
    if not have_terminal():
        fail(f"no terminal to ask for {what}; {instead}", ExitCode.USAGE)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except errors.ConfigError as exc:
        fail(str(exc), ExitCode.CONFIG)


def run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine for a command; turn core errors into one line and an exit code."""
    try:
        return asyncio.run(_guarded(factory))
    except typer.Exit:
        raise
    except errors.IQMSError as exc:
        fail(str(exc), exit_code_for(exc))
    except KeyboardInterrupt:
        typer.echo("", err=True)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except Exception as exc:  # a bug, not a user mistake: one line unless debugging
        if os.environ.get("IQMS_DEBUG"):
            traceback.print_exc()
        logging.getLogger("iqms").debug("unexpected error", exc_info=True)
        if _missing_schema(exc):
            fail(
                "the database has no IQMS schema (or an old one); run 'iqms db upgrade'",
                ExitCode.CONNECTION,
            )
        fail(f"unexpected {type(exc).__name__}: {_first_line(exc)} (set IQMS_DEBUG=1 for details)")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def _missing_schema(exc: BaseException) -> bool:
    """True for "no such table" (SQLite) / "relation does not exist" (PostgreSQL)."""
    message = str(getattr(exc, "orig", None) or exc).lower()
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return (
        "no such table" in message or sqlstate in {"42P01", "42703"} or "no such column" in message
    )


async def _guarded(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


# ---- output ----------------------------------------------------------------
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON (one object, or a list) for machines.")
]
CsvOpt = Annotated[
    bool, typer.Option("--csv", help="Print CSV with a header row for spreadsheets.")
]


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def local_time(
    settings: Settings, when: datetime | None, fmt: str = "%Y-%m-%d %H:%M"
) -> str | None:
    """A stored (UTC) time as the clinic's local time, for people; None stays None."""
    return when.astimezone(settings.tz).strftime(fmt) if when is not None else None


def print_json(data: Any) -> None:
    typer.echo(json.dumps(_plain(data), indent=2, ensure_ascii=False))


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool = False,
    as_csv: bool = False,
    title: str | None = None,
) -> None:
    """Print rows as a table (people), JSON or CSV (machines) on stdout."""
    if as_json and as_csv:
        fail("choose one of --json and --csv", ExitCode.USAGE)
    if as_json:
        print_json([{c: r.get(c) for c in columns} for r in rows])
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else _plain(r.get(c)) for c in columns])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for c in columns:
        table.add_column(c.replace("_", " "))
    for r in rows:
        table.add_row(*["" if r.get(c) is None else str(_plain(r.get(c))) for c in columns])
    Console().print(table)


def kv(pairs: Iterable[tuple[str, Any]]) -> None:
    for k, v in pairs:
        typer.echo(f"{k}: {v}")
