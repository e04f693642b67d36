"""``iqms --version`` and ``iqms --help`` start instantly: they import no command module,
no database library and none of the core; a command imports only its own group."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer

from iqms.cli import app

HEAVY = ("sqlalchemy", "pydantic_settings", "textual", "escpos", "fastapi", "iqms.core")


def _modules_after(args: list[str]) -> list[str]:
    code = (
        "import sys, json\n"
        "from iqms.cli import app\n"
        "try:\n"
        f"    app({args!r}, prog_name='iqms')\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout = sys.__stdout__\n"
        "print('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["admin", "--help"]])
def test_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    loaded = _modules_after(args)
    heavy = [m for m in loaded if m.startswith(HEAVY)]
    assert heavy == []
    if args[0] != "admin":  # Typer itself brings pydantic in to read a group's parameters
        assert "pydantic" not in loaded
    light = {"iqms.commands._lazy", "iqms.commands._echo"}
    commands = [m for m in loaded if m.startswith("iqms.commands.") and m not in light]
    assert commands == ["iqms.commands.admin"] if args[0] == "admin" else commands == []


def test_a_command_imports_only_its_own_group() -> None:
    loaded = _modules_after(["admin", "users", "--help"])
    commands = {m for m in loaded if m.startswith("iqms.commands.")}
    assert "iqms.commands.admin_users" in commands
    assert not commands & {"iqms.commands.queue", "iqms.commands.admin_report"}


def _lazy_groups() -> list[tuple[str, object]]:
    root = typer.main.get_command(app)
    ctx = typer._click.Context(root)
    return [("iqms", root), ("iqms admin", root.get_command(ctx, "admin"))]


@pytest.mark.parametrize(("path", "group"), _lazy_groups())
def test_listed_help_is_the_commands_own(path: str, group: object) -> None:
    """What ``--help`` lists without importing a command equals that command's own help."""
    ctx = typer._click.Context(group)
    for name, spec in group.lazy_commands.items():  # type: ignore[attr-defined]
        command = group.get_command(ctx, name)  # type: ignore[attr-defined]
        assert spec.help == command.get_short_help_str(limit=500), f"{path} {name}"
