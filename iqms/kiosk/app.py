"""The self-service kiosk: a full-screen console signed in with its device key.

A patient chooses a language, a service (with its current wait), optionally
an SMS when it is almost their turn, or checks in for an appointment; the
kiosk shows the number in very large letters and prints it. It runs all day
unattended:

* no login screen and no lock: it signs in with its device key and, if the
  database cannot be reached at start, keeps trying (saying so on screen);
* it goes back to the start screen after ``IQMS_KIOSK_IDLE_SECONDS``;
* quitting needs the staff PIN (``IQMS_KIOSK_ADMIN_PIN``; Ctrl+Q, or five
  taps on the clinic's name), or a signal from the kiosk computer itself;
* a lost database: tickets come from the numbers reserved while online
  (through the offline journal) and are synced when it is back;
* a printer fault: the number is on screen ("please note your number"), the
  start screen says the printer is out of order, and reception gets the fault
  as a live event; the printer is checked again every few seconds while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message

from iqms.core.config import Settings, SmsProvider
from iqms.core.db import is_connection_error
from iqms.core.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidTransition,
    IQMSError,
    NotFound,
    ValidationError,
)
from iqms.core.notify.templates import DEFAULT_LANGUAGE
from iqms.core.schemas.selfservice import DepartmentWait
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import devices, selfservice
from iqms.core.sync.connectivity import ConnectionState, SyncSummary
from iqms.kiosk.desk import Contact, Issued, KioskDepartment, TicketDesk
from iqms.kiosk.faults import FaultReporter
from iqms.kiosk.printer import PrinterStatus, PrintResult, PrintWorker
from iqms.kiosk.screens import (
    CheckInFormScreen,
    CheckInOfflineScreen,
    KioskScreen,
    PinDialog,
    ResultScreen,
    ServiceScreen,
    StartingScreen,
    StartScreen,
)
from iqms.kiosk.texts import t
from iqms.tui.app import ConsoleApp
from iqms.tui.auth import DeviceAuth, SignIn
from iqms.tui.errors import first_line
from iqms.tui.messages import ConnectionChanged, LiveMessage, Resync, TicketChanged

log = logging.getLogger("iqms.kiosk")

T = TypeVar("T")

#: wrong PINs in a row before the PIN dialog waits, and for how long
PIN_TRIES, PIN_LOCK_SECONDS = 3, 60.0
#: check-ins not found within this window before the kiosk sends people to reception
CHECKIN_TRIES, CHECKIN_WINDOW_SECONDS = 5, 300.0
#: the result screen waits this long for the ticket to print before it shows the number
SCREEN_WAITS_FOR_PRINTER = 0.2
#: longest pause between tries to sign in while the database is away at start
START_RETRY_MAX_SECONDS = 30.0


class PrinterChanged(Message):
    """The printer's state changed (from the print worker)."""

    def __init__(self, status: PrinterStatus) -> None:
        self.status = status
        super().__init__()


class KioskAuth(DeviceAuth):
    """Sign in with the device key; while the database cannot be reached, keep trying."""

    def __init__(
        self,
        key: str,
        *,
        on_wait: Callable[[str], Any] | None = None,
        retry_max: float = START_RETRY_MAX_SECONDS,
    ) -> None:
        super().__init__(lambda ctx: devices.authenticate(ctx, key=key))
        self.on_wait = on_wait
        self.retry_max = retry_max

    async def resume(self, ctx: Context) -> SignIn | None:
        delay = 1.0
        while True:
            try:
                return await super().resume(ctx)
            except Exception as exc:
                if not (isinstance(exc, DatabaseUnavailable) or is_connection_error(exc)):
                    raise
                if self.on_wait is not None:
                    self.on_wait(f"{first_line(exc)} (trying again in {delay:.0f} s)")
                log.warning("kiosk cannot sign in yet: %s", first_line(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)


class KioskApp(ConsoleApp):
    """The ticket kiosk (see the module's description)."""

    TITLE = "IQMS kiosk"
    ALLOWED_ROLES = frozenset({"kiosk"})
    OFFLINE_JOURNAL = True
    ENABLE_COMMAND_PALETTE = False
    CSS_PATH = "kiosk.tcss"
    MODES: ClassVar[dict[str, Any]] = {"start": StartScreen}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit (staff PIN)", show=False, priority=True),
    ]

    def __init__(
        self,
        settings: Settings,
        auth: DeviceAuth | Principal | Callable[[Context], Awaitable[Principal]],
        *,
        printer: PrintWorker | None = None,
        departments: Sequence[str] | None = None,
        printer_check_seconds: float = 20.0,
        waits_refresh_seconds: float = 60.0,
        stop_on_signals: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(settings, auth, **options)
        if isinstance(self.authenticator, KioskAuth):
            self.authenticator.on_wait = self._starting_detail
        self.printer = printer or PrintWorker.for_settings(settings)
        self.department_codes = list(departments) if departments else None
        self.departments: list[KioskDepartment] = []
        self.departments_loaded = False
        self.waits: dict[uuid.UUID, DepartmentWait] = {}
        self.waits_known = False
        self.language = DEFAULT_LANGUAGE
        self.offer_sms = settings.sms_provider != SmsProvider.NONE
        self.printer_check_seconds = printer_check_seconds
        self.waits_refresh_seconds = waits_refresh_seconds
        self.stop_on_signals = stop_on_signals
        #: when the patient's last press was handled (``time.perf_counter``)
        self.pressed_at = 0.0
        self.printer_status: PrinterStatus = self.printer.status
        self.reporter: FaultReporter | None = None
        self.desk = TicketDesk(
            settings,
            self.printer,
            ctx=lambda: self.ctx,
            run=self._run,
            journal=lambda: self.journal,
        )
        #: every ticket handed out since start, newest last (what the tests and reception read)
        self.issued: list[Issued] = []
        self._waits_dirty = False
        self._leaving = False
        self._pin_failures = 0
        self._pin_locked_until = 0.0
        self._not_found: deque[float] = deque(maxlen=CHECKIN_TRIES)
        self._remove_printer_listener = self.printer.add_listener(
            lambda status: self.post_message(PrinterChanged(status))
        )

    # ---- start ---------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.push_screen(StartingScreen())
        if self.stop_on_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._stop_from_console, sig)

    def _stop_from_console(self, sig: signal.Signals) -> None:
        log.warning("kiosk stopped by %s from its computer", sig.name)
        self.exit()

    def _starting_detail(self, text: str) -> None:
        if self.db_online:
            self.db_online = False
            self.bump_status()
        for screen in self.screen_stack:
            if isinstance(screen, StartingScreen):
                screen.detail(text)

    def device_name(self) -> str:
        """The kiosk's name in its journal: the device its key belongs to."""
        if self.sign_in is not None and self.sign_in.principal.device_id is not None:
            return self.sign_in.principal.username
        return super().device_name()

    async def offline_departments(self) -> Sequence[uuid.UUID]:
        """The services this kiosk offers (the journal keeps numbers for them)."""
        await self.refresh_departments()
        return [d.id for d in self.departments]

    async def after_sign_in(self, sign_in: SignIn, *, first: bool) -> None:
        if not first:
            return
        if not self.departments_loaded:
            await self.refresh_departments()
        if self._leaving:
            return  # an unknown --department: leaving
        self.reporter = FaultReporter(self.ctx)
        self.set_interval(1.0, self._leave_if_idle, name="idle")
        self.set_interval(3.0, self._refresh_if_dirty, name="waits")
        self.set_interval(self.waits_refresh_seconds, self._mark_dirty, name="waits-age")
        self.set_interval(self.printer_check_seconds, self._check_printer_when_idle, name="printer")
        self.run_worker(self._printer_start(), group="printer", exit_on_error=False)
        await self.switch_mode("start")

    async def _printer_start(self) -> None:
        await self.printer.warm_up()
        await self.printer.check()

    # ---- services and their waits ----------------------------------------------------------------
    async def refresh_departments(self) -> None:
        """Load the open services and their waits (kept as they were while offline)."""
        try:
            found = await self._run(
                lambda: selfservice.department_waits(self.ctx, departments=self.department_codes),
                None,
            )
        except NotFound as exc:
            self._leaving = True
            self.exit(return_code=3, message=Text(f"iqms: error: {exc} (--department)"))
            return
        except Exception as exc:
            self.waits_known = False
            if not (isinstance(exc, DatabaseUnavailable) or is_connection_error(exc)):
                log.error("cannot load the services", exc_info=exc)
            self._deliver_reload()
            return
        self.departments = [KioskDepartment(w.department_id, w.code, w.name) for w in found]
        self.waits = {w.department_id: w for w in found}
        self.waits_known = True
        self.departments_loaded = True
        self._deliver_reload()

    def _deliver_reload(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, StartScreen | ServiceScreen):
                screen.reload()

    def _mark_dirty(self) -> None:
        self._waits_dirty = True

    async def _refresh_if_dirty(self) -> None:
        # Between patients only: the next one sees fresh waits, nobody's press waits on them.
        if not isinstance(self.screen, StartScreen):
            return
        if self._waits_dirty and self.db_online and not self.desk.busy:
            self._waits_dirty = False
            await self.refresh_departments()

    def deliver(self, message: LiveMessage) -> None:
        if isinstance(message, TicketChanged | Resync):
            self._waits_dirty = True  # the queue moved: the waits shown are refreshed
        super().deliver(message)

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        status = message.status
        if status is not None and status.state == ConnectionState.SYNCING:
            return  # the database answers; the journal is being sent
        if message.online:
            self._waits_dirty = True
            if self.reporter is not None and self.reporter.pending is not None:
                self.run_worker(self.reporter.flush(), group="faults", exit_on_error=False)
        else:
            self.waits_known = False
            self._deliver_reload()

    def on_synced(self, summary: SyncSummary) -> None:
        """Offline tickets went to the central queue (conflicts are for reception to review)."""
        log.warning("synced %d offline operations: %s", summary.pushed, summary.counts)

    def notify(self, message: str, **kwargs: Any) -> None:  # type: ignore[override]
        # Staff notices (offline, synced, errors) go to the log and the status bar, not in
        # front of patients in English.
        self.notices.append((str(kwargs.get("severity", "information")), kwargs.get("title", ""),
                             message))  # fmt: skip
        log.info("%s: %s", kwargs.get("title", ""), message)

    # ---- the patient's way through ---------------------------------------------------------------
    def choose_language(self, language: str) -> None:
        self.language = language
        self.show_services()

    def show_services(self) -> None:
        self.go_home(keep_language=True)
        self.push_screen(ServiceScreen())

    def go_home(self, *, keep_language: bool = False) -> None:
        """Back to the start screen (the patient is done, or walked away)."""
        while len(self.screen_stack) > 1 and not isinstance(self.screen, StartScreen):
            self.pop_screen()
        if not keep_language:
            self.language = DEFAULT_LANGUAGE

    def _leave_if_idle(self) -> None:
        if isinstance(self.screen, StartScreen | StartingScreen):
            return
        if self.desk.busy:
            return
        if self.idle_seconds() >= self.settings.kiosk_idle_seconds:
            self.go_home()

    async def _run(self, online: Callable[[], Awaitable[T]], offline: Callable[[], T] | None) -> T:
        result = await self.core(online, offline=offline, errors="raise")
        return result  # type: ignore[return-value]

    def issue_ticket(self, screen: KioskScreen, department: KioskDepartment,
                     contact: Contact | None) -> None:  # fmt: skip
        """A press on a service: issue (in a worker), then show and print the number."""
        pressed = self.pressed_at or time.perf_counter()
        screen.set_busy(True)

        async def work() -> None:
            try:
                issued = await self.desk.issue(
                    department, language=self.language, contact=contact, pressed_at=pressed
                )
            except Exception as exc:
                screen.set_busy(False)
                screen.say(self._refusal(exc, department))
                return
            screen.set_busy(False)
            await self._show_and_print(issued)

        self.run_worker(work(), group="press", exit_on_error=False)

    def check_in(self, screen: CheckInFormScreen, **lookup: Any) -> None:
        """Check in an appointment (in a worker), then show and print its number."""
        now = time.monotonic()
        recent = [x for x in self._not_found if now - x < CHECKIN_WINDOW_SECONDS]
        if len(recent) >= CHECKIN_TRIES:
            screen.say(t(self.language, "checkin.too_many"))
            return
        pressed = self.pressed_at or time.perf_counter()
        screen.set_busy(True)

        async def work() -> None:
            try:
                issued = await self.desk.check_in(
                    language=self.language, pressed_at=pressed, **lookup
                )
            except Exception as exc:
                screen.set_busy(False)
                reason = getattr(exc, "details", {}).get("reason")
                if isinstance(exc, NotFound | ValidationError):
                    self._not_found.append(time.monotonic())
                if isinstance(exc, DatabaseUnavailable) or is_connection_error(exc):
                    self.push_screen(CheckInOfflineScreen())
                elif reason and f"checkin.{reason}" in _CHECKIN_KEYS:
                    screen.say(t(self.language, f"checkin.{reason}"))
                elif reason in ("format",):
                    screen.say(t(self.language, "checkin.bad_code"))
                else:
                    screen.say(self._refusal(exc, None))
                return
            screen.set_busy(False)
            self._not_found.clear()
            await self._show_and_print(issued)

        self.run_worker(work(), group="press", exit_on_error=False)

    def _refusal(self, exc: BaseException, department: KioskDepartment | None) -> str:
        """What to tell the patient when no ticket could be issued."""
        lang = self.language
        if isinstance(exc, Conflict) and exc.details.get("ticket") and department is not None:
            return t(lang, "result.already", number=exc.details["ticket"],
                     department=department.name)  # fmt: skip
        if isinstance(exc, Conflict | DatabaseUnavailable) or is_connection_error(exc):
            return t(lang, "result.no_numbers")  # offline and no reserved numbers left
        if isinstance(exc, InvalidTransition | ValidationError):
            return t(lang, "common.error")
        if not isinstance(exc, IQMSError):
            log.error("kiosk could not issue a ticket", exc_info=exc)
        return t(lang, "common.error")

    async def _show_and_print(self, issued: Issued) -> None:
        self.issued.append(issued)
        # The printer starts at once (in its thread). The screen waits for it a moment:
        # drawing it meanwhile would only slow the ticket down, and a printer that takes
        # longer than that (or has failed) does not keep the number off the screen.
        printing = asyncio.ensure_future(self.desk.print(issued))
        await asyncio.wait({printing}, timeout=SCREEN_WAITS_FOR_PRINTER)
        result_screen = ResultScreen(issued)
        await self.push_screen(result_screen)
        self.last_input_at = time.monotonic()  # the result stays its full time
        result = await printing
        self._printed(result_screen, issued, result)

    def reprint(self, screen: ResultScreen) -> None:
        async def work() -> None:
            screen.printed(t(self.language, "result.printing"), problem=False)
            result = await self.desk.reprint(screen.issued)
            if result is not None:
                self._printed(screen, screen.issued, result)

        self.run_worker(work(), group="print", exclusive=True, exit_on_error=False)

    def _printed(self, screen: ResultScreen, issued: Issued, result: PrintResult) -> None:
        lang = issued.language
        if result.printed:
            screen.printed(t(lang, "result.take"), problem=False)
        elif not self.desk.has_printer:
            screen.printed(t(lang, "result.screen_only"), problem=False)
        else:
            screen.printed(t(lang, "result.note"), problem=True)

    # ---- the printer ---------------------------------------------------------------------------
    @property
    def printer_out_of_order(self) -> bool:
        status = self.printer_status
        return self.desk.has_printer and not status.can_print

    def on_printer_changed(self, message: PrinterChanged) -> None:
        self.printer_status = message.status
        log.warning("printer: %s", message.status.message)
        self._deliver_reload()
        if self.reporter is not None:
            reporter = self.reporter
            self.run_worker(reporter.report(message.status), group="faults",
                            exit_on_error=False)  # fmt: skip

    async def _check_printer_when_idle(self) -> None:
        if self.desk.has_printer and not self.desk.busy and isinstance(self.screen, StartScreen):
            await self.printer.check()

    # ---- quitting (staff) ---------------------------------------------------------------------
    def action_quit(self) -> None:  # type: ignore[override]
        """Ask for the staff PIN; only the right one quits."""
        if isinstance(self.screen, PinDialog):
            return

        def done(quit_: bool | None) -> None:
            if quit_:
                log.warning("kiosk quit with the staff PIN")
                self.exit()

        self.push_screen(PinDialog(configured=self.settings.kiosk_admin_pin is not None), done)

    def action_help_quit(self) -> None:  # type: ignore[override]
        self.action_quit()

    def check_pin(self, pin: str) -> str | None:
        """None if ``pin`` is the staff PIN, else why not (a few wrong ones make it wait)."""
        secret = self.settings.kiosk_admin_pin
        now = time.monotonic()
        if now < self._pin_locked_until:
            return f"Too many wrong PINs: wait {self._pin_locked_until - now:.0f} s."
        if secret is not None and hmac.compare_digest(
            pin.strip().encode(), secret.get_secret_value().encode()
        ):
            self._pin_failures = 0
            return None
        self._pin_failures += 1
        log.warning("wrong kiosk PIN entered")
        if self._pin_failures >= PIN_TRIES:
            self._pin_failures = 0
            self._pin_locked_until = now + PIN_LOCK_SECONDS
            return f"Wrong PIN. Wait {PIN_LOCK_SECONDS:.0f} s before trying again."
        return "Wrong PIN."

    async def on_unmount(self) -> None:
        self._remove_printer_listener()
        await self.printer.close()


_CHECKIN_KEYS = {
    "checkin.not_found",
    "checkin.too_early",
    "checkin.too_late",
    "checkin.checked_in",
    "checkin.cancelled",
    "checkin.closed",
}


__all__ = ["KioskApp", "KioskAuth", "PrinterChanged"]
