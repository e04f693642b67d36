"""The base of every IQMS console: one core context, sign-in, live events, offline, errors, lock.

See :mod:`iqms.tui` for how a console plugs in. In short, a subclass sets
``TITLE``, ``ALLOWED_ROLES`` and its ``MODES`` (or screens) and implements
:meth:`ConsoleApp.after_sign_in`; everything else is here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Literal, TypeVar

from rich.text import Text
from textual import events
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.worker import Worker, WorkerState

from iqms.core.clock import Clock, SystemClock
from iqms.core.config import Settings
from iqms.core.db import Database, is_connection_error
from iqms.core.errors import DatabaseUnavailable
from iqms.core.queue.events import DoctorChanged as DoctorEvent
from iqms.core.queue.events import PrinterFault, TicketEvent
from iqms.core.queue.events import Resync as CoreResync
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, queue
from iqms.core.sync.connectivity import (
    Backoff,
    ConnectionState,
    Connectivity,
    ConnectivityStatus,
    SyncSummary,
)
from iqms.core.sync.journal import JOURNAL_FILE, Journal
from iqms.tui.auth import AuthSource, SignIn, as_authenticator
from iqms.tui.errors import first_line, notice_for
from iqms.tui.messages import (
    ConnectionChanged,
    DoctorChanged,
    LiveMessage,
    PrinterChanged,
    Resync,
    SignedIn,
    TicketChanged,
)
from iqms.tui.palette import ActionsProvider
from iqms.tui.screens import ConsoleScreen, LockScreen, LoginScreen
from iqms.tui.themes import DEFAULT_THEME, THEMES

log = logging.getLogger("iqms.tui")

#: what a console says when the database goes away: with its offline journal, and without
OFFLINE_KEPT_HERE = (
    "The central database cannot be reached. "
    "New tickets and registrations are saved here and sent when it is back."
)
OFFLINE_NO_CHANGES = (
    "The central database cannot be reached. Changes are not possible until it is back."
)

T = TypeVar("T")

#: seconds between checks that the central database still answers
HEARTBEAT_SECONDS = 5.0
#: seconds between checks whether the console has been idle long enough to lock
IDLE_CHECK_SECONDS = 15.0
#: longest wait before the live-event listener tries again after losing the database
EVENTS_RETRY_MAX_SECONDS = 30.0
#: how long closing the console waits for core calls in flight to finish
CLOSE_GRACE_SECONDS = 10.0


class ConsoleApp(App[None]):
    """A signed-in console on the IQMS core (subclass it; see :mod:`iqms.tui`)."""

    TITLE = "IQMS"
    #: roles allowed to use this console (None: anyone who can sign in)
    ALLOWED_ROLES: ClassVar[frozenset[str] | None] = None
    #: keep working through the offline journal when the database goes away
    OFFLINE_JOURNAL: ClassVar[bool] = False
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+l", "lock", "Lock"),
    ]

    #: bumped whenever the status bar should redraw (sign-in, connection, pending operations)
    status_version: reactive[int] = reactive(0, init=False)

    def __init__(
        self,
        settings: Settings,
        auth: AuthSource,
        *,
        clock: Clock | None = None,
        live_events: bool = True,
        offline: bool | None = None,
        backoff: Backoff | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.authenticator = as_authenticator(auth)
        self.clock: Clock = clock or SystemClock()
        self.live_events = live_events
        #: the console has subscribed to the live events (their listener is in place)
        self.listening = False
        self.offline_enabled = self.OFFLINE_JOURNAL if offline is None else offline
        self.backoff = backoff
        self.heartbeat_seconds = heartbeat_seconds
        self.db = Database.from_settings(settings)
        self.base_ctx = Context(
            db=self.db, principal=Principal.anonymous(), settings=settings, clock=self.clock
        )
        self.sign_in: SignIn | None = None
        self.ctx: Context = self.base_ctx
        self.connectivity: Connectivity | None = None
        self.journal: Journal | None = None
        self.db_online = True
        self.locked = False
        self.event_serial = 0
        self.last_input_at = time.monotonic()
        self._last_sync: SyncSummary | None = None
        self._remove_listener: Callable[[], None] | None = None
        self._console_started = False
        self._in_flight: set[asyncio.Future[Any]] = set()
        #: the latest notifications (severity, title, message), newest last
        self.notices: deque[tuple[str, str, str]] = deque(maxlen=50)
        for theme in THEMES:
            self.register_theme(theme)

    # ---- start and sign-in ------------------------------------------------------------------
    @property
    def signed_in(self) -> bool:
        return self.sign_in is not None

    def on_mount(self) -> None:
        wanted = self.settings.tui_theme
        if wanted in self.available_themes:
            self.theme = wanted
        else:
            self.theme = DEFAULT_THEME
            self.notify(f"unknown theme {wanted!r} (IQMS_TUI_THEME); using {DEFAULT_THEME}",
                        severity="warning", markup=False)  # fmt: skip
        self.run_worker(self._start(), name="start", group="start", exit_on_error=False)

    async def _start(self) -> None:
        try:
            sign_in = await self.authenticator.resume(self.base_ctx)
        except Exception as exc:  # a device that cannot authenticate, or no database
            if not self.authenticator.interactive:
                self.show_error(exc)
                self.exit(return_code=5, message=Text(f"iqms: error: {self.notice_text(exc)}"))
                return
            self.authenticator.notice = self.notice_text(exc)
            sign_in = None
        if sign_in is not None:
            problem = self.role_problem(sign_in)
            if problem is None:
                await self._signed_in(sign_in)
                return
            if not self.authenticator.interactive:
                self.exit(return_code=4, message=Text(f"iqms: error: {problem}"))
                return
            self.authenticator.notice = problem
        self.show_login()

    def show_login(self, *, notice: str | None = None, username: str = "") -> None:
        """Ask for a username and password (interactive consoles)."""
        message = notice or self.authenticator.notice
        self.authenticator.notice = None

        def done(sign_in: SignIn | None) -> None:
            if sign_in is not None:
                self.run_worker(self._signed_in(sign_in), group="start", exit_on_error=False)

        self.push_screen(LoginScreen(notice=message, username=username), done)

    def role_problem(self, sign_in: SignIn) -> str | None:
        """Why this account may not use this console (None if it may)."""
        allowed = self.ALLOWED_ROLES
        if allowed is None or sign_in.principal.role in allowed:
            return None
        roles = " or ".join(sorted(allowed))
        return f"{self.title} is for {roles} accounts; {sign_in.principal.username} is {sign_in.principal.role}"

    async def _signed_in(self, sign_in: SignIn) -> None:
        switched = self.sign_in is not None and (
            self.sign_in.principal.user_id != sign_in.principal.user_id
        )
        self.sign_in = sign_in
        self.ctx = self.base_ctx.as_principal(sign_in.principal)
        self.last_input_at = time.monotonic()
        if self.connectivity is not None:
            self.connectivity.ctx = self.ctx
        first = not self._console_started
        if first:
            self._console_started = True
            if self.offline_enabled:
                await self._start_offline()
            if self.live_events:
                self.run_worker(
                    self._listen(), name="live-events", group="events", exit_on_error=False
                )
            self.set_interval(self.heartbeat_seconds, self._heartbeat, name="heartbeat")
            if self.authenticator.interactive and self.settings.tui_idle_lock_minutes > 0:
                self.set_interval(IDLE_CHECK_SECONDS, self.lock_if_idle, name="idle-lock")
        self.bump_status()
        await self.after_sign_in(sign_in, first=first)
        self.deliver(SignedIn(sign_in))
        if switched:
            self.deliver(Resync("another person signed in"))

    async def after_sign_in(self, sign_in: SignIn, *, first: bool) -> None:
        """Show the console's main view (``first``) or adjust to another person; override."""

    # ---- offline ------------------------------------------------------------------------------
    async def offline_departments(self) -> Sequence[uuid.UUID]:
        """Departments to keep offline ticket numbers for: every open one (override to narrow)."""
        found = await self.core(lambda: clinic.list_departments(self.ctx))
        return [d.id for d in found or []]

    def device_name(self) -> str:
        """This terminal's name in the offline journal: ``IQMS_DEVICE_NAME`` or console@host."""
        if self.settings.device_name:
            return self.settings.device_name
        console = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "console"
        return f"{console}@{socket.gethostname()}"[:48]

    async def _start_offline(self) -> None:
        self.journal = Journal(
            self.settings.data_dir / JOURNAL_FILE,
            # a device signed in with its key syncs as that device; a person's terminal as its own
            device_id=self.ctx.principal.device_id,
            device_name=self.device_name(),
            timezone=self.settings.tz,
            clock=self.clock,
        )
        self.connectivity = Connectivity(
            self.ctx,
            self.journal,
            backoff=self.backoff or Backoff(base=1.0, maximum=15.0),
            departments=list(await self.offline_departments()),
        )
        self._remove_listener = self.connectivity.add_listener(self._connectivity_changed)
        try:
            status = await self.connectivity.start()
        except Exception as exc:  # e.g. the terminal's device record was disabled
            self.show_error(exc)
            status = self.connectivity.status()
        self._connectivity_changed(status)

    def _connectivity_changed(self, status: ConnectivityStatus) -> None:
        # Called by the connectivity component (same event loop): hand over as a message.
        # Syncing means the database answered: the console is online while the journal goes out.
        self.post_message(ConnectionChanged(status.state != ConnectionState.OFFLINE, status))

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        was_online = self.db_online
        self.db_online = message.online
        self.bump_status()
        status = message.status
        if (
            status is not None
            and status.last_sync is not None
            and status.last_sync is not self._last_sync
        ):
            self._last_sync = status.last_sync
            self.on_synced(status.last_sync)
        if message.online and not was_online:
            self.notify("The database is back; live updates resume.", title="Online")
            self.deliver(Resync("back online"))
        elif not message.online and was_online:
            said = OFFLINE_KEPT_HERE if self.connectivity is not None else OFFLINE_NO_CHANGES
            self.notify(said, title="Offline", severity="warning", markup=False)
        self.deliver(message)

    def refused_offline(self) -> bool:
        """Whether a change must wait for the database (away, and no offline journal keeps
        changes here); says so. Checked before a form opens that could not be sent."""
        if self.db_online or self.connectivity is not None:
            return False
        self.notify(OFFLINE_NO_CHANGES, title="Offline", severity="warning", markup=False)
        return True

    def on_synced(self, summary: SyncSummary) -> None:
        """The offline journal was pushed; says how it went (override to show conflicts)."""
        counts = ", ".join(f"{n} {what}" for what, n in sorted(summary.counts.items()))
        self.notify(
            f"Sent {summary.pushed} offline operations ({counts}).",
            title="Synced",
            severity="warning" if summary.conflicts else "information",
            markup=False,
        )

    def status_alert(self) -> str | None:
        """Something the status bar should flag (e.g. a kiosk printer out of paper); override."""
        return None

    def connection_text(self) -> str:
        """The connection part of the status bar."""
        status = self.connectivity.status() if self.connectivity is not None else None
        pending = status.pending if status is not None else 0
        if status is not None and status.state == ConnectionState.SYNCING:
            return f"⟳ syncing {pending}"
        if self.db_online:
            return "● online" + (f" · {pending} to sync" if pending else "")
        if status is not None:
            when = status.since.astimezone(self.settings.tz).strftime("%H:%M")
            return f"▲ OFFLINE since {when} · {pending} to sync"
        return "▲ OFFLINE"

    async def _heartbeat(self) -> None:
        if not self.signed_in:
            return
        if self.connectivity is not None and self.connectivity.state != ConnectionState.ONLINE:
            return  # the connectivity component is already probing
        try:
            await self.db.check()
        except DatabaseUnavailable as exc:
            if self.connectivity is not None:
                self.connectivity.go_offline(exc)
            elif self.db_online:
                self.post_message(ConnectionChanged(False))
            return
        if self.connectivity is None and not self.db_online:
            self.post_message(ConnectionChanged(True))
        elif self.connectivity is not None:
            self.bump_status()  # pending count may have changed

    # ---- live events --------------------------------------------------------------------------
    async def _listen(self) -> None:
        delay = 1.0
        first = True
        while True:
            try:
                subscription = await queue.watch(self.ctx)
                async with subscription as feed:
                    self.listening = True
                    if not first:
                        self.deliver(Resync("live updates reconnected"))
                    first = False
                    delay = 1.0
                    async for event in feed:
                        self.deliver_event(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening = False
                log.warning("live updates interrupted: %s", first_line(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, EVENTS_RETRY_MAX_SECONDS)

    def deliver_event(self, event: Any) -> None:
        """Turn a core event into the console's message and deliver it."""
        if isinstance(event, TicketEvent):
            self.deliver(TicketChanged(event))
        elif isinstance(event, DoctorEvent):
            self.deliver(DoctorChanged(event))
        elif isinstance(event, PrinterFault):
            self.deliver(PrinterChanged(event))
        elif isinstance(event, CoreResync):
            self.deliver(Resync(event.reason))

    def deliver(self, message: LiveMessage) -> None:
        """Send a message to every screen of the current stack (top first)."""
        self.event_serial += 1
        for screen in reversed(self.screen_stack):
            if isinstance(screen, ConsoleScreen):
                screen.seen_serial = self.event_serial
            screen.post_message(message)

    # ---- calling the core: the one error path -----------------------------------------------
    async def core(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        offline: Callable[[], T] | None = None,
        errors: Literal["notify", "raise"] = "notify",
    ) -> T | None:
        """Run a core call; with the offline journal, ``offline`` runs when the database is away.

        A refusal or failure becomes a short notification and ``None``
        (``errors="raise"`` re-raises it for a form to show beside a field).
        """
        try:
            # Shielded: a worker cancelled mid-call (the console closing, a newer search)
            # leaves the transaction to finish or roll back instead of cutting it off.
            task = asyncio.ensure_future(self._core_call(call, offline))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            return await asyncio.shield(task)
        except Exception as exc:
            if errors == "raise":
                raise
            self.show_error(exc)
            return None
        finally:
            self.bump_status()

    async def _core_call(
        self, call: Callable[[], Awaitable[T]], offline: Callable[[], T] | None
    ) -> T:
        if self.connectivity is not None:
            return await self.connectivity.run(call, offline=offline)
        try:
            return await call()
        except Exception as exc:
            if is_connection_error(exc) and self.db_online:
                self.post_message(ConnectionChanged(False))
            raise

    def show_error(self, exc: BaseException) -> None:
        """A core refusal or failure as a short notice (and the details in the log for bugs)."""
        notice = notice_for(exc)
        if not notice.expected:
            log.error("unexpected error in %s", self.title, exc_info=exc)
        self.notify(notice.message, title=notice.title, severity=notice.severity, markup=False)

    def notice_text(self, exc: BaseException) -> str:
        return notice_for(exc).message

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.show_error(event.worker.error)

    def _fatal_error(self) -> None:
        """A bug: log the traceback, leave with one line instead of a traceback on screen."""
        import sys

        exc = sys.exc_info()[1]
        log.critical("%s stopped on an unexpected error", self.title, exc_info=exc)
        detail = f"{type(exc).__name__}: {first_line(exc)}" if exc else "unexpected error"
        self.bell()
        self.panic(Text(f"iqms: error: {self.title} stopped: {detail} (details in the log)"))

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        self.notices.append((str(severity), title, message))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # ---- status ------------------------------------------------------------------------------
    def bump_status(self) -> None:
        self.status_version += 1

    # ---- idle lock ------------------------------------------------------------------------------
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.MouseScrollDown,
                              events.MouseScrollUp)):  # fmt: skip
            self.last_input_at = time.monotonic()
        await super().on_event(event)

    def idle_seconds(self) -> float:
        return time.monotonic() - self.last_input_at

    def lock_if_idle(self) -> None:
        """Lock the console if nobody touched it for ``IQMS_TUI_IDLE_LOCK_MINUTES``."""
        minutes = self.settings.tui_idle_lock_minutes
        if minutes > 0 and self.idle_seconds() >= minutes * 60:
            self.action_lock()

    def action_lock(self) -> None:
        """Cover the console until the password is typed again (interactive consoles)."""
        if not self.authenticator.interactive or self.locked or self.sign_in is None:
            return
        self.locked = True
        current = self.sign_in

        def done(result: SignIn | None) -> None:
            self.locked = False
            self.last_input_at = time.monotonic()
            if result is not None:
                self.run_worker(self._signed_in(result), group="start", exit_on_error=False)
            else:
                self.show_login(notice=f"{current.display_name} logged out.")

        self.push_screen(LockScreen(current), done)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "quit":
            return True
        if not self.signed_in or self.locked:
            return False
        return super().check_action(action, parameters)

    # ---- shutdown ----------------------------------------------------------------------------
    async def on_unmount(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
        if self.connectivity is not None:
            await self.connectivity.stop()
        # Let core calls in flight finish before the pools close: a connection still checked
        # out would keep its transaction open (and, on SQLite, the write lock).
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=CLOSE_GRACE_SECONDS)
        await self.db.dispose()


__all__ = ["HEARTBEAT_SECONDS", "ConsoleApp"]
