"""The waiting-room board as a console: signs in by itself, announces calls, runs all day.

The board is a :class:`~iqms.tui.app.ConsoleApp` with one screen
(:class:`~iqms.tui.display.board.BoardScreen`). It signs in with the
computer's device key (a ``display`` device; no login screen, no idle lock)
and keeps trying while the database is not there yet, so a board that starts
before the server recovers by itself. Every few minutes it checks that its
key is still valid: a revoked board stops. Notices that a desk console would
show as pop-ups (database away, back) go to the log instead: patients see
only the discreet marks of the top line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from rich.text import Text

from iqms.announce import Announcer
from iqms.core.config import Settings
from iqms.core.db import is_connection_error
from iqms.core.errors import AuthenticationFailed, NotFound, PermissionDenied, ValidationError
from iqms.core.queue.events import DisplayMessageChanged
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.tui.app import ConsoleApp
from iqms.tui.auth import DeviceAuth, SignIn
from iqms.tui.display.board import BLINK_SECONDS, BoardScreen
from iqms.tui.display.messages import MessageLineChanged, SoundChanged
from iqms.tui.errors import first_line, notice_for
from iqms.tui.themes import HIGH_CONTRAST

log = logging.getLogger("iqms.tui.display")

#: longest wait between attempts to reach the database before the board has signed in
SIGN_IN_RETRY_MAX_SECONDS = 15.0
#: how often the board checks that its device key is still valid
KEY_CHECK_SECONDS = 300.0
#: exit codes of ``iqms display`` when the board cannot start (as every ``iqms`` command)
_EXIT_CODES: list[tuple[type[Exception], int]] = [
    (NotFound, 3),
    (PermissionDenied, 4),
    (ValidationError, 7),
]
_LOG_LEVELS = {"information": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class BoardSignIn(DeviceAuth):
    """Sign in by itself, and wait (retrying) while the database cannot be reached."""

    def __init__(
        self,
        authenticate: Callable[[Context], Awaitable[Principal]],
        *,
        retry_max: float = SIGN_IN_RETRY_MAX_SECONDS,
    ) -> None:
        super().__init__(authenticate)
        self.retry_max = retry_max

    async def resume(self, ctx: Context) -> SignIn | None:
        delay = 1.0
        warned = False
        while True:
            try:
                return await super().resume(ctx)
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                if not warned:
                    log.warning("waiting for the database: %s", first_line(exc))
                    warned = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)


class BoardApp(ConsoleApp):
    """The waiting-room board: numbers and rooms, the queues, the message line, announcements."""

    TITLE = "Waiting-room board"
    ALLOWED_ROLES: ClassVar[frozenset[str] | None] = frozenset({"display", "admin", "staff"})

    def __init__(
        self,
        settings: Settings,
        auth: BoardSignIn | Principal | Callable[[Context], Awaitable[Principal]],
        *,
        departments: Sequence[str] = (),
        rows: int = 5,
        announcer: Announcer | None = None,
        key_check_seconds: float = KEY_CHECK_SECONDS,
        blink_seconds: float = BLINK_SECONDS,
        **kwargs: Any,
    ) -> None:
        if callable(auth) and not isinstance(auth, (BoardSignIn, Principal)):
            auth = BoardSignIn(auth)
        super().__init__(settings, auth, **kwargs)
        self.announcer = announcer or Announcer("off")
        self.announcer.on_problem = self._sound_problem
        self.muted = False
        self.key_check_seconds = key_check_seconds
        self.board = BoardScreen(
            departments=list(departments), rows=rows, blink_seconds=blink_seconds
        )
        self._theme_before_contrast: str | None = None

    def on_mount(self) -> None:
        self.push_screen(self.board)  # at once: clinic, clock and "connecting" while signing in

    async def after_sign_in(self, sign_in: SignIn, *, first: bool) -> None:
        if first:
            await self.announcer.start()
            if self.announcer.problem:
                self._sound_problem(self.announcer.problem)
            if isinstance(self.authenticator, DeviceAuth):
                self.set_interval(self.key_check_seconds, self._check_key, name="key-check")
        self.board.reload("signed in")

    async def on_unmount(self) -> None:
        await self.announcer.stop()

    # ---- what the board hears from the core ---------------------------------------------------
    def deliver_event(self, event: Any) -> None:
        if isinstance(event, DisplayMessageChanged):
            self.deliver(MessageLineChanged(event))
        else:
            super().deliver_event(event)

    def announce(self, ticket_number: str, room: str | None, *, test: bool = False) -> None:
        """Announce a call (unless muted; a test sounds even when muted)."""
        if self.muted and not test:
            return
        self.announcer.announce(ticket_number, room)

    def _sound_problem(self, problem: str | None) -> None:
        self.board.post_message(SoundChanged(problem))

    async def _check_key(self) -> None:
        """A revoked or replaced device key stops the board (it must not keep showing calls)."""
        if not isinstance(self.authenticator, DeviceAuth):
            return
        try:
            await self.authenticator.authenticate(self.base_ctx)
        except AuthenticationFailed as exc:
            log.error("the board stops: %s", exc)
            self.exit(return_code=5, message=Text(f"iqms: error: {exc}"))
        except Exception as exc:  # the database is away: the heartbeat shows it
            log.info("could not check the device key now: %s", first_line(exc))

    def board_failed(self, exc: BaseException) -> None:
        """The board view was refused: at start (a wrong department) the board stops; later
        (say, a department renamed) it keeps what it shows and logs why."""
        notice = notice_for(exc)
        log.error("cannot load the board: %s", notice.message, exc_info=not notice.expected)
        if self.board.view is None:
            code = next((c for cls, c in _EXIT_CODES if isinstance(exc, cls)), 1)
            self.exit(return_code=code, message=Text(f"iqms: error: {notice.message}"))

    # ---- a wall display shows no pop-ups ------------------------------------------------------
    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Notices go to the log (and ``notices``), not onto the screen patients look at."""
        self.notices.append((str(severity), title, message))
        log.log(_LOG_LEVELS.get(str(severity), logging.INFO), "%s: %s", title or "notice", message)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "lock":
            return False  # a board has nothing to lock
        return super().check_action(action, parameters)

    def toggle_high_contrast(self) -> None:
        if self.theme == HIGH_CONTRAST:
            self.theme = self._theme_before_contrast or "iqms"
        else:
            self._theme_before_contrast = self.theme
            self.theme = HIGH_CONTRAST


__all__ = ["KEY_CHECK_SECONDS", "BoardApp", "BoardSignIn"]
