"""``iqms db``: create, upgrade and inspect the database schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from iqms.commands._common import (
    ExitCode,
    fail,
    info,
    require_terminal,
    run,
    settings_or_exit,
)
from iqms.core import migrate
from iqms.core.config import Settings
from iqms.core.db import Database, missing_file_message
from iqms.core.errors import ValidationError

app = typer.Typer(help="Create, upgrade and inspect the database schema.", no_args_is_help=True)


def _checked_target(revision: str) -> str:
    """An unknown revision is refused before anything is asked, opened or created."""
    try:
        migrate.check_target(revision)
    except ValidationError as exc:
        fail(str(exc), ExitCode.INVALID)
    return revision


def _missing_file(settings: Settings) -> Path | None:
    """The configured SQLite file if it does not exist (yet)."""
    db = Database.from_settings(settings)
    path = db.url.database if db.is_sqlite else None
    if path and path != ":memory:" and not Path(path).exists():
        return Path(path)
    return None


@app.command()
def upgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision (default: the newest).")
    ] = "head",
) -> None:
    """Apply migrations up to REVISION (creates the database and its schema if needed)."""
    settings = settings_or_exit()
    _checked_target(revision)

    async def go() -> str | None:
        db = Database.from_settings(settings, create=True)
        try:
            await db.check()
            await migrate.upgrade(db, revision)
            return await migrate.current(db)
        finally:
            await db.dispose()

    info(f"Upgrading {Database.from_settings(settings).where} ...")
    now = run(go)
    info(f"Database is at revision {now}.")


# ``-1`` is a revision here, not an option.
@app.command(context_settings={"ignore_unknown_options": True})
def downgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision: an id, '-1', or 'base' (drops everything).")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Revert migrations down to REVISION. Data in dropped tables is lost."""
    settings = settings_or_exit()
    _checked_target(revision)
    missing = _missing_file(settings)
    if missing is not None:
        fail(missing_file_message(missing), ExitCode.CONNECTION)
    if not yes:
        require_terminal("confirmation", "add --yes to downgrade without asking")
        typer.confirm(
            f"Downgrade the database to {revision}? Data in dropped tables is lost",
            abort=True,
            err=True,
        )

    async def go() -> str | None:
        db = Database.from_settings(settings)
        try:
            await db.check()
            await migrate.downgrade(db, revision)
            return await migrate.current(db)
        finally:
            await db.dispose()

    now = run(go)
    info(f"Database is at revision {now or 'base (empty)'}.")


@app.command()
def current() -> None:
    """Print the schema revision of the database, and whether it is up to date."""
    settings = settings_or_exit()
    missing = _missing_file(settings)
    if missing is not None:  # looking must not create an empty file at a mistyped path
        typer.echo("none")
        info(f"there is no database at {missing} yet; 'iqms db upgrade' creates it.")
        return

    async def go() -> tuple[str | None, str]:
        db = Database.from_settings(settings)
        try:
            await db.check()
            return await migrate.current(db), db.where
        finally:
            await db.dispose()

    rev, where = run(go)
    head = migrate.head_revision()
    typer.echo(rev or "none")
    if rev == head:
        info(f"{where}: up to date.")
    elif rev is None:
        info(f"{where}: no IQMS schema yet; run 'iqms db upgrade'.")
    elif rev not in migrate.known_revisions():
        info(f"{where}: newer than this IQMS knows (it has up to {head}).")
    else:
        info(f"{where}: behind (newest is {head}); run 'iqms db upgrade'.")
