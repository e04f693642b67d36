"""``iqms admin export``: queue history and audit records to CSV or JSON lines, streamed."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from iqms.commands._common import ExitCode, fail, info, run, settings_or_exit
from iqms.commands._session import open_context
from iqms.commands.admin_report import date_range
from iqms.core.services import exports
from iqms.reporting.writers import FORMATS, RowWriter, writer_for

app = typer.Typer(
    help="Export queue history or audit records to CSV or JSON lines.", no_args_is_help=True
)

FromOpt = Annotated[
    str, typer.Option("--from", metavar="DATE", help="First day, YYYY-MM-DD (required).")
]
ToOpt = Annotated[
    str | None,
    typer.Option("--to", metavar="DATE", help="Last day, YYYY-MM-DD (default: today)."),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        metavar="csv|jsonl",
        help="Output format (default: from the file name, else csv).",
    ),
]
OutputOpt = Annotated[
    str,
    typer.Option(
        "--output", "-o", metavar="FILE", help="File to write, or '-' for standard output."
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace FILE if it already exists.")]


def _format(fmt: str | None, output: str) -> str:
    if fmt is None:
        return "jsonl" if output.lower().endswith((".jsonl", ".json", ".ndjson")) else "csv"
    if fmt.lower() not in FORMATS:
        fail(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}", ExitCode.INVALID)
    return fmt.lower()


def _check_output(output: str, force: bool) -> Path | None:
    if output == "-":
        return None
    path = Path(output)
    if path.is_dir():
        fail(f"--output: {path} is a directory", ExitCode.INVALID)
    if not path.parent.is_dir():
        fail(f"--output: directory {path.parent} does not exist", ExitCode.INVALID)
    if path.exists() and not force:
        fail(f"{path} already exists; use --force to replace it", ExitCode.CONFLICT)
    return path


@contextmanager
def _destination(path: Path | None) -> Iterator[IO[str]]:
    """Standard output, or a temporary file renamed to ``path`` only when the export completes."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _run_export(
    what: str,
    columns: tuple[str, ...],
    call: Callable[..., Any],
    start: date,
    end: date,
    fmt: str,
    output: str,
    force: bool,
    **kwargs: Any,
) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    settings = settings_or_exit()
    path = _check_output(output, force)
    console = Console(stderr=True)
    progress = Progress(
        TextColumn(f"Exporting {what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = progress.add_task(what, total=None)

    async def go() -> int:
        async with open_context(settings) as ctx:
            with _destination(path) as stream, progress:
                writers: list[RowWriter] = []

                def on_start(total: int) -> None:
                    # Called once the export is allowed and valid: only now write a header.
                    writers.append(writer_for(fmt, stream, columns))
                    progress.update(task, total=total)

                def on_rows(rows: list[dict[str, Any]]) -> None:
                    writers[0].write(rows)
                    progress.advance(task, len(rows))

                return int(
                    await call(
                        ctx,
                        date_from=start,
                        date_to=end,
                        on_rows=on_rows,
                        on_start=on_start,
                        destination=str(path) if path else "stdout",
                        **kwargs,
                    )
                )

    try:
        count = run(go)
    except OSError as exc:  # the output could not be written (disk full, permissions)
        fail(f"cannot write {output}: {exc.strerror}", ExitCode.INVALID)
    where = f"to {path}" if path else "to standard output"
    info(f"Exported {count:,} {what} rows ({start} to {end}, {fmt}) {where}.")


@app.command("queue")
def queue(
    date_from: FromOpt,
    output: OutputOpt,
    date_to: ToOpt = None,
    department: Annotated[
        str | None,
        typer.Option("--department", "-d", metavar="CODE", help="Only this department (code)."),
    ] = None,
    fmt: FormatOpt = None,
    force: ForceOpt = False,
) -> None:
    """Queue history: every ticket of the service days in the range, in arrival order."""
    settings = settings_or_exit()
    start, end = date_range(settings.tz, date_from, date_to)
    _run_export(
        "queue history",
        exports.QUEUE_COLUMNS,
        exports.export_queue_history,
        start,
        end,
        _format(fmt, output),
        output,
        force,
        department=department,
    )


@app.command("audit")
def audit(
    date_from: FromOpt,
    output: OutputOpt,
    date_to: ToOpt = None,
    fmt: FormatOpt = None,
    force: ForceOpt = False,
) -> None:
    """Audit records of the days in the range (clinic time), in chain order."""
    settings = settings_or_exit()
    start, end = date_range(settings.tz, date_from, date_to)
    _run_export(
        "audit record",
        exports.AUDIT_COLUMNS,
        exports.export_audit_records,
        start,
        end,
        _format(fmt, output),
        output,
        force,
    )
