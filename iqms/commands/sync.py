"""``iqms sync``: this terminal's offline journal (what waits to be synced) and pushing it now."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from iqms.commands._common import (
    ExitCode,
    JsonOpt,
    fail,
    info,
    kv,
    local_time,
    print_json,
    print_rows,
    run,
    settings_or_exit,
)
from iqms.commands._session import open_context, stored_token
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.errors import AuthenticationFailed, ConfigError, DatabaseUnavailable
from iqms.core.security.device_keys import stored_device_key
from iqms.core.sync.connectivity import Connectivity, SyncSummary
from iqms.core.sync.journal import Journal, JournalStatus

app = typer.Typer(
    help="Offline sync: what this terminal recorded while the database was away, and pushing it.",
    no_args_is_help=True,
)

RESULT_COLUMNS = ["seq", "kind", "result", "outcome", "reason"]


SECONDS = "%Y-%m-%d %H:%M:%S"


def _summary_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "nothing"


async def _reachable(settings: Settings) -> tuple[bool, str | None]:
    db = Database.from_settings(settings)
    try:
        await db.check()
        return True, None
    except DatabaseUnavailable as exc:
        return False, str(exc)
    finally:
        await db.dispose()


@app.command()
def status(
    check: Annotated[
        bool,
        typer.Option("--check/--no-check", help="Also check whether the central database answers."),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Pending offline operations, the last sync, offline numbers left, entries set aside."""
    settings = settings_or_exit()
    journal = _open_journal(settings)
    st: JournalStatus = journal.status()
    reachable: bool | None = None
    problem: str | None = None
    if check:
        reachable, problem = run(lambda: _reachable(settings))
    data: dict[str, Any] = {
        "device_id": str(st.device_id),
        "device_name": st.device_name,
        "journal": str(st.path),
        "pending": st.pending,
        "oldest_pending_at": st.oldest_pending_at,
        "last_sync_at": st.last_sync_at,
        "last_sync": st.last_sync_summary,
        "last_error": st.last_error,
        "numbers_left": {n.department_code: n.left for n in st.numbers_left},
        "set_aside": [
            {
                "seq": q.device_seq,
                "op_id": q.op_id,
                "kind": q.kind,
                "reason": q.reason,
                "set_aside_at": q.quarantined_at,
            }
            for q in st.quarantined
        ],
        "database_reachable": reachable,
        "database_problem": problem,
    }
    if as_json:
        print_json(data)
        return
    pending = str(st.pending)
    if st.oldest_pending_at:
        pending += (
            f" (oldest from {local_time(settings, st.oldest_pending_at, '%Y-%m-%d %H:%M:%S')})"
        )
    rows: list[tuple[str, Any]] = [
        ("device", f"{st.device_name or '(unnamed)'} ({st.device_id})"),
        ("pending operations", pending),
        (
            "last successful sync",
            f"{local_time(settings, st.last_sync_at, '%Y-%m-%d %H:%M:%S')} ({_summary_text(st.last_sync_summary)})"
            if st.last_sync_at
            else "never",
        ),
    ]
    if st.last_error:
        rows.append(("last push failed", st.last_error))
    for q in st.quarantined:
        rows.append((f"set aside (#{q.device_seq})", f"{q.kind or 'unreadable entry'}: {q.reason}"))
    if st.numbers_left:
        rows.append(
            (
                "offline numbers left today",
                ", ".join(f"{n.department_code} {n.left}" for n in st.numbers_left),
            )
        )
    if check:
        rows.append(("central database", "reachable" if reachable else f"unreachable: {problem}"))
    kv(rows)


def _open_journal(settings: Settings) -> Journal:
    try:
        return Journal.for_settings(settings)
    except ConfigError as exc:
        fail(str(exc), ExitCode.CONFIG)


@app.command()
def push(
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, max=1000, help="Operations sent per batch."),
    ] = 200,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="IQMS_SYNC_SERVER",
            help="Push over HTTPS to this 'iqms serve' (https://queue.clinic.org) instead of "
            "the database, as IQMS_TOKEN, the saved login or this kiosk's device key.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Push the offline journal now: to the central database, or over HTTPS with --server."""
    settings = settings_or_exit()
    journal = _open_journal(settings)
    waiting = journal.pending_count()
    if waiting == 0:
        info("Nothing to push: the offline journal is empty.")
        if as_json:
            print_json({"pushed": 0, "counts": {}, "results": []})
        return

    async def over_http(url: str) -> SyncSummary:
        from iqms.api.client import RemoteServer

        token = stored_token(settings) or stored_device_key(settings)
        if not token:
            raise AuthenticationFailed(
                f"no login for {url}: set IQMS_TOKEN to a token from POST {url}/api/auth/token, "
                "or store this kiosk's device key ('iqms device set-key')"
            )
        async with RemoteServer(url, token) as remote:
            try:
                return await remote.push_journal(journal, batch_size=batch_size)
            except DatabaseUnavailable as exc:
                left = journal.pending_count()
                raise DatabaseUnavailable(
                    f"{exc}; {left} operations stay in the journal for the next push"
                ) from exc

    async def go() -> SyncSummary:
        if server is not None:
            return await over_http(server)
        async with open_context(settings) as ctx:
            conn = Connectivity(ctx, journal, batch_size=batch_size)
            try:
                return await conn.push_pending()
            except DatabaseUnavailable as exc:
                left = journal.pending_count()
                raise DatabaseUnavailable(
                    f"{exc}; {left} operations stay in the journal for the next push"
                ) from exc

    summary = run(go)
    confirmed = journal.results(limit=summary.pushed) if summary.pushed else []
    rows = [
        {
            "seq": r.device_seq,
            "kind": r.kind,
            "result": r.result,
            "outcome": _outcome(r.details),
            "reason": r.details.get("reason"),
            "op_id": str(r.op_id),
            "details": r.details,
        }
        for r in reversed(confirmed)
    ]
    if as_json:
        print_json(
            {
                "pushed": summary.pushed,
                "counts": summary.counts,
                "set_aside": summary.quarantined,
                "results": rows,
            }
        )
    else:
        print_rows(rows, RESULT_COLUMNS)
    info(f"Pushed {summary.pushed} operations: {_summary_text(summary.counts)}.")
    if summary.quarantined:
        info(
            f"{summary.quarantined} damaged operation(s) set aside in the journal so the rest "
            "could go: see 'iqms sync status'."
        )
    conflicts = summary.counts.get("conflict", 0)
    if conflicts:
        info(
            f"{conflicts} kept for staff review: see 'iqms admin sync conflicts' "
            "(the rest was applied)."
        )


def _outcome(details: dict[str, Any]) -> str | None:
    """What came of an operation, in a few words (ticket number, patient MRN)."""
    parts: list[str] = []
    if details.get("ticket_number"):
        text = f"ticket {details['ticket_number']}"
        if details.get("printed_number") and details["printed_number"] != details["ticket_number"]:
            text += f" (printed {details['printed_number']})"
        parts.append(text)
    if details.get("mrn"):
        parts.append(f"patient {details['mrn']}")
    if details.get("original_result"):
        parts.append(f"already {details['original_result']}")
    return ", ".join(parts) or None
