"""The reception console: the live queue, patients and doctors of the chosen departments.

The app keeps what its screens show (the open tickets in calling order, the
patients' names, departments, doctors, tickets issued offline) and refreshes
it once per burst of live events; the screens draw from it when told
(:class:`QueueUpdated`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from iqms.core.errors import DatabaseUnavailable, IQMSError
from iqms.core.queue.events import PrinterFault
from iqms.core.schemas.clinic import AppointmentOut, DepartmentOut, DoctorOut
from iqms.core.schemas.queue import TicketOut
from iqms.core.services import clinic, devices, patients, queue
from iqms.core.sync.connectivity import SyncSummary
from iqms.tui.app import ConsoleApp
from iqms.tui.auth import SignIn
from iqms.tui.dialogs import ListDialog
from iqms.tui.messages import DoctorChanged, LiveMessage, PrinterChanged, Resync, TicketChanged
from iqms.tui.reception.doctors import DoctorsScreen
from iqms.tui.reception.messages import QueueUpdated
from iqms.tui.reception.patients import PatientsScreen
from iqms.tui.reception.printing import DeskPrinter
from iqms.tui.reception.queue_screen import QueueScreen
from iqms.tui.reception.rows import OPEN_STATUSES, OfflineTicket

#: how long to gather live events before reloading the queue once (seconds)
REFRESH_DELAY = 0.05
#: the core's limit on one queue listing
QUEUE_LIMIT = 1000


class ReceptionApp(ConsoleApp):
    """``iqms reception``: the front desk's console."""

    TITLE = "IQMS Reception"
    ALLOWED_ROLES = frozenset({"staff", "admin"})
    OFFLINE_JOURNAL = True
    CSS_PATH = "reception.tcss"
    MODES: ClassVar[dict[str, Any]] = {
        "queue": QueueScreen,
        "patients": PatientsScreen,
        "doctors": DoctorsScreen,
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "switch_mode('queue')", "Queue"),
        Binding("f2", "switch_mode('patients')", "Patients"),
        Binding("f3", "switch_mode('doctors')", "Doctors"),
    ]

    def __init__(self, *args: Any, departments: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wanted_departments = [d.strip().upper() for d in departments if d.strip()]
        self.departments: dict[uuid.UUID, DepartmentOut] = {}
        self.doctors: dict[uuid.UUID, DoctorOut] = {}
        self.tickets: list[TicketOut] = []
        self.names: dict[uuid.UUID, str] = {}
        self.offline_tickets: list[OfflineTicket] = []
        self.offline_patients: dict[uuid.UUID, str] = {}  # op id -> name, registered offline
        self.appointments: list[AppointmentOut] = []
        #: kiosks whose printer has a fault or runs low: device id -> (name, what is wrong)
        self.printer_faults: dict[uuid.UUID, tuple[str, str]] = {}
        self.truncated = False
        self.loaded = asyncio.Event()
        self._refresh_scheduled = False
        #: how long the latest reloads of the queue took (read, names, hand-over to screens)
        self.reload_seconds: deque[float] = deque(maxlen=100)
        self._refreshing = False
        self._dirty = False
        self._clinic_loaded = False
        #: this terminal's ticket printer (``p`` on the queue), set up on the first print
        self.printer = DeskPrinter(self.settings)

    # ---- what the console shows ---------------------------------------------------------------
    @property
    def chosen_codes(self) -> frozenset[str] | None:
        """The departments chosen with ``--department`` (None: all)."""
        known = {d.code for d in self.departments.values()}
        chosen = frozenset(c for c in self.wanted_departments if c in known)
        return chosen or None

    def open_departments(self) -> list[DepartmentOut]:
        chosen = self.chosen_codes
        return [d for d in self.departments.values() if chosen is None or d.code in chosen]

    def department_by_code(self, code: str) -> DepartmentOut | None:
        return next((d for d in self.departments.values() if d.code == code), None)

    async def load_clinic(self) -> None:
        """Departments and doctors (again, after a doctor changed)."""
        try:
            departments = await self.core(lambda: clinic.list_departments(self.ctx), errors="raise")
            doctors = await self.core(lambda: clinic.list_doctors(self.ctx), errors="raise")
        except DatabaseUnavailable:
            return
        except IQMSError as exc:
            self.show_error(exc)
            return
        self.departments = {d.id: d for d in departments or []}
        self.doctors = {d.id: d for d in doctors or []}
        if not self._clinic_loaded:
            await self._load_printer_faults()
        if not self._clinic_loaded:
            self._clinic_loaded = True
            unknown = sorted(
                set(self.wanted_departments) - {d.code for d in self.departments.values()}
            )
            if unknown:
                known = ", ".join(sorted(d.code for d in self.departments.values())) or "none"
                self.notify(
                    f"no open department {', '.join(unknown)} (open: {known}); showing "
                    + ("the others" if self.chosen_codes else "all"),
                    title="Department",
                    severity="warning",
                    markup=False,
                )

    async def _load_printer_faults(self) -> None:
        """The kiosks whose printers are in trouble right now (later changes come live)."""
        try:
            found = await self.core(lambda: devices.list_devices(self.ctx, include_revoked=False),
                                    errors="raise")  # fmt: skip
        except IQMSError:
            return
        for device in found or []:
            if device.fault_state:
                self.printer_faults[device.id] = (device.name, device.fault_message or "")

    def status_alert(self) -> str | None:
        if not self.printer_faults:
            return None
        name, message = next(iter(self.printer_faults.values()))
        more = f" (+{len(self.printer_faults) - 1})" if len(self.printer_faults) > 1 else ""
        return f"⚠ printer {name}: {message}{more}"

    def _printer_changed(self, event: PrinterFault) -> None:
        if event.cleared:
            if self.printer_faults.pop(event.device_id, None) is not None:
                self.notify(f"The printer of {event.device_name} works again.",
                            title="Kiosk printer", markup=False)  # fmt: skip
        else:
            self.printer_faults[event.device_id] = (event.device_name, event.message)
            self.notify(
                f"{event.device_name}: {event.message}"
                + ("" if event.severity == "warning" else ". It shows numbers on screen only."),
                title="Kiosk printer",
                severity="warning" if event.severity == "warning" else "error",
                timeout=30,
                markup=False,
            )
        self.bump_status()

    async def offline_departments(self) -> Sequence[uuid.UUID]:
        await self.load_clinic()
        return [d.id for d in self.open_departments()]

    async def after_sign_in(self, sign_in: SignIn, *, first: bool) -> None:
        if first:
            if not self._clinic_loaded:
                await self.load_clinic()
            await self.switch_mode("queue")
        self.request_refresh(0)

    # ---- refreshing the queue -----------------------------------------------------------------
    def deliver(self, message: LiveMessage) -> None:
        super().deliver(message)
        if isinstance(message, (TicketChanged, Resync)):
            self.request_refresh()
        if isinstance(message, (DoctorChanged, Resync)):
            self.run_worker(self._reload_doctors(), group="doctors", exit_on_error=False)
        if isinstance(message, PrinterChanged):
            self._printer_changed(message.event)

    async def _reload_doctors(self) -> None:
        await self.load_clinic()
        super().deliver(QueueUpdated())

    def request_refresh(self, delay: float = REFRESH_DELAY) -> None:
        """Reload the queue soon (events arriving meanwhile are served by the same reload)."""
        if not self.signed_in:
            return
        if self._refreshing:
            self._dirty = True
            return
        if self._refresh_scheduled:
            return
        self._refresh_scheduled = True
        if delay > 0:
            self.set_timer(delay, self._start_refresh)
        else:
            self.call_later(self._start_refresh)

    def _start_refresh(self) -> None:
        self._refresh_scheduled = False
        self.run_worker(self._refresh(), group="queue-refresh", exit_on_error=False)

    async def _refresh(self) -> None:
        if self._refreshing:
            self._dirty = True
            return
        self._refreshing = True
        try:
            while True:
                self._dirty = False
                started = time.perf_counter()
                if not await self.load_queue():
                    break
                self.prune_offline()
                super().deliver(QueueUpdated())
                self.reload_seconds.append(time.perf_counter() - started)
                if not self._dirty:
                    break
        finally:
            self._refreshing = False

    async def load_queue(self) -> bool:
        """The open tickets in calling order and the names not known yet; False if unreachable."""
        if not self.db_online:
            return False
        try:
            tickets = await self.core(
                lambda: queue.queue_list(self.ctx, statuses=OPEN_STATUSES, limit=QUEUE_LIMIT),
                errors="raise",
            )
            assert tickets is not None
            unknown = {
                t.patient_id for t in tickets if t.patient_id and t.patient_id not in self.names
            }
            if unknown:
                found = await self.core(
                    lambda: patients.names(self.ctx, patient_ids=unknown), errors="raise"
                )
                self.names.update(found or {})
        except DatabaseUnavailable:
            return False
        except IQMSError as exc:
            self.show_error(exc)
            return False
        self.tickets = tickets
        self.truncated = len(tickets) >= QUEUE_LIMIT
        self.loaded.set()
        return True

    def put_ticket(self, ticket: TicketOut, *, name: str | None = None) -> None:
        """Show a ticket as an operation returned it, before the next reload."""
        if name and ticket.patient_id:
            self.names[ticket.patient_id] = name
        index = next((i for i, t in enumerate(self.tickets) if t.id == ticket.id), None)
        tickets = [t for t in self.tickets if t.id != ticket.id]
        if ticket.status in OPEN_STATUSES:  # same place as before (new: at the end) until reloaded
            tickets.insert(len(tickets) if index is None else index, ticket)
        self.tickets = tickets
        super().deliver(QueueUpdated())
        self.request_refresh()

    def drop_ticket(self, ticket_id: uuid.UUID) -> None:
        self.tickets = [t for t in self.tickets if t.id != ticket_id]
        super().deliver(QueueUpdated())
        self.request_refresh()

    # ---- offline ---------------------------------------------------------------------------------
    def prune_offline(self) -> None:
        """Forget offline tickets the server has now (their journal entries are confirmed)."""
        if self.journal is None or not self.offline_tickets:
            return
        pending = {e.op_id for e in self.journal.pending()}
        self.offline_tickets = [t for t in self.offline_tickets if t.op_id in pending]

    def on_synced(self, summary: SyncSummary) -> None:
        super().on_synced(summary)
        self.prune_offline()
        if summary.conflicts:
            self.push_screen(
                ListDialog(
                    "Offline operations kept for review",
                    [(i, reason) for i, reason in enumerate(summary.conflicts)],
                    message=(
                        f"{len(summary.conflicts)} of {summary.pushed} operations done offline "
                        "could not be applied as recorded. They are kept as conflicts for "
                        "review ('iqms admin sync conflicts'):"
                    ),
                )
            )
        self.request_refresh(0)

    async def on_unmount(self) -> None:  # the console's own handler runs after this one
        await self.printer.close()


__all__ = ["QUEUE_LIMIT", "QueueUpdated", "ReceptionApp"]
