"""``iqms admin audit verify|show``: check and read the tamper-evident audit trail."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from iqms.commands._common import (
    CsvOpt,
    ExitCode,
    JsonOpt,
    fail,
    print_json,
    print_rows,
    settings_or_exit,
)
from iqms.commands._session import run_as_user
from iqms.core.services import audit

app = typer.Typer(
    help="The audit trail: verify the hash chain, show records.", no_args_is_help=True
)

SHOW_COLUMNS = ["seq", "at", "actor", "role", "action", "target", "details"]


def parse_when(value: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """An ISO date or date-time; without a zone it is clinic time. A bare date as an end
    means the end of that day."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            when = datetime.combine(day + timedelta(days=1) if end else day, time(), tz)
        else:
            when = datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"{value!r} is not a date or time (use e.g. 2026-01-05 or 2026-01-05T14:30)",
            ExitCode.USAGE,
        )
    return when if when.tzinfo is not None else when.replace(tzinfo=tz)


def _anchor(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    seq, sep, digest = value.strip().partition(":")
    if not sep or not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        fail(
            "--anchor: write SEQ:HASH as 'audit verify' printed it (e.g. 1234:9f86d0...)",
            ExitCode.INVALID,
        )
    return int(seq), digest


@app.command()
def verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="SEQ:HASH printed by an earlier verify and kept outside the database; "
            "checks that nothing up to that record was rewritten since.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the whole hash chain; exit 1 naming the first record that does not hold.

    Verify proves that every record from the first to the chain head is present,
    unchanged and in order, and that none of the newest were deleted (the head,
    moved with every record, would point past them). It cannot catch someone who
    rewrites the log and the head together (anyone who can write an SQLite file; a
    PostgreSQL owner who disables the triggers): keep the printed head elsewhere,
    e.g. in a daily e-mail, and check it later with --anchor.
    """
    settings = settings_or_exit()
    noted = _anchor(anchor)

    result = run_as_user(settings, lambda ctx: audit.verify(ctx, anchor=noted))
    brk = result.first_break
    head = f"{result.head_seq}:{result.head_hash}" if result.head_hash else None
    if as_json:
        print_json(
            {
                "intact": result.intact,
                "checked": result.checked,
                "first_bad_seq": brk.seq if brk else None,
                "first_bad_id": brk.record_id if brk else None,
                "reason": brk.reason if brk else None,
                "head": head,
            }
        )
    if brk is not None:
        fail(
            f"audit trail broken at record {brk.seq}: {brk.reason} "
            f"({result.checked} records before it are intact)",
            ExitCode.FAILURE,
        )
    if not as_json:
        typer.echo(f"audit trail intact: {result.checked} records; head {head}")


@app.command()
def show(
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only records by this username.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="Only this action, or a prefix ending in '*' (user.*)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", help="Only records about TYPE or TYPE:ID (e.g. user:UUID)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="From this date or time on (ISO; clinic time if no zone)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Before this time; a bare date includes that whole day."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Show at most this many (the newest).")
    ] = 200,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Show audit records, oldest first, filtered by actor, action, target and time."""
    settings = settings_or_exit()
    tz = settings.tz
    start = parse_when(since, tz) if since else None
    end = parse_when(until, tz, end=True) if until else None
    target_type, _, target_id = (target or "").partition(":")

    entries = run_as_user(
        settings,
        lambda ctx: audit.show(
            ctx,
            actor=actor,
            action=action,
            target_type=target_type or None,
            target_id=target_id or None,
            since=start,
            until=end,
            limit=limit,
        ),
    )
    if as_json:
        print_json([e.as_dict() for e in entries])
        return
    rows = [
        {
            "seq": e.seq,
            "at": e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
            if not as_csv
            else e.at.isoformat(),
            "actor": e.actor,
            "role": e.role,
            "action": e.action,
            "target": e.target,
            "details": json.dumps(e.details, ensure_ascii=False, sort_keys=True),
        }
        for e in entries
    ]
    print_rows(rows, SHOW_COLUMNS, as_csv=as_csv, title="Audit trail")
