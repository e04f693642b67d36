"""``iqms simulate``: a simulated clinic day on the real queue engine, and its report."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from iqms.commands._common import (
    ExitCode,
    JsonOpt,
    exit_code_for,
    fail,
    print_json,
    run,
    settings_or_exit,
)
from iqms.core.errors import IQMSError


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"--day {value!r} is not a date like 2026-03-02", ExitCode.USAGE)


def simulate(
    scenario: Annotated[
        Path | None,
        typer.Option(
            "--scenario",
            "-s",
            help="Scenario file (.toml, .yaml or .yml); default: a built-in weekday of about "
            "300 patients (iqms/simulation/weekday.toml; more in examples/scenarios/).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Random seed; the same seed gives the same report."),
    ] = None,
    patients: Annotated[
        int | None,
        typer.Option(
            "--patients",
            min=1,
            max=20000,
            help="Scale the arrival rates so that about this many patients arrive.",
        ),
    ] = None,
    no_show_rate: Annotated[
        float | None,
        typer.Option(
            "--no-show-rate", min=0.0, max=1.0, help="Share of called patients who never come."
        ),
    ] = None,
    day: Annotated[
        str | None,
        typer.Option(
            "--day", help="Simulated date, YYYY-MM-DD (default: the scenario's, or today)."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Run on this database (migrated first; it must not already have the "
            "scenario's departments). Default: a throwaway SQLite file, deleted afterwards.",
        ),
    ] = None,
    as_json: JsonOpt = False,
    progress: Annotated[
        bool,
        typer.Option("--progress/--no-progress", help="Show a progress bar on stderr."),
    ] = True,
) -> None:
    """Simulate a clinic day through the real queue engine and report waits and estimate accuracy."""
    from iqms.simulation.scenario import default_scenario, load_scenario

    settings = settings_or_exit()
    chosen_day = _parse_day(day)

    try:
        plan = load_scenario(scenario) if scenario is not None else default_scenario()
        if patients is not None:
            plan = plan.scaled_to(patients)
    except IQMSError as exc:
        fail(str(exc), exit_code_for(exc))
    if no_show_rate is not None:
        plan = replace(plan, no_show_rate=no_show_rate)
    report = run(lambda: _simulate(plan, settings, seed, chosen_day, database_url, show=progress))
    if as_json:
        print_json(report)
        return
    from rich.console import Console

    from iqms.simulation.report import render_report

    render_report(report, Console())


async def _simulate(
    plan: Any,
    settings: Any,
    seed: int | None,
    day: date | None,
    database_url: str | None,
    *,
    show: bool,
) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from iqms.simulation.runner import simulate as run_simulation

    console = Console(stderr=True)
    with Progress(
        TextColumn("simulating {task.description}"),
        BarColumn(),
        TextColumn("{task.fields[clock]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show or not console.is_terminal,
    ) as bar:
        task = bar.add_task(plan.name, total=100.0, clock="")

        def tick(done: float, total: float) -> None:
            minute = int(plan.opens + done)
            bar.update(
                task,
                completed=100.0 * done / total,
                clock=f"{minute // 60:02d}:{minute % 60:02d}",
            )

        return await run_simulation(
            plan, settings, database_url=database_url, seed=seed, day=day, progress=tick
        )
