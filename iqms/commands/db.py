"""``iqms db``: create, upgrade and inspect the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from iqms.commands._common import info, require_terminal, run, settings_or_exit
from iqms.core import migrate
from iqms.core.db import Database

app = typer.Typer(help="Create, upgrade and inspect the database schema.", no_args_is_help=True)


@app.command()
def upgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision (default: the newest).")
    ] = "head",
) -> None:
    """Apply migrations up to REVISION (creates the schema on an empty database)."""
    settings = settings_or_exit()

    async def go() -> str | None:
        db = Database.from_settings(settings)
        try:
            await db.check()
            await migrate.upgrade(db, revision)
            return await migrate.current(db)
        finally:
            await db.dispose()

    info(f"Upgrading {Database.from_settings(settings).where} ...")
    now = run(go)
    info(f"Database is at revision {now}.")


@app.command()
def downgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision: an id, '-1', or 'base' (drops everything).")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Revert migrations down to REVISION. Data in dropped tables is lost."""
    settings = settings_or_exit()
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
    else:
        info(f"{where}: behind (newest is {head}); run 'iqms db upgrade'.")
