"""``iqms admin departments ...``: the clinic's departments, ticket prefixes and triage targets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from iqms.commands._common import (
    CsvOpt,
    ExitCode,
    JsonOpt,
    fail,
    info,
    print_json,
    print_rows,
    settings_or_exit,
)
from iqms.commands._session import run_as_user
from iqms.core.schemas.clinic import DepartmentOut
from iqms.core.services import clinic

app = typer.Typer(
    help="Departments: add, list, change ticket prefix and triage targets, close.",
    no_args_is_help=True,
)

CodeArg = Annotated[str, typer.Argument(help="Department code (like GEN).")]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        "-t",
        help="Target wait override CATEGORY=MINUTES (e.g. 3=45); repeat for several.",
    ),
]
ServiceMinutesOpt = Annotated[
    int | None,
    typer.Option("--service-minutes", help="Typical consultation length in minutes (1-480)."),
]
LIST_COLUMNS = ["code", "name", "ticket_prefix", "active", "targets", "default_service_minutes"]


def parse_targets(values: list[str] | None) -> dict[str, int] | None:
    """``["3=45", "2=15"]`` -> ``{"3": 45, "2": 15}``; exits naming the option if malformed."""
    if not values:
        return None
    out: dict[str, int] = {}
    for value in values:
        category, sep, minutes = value.partition("=")
        if not sep or not minutes.strip().isdigit():
            fail(
                f"--target {value!r}: write CATEGORY=MINUTES, like 3=45 (field triage_targets)",
                ExitCode.INVALID,
            )
        out[category.strip()] = int(minutes)
    return out


def _row(d: DepartmentOut, machine: bool) -> dict[str, Any]:
    targets: Any = (
        {str(k): v for k, v in d.targets.items()}
        if machine
        else " ".join(f"{k}:{v}{'*' if str(k) in d.target_overrides else ''}"
                      for k, v in sorted(d.targets.items()))
    )  # fmt: skip
    row: dict[str, Any] = {
        "code": d.code,
        "name": d.name,
        "ticket_prefix": d.ticket_prefix,
        "active": d.active if machine else ("yes" if d.active else "closed"),
        "targets": targets,
        "default_service_minutes": d.default_service_minutes,
    }
    if machine:
        row["id"] = str(d.id)
        row["target_overrides"] = d.target_overrides
    return row


def _show(d: DepartmentOut, as_json: bool) -> None:
    if as_json:
        print_json(d.model_dump(mode="json"))
    else:
        print_rows([_row(d, False)], LIST_COLUMNS)


@app.command()
def add(
    code: CodeArg,
    name: Annotated[str, typer.Option("--name", help="Name shown to patients.")],
    prefix: Annotated[
        str, typer.Option("--prefix", help="1-3 letters before ticket numbers (like A).")
    ],
    target: TargetOpt = None,
    service_minutes: ServiceMinutesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a department with its ticket prefix and optional triage target overrides."""
    settings = settings_or_exit()
    targets = parse_targets(target)

    dept = run_as_user(
        settings,
        lambda ctx: clinic.create_department(
            ctx,
            code=code,
            name=name,
            ticket_prefix=prefix,
            triage_targets=targets,
            default_service_minutes=service_minutes or 12,
        ),
    )
    info(f"Added department {dept.code} ({dept.name}), tickets {dept.ticket_prefix}-001 ...")
    _show(dept, as_json)


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include closed departments.")] = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """List departments with their prefix and triage targets (* = overridden)."""
    settings = settings_or_exit()

    machine = as_json or as_csv
    rows = [
        _row(d, machine)
        for d in run_as_user(
            settings, lambda ctx: clinic.list_departments(ctx, include_inactive=all_)
        )
    ]
    columns = ["id", *LIST_COLUMNS, "target_overrides"] if machine else LIST_COLUMNS
    print_rows(rows, columns, as_json=as_json, as_csv=as_csv, title="Departments")


@app.command()
def show(code: CodeArg, as_json: JsonOpt = False) -> None:
    """Show one department."""
    settings = settings_or_exit()

    _show(run_as_user(settings, lambda ctx: clinic.get_department(ctx, department=code)), as_json)


@app.command()
def update(
    code: CodeArg,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="New ticket prefix (1-3 letters).")
    ] = None,
    target: TargetOpt = None,
    clear_targets: Annotated[
        bool, typer.Option("--clear-targets", help="Drop all overrides (back to the defaults).")
    ] = False,
    service_minutes: ServiceMinutesOpt = None,
    reopen: Annotated[bool, typer.Option("--reopen", help="Open a closed department.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Change a department; --target overrides are merged with the existing ones."""
    settings = settings_or_exit()
    targets = parse_targets(target)

    dept = run_as_user(
        settings,
        lambda ctx: clinic.update_department(
            ctx,
            department=code,
            name=name,
            ticket_prefix=prefix,
            triage_targets=targets,
            clear_targets=clear_targets,
            default_service_minutes=service_minutes,
            active=True if reopen else None,
        ),
    )
    info(f"Updated department {dept.code}.")
    _show(dept, as_json)


@app.command()
def close(code: CodeArg, as_json: JsonOpt = False) -> None:
    """Close a department to new tickets (those waiting can still be served)."""
    settings = settings_or_exit()

    dept = run_as_user(settings, lambda ctx: clinic.deactivate_department(ctx, department=code))
    info(f"Department {dept.code} is closed to new tickets.")
    _show(dept, as_json)
