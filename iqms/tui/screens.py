"""Screens every console shares: the base of a console's views, the login and the lock screen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from iqms.core.errors import IQMSError
from iqms.tui.auth import SignIn
from iqms.tui.messages import Resync
from iqms.tui.widgets import FieldInput, KeyBar, StatusBar

if TYPE_CHECKING:
    from iqms.tui.app import ConsoleApp


class ConsoleScreen(Screen[Any]):
    """A console view: the status bar on top, the footer with every key below.

    Subclasses yield their widgets from :meth:`compose_body` and reload what
    they show in :meth:`reload`, which runs on a :class:`Resync` and when the
    screen is shown again after live events it did not receive. (Textual calls
    the handlers of every class in the hierarchy: a subclass's ``on_resync``
    runs besides this one, without calling ``super()``.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen_serial = -1

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield from self.compose_body()
        yield KeyBar()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def reload(self) -> None:
        """Load what the screen shows again (after a resync); override."""

    def on_resync(self, message: Resync) -> None:
        self.seen_serial = self.console.event_serial
        self.reload()

    def on_screen_resume(self) -> None:
        if self.console.signed_in and self.seen_serial != self.console.event_serial:
            self.seen_serial = self.console.event_serial
            self.reload()


_BOX_CSS = """
    #box {
        width: 60;
        height: auto;
        border: round $primary;
        padding: 1 2;
        background: $surface;
    }
    #box Label { width: 100%; }
    #box .title { text-style: bold; color: $primary; margin-bottom: 1; }
    #box Input { margin-bottom: 1; }
    #box .message { color: $error; text-style: bold; height: auto; }
    #box .notice { color: $warning; height: auto; margin-bottom: 1; }
    #box .hint { color: $text-muted; margin-top: 1; }
"""


class LoginScreen(Screen[SignIn]):
    """Username and password; the same accounts, lockout and tokens as ``iqms login``."""

    DEFAULT_CSS = (
        """
    LoginScreen { align: center middle; }
    """
        + _BOX_CSS
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "Log in", show=True, priority=False),
    ]

    def __init__(self, *, notice: str | None = None, username: str = "") -> None:
        super().__init__()
        self.notice = notice
        self.username = username

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="box"):
            yield Label(
                f"{self.console.title} · {self.console.settings.clinic_name}", classes="title"
            )
            if self.notice:
                yield Label(self.notice, classes="notice", id="notice")
            yield Label("Username")
            yield FieldInput(value=self.username, placeholder="username", id="username")
            yield Label("Password")
            yield Input(password=True, placeholder="password", id="password")
            yield Label("", classes="message", id="message")
            yield Label("Enter: log in   Tab: next field   Ctrl+Q: quit", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        target = "#password" if self.username else "#username"
        self.query_one(target, Input).focus()

    @on(Input.Submitted, "#password")
    def _submitted(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        username = self.query_one("#username", Input).value.strip()
        password = self.query_one("#password", Input).value
        if not username:
            self.show_message("Type your username.")
            self.query_one("#username", Input).focus()
            return
        if not password:
            self.show_message("Type your password.")
            self.query_one("#password", Input).focus()
            return
        self.show_message("Checking…", error=False)
        self._login(username, password)

    def show_message(self, text: str, *, error: bool = True) -> None:
        label = self.query_one("#message", Label)
        label.update(text)
        label.set_class(not error, "-info")

    @work(exclusive=True, group="login", exit_on_error=False)
    async def _login(self, username: str, password: str) -> None:
        try:
            sign_in = await self.console.authenticator.login(
                self.console.base_ctx, username=username, password=password
            )
            problem = self.console.role_problem(sign_in)
        except IQMSError as exc:
            problem = str(exc)
        except Exception as exc:  # the database is away, or a bug: say so, stay here
            problem = self.console.notice_text(exc)
        if problem is not None:
            self.show_message(problem)
            password_input = self.query_one("#password", Input)
            password_input.value = ""
            password_input.focus()
            return
        self.dismiss(sign_in)


class LockScreen(Screen[SignIn | None]):
    """Covers the console after a while idle; the password unlocks, Ctrl+O lets another log in."""

    DEFAULT_CSS = (
        """
    LockScreen { align: center middle; }
    """
        + _BOX_CSS
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "unlock", "Unlock"),
        Binding("ctrl+o", "switch_user", "Switch user"),
    ]

    def __init__(self, sign_in: SignIn) -> None:
        super().__init__()
        self.sign_in = sign_in

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="box"):
            yield Label(f"{self.console.title} is locked", classes="title")
            yield Static(f"Signed in: {self.sign_in.label}")
            yield Label("Password")
            yield Input(password=True, placeholder="password", id="password")
            yield Label("", classes="message", id="message")
            yield Label("Enter: unlock   Ctrl+O: another person logs in", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#password", Input).focus()

    @on(Input.Submitted, "#password")
    def _submitted(self) -> None:
        self.action_unlock()

    def action_unlock(self) -> None:
        password = self.query_one("#password", Input).value
        if not password:
            self.query_one("#message", Label).update("Type your password.")
            return
        self._unlock(password)

    def action_switch_user(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="unlock", exit_on_error=False)
    async def _unlock(self, password: str) -> None:
        try:
            sign_in = await self.console.authenticator.login(
                self.console.base_ctx, username=self.sign_in.principal.username, password=password
            )
        except IQMSError as exc:
            problem: str | None = str(exc)
        except Exception as exc:
            problem = self.console.notice_text(exc)
        else:
            problem = None
        if problem is not None:
            self.query_one("#message", Label).update(problem)
            box = self.query_one("#password", Input)
            box.value = ""
            box.focus()
            return
        self.dismiss(sign_in)


__all__ = ["ConsoleScreen", "LockScreen", "LoginScreen"]
