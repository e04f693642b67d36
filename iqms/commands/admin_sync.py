"""``iqms admin sync``: offline operations kept for staff review (list them, resolve them)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from iqms.commands._common import (
    CsvOpt,
    JsonOpt,
    info,
    local_time,
    print_json,
    print_rows,
    settings_or_exit,
)
from iqms.commands._session import run_as_user
from iqms.core.enums import ConflictStatus
from iqms.core.services import sync
from iqms.core.services.sync import ConflictView

app = typer.Typer(
    help="Offline sync conflicts: operations from terminals kept for staff review.",
    no_args_is_help=True,
)

COLUMNS = ["id", "created_at", "device", "kind", "reason"]
MACHINE_COLUMNS = [*COLUMNS, "target", "status", "resolution", "resolved_at"]


class Action(StrEnum):
    KEEP = "keep"
    APPLY = "apply"
    LINK = "link"


def _row(view: ConflictView, *, full_id: bool) -> dict[str, Any]:
    return {
        "id": str(view.id) if full_id else str(view.id)[:8],
        "created_at": view.created_at.replace(microsecond=0),
        "device": view.device_name,
        "kind": view.kind,
        "target": view.target,
        "reason": view.reason,
        "status": view.status.value,
        "resolution": view.resolution,
        "resolved_at": view.resolved_at,
        "operation": view.payload.get("operation"),
    }


@app.command()
def conflicts(
    show_all: Annotated[
        bool, typer.Option("--all", help="Include resolved conflicts, not only open ones.")
    ] = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """List offline operations that could not be applied automatically, oldest first."""
    settings = settings_or_exit()

    views = run_as_user(
        settings,
        lambda ctx: sync.list_conflicts(ctx, status=None if show_all else ConflictStatus.OPEN),
    )
    if as_json or as_csv:
        rows = [_row(v, full_id=True) for v in views]
        if as_json:
            print_json(rows)
        else:
            print_rows(rows, MACHINE_COLUMNS, as_csv=True)
        return
    rows = [_row(v, full_id=False) for v in views]
    for row, view in zip(rows, views, strict=True):
        row["created_at"] = local_time(settings, view.created_at, "%d %b %H:%M")
    print_rows(rows, [*COLUMNS, "status", "resolution"] if show_all else COLUMNS)
    open_count = sum(1 for v in views if v.status == ConflictStatus.OPEN)
    hint = "; resolve with 'iqms admin sync resolve ID --action keep|apply|link'"
    info(f"{open_count} open conflict{'s' if open_count != 1 else ''}{hint if open_count else ''}")


@app.command()
def resolve(
    conflict: Annotated[
        str, typer.Argument(help="The conflict's id, or its first characters as listed.")
    ],
    action: Annotated[
        Action,
        typer.Option(
            "--action",
            help="keep: keep the central data; apply: apply the offline values "
            "(a patient registered offline becomes a new record); link: the patient "
            "registered offline is an existing one (give --patient).",
        ),
    ],
    patient: Annotated[
        str | None,
        typer.Option("--patient", help="For --action link: the existing patient's MRN or id."),
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="Why, for the record (one line).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a conflict by keeping the central data, applying the offline values, or linking."""
    settings = settings_or_exit()

    view = run_as_user(
        settings,
        lambda ctx: sync.resolve_conflict(
            ctx, conflict_id=conflict, action=action.value, note=note, patient=patient
        ),
    )
    if as_json:
        print_json(_row(view, full_id=True))
    info(f"Resolved conflict {str(view.id)[:8]}: {view.resolution}.")
