"""The kiosk's counter: a ticket for a press, online or from the reserved numbers, then printed.

:class:`TicketDesk` holds what the screens need and nothing of Textual:

* :meth:`TicketDesk.issue` - one press, one ticket. The press gets a client
  operation id; the central database is asked first and, if it cannot be
  reached, the offline journal issues the next reserved number under the same
  operation id (a reply lost on the way never becomes a second ticket: the
  sync keeps the one the patient holds). A patient who asked for an SMS is
  matched or registered first (online), or journalled with the ticket.
* :meth:`TicketDesk.check_in` - an appointment by booking code, or by phone
  and date of birth (needs the central database).
* :meth:`TicketDesk.print` / :meth:`TicketDesk.reprint` - through the
  :class:`~iqms.kiosk.printer.PrintWorker` (a thread with a deadline), so a
  slow or broken printer never holds up the screen and never costs a ticket.

Core calls go through ``run(online, offline)``: the console's connectivity
(``ConsoleApp.core``) in the kiosk, or a plain call in tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from iqms.core.config import Settings
from iqms.core.enums import NotifyChannel, PrinterState
from iqms.core.errors import DatabaseUnavailable
from iqms.core.queue.engine import new_status_code
from iqms.core.schemas.queue import TicketOut
from iqms.core.schemas.selfservice import CheckedIn
from iqms.core.service import Context
from iqms.core.services import queue, selfservice
from iqms.core.sync.batch import PatientDetails
from iqms.core.sync.journal import Journal, OfflineTicket
from iqms.kiosk.printer import PrintResult, PrintWorker
from iqms.kiosk.ticket import TicketSlip

T = TypeVar("T")
Runner = Callable[[Callable[[], Awaitable[Any]], Callable[[], Any] | None], Awaitable[Any]]

#: how often one ticket may be printed again from the result screen
MAX_REPRINTS = 2


async def run_direct(online: Callable[[], Awaitable[T]], offline: Callable[[], T] | None) -> T:
    """A runner without offline fallback (tests, benchmarks, a kiosk without a journal)."""
    return await online()


@dataclass(frozen=True)
class KioskDepartment:
    """A service the kiosk offers (what it keeps to issue offline too)."""

    id: uuid.UUID
    code: str
    name: str


@dataclass(frozen=True)
class Contact:
    """A patient who asked for an SMS when it is their turn, and agreed to it."""

    full_name: str
    phone: str  # E.164
    date_of_birth: date
    consent_text: str

    @property
    def last_digits(self) -> str:
        return self.phone[-3:]


@dataclass
class Issued:
    """A ticket the kiosk handed out: what the result screen shows and the printer prints."""

    number: str
    department: str
    language: str
    slip: TicketSlip
    offline: bool = False
    ticket: TicketOut | None = None
    offline_ticket: OfflineTicket | None = None
    room: str | None = None
    appointment_at: datetime | None = None
    contact: Contact | None = None
    #: when the patient pressed (``time.perf_counter``), for the benchmark
    pressed_at: float = 0.0
    #: the rendered ticket, once printed (or tried): reprints send the same bytes
    data: bytes | None = None
    reprints: int = 0
    results: list[PrintResult] = field(default_factory=list)

    @property
    def ahead(self) -> int | None:
        return self.slip.ahead


class TicketDesk:
    """Issues, checks in and prints for one kiosk (see the module's description)."""

    def __init__(
        self,
        settings: Settings,
        printer: PrintWorker,
        *,
        ctx: Callable[[], Context],
        run: Runner = run_direct,
        journal: Callable[[], Journal | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.printer = printer
        self._ctx = ctx
        self._run = run
        self._journal = journal
        self._lock = asyncio.Lock()

    @property
    def busy(self) -> bool:
        """True while a press is being handled (a second press waits for it)."""
        return self._lock.locked()

    # ---- issuing ---------------------------------------------------------------------------
    async def issue(
        self,
        department: KioskDepartment,
        *,
        language: str,
        contact: Contact | None = None,
        pressed_at: float | None = None,
    ) -> Issued:
        """One ticket for one press (central database, or the reserved numbers offline)."""
        pressed = pressed_at if pressed_at is not None else time.perf_counter()
        press = uuid.uuid4()
        async with self._lock:
            patient_id: uuid.UUID | None = None
            ctx = self._ctx()

            async def online() -> TicketOut:
                nonlocal patient_id
                if contact is not None and patient_id is None:
                    patient_id = await selfservice.register_for_messages(
                        ctx,
                        full_name=contact.full_name,
                        phone=contact.phone,
                        date_of_birth=contact.date_of_birth,
                        consent_text=contact.consent_text,
                        language=language,
                    )
                return await queue.issue(
                    ctx, department=department.id, patient=patient_id, client_op_id=press
                )

            def offline() -> OfflineTicket:
                journal = self._journal()
                if journal is None:
                    raise DatabaseUnavailable("the central database cannot be reached")
                patient_op_id = None
                if contact is not None and patient_id is None:
                    patient_op_id = journal.register_patient(
                        PatientDetails(
                            full_name=contact.full_name,
                            phone=contact.phone,
                            date_of_birth=contact.date_of_birth,
                            notify_channel=NotifyChannel.SMS,
                            language=language,
                        )
                    ).op_id
                return journal.issue_ticket(
                    department.id,
                    patient_id=patient_id,
                    patient_op_id=patient_op_id,
                    op_id=press,
                    status_code=new_status_code(),
                )

            got = await self._run(online, offline)
        if isinstance(got, OfflineTicket):
            return Issued(
                number=got.ticket_number,
                department=got.department_name or department.name,
                language=language,
                slip=TicketSlip.for_offline(self.settings, got, language=language),
                offline=True,
                offline_ticket=got,
                contact=contact,
                pressed_at=pressed,
            )
        ticket: TicketOut = got
        return Issued(
            number=ticket.ticket_number,
            department=department.name,
            language=language,
            slip=TicketSlip.for_ticket(
                self.settings, ticket, department=department.name, language=language
            ),
            ticket=ticket,
            contact=contact,
            pressed_at=pressed,
        )

    async def check_in(
        self,
        *,
        language: str,
        booking_code: str | None = None,
        phone: str | None = None,
        date_of_birth: date | None = None,
        pressed_at: float | None = None,
    ) -> Issued:
        """Check in today's appointment (needs the central database) and return its ticket."""
        pressed = pressed_at if pressed_at is not None else time.perf_counter()
        async with self._lock:
            ctx = self._ctx()
            done: CheckedIn = await self._run(
                lambda: selfservice.check_in(
                    ctx, booking_code=booking_code, phone=phone, date_of_birth=date_of_birth
                ),
                None,
            )
        slip = TicketSlip.for_ticket(
            self.settings,
            done.ticket,
            department=done.department_name,
            language=language,
            room=done.room,
        )
        return Issued(
            number=done.ticket.ticket_number,
            department=done.department_name,
            language=language,
            slip=slip,
            ticket=done.ticket,
            room=done.room,
            appointment_at=done.scheduled_at,
            pressed_at=pressed,
        )

    # ---- printing ---------------------------------------------------------------------------
    @property
    def has_printer(self) -> bool:
        return self.printer.status.state != PrinterState.NO_PRINTER

    async def print(self, issued: Issued) -> PrintResult:
        """Print the ticket (never raises for printer trouble; the result says what happened)."""
        if issued.data is None:
            issued.data = await self.printer.render(issued.slip)
        result = await self.printer.print_bytes(issued.data)
        issued.results.append(result)
        return result

    def can_reprint(self, issued: Issued) -> bool:
        return self.has_printer and issued.data is not None and issued.reprints < MAX_REPRINTS

    async def reprint(self, issued: Issued) -> PrintResult | None:
        """The same ticket again (same bytes), a limited number of times."""
        if not self.can_reprint(issued):
            return None
        issued.reprints += 1
        return await self.print(issued)


__all__ = [
    "MAX_REPRINTS",
    "Contact",
    "Issued",
    "KioskDepartment",
    "TicketDesk",
    "run_direct",
]
