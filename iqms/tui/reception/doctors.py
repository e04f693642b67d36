"""Doctors of the chosen departments: room, status and the patient each is calling or seeing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from iqms.core.enums import DoctorStatus, TicketStatus
from iqms.core.schemas.clinic import DoctorOut
from iqms.core.services import clinic
from iqms.tui.dialogs import ListDialog
from iqms.tui.format import status_word
from iqms.tui.reception.messages import QueueUpdated
from iqms.tui.screens import ConsoleScreen

if TYPE_CHECKING:
    from iqms.tui.reception.app import ReceptionApp

STATUS_STYLES = {
    DoctorStatus.AVAILABLE: "bold #5fd75f",
    DoctorStatus.PAUSED: "bold #ffaf00",
    DoctorStatus.OFF: "dim",
}


class DoctorsScreen(ConsoleScreen):
    """F3: who is in which room, available or not, and whom they are seeing."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("s", "set_status", "Set status")]

    @property
    def reception(self) -> ReceptionApp:
        return cast("ReceptionApp", self.app)

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="doctors", cursor_type="row", zebra_stripes=True)
        yield Static("", id="doctors-info")

    def on_mount(self) -> None:
        table = self.query_one("#doctors", DataTable)
        for key, label, width in (
            ("doctor", "Doctor", 22),
            ("dept", "Dept", 5),
            ("room", "Room", 9),
            ("status", "Status", 10),
            ("serving", "Calling / seeing", 30),
            ("waiting", "Waiting", 8),
        ):
            table.add_column(label, key=key, width=width)
        table.focus()
        self.redraw()

    def reload(self) -> None:
        self.redraw()

    def on_queue_updated(self, _message: QueueUpdated) -> None:
        self.redraw()

    def doctors(self) -> list[DoctorOut]:
        app = self.reception
        chosen = app.chosen_codes
        return sorted(
            (d for d in app.doctors.values() if chosen is None or d.department_code in chosen),
            key=lambda d: (d.department_code, d.room, d.full_name),
        )

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        app = self.reception
        table = self.query_one("#doctors", DataTable)
        selected = table.cursor_row
        table.clear()
        for doc in self.doctors():
            serving = [
                t
                for t in app.tickets
                if t.called_doctor_id == doc.id
                and t.status in (TicketStatus.CALLED, TicketStatus.IN_SERVICE)
            ]
            seeing = Text(", ").join(
                Text(
                    f"{t.ticket_number} {status_word(t.status)}"
                    + (f" · {app.names[t.patient_id]}" if t.patient_id in app.names else "")
                )
                for t in serving
            )
            reserved = sum(
                1 for t in app.tickets if t.doctor_id == doc.id and t.status == TicketStatus.WAITING
            )
            table.add_row(
                doc.full_name,
                doc.department_code,
                doc.room,
                Text(doc.status.value, style=STATUS_STYLES.get(doc.status, "")),
                seeing,
                str(reserved) if reserved else "",
                key=str(doc.id),
            )
        if table.row_count:
            table.move_cursor(row=min(selected, table.row_count - 1), animate=False)
        available = sum(1 for d in self.doctors() if d.status == DoctorStatus.AVAILABLE)
        self.query_one("#doctors-info", Static).update(
            f"{available} of {len(self.doctors())} doctors available. "
            "Waiting: tickets reserved for that doctor. S: set a doctor's status."
            if self.doctors()
            else "No doctors in these departments."
        )

    @work(exclusive=True, group="doctor-status", exit_on_error=False)
    async def action_set_status(self) -> None:
        doctors = self.doctors()
        table = self.query_one("#doctors", DataTable)
        if not doctors or not 0 <= table.cursor_row < len(doctors):
            return
        doctor = doctors[table.cursor_row]
        status = await self.app.push_screen_wait(
            ListDialog(
                f"{doctor.full_name} ({doctor.room}) is {doctor.status.value}",
                [(s.value, s.value) for s in DoctorStatus if s != doctor.status],
            )
        )
        if status is None:
            return
        app = self.reception
        result: Any = await app.core(
            lambda: clinic.set_doctor_status(app.ctx, doctor=doctor.id, status=status)
        )
        if result is not None:
            app.doctors[result.id] = result
            self.redraw()
            self.app.notify(f"{result.full_name} is {result.status.value}", markup=False)


__all__ = ["DoctorsScreen"]
