"""The parts of the doctor console: header, the patient in the room, my queue, the day.

Each widget is handed plain core results (:class:`~iqms.core.schemas.queue.TicketOut`,
:class:`~iqms.core.schemas.queue.DoctorQueueView`, ...) and the clinic's time,
and only redraws what changed; none of them calls the core.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, tzinfo

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from iqms.core.schemas.patients import PatientOut
from iqms.core.schemas.queue import DoctorDay, DoctorQueueView, TicketOut
from iqms.tui.doctor.texts import (
    age,
    category_counts,
    day_text,
    details_line,
    queue_cells,
    stage_text,
    status_text,
)
from iqms.tui.format import minutes, triage_text
from iqms.tui.widgets import QueueList, cells_line


def _set(widget: Static, text: Text | str, *, layout: bool = False) -> None:
    """Redraw a widget only when its text changed (one-line widgets skip the layout pass)."""
    if isinstance(text, str):
        text = Text(text)
    old = widget.content
    if isinstance(old, Text) and old.plain == text.plain and old.spans == text.spans:
        return
    widget.update(text, layout=layout)


class DoctorHeader(Static):
    """The doctor, their room, status and department, on one line."""

    def show(self, view: DoctorQueueView) -> None:
        _set(
            self,
            Text.assemble(
                (view.doctor_name, "bold"),
                "  ·  ",
                (view.room, "bold reverse"),
                "  ·  ",
                status_text(view.status),
                "  ·  ",
                f"{view.department_code} {view.department_name}".strip(),
            ),
        )


class PatientPanel(Vertical):
    """The patient called or in the room: who, how urgent, how long they waited, the note."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.ticket: TicketOut | None = None
        self.patient: PatientOut | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="who")
        yield Static(id="details")
        yield Static(id="note")

    def on_mount(self) -> None:
        self.border_title = "Now"

    def show(
        self,
        ticket: TicketOut | None,
        *,
        patient: PatientOut | None,
        others: Sequence[TicketOut],
        next_up: TicketOut | None,
        now: datetime,
        today: date,
        tz: tzinfo,
        targets: Mapping[int, int],
        idle_note: Text | str = "",
    ) -> None:
        self.ticket = ticket
        self.patient = patient
        self.set_class(ticket is None, "-idle")
        details = self.query_one("#details", Static)
        note = self.query_one("#note", Static)
        if ticket is None:
            self.border_title = "Now"
            _set(self.query_one("#who", Static), Text("No patient with you.", style="bold"))
            if next_up is None:
                _set(details, "Nobody is waiting for you.")
            else:
                _set(
                    details,
                    Text.assemble(
                        "Press ",
                        (" n ", "bold reverse"),
                        " to call the next patient: ",
                        (next_up.ticket_number, "bold"),
                        "  ",
                        triage_text(next_up.triage_category),
                        f"  waiting {minutes((now - next_up.arrived_at).total_seconds() / 60)}",
                    ),
                )
            _set(note, idle_note, layout=True)
            return
        self.border_title = (
            "Now · in the room" if ticket.status.value == "in_service" else "Now · called"
        )
        self.tick(now, today)
        _set(details, details_line(ticket, now, targets))
        lines = []
        if ticket.note:
            lines.append(Text.assemble(("Note: ", "bold #ffaf00"), ticket.note))
        else:
            lines.append(Text("No note from reception.", style="dim"))
        if others:
            numbers = ", ".join(t.ticket_number for t in others)
            lines.append(Text(f"Also called to you: {numbers}", style="italic"))
        _set(note, Text("\n").join(lines), layout=True)  # a long note takes more lines

    def tick(self, now: datetime, today: date) -> None:
        """Redraw the first line with the running clock of the current patient."""
        ticket = self.ticket
        if ticket is None:
            return
        patient = self.patient
        name = patient.full_name if patient is not None else ticket.patient_name
        person: list[Text | str | tuple[str, str]] = []
        if name:
            person.append((name, "bold"))
            years = age(patient.date_of_birth, today) if patient is not None else ""
            if years:
                person.append(f", {years}")
        elif ticket.patient_id is None:
            person.append(("walk-in (no name)", "italic"))
        else:
            person.append(("…", "dim"))
        _set(
            self.query_one("#who", Static),
            Text.assemble(
                (f" {ticket.ticket_number} ", "bold reverse"),
                "  ",
                *person,
                "   ",
                stage_text(ticket, now),
            ),
        )


#: the queue's columns: heading and width (the rest of the line is blank)
COLUMNS = (("#", 3), ("Ticket", 7), ("Category", 15), ("Waited", 7), ("Due", 12),
           ("Estimate", 15), ("For", 4), ("Note", 4))  # fmt: skip


def columns_line(cells: Sequence[object], *, style: str = "") -> Text:
    """Cells padded (or cut) to the queue's column widths, one space apart."""
    return cells_line(cells, [width for _, width in COLUMNS], style=style)


class MyQueue(Vertical):
    """The tickets this doctor would call next, in calling order; held ones first."""

    def compose(self) -> ComposeResult:
        yield Static(columns_line([name for name, _ in COLUMNS], style="bold"), id="queue-header")
        yield QueueList(id="queue-table")
        yield Static(id="counts")

    def on_mount(self) -> None:
        self.border_title = "My queue"
        self.tickets: dict[str, TicketOut] = {}

    @property
    def table(self) -> QueueList:
        return self.query_one(QueueList)

    def show(
        self,
        held: Sequence[TicketOut],
        waiting: Sequence[TicketOut],
        *,
        counts: Mapping[int, int],
        me: uuid.UUID,
        now: datetime,
    ) -> None:
        """Show these tickets; rows whose text did not change are not drawn again."""
        rows = [*held, *waiting]
        self.tickets = {str(t.id): t for t in rows}
        lines = [(str(t.id), columns_line(queue_cells(t, now, index=0, me=me))) for t in held] + [
            (str(t.id), columns_line(queue_cells(t, now, index=n, me=me)))
            for n, t in enumerate(waiting, start=1)
        ]
        self.table.set_rows(lines)
        title = f"My queue · {sum(counts.values())} waiting"
        if self.border_title != title:
            self.border_title = title
        _set(self.query_one("#counts", Static), category_counts(counts))

    def selected_key(self) -> str | None:
        return self.table.key

    def selected(self) -> TicketOut | None:
        key = self.selected_key()
        return self.tickets.get(key) if key else None


class DayLine(Static):
    """Today so far: patients seen, mean consultation length, no-shows."""

    def show(self, day: DoctorDay | None) -> None:
        _set(self, day_text(day))


class OfflineBanner(Static):
    """Shown while the database cannot be reached: nothing can be called or changed."""

    def on_mount(self) -> None:
        self.update(
            Text.assemble(
                ("▲ Reconnecting to the database… ", "bold"),
                "Actions wait until it is back; nothing was changed.",
            )
        )


__all__ = ["DayLine", "DoctorHeader", "MyQueue", "OfflineBanner", "PatientPanel", "QueueList"]
