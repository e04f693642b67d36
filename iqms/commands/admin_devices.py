"""``iqms admin devices ...``: kiosks and display boards and their device keys."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import typer

from iqms.commands._common import CsvOpt, JsonOpt, info, local_time, print_json, print_rows
from iqms.commands._common import settings_or_exit as _settings
from iqms.commands._session import run_as_user
from iqms.core.schemas.devices import DeviceOut, IssuedDeviceKey
from iqms.core.services import devices

app = typer.Typer(
    help="Kiosks and display boards: add one (its key is printed once), list, revoke, new key.",
    no_args_is_help=True,
)


class KeyRole(StrEnum):
    KIOSK = "kiosk"
    DISPLAY = "display"


NameArg = Annotated[str, typer.Argument(help="The device's name, e.g. entrance-kiosk.")]
LIST_COLUMNS = ["name", "kind", "status", "key_issued_at", "last_seen_at", "fault"]
TIME_COLUMNS = ("key_issued_at", "revoked_at", "last_seen_at", "created_at", "fault_at")


def _row(device: DeviceOut) -> dict[str, object]:
    fault = None
    if device.fault_state:
        fault = device.fault_state + (f": {device.fault_message}" if device.fault_message else "")
    return {
        "id": str(device.id),
        "name": device.name,
        "kind": device.kind.value,
        "role": device.role.value if device.role else None,
        "status": device.status,
        "key_issued_at": device.key_issued_at,
        "revoked_at": device.revoked_at,
        "last_seen_at": device.last_seen_at,
        "created_at": device.created_at,
        "fault": fault,
        "fault_state": device.fault_state,
        "fault_message": device.fault_message,
        "fault_at": device.fault_at,
    }


def _hand_over(issued: IssuedDeviceKey, what: str, as_json: bool) -> None:
    """Print the key once: on stdout (data), with what to do with it on stderr."""
    device = issued.device
    if as_json:
        print_json({**_row(device), "key": issued.key})
    else:
        typer.echo(issued.key)
    info(
        f"{what} {device.kind.value} {device.name}. Its key is shown this once: on the "
        f"{device.kind.value}, run 'iqms device set-key' and paste it (or set IQMS_DEVICE_KEY)."
    )


@app.command()
def add(
    name: NameArg,
    role: Annotated[
        KeyRole,
        typer.Option("--role", help="kiosk (issues tickets) or display (shows the board)."),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Add a kiosk or display board and print its device key (shown only this once)."""
    settings = _settings()
    issued = run_as_user(settings, lambda ctx: devices.add(ctx, name=name, role=role.value))
    _hand_over(issued, "Added", as_json)


@app.command("list")
def list_(
    active_only: Annotated[
        bool, typer.Option("--active-only", help="Leave out revoked devices.")
    ] = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """List devices: kind, key status, last contact and any printer fault they reported."""
    settings = _settings()
    rows = [
        _row(d)
        for d in run_as_user(
            settings, lambda ctx: devices.list_devices(ctx, include_revoked=not active_only)
        )
    ]
    columns = LIST_COLUMNS
    if as_json or as_csv:  # machines get every field
        columns = [
            "id", "name", "kind", "role", "status", "key_issued_at", "revoked_at",
            "last_seen_at", "created_at", "fault_state", "fault_message", "fault_at",
        ]  # fmt: skip
    else:
        for row in rows:
            for key in TIME_COLUMNS:
                when = row[key]
                if isinstance(when, datetime):
                    row[key] = local_time(settings, when)
    print_rows(rows, columns, as_json=as_json, as_csv=as_csv, title="Devices")


@app.command()
def revoke(name: NameArg) -> None:
    """Revoke a device's key at once: it can no longer sign in, issue tickets or sync."""
    settings = _settings()
    device = run_as_user(settings, lambda ctx: devices.revoke(ctx, device=name))
    info(f"The key of {device.kind.value} {device.name} is revoked.")


@app.command("new-key")
def new_key(name: NameArg, as_json: JsonOpt = False) -> None:
    """Give a device a new key (the old key stops working; a revoked device comes back)."""
    settings = _settings()
    issued = run_as_user(settings, lambda ctx: devices.new_key(ctx, device=name))
    _hand_over(issued, "New key for", as_json)
