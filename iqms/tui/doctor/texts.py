"""What the doctor console writes about a patient, a ticket and the day (no widgets here)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from rich.text import Text

from iqms.core.enums import DoctorStatus, TicketStatus, TriageCategory
from iqms.core.schemas.queue import DoctorDay, TicketOut
from iqms.tui.format import (
    due_state,
    due_text,
    estimate_text,
    minutes,
    target_text,
    triage_text,
)

#: the doctor's status as shown in the header: symbol, word, style
STATUS_LOOK = {
    DoctorStatus.AVAILABLE: ("●", "AVAILABLE", "bold #5fd75f"),
    DoctorStatus.PAUSED: ("❚❚", "PAUSED", "bold black on #ffd700"),
    DoctorStatus.OFF: ("○", "OFF DUTY", "bold #a0a0a0"),
}


def age(born: date | None, today: date) -> str:
    """``67 y``; ``14 mo`` under two; ``9 d`` under a month; blank when unknown."""
    if born is None:
        return ""
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if years >= 2:
        return f"{years} y"
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    if months >= 1:
        return f"{months} mo"
    return f"{max((today - born).days, 0)} d"


def status_text(status: DoctorStatus) -> Text:
    symbol, word, style = STATUS_LOOK[DoctorStatus(status)]
    return Text(f" {symbol} {word} ", style=style)


def clock(seconds: float) -> str:
    """``07:42`` (minutes:seconds), ``1:07:42`` past an hour: a running consultation."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    mins, secs = divmod(rest, 60)
    return f"{hours}:{mins:02d}:{secs:02d}" if hours else f"{mins:02d}:{secs:02d}"


def stage_text(ticket: TicketOut, now: datetime) -> Text:
    """``CALLED 2 min ago`` / ``IN SERVICE 07:42``: where the current patient is."""
    if ticket.status == TicketStatus.IN_SERVICE and ticket.started_at is not None:
        running = clock((now - ticket.started_at).total_seconds())
        return Text.assemble(("IN SERVICE", "bold #5fd75f"), " ", (running, "bold"))
    since = ticket.called_at or now
    ago = (now - since).total_seconds() / 60
    when = "just now" if ago < 1 else f"{minutes(ago)} ago"
    return Text.assemble(("CALLED", "bold #4fa3e0"), f" {when}")


def waited_text(ticket: TicketOut, now: datetime) -> Text:
    """How long the patient waited until called, and by how much past the due time."""
    until = ticket.called_at or now
    waited = (until - ticket.arrived_at).total_seconds() / 60
    over = (until - ticket.due_at).total_seconds() / 60
    text = Text(f"waited {minutes(waited)}")
    if over >= 1:
        text.append(f" ({minutes(over)} over)", style="bold #ff5f5f")
    return text


def details_line(ticket: TicketOut, now: datetime, targets: Mapping[int, int]) -> Text:
    """Category tag, its target, the wait and the recalls of the current patient."""
    parts: list[Text | str] = [
        triage_text(ticket.triage_category),
        " seen ",
        target_text(ticket.triage_category, dict(targets)),
        " · ",
        waited_text(ticket, now),
    ]
    if ticket.recall_count:
        times = "once" if ticket.recall_count == 1 else f"{ticket.recall_count}×"
        parts += [" · ", Text(f"recalled {times}", style="bold #ffaf00")]
    return Text.assemble(*parts)


def queue_cells(
    ticket: TicketOut, now: datetime, *, index: int, me: object
) -> tuple[str | Text, ...]:
    """One row of "my queue": place, ticket, category, waited, due, estimate, for whom, note."""
    if ticket.status == TicketStatus.HELD:
        return (
            Text("‖", style="bold"),
            Text(ticket.ticket_number, style="bold"),
            triage_text(ticket.triage_category),
            minutes((now - ticket.arrived_at).total_seconds() / 60),
            Text("on hold", style="italic"),
            Text("b: requeue", style="italic"),
            "you",
            "✎" if ticket.note else "",
        )
    state = due_state(now, ticket.arrived_at, ticket.due_at)
    number = Text(ticket.ticket_number, style="bold" if state == "overdue" else "")
    return (
        str(index),
        number,
        triage_text(ticket.triage_category),
        minutes((now - ticket.arrived_at).total_seconds() / 60),
        due_text(now, ticket.arrived_at, ticket.due_at),
        estimate_text(ticket.estimate),
        "you" if ticket.doctor_id == me else "pool",
        "✎" if ticket.note else "",
    )


def category_counts(counts: Mapping[int, int]) -> Text:
    """``Waiting for you: 23   1·0  2·1  3·5  4·14  5·3`` with the coloured category tags."""
    total = sum(counts.values())
    parts: list[Text | str] = [Text(f"Waiting for you: {total}", style="bold"), "  "]
    for category in TriageCategory:
        parts += [triage_text(category, short=True), f" {counts.get(int(category), 0)}  "]
    return Text.assemble(*parts)


def day_text(day: DoctorDay | None) -> Text:
    """``Today: 12 seen · mean consultation 11 min (10 timed) · 1 no-show · 2 transferred``."""
    if day is None:
        return Text("Today: …", style="italic")
    if day.mean_consultation_minutes is None:
        mean = "mean consultation —"
    else:
        mean = f"mean consultation {minutes(day.mean_consultation_minutes)}"
        if day.timed != day.seen:
            mean += f" ({day.timed} timed)"
    no_shows = "1 no-show" if day.no_shows == 1 else f"{day.no_shows} no-shows"
    text = Text.assemble(("Today: ", "bold"), f"{day.seen} seen · {mean} · {no_shows}")
    if day.transferred:
        text.append(f" · {day.transferred} transferred")
    return text


__all__ = [
    "age",
    "category_counts",
    "clock",
    "day_text",
    "details_line",
    "queue_cells",
    "stage_text",
    "status_text",
    "waited_text",
]
