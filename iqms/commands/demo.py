"""``iqms demo``: a demo clinic on its own SQLite database, nothing to install."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from iqms.commands._common import run, settings_or_exit
from iqms.core.config import Settings
from iqms.core.demo import DemoSummary, create_demo, demo_database_path


def demo(
    path: Annotated[
        Path | None,
        typer.Option(
            "--path",
            help="Where to create the demo database (default: DATA_DIR/demo/iqms-demo.db).",
        ),
    ] = None,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate/--no-simulate",
            help="Also simulate yesterday morning on the demo clinic and print its report.",
        ),
    ] = True,
) -> None:
    """Create a fresh demo clinic (separate SQLite database) and show what is in it."""
    settings = settings_or_exit()
    target = path or demo_database_path(settings)
    summary = run(lambda: create_demo(settings, path=target))
    _print_summary(summary)
    if simulate:
        _simulated_morning(settings, summary)


def _simulated_morning(settings: Settings, summary: DemoSummary) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    from iqms.simulation.demo_morning import simulate_demo_morning
    from iqms.simulation.report import render_report

    err = Console(stderr=True)
    with Progress(
        TextColumn("simulating yesterday morning"),
        BarColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("morning", total=1.0)
        report = run(
            lambda: simulate_demo_morning(
                settings,
                summary.database_url,
                progress=lambda done, total: bar.update(task, completed=done / total),
            )
        )
    console = Console()
    console.print()
    render_report(report, console, brief=True)
    console.print(
        "Those patients were served by the demo's doctors through the real queue engine, "
        "so today's wait estimates already learn from them. A whole day: iqms simulate"
    )


def command_name() -> str:
    """How to run ``iqms`` again from this shell: ``iqms`` when that is this program on the
    PATH, else the path this one was started by (``.venv/bin/iqms`` after ``make demo``)."""
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    on_path = shutil.which("iqms")
    if started is None or not started.name.startswith("iqms") or not started.exists():
        return "iqms" if on_path else f"{shlex.quote(sys.executable)} -m iqms"
    if on_path and Path(on_path).resolve() == started.resolve():
        return "iqms"
    return shlex.quote(str(started))


def _print_summary(summary: DemoSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]IQMS demo clinic[/bold] created at {summary.path}")
    depts = Table(title="Departments", header_style="bold")
    for col in ("code", "name", "ticket prefix"):
        depts.add_column(col)
    for row in summary.departments:
        depts.add_row(*row)
    console.print(depts)
    docs = Table(title="Doctors", header_style="bold")
    for col in ("doctor", "department", "room"):
        docs.add_column(col)
    for row in summary.doctors:
        docs.add_row(*row)
    console.print(docs)
    accounts = Table(title="Demo accounts (passwords are new for every demo)", header_style="bold")
    for col in ("username", "role", "password"):
        accounts.add_column(col)
    for row in summary.accounts:
        accounts.add_row(*row)
    console.print(accounts)
    waiting = ", ".join(f"{t} ({d}, cat {c})" for t, d, c in summary.waiting)
    console.print(
        f"{summary.patients} patients registered; {len(summary.waiting)} tickets waiting: {waiting}"
    )
    iqms = command_name()
    console.print("\n[bold]Next[/bold]: point IQMS at the demo database and look around:")
    steps = [
        (f"export IQMS_DATABASE_URL={shlex.quote(summary.database_url)}", ""),
        (f"{iqms} login reception", "the password is in the table above"),
        (f"{iqms} queue list", "the queue in calling order, with estimated waits"),
        (f"{iqms} patients list Hughes", "find a patient by name, MRN or phone"),
        (f"{iqms} queue issue -d GEN", "a new ticket for General Practice"),
        (f"{iqms} login drsmith && {iqms} queue call-next", "a doctor calls the next patient"),
        (f"{iqms} doctor", "drsmith's console: call, see and finish patients"),
    ]
    width = min(max(len(command) for command, _ in steps[1:]), 40) + 2
    for command, comment in steps:
        line = command + " " * max(width - len(command), 2) + f"# {comment}" if comment else command
        console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)
    if iqms != "iqms":
        console.print(
            f"  ('{iqms}' because 'iqms' is not on your PATH here; 'source .venv/bin/activate' "
            "in the project folder puts it there)",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
