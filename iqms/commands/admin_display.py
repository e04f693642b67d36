"""``iqms admin display ...``: the message line of the waiting-room boards."""

from __future__ import annotations

from typing import Annotated

import typer

from iqms.commands._common import JsonOpt, info, local_time, print_json
from iqms.commands._common import settings_or_exit as _settings
from iqms.commands._session import run_as_user
from iqms.core.services import display

app = typer.Typer(
    help="Waiting-room boards: the message line every board shows (set, clear, show).",
    no_args_is_help=True,
)


@app.command()
def message(
    text: Annotated[
        str,
        typer.Argument(
            help='The message, e.g. "Dr Patel is running 20 minutes late" '
            "(up to 160 characters; quote it)."
        ),
    ],
) -> None:
    """Show a message line on every waiting-room board at once (replaces the one shown)."""
    settings = _settings()
    shown = run_as_user(settings, lambda ctx: display.set_message(ctx, text=text))
    info(f"The boards now show: {shown.text}")


@app.command()
def clear() -> None:
    """Remove the message line from the waiting-room boards."""
    settings = _settings()
    removed = run_as_user(settings, lambda ctx: display.clear_message(ctx))
    info("The message line is cleared." if removed else "No message was shown.")


@app.command()
def show(as_json: JsonOpt = False) -> None:
    """The message line the boards show now, who set it and when."""
    settings = _settings()
    current = run_as_user(settings, lambda ctx: display.get_message(ctx))
    if as_json:
        print_json(current.model_dump(mode="json") if current is not None else None)
        return
    if current is None:
        info("No message is shown on the boards.")
        return
    typer.echo(current.text)
    info(f"set by {current.set_by} at {local_time(settings, current.set_at)}")
