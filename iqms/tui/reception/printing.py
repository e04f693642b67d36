"""Printing a ticket's slip at the front desk, on this terminal's ticket printer.

The slip is the kiosk's (:class:`~iqms.kiosk.ticket.TicketSlip`), printed by the
kiosk's :class:`~iqms.kiosk.printer.PrintWorker` from the ``IQMS_PRINTER_*``
settings: one background thread with a deadline per job, so the console never
waits on the printer. The worker (and python-escpos) is only set up on the
first print, and closed with the console.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from iqms.core.config import PrinterKind, Settings
from iqms.core.enums import PrinterState, TicketStatus
from iqms.core.errors import IQMSError
from iqms.core.notify.templates import pick_language
from iqms.core.schemas.queue import TicketOut
from iqms.core.services import queue

if TYPE_CHECKING:
    from iqms.kiosk.printer import PrintWorker
    from iqms.tui.reception.app import ReceptionApp

#: the tickets a slip can be printed for: still waiting for a doctor
PRINTABLE = (TicketStatus.WAITING, TicketStatus.HELD, TicketStatus.CALLED)
NO_PRINTER = (
    "No ticket printer is set up at this desk: set IQMS_PRINTER_KIND (network, usb, serial "
    "or file) and its IQMS_PRINTER_* settings, e.g. IQMS_PRINTER_HOST for a network printer, "
    "then start the console again."
)
TITLE = "Printer"


class DeskPrinter:
    """This terminal's ticket printer, set up on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._worker: PrintWorker | None = None
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return self.settings.printer_kind != PrinterKind.DUMMY

    async def worker(self) -> PrintWorker:
        """The print worker (raises ``ConfigError`` when the settings do not add up)."""
        async with self._lock:
            if self._worker is None:
                from iqms.kiosk.printer import PrintWorker

                # Checking the settings loads python-escpos and its profiles: not on the UI thread.
                self._worker = await asyncio.to_thread(PrintWorker.for_settings, self.settings)
            return self._worker

    async def close(self) -> None:
        if self._worker is not None:
            await self._worker.close()
            self._worker = None


async def print_ticket(app: ReceptionApp, ticket: TicketOut) -> None:
    """Print the slip of ``ticket`` as it is now; every outcome is a notice."""
    number = ticket.ticket_number
    printer = app.printer
    if not printer.configured:
        app.notify(NO_PRINTER, title=TITLE, severity="warning", timeout=15, markup=False)
        return
    current = await app.core(lambda: queue.get_ticket(app.ctx, ticket=ticket.id))
    if current is None:  # the core's refusal or the database away: already on screen
        return
    if current.status not in PRINTABLE:
        app.notify(
            f"{number} is {current.status.value.replace('_', ' ')}: only a waiting, held or "
            "called ticket can be printed.",
            title=TITLE,
            severity="warning",
            markup=False,
        )
        return
    try:
        worker = await printer.worker()
    except IQMSError as exc:
        app.notify(str(exc), title=TITLE, severity="error", timeout=15, markup=False)
        return
    from iqms.kiosk.ticket import TicketSlip

    slip = TicketSlip.for_ticket(
        app.settings,
        current,
        department=_department(app, current),
        language=await _language(app, current),
        room=_room(app, current),
    )
    result = await worker.print_ticket(slip)
    if result.printed:
        low = result.status.state == PrinterState.PAPER_LOW
        app.notify(
            f"{number} printed" + (f" ({result.status.message})" if low else ""),
            title=TITLE,
            severity="warning" if low else "information",
            markup=False,
        )
    else:
        app.notify(f"{number} not printed: {result.status.message}", title=TITLE,
                   severity="error", timeout=15, markup=False)  # fmt: skip


def _department(app: ReceptionApp, ticket: TicketOut) -> str:
    dept = app.departments.get(ticket.department_id)
    return dept.name if dept else ticket.department_code


def _room(app: ReceptionApp, ticket: TicketOut) -> str | None:
    if ticket.status == TicketStatus.CALLED and ticket.called_room:
        return ticket.called_room
    doctor = app.doctors.get(ticket.doctor_id) if ticket.doctor_id else None
    return doctor.room if doctor else None


async def _language(app: ReceptionApp, ticket: TicketOut) -> str:
    """The patient's language for the slip's lines, else the clinic's."""
    if ticket.patient_id is not None:
        language = await app.core(lambda: queue.slip_language(app.ctx, ticket=ticket.id))
        if language:
            return pick_language(language)
    return pick_language(app.settings.clinic_language)


__all__ = ["NO_PRINTER", "PRINTABLE", "DeskPrinter", "print_ticket"]
