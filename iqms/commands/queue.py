"""``iqms queue ...``: issue tickets, call patients, move tickets, look at queues, watch live.

Every command acts as the logged-in user (``iqms login`` or ``IQMS_TOKEN``).
Tickets are given by number (``A-042``, today's) or id. Data goes to standard
output (``--json`` for machines); messages go to standard error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from iqms.commands._common import (
    CsvOpt,
    ExitCode,
    JsonOpt,
    fail,
    info,
    local_time,
    print_json,
    print_rows,
    run,
    settings_or_exit,
)
from iqms.commands._session import open_context, run_as_user
from iqms.core.config import Settings
from iqms.core.queue.events import (
    DisplayMessageChanged,
    DoctorChanged,
    DomainEvent,
    PrinterFault,
    Resync,
    TicketTransferred,
)
from iqms.core.schemas.queue import TicketOut, TicketStatusView
from iqms.core.services import clinic, queue

app = typer.Typer(
    help="The queue: issue tickets, call patients, serve, list, watch live events.",
    no_args_is_help=True,
)

TicketArg = Annotated[str, typer.Argument(help="Ticket number (like A-042, today's) or id.")]
DoctorOpt = Annotated[
    str | None,
    typer.Option(
        "--doctor", help="Doctor (username or id); doctors leave it out to act for themselves."
    ),
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit trail).")]
DepartmentOpt = Annotated[
    str | None, typer.Option("--department", "-d", help="Department code (like GEN) or id.")
]

HUMAN_COLUMNS = ["ticket", "patient", "dept", "status", "cat", "pos", "wait", "arrived", "room"]
MACHINE_COLUMNS = [
    "id", "ticket_number", "patient", "department_code", "status", "triage_category", "position",
    "wait_p50", "wait_p90", "arrived_at", "due_at", "called_at", "room", "patient_id",
    "doctor_id", "source",
]  # fmt: skip


def _wait(p50: float | None, p90: float | None) -> str:
    if p50 is None or p90 is None:
        return ""
    if p90 < 1:
        return "under a minute"
    return f"about {round(p50)} min (up to {round(p90)})"


def _show_ticket(settings: Settings, ticket: TicketOut, as_json: bool, verb: str) -> None:
    """The ticket number on stdout (or the whole ticket as JSON), a sentence on stderr."""
    if as_json:
        print_json(ticket.model_dump(mode="json"))
    else:
        typer.echo(ticket.ticket_number)
    where = f" to {ticket.called_room}" if ticket.called_room and verb in ("called",) else ""
    extra = ""
    if ticket.position is not None and ticket.estimate is not None:
        extra = (
            f"; position {ticket.position}, wait "
            f"{_wait(ticket.estimate.p50_minutes, ticket.estimate.p90_minutes)}"
        )
    name = f" ({ticket.patient_name})" if ticket.patient_name else ""
    info(f"{ticket.ticket_number}{name} {verb}{where} [{ticket.department_code}]{extra}")


# ---- issuing and calling -----------------------------------------------------------------------
@app.command()
def issue(
    department: Annotated[
        str, typer.Option("--department", "-d", help="Department code (like GEN) or id.")
    ],
    patient: Annotated[
        str | None, typer.Option("--patient", help="Patient MRN or id (leave out for a walk-in).")
    ] = None,
    category: Annotated[
        str | None,
        typer.Option(
            "--category",
            "-c",
            help="Triage category 1-5 or its name (immediate ... non-urgent); default standard.",
        ),
    ] = None,
    doctor: Annotated[
        str | None, typer.Option("--doctor", help="Reserve the ticket for this doctor.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a ticket; prints its number."""
    settings = settings_or_exit()
    ticket = run_as_user(
        settings,
        lambda ctx: queue.issue(
            ctx, department=department, patient=patient, triage_category=category, doctor=doctor
        ),
    )
    _show_ticket(settings, ticket, as_json, "issued")


@app.command("call-next")
def call_next(
    doctor: DoctorOpt = None,
    names: Annotated[
        bool, typer.Option("--name", help="Also show the patient's name (audited).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Call the next patient to the doctor's room; prints the ticket number."""
    settings = settings_or_exit()
    ticket = run_as_user(
        settings, lambda ctx: queue.call_next(ctx, doctor=doctor, include_name=names)
    )
    if ticket is None:
        fail("nobody is waiting for this doctor", ExitCode.NOT_FOUND)
    _show_ticket(settings, ticket, as_json, "called")


@app.command()
def call(
    ticket: TicketArg,
    doctor: DoctorOpt = None,
    names: Annotated[
        bool, typer.Option("--name", help="Also show the patient's name (audited).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Call one specific waiting ticket (out of turn) to the doctor's room."""
    settings = settings_or_exit()
    out = run_as_user(
        settings, lambda ctx: queue.call(ctx, ticket=ticket, doctor=doctor, include_name=names)
    )
    _show_ticket(settings, out, as_json, "called")


@app.command()
def recall(
    ticket: TicketArg,
    no_show_after: Annotated[
        int | None,
        typer.Option(
            "--no-show-after",
            min=0,
            help="If already recalled this many times, mark a no-show instead.",
        ),
    ] = None,
    requeue: Annotated[
        bool, typer.Option("--requeue", help="With --no-show-after: put it back in the queue.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Call a called ticket again (the display shows it again)."""
    settings = settings_or_exit()
    out = run_as_user(
        settings,
        lambda ctx: queue.recall(
            ctx, ticket=ticket, no_show_after=no_show_after, requeue_no_show=requeue
        ),
    )
    verb = "recalled" if out.status.value == "called" else out.status.value.replace("_", "-")
    _show_ticket(settings, out, as_json, verb)


def _simple(name: str, help_: str, verb: str, call_: Callable[..., Awaitable[TicketOut]]) -> None:
    def command(ticket: TicketArg, as_json: JsonOpt = False) -> None:
        settings = settings_or_exit()
        out = run_as_user(settings, lambda ctx: call_(ctx, ticket=ticket))
        _show_ticket(settings, out, as_json, verb)

    command.__doc__ = help_
    app.command(name)(command)


_simple("start", "The called patient is in the room: start service.", "in service", queue.start)
_simple(
    "serve",
    "Mark a called or in-service ticket as served (from called, the start is recorded too).",
    "served",
    queue.serve,
)
_simple(
    "return",
    "Put a held ticket back in the queue (it keeps its place).",
    "back in the queue",
    queue.return_to_queue,
)


@app.command("no-show")
def no_show(
    ticket: TicketArg,
    requeue: Annotated[
        bool,
        typer.Option("--requeue", help="Put it back in the queue instead of closing it."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The called patient did not come."""
    settings = settings_or_exit()
    out = run_as_user(settings, lambda ctx: queue.no_show(ctx, ticket=ticket, requeue=requeue))
    _show_ticket(settings, out, as_json, "requeued" if requeue else "marked no-show")


@app.command()
def cancel(ticket: TicketArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a waiting or held ticket (the patient left)."""
    settings = settings_or_exit()
    out = run_as_user(settings, lambda ctx: queue.cancel(ctx, ticket=ticket, reason=reason))
    _show_ticket(settings, out, as_json, "cancelled")


@app.command()
def hold(ticket: TicketArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Take a ticket out of the calling order for now."""
    settings = settings_or_exit()
    out = run_as_user(settings, lambda ctx: queue.hold(ctx, ticket=ticket, reason=reason))
    _show_ticket(settings, out, as_json, "on hold")


@app.command()
def transfer(
    ticket: TicketArg,
    department: DepartmentOpt = None,
    doctor: Annotated[
        str | None, typer.Option("--doctor", help="Doctor (username or id) to transfer to.")
    ] = None,
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a ticket to another department or doctor; prints the new ticket number."""
    settings = settings_or_exit()
    out = run_as_user(
        settings,
        lambda ctx: queue.transfer(
            ctx, ticket=ticket, department=department, doctor=doctor, reason=reason
        ),
    )
    _show_ticket(settings, out, as_json, f"issued for the transfer of {ticket.upper()}")


@app.command()
def note(
    ticket: TicketArg,
    text: Annotated[
        str, typer.Argument(help="One line for the doctor (at most 300 characters); '' clears it.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Leave a note on an open ticket for the doctor (shown in the doctor console)."""
    settings = settings_or_exit()
    out = run_as_user(settings, lambda ctx: queue.set_note(ctx, ticket=ticket, note=text))
    _show_ticket(settings, out, as_json, "noted" if out.note else "note cleared")


@app.command()
def category(
    ticket: TicketArg,
    value: Annotated[str, typer.Argument(help="Triage category 1-5 or its name (e.g. urgent).")],
    as_json: JsonOpt = False,
) -> None:
    """Change a ticket's triage category (its due time is recomputed)."""
    settings = settings_or_exit()
    out = run_as_user(
        settings, lambda ctx: queue.change_category(ctx, ticket=ticket, triage_category=value)
    )
    _show_ticket(settings, out, as_json, f"now category {out.triage_category}")


# ---- views --------------------------------------------------------------------------------------
def _row(settings: Settings, t: TicketOut, machine: bool) -> dict[str, Any]:
    if not machine:  # people: short columns, clinic-local times, one wait range
        wait = ""
        if t.estimate is not None:
            wait = f"{round(t.estimate.p50_minutes)}-{round(t.estimate.p90_minutes)} min"
        return {
            "ticket": t.ticket_number,
            "patient": t.patient_name,
            "dept": t.department_code,
            "status": t.status.value,
            "cat": t.triage_category,
            "pos": t.position,
            "wait": wait,
            "arrived": local_time(settings, t.arrived_at, "%H:%M"),
            "room": t.called_room,
        }
    return {
        "id": str(t.id),
        "ticket_number": t.ticket_number,
        "patient": t.patient_name,
        "department_code": t.department_code,
        "status": t.status.value,
        "triage_category": t.triage_category,
        "position": t.position,
        "wait_p50": t.estimate.p50_minutes if t.estimate else None,
        "wait_p90": t.estimate.p90_minutes if t.estimate else None,
        "arrived_at": t.arrived_at,
        "due_at": t.due_at,
        "called_at": t.called_at,
        "room": t.called_room,
        "patient_id": str(t.patient_id) if t.patient_id else None,
        "doctor_id": str(t.doctor_id) if t.doctor_id else None,
        "source": t.source.value,
    }


def _columns(machine: bool, names: bool) -> list[str]:
    if machine:  # a stable shape for scripts: ``patient`` is null unless --names
        return list(MACHINE_COLUMNS)
    return [c for c in HUMAN_COLUMNS if names or c != "patient"]


@app.command("list")
def list_(
    department: DepartmentOpt = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="Only these statuses (repeat; default: waiting, held, called, in_service).",
        ),
    ] = None,
    names: Annotated[
        bool, typer.Option("--names", help="Show patient names (the read is audited).")
    ] = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Today's tickets: waiting ones in calling order with position and estimated wait."""
    settings = settings_or_exit()
    tickets = run_as_user(
        settings,
        lambda ctx: queue.queue_list(
            ctx, department=department, statuses=status or None, include_names=names
        ),
    )
    machine = as_json or as_csv
    rows = [_row(settings, t, machine) for t in tickets]
    print_rows(rows, _columns(machine, names), as_json=as_json, as_csv=as_csv, title="Queue")


def _status_text(settings: Settings, view: TicketStatusView) -> str:
    text = f"{view.ticket_number} ({view.department_name}): {view.status.value.replace('_', ' ')}"
    if view.position is not None:
        text += f", position {view.position} ({view.ahead} ahead)"
        if view.estimate is not None:
            text += f", wait {_wait(view.estimate.p50_minutes, view.estimate.p90_minutes)}"
    if view.room:
        text += f", go to {view.room}"
    if view.transferred_to:
        text += f" to {view.transferred_to} ({view.transferred_to_department})"
    return text


@app.command()
def status(ticket: TicketArg, as_json: JsonOpt = False) -> None:
    """Where a ticket stands: position, tickets ahead, estimated wait, room once called."""
    settings = settings_or_exit()
    view = run_as_user(settings, lambda ctx: queue.ticket_status(ctx, ticket=ticket))
    if as_json:
        print_json(view.model_dump(mode="json"))
    else:
        typer.echo(_status_text(settings, view))


@app.command()
def board(
    department: Annotated[str, typer.Argument(help="Department code (like GEN) or id.")],
    next_count: Annotated[
        int, typer.Option("--next", min=0, max=50, help="How many waiting numbers to show.")
    ] = 8,
    as_json: JsonOpt = False,
) -> None:
    """The waiting-room board: rooms now serving and the next numbers (no names)."""
    settings = settings_or_exit()
    view = run_as_user(
        settings, lambda ctx: queue.board(ctx, department=department, next_count=next_count)
    )
    if as_json:
        print_json(view.model_dump(mode="json"))
        return
    typer.echo(f"{view.department_name} ({view.department_code}): {view.waiting_count} waiting")
    for room in view.now_serving:
        now = room.ticket_number or "-"
        paused = " (paused)" if room.doctor_status.value == "paused" else ""
        typer.echo(f"  {room.room}{paused}: {now}")
    if view.next_up:
        typer.echo("  next: " + ", ".join(t.ticket_number for t in view.next_up))


@app.command("doctor")
def doctor_queue(
    doctor: DoctorOpt = None,
    names: Annotated[
        bool, typer.Option("--names", help="Show patient names (the read is audited).")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="How many waiting tickets to show.")
    ] = 20,
    as_json: JsonOpt = False,
) -> None:
    """A doctor's queue: patients called or in the room, then those they would call next."""
    settings = settings_or_exit()
    view = run_as_user(
        settings,
        lambda ctx: queue.doctor_queue(ctx, doctor=doctor, limit=limit, include_names=names),
    )
    if as_json:
        print_json(view.model_dump(mode="json"))
        return
    info(
        f"{view.doctor_name}, {view.room} ({view.department_code}): {view.status.value}; "
        f"{view.waiting_count} waiting"
    )
    rows = [_row(settings, t, False) for t in [*view.current, *view.waiting]]
    print_rows(rows, _columns(False, names), title="Doctor's queue")


# ---- live events --------------------------------------------------------------------------------
def _event_line(settings: Settings, event: DomainEvent, codes: dict[Any, str]) -> str:
    when = local_time(settings, event.occurred_at, "%H:%M:%S")
    dept = codes.get(event.department_id, "?")
    if isinstance(event, DoctorChanged):
        return f"{when} {'doctor':<16} {event.room} [{dept}] {event.status}"
    if isinstance(event, PrinterFault):
        return f"{when} {'printer-' + event.severity:<16} {event.device_name}: {event.message}"
    if isinstance(event, DisplayMessageChanged):
        return f"{when} {'board-message':<16} {event.text or '(cleared)'}"
    text = f"{when} {event.kind.replace('_', '-'):<16} {event.ticket_number} [{dept}]"
    if event.room and event.kind in ("called", "recalled", "started", "served"):
        text += f" {event.room}"
    if isinstance(event, TicketTransferred):
        text += f" -> {event.new_ticket_number} [{codes.get(event.target_department_id, '?')}]"
    return text


@app.command()
def watch(
    department: DepartmentOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per event (JSON Lines).")
    ] = False,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many events.")
    ] = None,
    seconds: Annotated[
        float | None, typer.Option("--timeout", min=0.1, help="Stop after this many seconds.")
    ] = None,
) -> None:
    """Print queue events live as they happen (Ctrl-C to stop)."""
    settings = settings_or_exit()

    async def go() -> int:
        async with open_context(settings) as ctx:
            departments = await clinic.list_departments(ctx, include_inactive=True)
            codes = {d.id: d.code for d in departments}
            subscription = await queue.watch(ctx, department=department)
            seen = 0
            async with subscription as events:
                info("watching queue events (Ctrl-C to stop)")
                loop = asyncio.get_running_loop()
                deadline = loop.time() + seconds if seconds is not None else None
                while count is None or seen < count:
                    left = None if deadline is None else deadline - loop.time()
                    if left is not None and left <= 0:
                        break
                    event = await events.next(within=left)
                    if event is None:
                        break
                    if isinstance(event, Resync):
                        info(f"event stream {event.reason}; some events may have been missed")
                        continue
                    if as_json:
                        typer.echo(json.dumps(event.to_payload(), ensure_ascii=False))
                    else:
                        typer.echo(_event_line(settings, event, codes))
                    seen += 1
            return seen

    run(go)
