"""``iqms admin``: accounts, clinic setup, audit, notifications, reports, exports."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Administration: accounts, clinic setup, audit, notifications, reports.",
    no_args_is_help=True,
)

# Each sub-group lives in its own module (iqms/commands/admin_*.py) and is added here.
from iqms.commands import admin_audit, admin_users  # noqa: E402

app.add_typer(admin_users.app, name="users")
app.add_typer(admin_audit.app, name="audit")
app.command(name="bootstrap")(admin_users.bootstrap)

from iqms.commands import admin_notifications  # noqa: E402

app.add_typer(admin_notifications.app, name="notifications")

from iqms.commands import admin_sync  # noqa: E402

app.add_typer(admin_sync.app, name="sync")

from iqms.commands import admin_departments, admin_doctors  # noqa: E402

app.add_typer(admin_departments.app, name="departments")
app.add_typer(admin_doctors.app, name="doctors")

from iqms.commands import admin_export, admin_report  # noqa: E402

app.command(name="report")(admin_report.report)
app.add_typer(admin_export.app, name="export")
