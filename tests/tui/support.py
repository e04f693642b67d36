"""What the console tests share: accounts with passwords, waiting for the screen, a sample console."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widgets import Static

from iqms.core.config import Settings
from iqms.core.enums import Role
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, queue, users
from iqms.tui.app import ConsoleApp
from iqms.tui.auth import SignIn
from iqms.tui.messages import DoctorChanged, Resync, TicketChanged
from iqms.tui.screens import ConsoleScreen
from tests.conftest import make_settings

PASSWORD = "correct-horse-battery"


async def add_account(
    ctx: Context, username: str, role: Role | str = Role.STAFF, full_name: str | None = None
) -> uuid.UUID:
    """An account with :data:`PASSWORD`, created through the users service."""
    user = await users.create(
        ctx,
        username=username,
        full_name=full_name or username.title(),
        role=Role(role),
        password=PASSWORD,
    )
    return user.id


async def staff_principal(ctx: Context, username: str = "desk") -> Principal:
    """A reception account, signed in (for consoles started without the login screen)."""
    user_id = await add_account(ctx, username, Role.STAFF, f"{username.title()} Staff")
    return Principal(user_id=user_id, username=username, role=Role.STAFF.value)


def console_settings(tmp_path: Path, db_url: str, **overrides: Any) -> Settings:
    return make_settings(tmp_path, db_url, config_dir=tmp_path / "config", **overrides)


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], bool], *, within: float = 5.0, what: str = ""
) -> float:
    """Let the app run until ``condition()`` holds; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    def holds() -> bool:
        try:
            return condition()
        except NoMatches:  # the widget it looks at is being replaced right now
            return False

    while not holds():
        if loop.time() - started > within:
            raise AssertionError(f"timed out after {within} s waiting for {what or condition}")
        await pilot.pause(0.02)
    return loop.time() - started


async def listening(pilot: Pilot[Any], *, within: float = 10.0) -> None:
    """Let the console run until its live events listener is in place."""
    await wait_until(pilot, lambda: pilot.app.listening, within=within,  # type: ignore[attr-defined]
                     what="the live events listener")  # fmt: skip


def showing(app: Any, screen: type) -> bool:
    """``app`` shows a ``screen`` that is composed and mounted (so keys pressed now reach it)."""
    return isinstance(app.screen, screen) and app.screen.is_mounted


def screen_text(app: ConsoleApp) -> str:
    """Everything the current screen shows, as plain text lines."""
    strips = app.screen._compositor.render_strips()  # what export_screenshot renders
    return "\n".join(strip.text for strip in strips)


def status_line(app: ConsoleApp) -> str:
    """The status bar (the top line of the screen)."""
    lines = screen_text(app).splitlines()
    return lines[0] if lines else ""


async def synced_when_back(
    pilot: Pilot[Any], link: Any, operations: int, *, within: float = 5.0
) -> None:
    """The database ``link`` restored: the console goes online and says it sent its journal."""
    app = pilot.app
    await link.restore()
    await wait_until(pilot, lambda: "● online" in status_line(app), within=within)  # type: ignore[arg-type]
    await wait_until(pilot, lambda: any(n[1] == "Synced" for n in app.notices))  # type: ignore[attr-defined]
    sent = f"Sent {operations} offline operations ({operations} applied)."
    assert ("information", "Synced", sent) in app.notices  # type: ignore[attr-defined]


class SampleScreen(ConsoleScreen):
    """A minimal console view: lists the live events it got and issues tickets."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "issue", "Issue ticket"),
        Binding("x", "broken", "Broken action"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.kinds: list[str] = []
        self.reloads = 0
        self.issued: list[str] = []

    def compose_body(self) -> ComposeResult:
        yield Static("no events", id="events")

    def on_ticket_changed(self, message: TicketChanged) -> None:
        self.kinds.append(f"{message.event.kind} {message.event.ticket_number}")
        self.query_one("#events", Static).update(", ".join(self.kinds))

    def on_doctor_changed(self, message: DoctorChanged) -> None:
        self.kinds.append(f"doctor {message.event.status}")

    def reload(self) -> None:
        self.reloads += 1

    def on_resync(self, message: Resync) -> None:
        self.kinds.append(f"resync: {message.reason}")  # the base class reloads as well

    def action_issue(self) -> None:
        self.run_worker(self._issue(), exit_on_error=False)

    async def _issue(self) -> None:
        app = self.console
        journal = app.journal
        offline = None
        if journal is not None and app.connectivity is not None:
            department = app.connectivity.departments[0]
            offline = lambda: journal.issue_ticket(department)  # noqa: E731
        ticket = await app.core(lambda: queue.issue(app.ctx, department="GEN"), offline=offline)
        if ticket is not None:
            self.issued.append(ticket.ticket_number)

    def action_broken(self) -> None:
        async def bug() -> None:
            raise RuntimeError("a bug in the console")

        self.run_worker(self.console.core(bug), exit_on_error=False)


class SampleConsole(ConsoleApp):
    TITLE = "Sample console"
    ALLOWED_ROLES = frozenset({"staff", "admin"})
    MODES: ClassVar[dict[str, Any]] = {"main": SampleScreen}

    async def after_sign_in(self, sign_in: SignIn, *, first: bool) -> None:
        if first:
            await self.switch_mode("main")


async def make_department(ctx: Context) -> None:
    await clinic.create_department(ctx, code="GEN", name="General Practice", ticket_prefix="A")


__all__ = [
    "PASSWORD",
    "SampleConsole",
    "SampleScreen",
    "add_account",
    "console_settings",
    "listening",
    "make_department",
    "screen_text",
    "showing",
    "staff_principal",
    "status_line",
    "synced_when_back",
    "wait_until",
]
