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
from textual.widgets import DataTable, Static

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


class DoctorHeader(Static):
    """The doctor, their room, status and department, on one line."""

    def show(self, view: DoctorQueueView) -> None:
        self.update(
            Text.assemble(
                (view.doctor_name, "bold"),
                "  ·  ",
                (view.room, "bold reverse"),
                "  ·  ",
                status_text(view.status),
                "  ·  ",
                f"{view.department_code} {view.department_name}".strip(),
            )
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
    ) -> None:
        self.ticket = ticket
        self.patient = patient
        self.set_class(ticket is None, "-idle")
        details = self.query_one("#details", Static)
        note = self.query_one("#note", Static)
        if ticket is None:
            self.border_title = "Now"
            self.query_one("#who", Static).update(Text("No patient with you.", style="bold"))
            if next_up is None:
                details.update("Nobody is waiting for you.")
            else:
                details.update(
                    Text.assemble(
                        "Press ",
                        (" n ", "bold reverse"),
                        " to call the next patient: ",
                        (next_up.ticket_number, "bold"),
                        "  ",
                        triage_text(next_up.triage_category),
                        f"  waiting {minutes((now - next_up.arrived_at).total_seconds() / 60)}",
                    )
                )
            note.update("")
            return
        self.border_title = (
            "Now · in the room" if ticket.status.value == "in_service" else "Now · called"
        )
        self.tick(now, today)
        details.update(details_line(ticket, now, targets))
        lines = []
        if ticket.note:
            lines.append(Text.assemble(("Note: ", "bold #ffaf00"), ticket.note))
        else:
            lines.append(Text("No note from reception.", style="dim"))
        if others:
            numbers = ", ".join(t.ticket_number for t in others)
            lines.append(Text(f"Also called to you: {numbers}", style="italic"))
        note.update(Text("\n").join(lines))

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
        self.query_one("#who", Static).update(
            Text.assemble(
                (f" {ticket.ticket_number} ", "bold reverse"),
                "  ",
                *person,
                "   ",
                stage_text(ticket, now),
            )
        )


class MyQueue(Vertical):
    """The tickets this doctor would call next, in calling order; held ones first."""

    COLUMNS = ("#", "Ticket", "Category", "Waited", "Due", "Estimate", "For", "Note")

    def compose(self) -> ComposeResult:
        table: DataTable[object] = DataTable(
            id="queue-table", cursor_type="row", zebra_stripes=True, show_cursor=True
        )
        yield table
        yield Static(id="counts")

    def on_mount(self) -> None:
        self.border_title = "My queue"
        table = self.query_one(DataTable)
        for name in self.COLUMNS:
            table.add_column(name, key=name)
        self.tickets: dict[str, TicketOut] = {}

    @property
    def table(self) -> DataTable[object]:
        return self.query_one(DataTable)

    def show(
        self,
        held: Sequence[TicketOut],
        waiting: Sequence[TicketOut],
        *,
        counts: Mapping[int, int],
        me: uuid.UUID,
        now: datetime,
    ) -> None:
        """Redraw the rows in one go (no intermediate frame), keeping the cursor on its ticket."""
        table = self.table
        selected = self.selected_key()
        old_row = table.cursor_row
        table.clear()
        rows = [*held, *waiting]
        self.tickets = {str(t.id): t for t in rows}
        for ticket in held:
            table.add_row(*queue_cells(ticket, now, index=0, me=me), key=str(ticket.id))
        for position, ticket in enumerate(waiting, start=1):
            table.add_row(*queue_cells(ticket, now, index=position, me=me), key=str(ticket.id))
        if rows:
            keys = [str(t.id) for t in rows]
            row = keys.index(selected) if selected in keys else min(old_row, len(rows) - 1)
            table.move_cursor(row=max(row, 0), animate=False)
        total = sum(counts.values())
        self.border_title = f"My queue · {total} waiting"
        self.query_one("#counts", Static).update(category_counts(counts))

    def selected_key(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # no row under the cursor
            return None

    def selected(self) -> TicketOut | None:
        key = self.selected_key()
        return self.tickets.get(key) if key else None


class DayLine(Static):
    """Today so far: patients seen, mean consultation length, no-shows."""

    def show(self, day: DoctorDay | None) -> None:
        self.update(day_text(day))


class OfflineBanner(Static):
    """Shown while the database cannot be reached: nothing can be called or changed."""

    def on_mount(self) -> None:
        self.update(
            Text.assemble(
                ("▲ Reconnecting to the database… ", "bold"),
                "Actions wait until it is back; nothing was changed.",
            )
        )


__all__ = ["DayLine", "DoctorHeader", "MyQueue", "OfflineBanner", "PatientPanel"]
