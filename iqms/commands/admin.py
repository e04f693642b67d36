"""``iqms admin``: accounts, clinic setup, audit, notifications, reports."""

from __future__ import annotations

import typer

from iqms.commands._lazy import LazyCommand, lazy_group

# Each sub-group lives in its own module (iqms/commands/admin_*.py), imported when it runs.
COMMANDS: dict[str, LazyCommand] = {
    "bootstrap": LazyCommand(
        "iqms.commands.admin_users:bootstrap",
        "Create the first administrator of a new installation (refused once one exists).",
    ),
    "report": LazyCommand(
        "iqms.commands.admin_report:report",
        "Patient volumes, waits, service times, no-shows and triage targets for a date range.",
    ),
    "users": LazyCommand(
        "iqms.commands.admin_users:app",
        "Accounts: add, list, disable, enable, reset passwords, change roles.",
    ),
    "audit": LazyCommand(
        "iqms.commands.admin_audit:app", "The audit trail: verify the hash chain, show records."
    ),
    "notifications": LazyCommand(
        "iqms.commands.admin_notifications:app",
        "Patient messages (SMS, push): list them, retry failed ones, send a test SMS.",
    ),
    "sync": LazyCommand(
        "iqms.commands.admin_sync:app",
        "Offline sync conflicts: operations from terminals kept for staff review.",
    ),
    "departments": LazyCommand(
        "iqms.commands.admin_departments:app",
        "Departments: add, list, change ticket prefix and triage targets, close.",
    ),
    "doctors": LazyCommand(
        "iqms.commands.admin_doctors:app",
        "Doctors: add a doctor account to a department and room, move rooms, set status.",
    ),
    "devices": LazyCommand(
        "iqms.commands.admin_devices:app",
        "Kiosks and display boards: add one (its key is printed once), list, revoke, new key.",
    ),
    "display": LazyCommand(
        "iqms.commands.admin_display:app",
        "Waiting-room boards: the message line every board shows (set, clear, show).",
    ),
    "export": LazyCommand(
        "iqms.commands.admin_export:app",
        "Export queue history or audit records to CSV or JSON lines.",
    ),
}

app = typer.Typer(
    cls=lazy_group(COMMANDS),
    help="Administration: accounts, clinic setup, audit, notifications, reports.",
    no_args_is_help=True,
)
