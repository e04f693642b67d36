"""``iqms admin report``: the clinic's numbers for a date range, for people and machines."""

from __future__ import annotations

import os
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

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
from iqms.core.clock import SystemClock, service_date
from iqms.core.services import reports

DEFAULT_DAYS = 30


def parse_day(value: str, option: str, today: date) -> date:
    """A service day from YYYY-MM-DD, 'today' or 'yesterday'; exit 7 with one line otherwise."""
    text = value.strip().lower()
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {value!r} is not a date (use YYYY-MM-DD or 'today')", ExitCode.INVALID)


def date_range(tz: ZoneInfo, date_from: str | None, date_to: str | None) -> tuple[date, date]:
    """The range asked for; by default the last 30 days up to today (clinic time)."""
    today = service_date(SystemClock().now(), tz)
    end = parse_day(date_to, "--to", today) if date_to else today
    start = (
        parse_day(date_from, "--from", today)
        if date_from
        else end - timedelta(days=DEFAULT_DAYS - 1)
    )
    return start, end


def write_atomically(path: Path, content: str) -> None:
    """Write a file through a temporary file in the same directory, so it is whole or absent."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        # mkstemp makes the file private; a report is for sharing (the umask still applies)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def report(
    date_from: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="DATE",
            help="First service day, YYYY-MM-DD (default: 30 days up to --to).",
        ),
    ] = None,
    date_to: Annotated[
        str | None,
        typer.Option("--to", metavar="DATE", help="Last service day, YYYY-MM-DD (default: today)."),
    ] = None,
    department: Annotated[
        str | None,
        typer.Option("--department", "-d", metavar="CODE", help="Only this department (code)."),
    ] = None,
    doctor: Annotated[
        str | None,
        typer.Option("--doctor", metavar="USERNAME", help="Only tickets of this doctor."),
    ] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            dir_okay=False,
            help="Write a self-contained HTML report (tables and charts) to FILE.",
        ),
    ] = None,
) -> None:
    """Patient volumes, waits, service times, no-shows and triage targets for a date range.

    Waits are shown by department, triage category, hour of day and doctor
    (mean, median, 90th percentile), with bar charts where they say more than
    a table. --json and --csv print the same numbers for machines.
    """
    if as_json and as_csv:
        fail("choose one of --json and --csv", ExitCode.USAGE)
    settings = settings_or_exit()
    start, end = date_range(settings.tz, date_from, date_to)
    if html is not None and not html.parent.is_dir():
        fail(f"--html: directory {html.parent} does not exist", ExitCode.INVALID)

    result = run_as_user(
        settings,
        lambda ctx: reports.clinic_report(
            ctx, date_from=start, date_to=end, department=department, doctor=doctor
        ),
    )

    from iqms.reporting.data import CSV_COLUMNS, report_to_dict, report_to_rows

    if html is not None:
        from iqms.reporting.html import render_html

        try:
            write_atomically(html, render_html(result, clinic_name=settings.clinic_name))
        except OSError as exc:
            fail(f"cannot write {html}: {exc.strerror}", ExitCode.INVALID)
        info(f"Wrote the HTML report to {html}")
    if as_json:
        print_json(report_to_dict(result))
    elif as_csv:
        print_rows(list(report_to_rows(result)), CSV_COLUMNS, as_csv=True)
    elif html is None:
        from rich.console import Console

        from iqms.reporting.terminal import render

        render(result, Console(), clinic_name=settings.clinic_name)
