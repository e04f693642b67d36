"""The shape of the ``iqms`` command: output options, one-line errors with documented exit
codes, and shell completion through Typer's standard options."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from iqms.cli import app
from iqms.commands._common import ExitCode
from tests.test_cli_admin_report import CliClinic, make_cli_clinic

runner = CliRunner()
README = Path(__file__).resolve().parent.parent / "README.md"


# Typer 0.29 builds its commands on its own copy of click (typer._click), so the walk goes by
# shape (groups have ``list_commands``, parameters a ``param_type_name``), not by click classes.
# Groups import their subcommands lazily: the walk asks each group for them by name.
def _is_group(cmd: Any) -> bool:
    return hasattr(cmd, "list_commands")


def _walk(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    found = [(path, cmd)]
    if _is_group(cmd):
        ctx = typer._click.Context(cmd)
        for name in cmd.list_commands(ctx):
            found += _walk(cmd.get_command(ctx, name), [*path, name])
    return found


def _options(cmd: Any) -> set[str]:
    return {opt for p in cmd.params if p.param_type_name == "option" for opt in p.opts}


def test_the_walk_sees_every_command() -> None:
    paths = [" ".join(p) for p, _ in _walk(typer.main.get_command(app), [])]
    for expected in ("db upgrade", "admin report", "admin export queue", "admin export audit"):
        assert expected in paths


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, cmd in _walk(typer.main.get_command(app), []):
        if not (cmd.help or cmd.short_help):
            missing.append(" ".join(path) or "iqms")
        for param in cmd.params:
            if param.param_type_name == "option" and not param.help and not param.hidden:
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert missing == []


def test_help_shows_no_type_marker_for_on_off_flags() -> None:
    """Flags take no value: no ``<bool>`` after ``--json`` or ``--help`` in any help text."""
    shown = []
    for path, _ in _walk(typer.main.get_command(app), []):
        result = runner.invoke(app, [*path, "--help"], prog_name="iqms", env={"COLUMNS": "120"})
        assert result.exit_code == 0, (path, result.output)
        assert "--help" in result.stdout
        if "<bool>" in result.stdout:
            shown.append(" ".join(path) or "iqms")
    assert shown == []
    # Options that take a value still say what kind of value.
    transfer = runner.invoke(app, ["queue", "transfer", "--help"], env={"COLUMNS": "120"})
    assert re.search(r"--department\s+-d\s+<str>", transfer.stdout)


def test_every_listing_command_prints_json_and_csv() -> None:
    root = typer.main.get_command(app)
    listings = [
        (path, cmd)
        for path, cmd in _walk(root, [])
        if not _is_group(cmd) and path and path[-1] in {"list", "report"}
    ]
    assert ["admin", "report"] in [p for p, _ in listings]
    missing = [" ".join(path) for path, cmd in listings if not {"--json", "--csv"} <= _options(cmd)]
    assert missing == []


def test_readme_documents_the_exit_codes() -> None:
    table = dict(re.findall(r"^\| (\d) \| (.+?) \|$", README.read_text(), flags=re.M))
    assert {int(code) for code in table} == {c.value for c in ExitCode if c.value < 10}
    assert "not found" in table[str(ExitCode.NOT_FOUND.value)]
    assert "permission" in table[str(ExitCode.PERMISSION_DENIED.value)]
    assert "not logged in" in table[str(ExitCode.NOT_AUTHENTICATED.value)]
    assert "invalid input" in table[str(ExitCode.INVALID.value)]


@pytest.fixture
def clinic(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> CliClinic:
    return make_cli_clinic(tmp_path, sqlite_url, monkeypatch)


RANGE = ["--from", "2026-01-12", "--to", "2026-01-13"]
COMMANDS = {
    "report": ["admin", "report", *RANGE],
    "export queue": ["admin", "export", "queue", *RANGE, "-o", "-"],
    "export audit": ["admin", "export", "audit", *RANGE, "-o", "-"],
}

# (command, who, extra arguments, exit code, the error line)
CASES = [
    (name, None, [], ExitCode.NOT_AUTHENTICATED, "not logged in; run 'iqms login'")
    for name in COMMANDS
] + [
    ("report", "staff", [], ExitCode.PERMISSION_DENIED, "reception staff cannot see reports (logged in as rita)"),
    ("export queue", "staff", [], ExitCode.PERMISSION_DENIED, "reception staff cannot export records (logged in as rita)"),
    ("export audit", "staff", [], ExitCode.PERMISSION_DENIED, "reception staff cannot export records (logged in as rita)"),
    ("report", "admin", ["--from", "2026-02-30"], ExitCode.INVALID,
     "--from: '2026-02-30' is not a date (use YYYY-MM-DD or 'today')"),
    ("report", "admin", ["--to", "2026-01-01"], ExitCode.INVALID,
     "the start date 2026-01-12 is after the end date 2026-01-01"),
    ("report", "admin", ["--html", "/no/such/dir/r.html"], ExitCode.INVALID,
     "--html: directory /no/such/dir does not exist"),
    ("export queue", "admin", ["--format", "xlsx"], ExitCode.INVALID,
     "--format: 'xlsx' is not one of csv, jsonl"),
    ("export audit", "admin", ["--to", "last week"], ExitCode.INVALID,
     "--to: 'last week' is not a date (use YYYY-MM-DD or 'today')"),
    ("report", "admin", ["--department", "XYZ"], ExitCode.NOT_FOUND,
     "no department with code 'XYZ'"),
    ("report", "admin", ["--doctor", "drwho"], ExitCode.NOT_FOUND,
     "no doctor with username 'drwho'"),
    ("export queue", "admin", ["--department", "XYZ"], ExitCode.NOT_FOUND,
     "no department with code 'XYZ'"),
    ("report", "admin", ["--json", "--csv"], ExitCode.USAGE, "choose one of --json and --csv"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "who", "extra", "code", "message"),
    CASES,
    ids=[f"{c[0]}-{c[3].name.lower()}-{i}" for i, c in enumerate(CASES)],
)
def test_errors_are_one_line_on_stderr_with_the_documented_exit_code(
    clinic: CliClinic, command: str, who: str | None, extra: list[str], code: int, message: str
) -> None:
    token = {"admin": clinic.admin_token, "staff": clinic.staff_token, None: None}[who]
    env = {"IQMS_TOKEN": token} if token else {}
    result = runner.invoke(app, [*COMMANDS[command], *extra], env=env, prog_name="iqms")
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("iqms: error: ")
    assert message in lines[0]
    assert result.stdout == ""


def test_shell_completion_script_and_install(tmp_path: Path) -> None:
    shown = runner.invoke(app, ["--show-completion", "bash"], prog_name="iqms")
    assert shown.exit_code == 0
    assert "_IQMS_COMPLETE=complete_bash" in shown.stdout
    assert "complete -o default -F _iqms_completion iqms" in shown.stdout

    installed = runner.invoke(
        app, ["--install-completion", "bash"], prog_name="iqms", env={"HOME": str(tmp_path)}
    )
    assert installed.exit_code == 0, installed.output
    script = tmp_path / ".bash_completions" / "iqms.sh"
    assert "_iqms_completion" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("iqms adm", "1", {"admin"}),
        ("iqms admin rep", "2", {"report"}),
        ("iqms admin export ", "3", {"queue", "audit"}),
        ("iqms admin export queue --fo", "4", {"--format", "--force"}),
    ],
)
def test_completion_suggests_commands_and_options(
    words: str, cword: str, expected: set[str]
) -> None:
    env = {"_IQMS_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    result = runner.invoke(app, [], prog_name="iqms", env=env)
    assert result.exit_code == 0
    assert set(result.stdout.split()) == expected
