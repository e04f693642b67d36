"""``iqms admin users ...`` (accounts) and ``iqms admin bootstrap`` (the first administrator)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from iqms.commands._common import (
    CsvOpt,
    JsonOpt,
    info,
    local_time,
    print_rows,
    run,
    settings_or_exit,
)
from iqms.commands._session import open_context, run_as_user
from iqms.commands.auth import PasswordStdinOpt, read_password
from iqms.core.enums import Role
from iqms.core.schemas.users import UserOut
from iqms.core.services import auth, users

app = typer.Typer(
    help="Accounts: add, list, disable, enable, reset passwords, change roles.",
    no_args_is_help=True,
)

UsernameArg = Annotated[str, typer.Argument(help="The account's username.")]
PatientMrnOpt = Annotated[
    str | None,
    typer.Option("--patient-mrn", help="For a patient account: the MRN of the patient's record."),
]
LIST_COLUMNS = ["username", "full_name", "role", "status", "last_login_at", "locked_until"]


def _row(user: UserOut) -> dict[str, object]:
    return {
        "id": str(user.id),
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role.value,
        "status": user.status,
        "last_login_at": user.last_login_at,
        "locked_until": user.locked_until,
        "created_at": user.created_at,
        "patient_id": user.patient_id,
        "doctor_id": user.doctor_id,
        "device_id": user.device_id,
    }


@app.command()
def add(
    username: UsernameArg,
    full_name: Annotated[str, typer.Option("--full-name", help="The person's full name.")],
    role: Annotated[Role, typer.Option("--role", help="What the account may do.")],
    patient_mrn: PatientMrnOpt = None,
    password_stdin: PasswordStdinOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an account; you are asked for its first password."""
    settings = settings_or_exit()
    password = read_password(password_stdin, f"Password for {username}", confirm=True)

    user = run_as_user(
        settings,
        lambda ctx: users.create(
            ctx,
            username=username,
            full_name=full_name,
            role=role,
            password=password,
            patient_mrn=patient_mrn,
        ),
    )
    info(f"Created {user.role.value} account {user.username}.")
    if as_json:
        print_rows([_row(user)], list(_row(user)), as_json=True)


@app.command("list")
def list_(
    role: Annotated[
        Role | None, typer.Option("--role", help="Only accounts with this role.")
    ] = None,
    active_only: Annotated[
        bool, typer.Option("--active-only", help="Leave out disabled accounts.")
    ] = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """List accounts with their role and status (active, locked, disabled)."""
    settings = settings_or_exit()

    rows = [
        _row(u)
        for u in run_as_user(
            settings, lambda ctx: users.list_users(ctx, role=role, include_disabled=not active_only)
        )
    ]
    columns = LIST_COLUMNS
    if as_json or as_csv:  # machines get every field
        columns = ["id", *LIST_COLUMNS, "created_at", "patient_id", "doctor_id", "device_id"]
    else:  # people get clinic-local times to the minute
        for row in rows:
            for key in ("last_login_at", "locked_until"):
                when = row[key]
                if isinstance(when, datetime):
                    row[key] = local_time(settings, when)
    print_rows(rows, columns, as_json=as_json, as_csv=as_csv, title="Accounts")


@app.command()
def disable(username: UsernameArg) -> None:
    """Disable an account: it cannot log in, and its current logins end."""
    settings = settings_or_exit()

    user = run_as_user(settings, lambda ctx: users.disable(ctx, user=username))
    info(f"Account {user.username} is disabled.")


@app.command()
def enable(username: UsernameArg) -> None:
    """Enable a disabled account, and unlock one locked by failed logins."""
    settings = settings_or_exit()

    user = run_as_user(settings, lambda ctx: users.enable(ctx, user=username))
    info(f"Account {user.username} is active.")


@app.command("reset-password")
def reset_password(username: UsernameArg, password_stdin: PasswordStdinOpt = False) -> None:
    """Give an account a new password (its logins end; any lock is cleared)."""
    settings = settings_or_exit()
    password = read_password(password_stdin, f"New password for {username}", confirm=True)

    user = run_as_user(
        settings, lambda ctx: users.reset_password(ctx, user=username, new_password=password)
    )
    info(f"Password of {user.username} was reset; their logins have ended.")


@app.command("set-role")
def set_role(
    username: UsernameArg,
    role: Annotated[Role, typer.Argument(help="The new role.")],
    patient_mrn: PatientMrnOpt = None,
) -> None:
    """Change an account's role (its logins end, so the new role applies at once)."""
    settings = settings_or_exit()

    user = run_as_user(
        settings, lambda ctx: users.set_role(ctx, user=username, role=role, patient_mrn=patient_mrn)
    )
    info(f"Account {user.username} is now {user.role.value}.")


def bootstrap(
    username: Annotated[str, typer.Argument(help="Username of the first administrator.")],
    full_name: Annotated[str, typer.Option("--full-name", help="The administrator's full name.")],
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Create the first administrator of a new installation (refused once one exists)."""
    settings = settings_or_exit()
    password = read_password(password_stdin, f"Password for {username}", confirm=True)

    async def go() -> UserOut:
        async with open_context(settings, login=False) as ctx:  # checks the schema first
            return await auth.bootstrap(
                ctx, username=username, full_name=full_name, password=password
            )

    user = run(go)
    info(f"Created administrator {user.username}; now run 'iqms login {user.username}'.")
