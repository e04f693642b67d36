"""``iqms admin doctors ...``: doctors, their departments and rooms, and their status."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from iqms.commands._common import (
    CsvOpt,
    JsonOpt,
    info,
    print_json,
    print_rows,
    settings_or_exit,
)
from iqms.commands._session import run_as_user
from iqms.core.enums import DoctorStatus
from iqms.core.schemas.clinic import DoctorOut
from iqms.core.services import clinic

app = typer.Typer(
    help="Doctors: add a doctor account to a department and room, move rooms, set status.",
    no_args_is_help=True,
)

DoctorArg = Annotated[str, typer.Argument(help="The doctor's username (or doctor id).")]
LIST_COLUMNS = ["username", "full_name", "department_code", "room", "status"]


def _row(d: DoctorOut, machine: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "username": d.username,
        "full_name": d.full_name,
        "department_code": d.department_code,
        "room": d.room,
        "status": d.status.value,
    }
    if machine:
        row.update(id=str(d.id), user_id=str(d.user_id), status_changed_at=d.status_changed_at)
    return row


def _show(d: DoctorOut, as_json: bool) -> None:
    if as_json:
        print_json(d.model_dump(mode="json"))
    else:
        print_rows([_row(d, False)], LIST_COLUMNS)


@app.command()
def add(
    username: Annotated[str, typer.Argument(help="An existing account with the doctor role.")],
    department: Annotated[
        str, typer.Option("--department", "-d", help="Department code (like GEN).")
    ],
    room: Annotated[str, typer.Option("--room", help="Consulting room shown to patients.")],
    as_json: JsonOpt = False,
) -> None:
    """Set up a doctor account in a department and room (status starts as off)."""
    settings = settings_or_exit()

    doc = run_as_user(
        settings,
        lambda ctx: clinic.create_doctor(ctx, user=username, department=department, room=room),
    )
    info(f"{doc.full_name} works in {doc.department_code}, {doc.room} (status: off).")
    _show(doc, as_json)


@app.command("list")
def list_(
    department: Annotated[
        str | None, typer.Option("--department", "-d", help="Only this department.")
    ] = None,
    status: Annotated[
        DoctorStatus | None, typer.Option("--status", help="Only doctors with this status.")
    ] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """List doctors with department, room and status."""
    settings = settings_or_exit()

    machine = as_json or as_csv
    rows = [
        _row(d, machine)
        for d in run_as_user(
            settings, lambda ctx: clinic.list_doctors(ctx, department=department, status=status)
        )
    ]
    columns = ["id", *LIST_COLUMNS, "user_id", "status_changed_at"] if machine else LIST_COLUMNS
    print_rows(rows, columns, as_json=as_json, as_csv=as_csv, title="Doctors")


@app.command()
def room(
    doctor: DoctorArg,
    new_room: Annotated[str, typer.Argument(help="The new room (like Room 4).")],
    department: Annotated[
        str | None, typer.Option("--department", "-d", help="Also move to this department.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a doctor to another room (and optionally another department)."""
    settings = settings_or_exit()

    doc = run_as_user(
        settings,
        lambda ctx: clinic.assign_room(ctx, doctor=doctor, room=new_room, department=department),
    )
    info(f"{doc.full_name}: {doc.department_code}, {doc.room}.")
    _show(doc, as_json)


@app.command()
def status(
    new_status: Annotated[DoctorStatus, typer.Argument(help="available, paused or off.")],
    doctor: Annotated[
        str | None,
        typer.Option("--doctor", help="Whose status (doctors leave it out to set their own)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a doctor available, paused or off (doctors may set only their own)."""
    settings = settings_or_exit()

    doc = run_as_user(
        settings, lambda ctx: clinic.set_doctor_status(ctx, status=new_status, doctor=doctor)
    )
    info(f"{doc.full_name} ({doc.room}) is now {doc.status.value}.")
    _show(doc, as_json)
