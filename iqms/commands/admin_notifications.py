"""``iqms admin notifications ...``: the patient message outbox (list, retry, test SMS)."""

from __future__ import annotations

from typing import Annotated

import typer

from iqms.commands._common import (
    CsvOpt,
    ExitCode,
    JsonOpt,
    fail,
    info,
    local_time,
    print_rows,
    run,
    settings_or_exit,
)
from iqms.commands._session import open_context, run_as_user
from iqms.core.enums import NotificationStatus
from iqms.core.notify.worker import DeliveryOutcome, deliver_now
from iqms.core.services import notifications
from iqms.core.services.notifications import NotificationSummary

app = typer.Typer(
    help="Patient messages (SMS, push): list them, retry failed ones, send a test SMS.",
    no_args_is_help=True,
)

TABLE_COLUMNS = [
    "short_id",
    "created",
    "template",
    "ticket_number",
    "recipient",
    "status",
    "attempts",
    "last_error",
]
FULL_COLUMNS = [
    "id",
    "short_id",
    "created_at",
    "channel",
    "template",
    "language",
    "ticket_number",
    "recipient",
    "status",
    "attempts",
    "next_attempt_at",
    "sent_at",
    "provider_message_id",
    "last_error",
]


@app.command("list")
def list_(
    status: Annotated[
        NotificationStatus | None,
        typer.Option("--status", help="Only messages with this status."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="At most this many (newest first).")
    ] = 100,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """List the newest messages with their status (recipients masked, no message text)."""
    settings = settings_or_exit()

    summaries = run_as_user(
        settings, lambda ctx: notifications.list_notifications(ctx, status=status, limit=limit)
    )
    if as_json or as_csv:
        rows = [summary.as_dict() for summary in summaries]
        print_rows(rows, FULL_COLUMNS, as_json=as_json, as_csv=as_csv)
        return
    if not summaries:
        info("No messages" + (f" with status {status.value}." if status else "."))
        return
    table = [
        {
            **summary.as_dict(),
            "created": local_time(settings, summary.created_at),
        }
        for summary in summaries
    ]
    print_rows(table, TABLE_COLUMNS, title="Notifications")


@app.command()
def retry(
    notification_id: Annotated[
        str | None,
        typer.Argument(help="The message's id or short id (from 'list').", show_default=False),
    ] = None,
    all_dead: Annotated[
        bool, typer.Option("--all-dead", help="Retry every dead message instead of one.")
    ] = False,
) -> None:
    """Send a failed or dead message again (the worker picks it up at once)."""
    if (notification_id is None) == (not all_dead):
        fail("give a message id or --all-dead (not both)", ExitCode.USAGE)
    settings = settings_or_exit()
    if all_dead:

        async def go_all() -> int:
            async with open_context(settings) as ctx:
                return await notifications.retry_all_dead(ctx)

        count = run(go_all)
        typer.echo(count)
        info(f"{count} dead message{'s' if count != 1 else ''} queued again.")
        return

    async def go_one() -> NotificationSummary:
        async with open_context(settings) as ctx:
            return await notifications.retry(ctx, notification_id=notification_id or "")

    summary = run(go_one)
    typer.echo(summary.id)
    info(f"Message {summary.short_id} ({summary.template} to {summary.recipient}) queued again.")


@app.command()
def test(
    to: Annotated[str, typer.Option("--to", help="Phone number to text, e.g. +447911123456.")],
    language: Annotated[
        str, typer.Option("--language", help="Language of the test message (en, es).")
    ] = "en",
) -> None:
    """Send one test SMS now through the configured provider and report what happened."""
    settings = settings_or_exit()

    async def go() -> DeliveryOutcome:
        async with open_context(settings) as ctx:
            notification_id = await notifications.queue_test_sms(ctx, to=to, language=language)
            return await deliver_now(ctx, notification_id=notification_id)

    outcome = run(go)
    short = outcome.notification_id.hex[:8]
    if outcome.status == NotificationStatus.SENT:
        typer.echo(outcome.provider_message_id)
        info(f"Test SMS {short} accepted by the provider.")
        return
    if outcome.status == NotificationStatus.PENDING:
        fail(f"test SMS {short} not sent yet: {outcome.error} (the worker will try again)")
    fail(f"test SMS {short} {outcome.status.value}: {outcome.error}")
