"""The kiosk's screens: language, service, SMS, appointment check-in, the number, staff PIN.

Every choice is a large target with its digit on it: touch it, click it, or
press the digit (a numeric keypad is enough; ``0`` goes back). Forms take
digits too (phone, date of birth, booking code); Enter goes on, Escape back.
Texts come from :mod:`iqms.kiosk.texts` in the language the patient chose.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label, MaskedInput, Static

from iqms.core.schemas.common import normalise_phone
from iqms.kiosk.bignumber import BigNumber
from iqms.kiosk.desk import Contact, Issued, KioskDepartment
from iqms.kiosk.texts import LANGUAGE_NAMES, LANGUAGES, ahead_text, t, wait_range_text, waiting_text
from iqms.tui.screens import ConsoleScreen
from iqms.tui.widgets import StatusBar

if TYPE_CHECKING:
    from iqms.kiosk.app import KioskApp

#: taps on the clinic's name within this many seconds open the staff PIN dialog
STAFF_TAPS, STAFF_TAP_SECONDS = 5, 4.0
#: a press that takes longer than this shows "one moment" and dims the choices
BUSY_SHOWN_AFTER = 0.4


class Choice(Static, can_focus=True):
    """A large target: its digit, a label and an optional second line."""

    DEFAULT_CSS = """
    Choice {
        width: 1fr;
        height: 5;
        padding: 0 2;
        margin: 0 1 1 1;
        border: round $primary;
        background: $surface;
        content-align: left middle;
    }
    Choice:hover { background: $panel; }
    Choice:focus { border: heavy $accent; background: $panel; }
    Choice.-disabled { opacity: 40%; }
    """

    @dataclass
    class Chosen(Message):
        key: str

    def __init__(self, key: str, label: str, detail: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.label = label
        self.detail = detail

    def render(self) -> Text:
        text = Text.assemble((f"{self.key}  ", "bold reverse"), " ", (self.label, "bold"))
        if self.detail:
            text.append("\n     " + self.detail)
        return text

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Chosen(self.key))

    def key_enter(self) -> None:
        self.post_message(self.Chosen(self.key))


class KioskScreen(ConsoleScreen):
    """A kiosk view: the status bar on top, big choices below (no footer: keys are on them)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *[Binding(str(n), f"choose('{n}')", show=False) for n in range(10)],
        Binding("up", "app.focus_previous", show=False),
        Binding("down", "app.focus_next", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self._handlers: dict[str, Callable[[], Any]] = {}

    @property
    def kiosk(self) -> KioskApp:
        return cast("KioskApp", self.app)

    def parts(self, *ids: str) -> dict[str, Widget] | None:
        """These widgets of the screen by id; None if any is missing.

        The kiosk reaches its screens from timers and the print worker at any moment: also a
        screen whose widgets are not composed yet, or are being taken down as it goes.
        """
        if not self.is_attached:
            return None
        found = {str(w.id): w for w in self.query(", ".join(f"#{i}" for i in ids))}
        return found if len(found) == len(ids) else None

    @property
    def lang(self) -> str:
        return self.kiosk.language

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with Vertical(id="body"):
            yield from self.compose_body()

    # ---- choices ---------------------------------------------------------------------------
    def choice(
        self,
        key: str,
        label: str,
        handler: Callable[[], Any],
        detail: str = "",
        *,
        name: str | None = None,
    ) -> Choice:
        """A large target showing ``key``; a digit key also chooses it from the keyboard."""
        self._handlers[key] = handler
        return Choice(key, label, detail, id=f"choice-{name or key}")

    def action_choose(self, key: str) -> None:
        handler = self._handlers.get(key)
        if handler is None or self.busy:
            return
        self.kiosk.pressed_at = time.perf_counter()
        handler()

    @on(Choice.Chosen)
    def _chosen(self, message: Choice.Chosen) -> None:
        self.action_choose(message.key)

    def set_busy(self, busy: bool) -> None:
        """Ignore further presses while one is handled; say so if it takes a moment.

        The screen is left alone for the first instants: redrawing it would only slow
        the press down (the ticket usually prints before a person could read it).
        """
        self.busy = busy
        if busy:
            self.set_timer(BUSY_SHOWN_AFTER, self._show_busy)
        elif self.is_attached:
            for choice in self.query(Choice):
                choice.remove_class("-disabled")

    def _show_busy(self) -> None:
        if self.busy and self.is_attached:
            for choice in self.query(Choice):
                choice.add_class("-disabled")
            self.say(t(self.lang, "common.busy"), error=False)

    def say(self, text: str, *, error: bool = True) -> None:
        """A message under the choices (an error, or "one moment")."""
        for label in self.query("#message").results(Static):
            label.update(Text(text))
            label.set_class(error, "-error")


def title(text: str, *, id: str | None = None) -> Static:
    return Static(Text(text), classes="title", id=id)


# ---- start ----------------------------------------------------------------------------------
class StartScreen(KioskScreen):
    """Welcome, in every language: choose yours. Says so when the printer is out of order."""

    def __init__(self) -> None:
        super().__init__()
        self._taps: list[float] = []

    def compose_body(self) -> ComposeResult:
        yield Static(Text(self.kiosk.settings.clinic_name), classes="clinic", id="clinic")
        yield Static(Text(" · ".join(t(lang, "start.welcome") for lang in LANGUAGES)),
                     classes="title")  # fmt: skip
        yield Static(Text(" · ".join(t(lang, "start.language") for lang in LANGUAGES)),
                     classes="subtitle")  # fmt: skip
        with Horizontal(classes="row"):
            for number, lang in enumerate(LANGUAGES, start=1):
                yield self.choice(str(number), LANGUAGE_NAMES[lang], self._pick(lang))
        yield Static("", id="printer", classes="banner")
        yield Static("", id="closed", classes="notice")
        yield Static("", id="message", classes="message")

    def _pick(self, lang: str) -> Callable[[], None]:
        return lambda: self.kiosk.choose_language(lang)

    def on_mount(self) -> None:
        self.refresh_notices()

    def reload(self) -> None:
        self.refresh_notices()

    def refresh_notices(self) -> None:
        # (the kiosk tells every start screen when the waits or the printer change)
        parts = self.parts("printer", "closed")
        if parts is None:
            return
        printer, closed = cast(Static, parts["printer"]), cast(Static, parts["closed"])
        out = self.kiosk.printer_out_of_order
        printer.update(Text("\n".join(t(lang, "start.printer_out") for lang in LANGUAGES))
                       if out else "")  # fmt: skip
        printer.display = out
        none_open = self.kiosk.departments_loaded and not self.kiosk.departments
        closed.update(Text("\n".join(t(lang, "start.closed") for lang in LANGUAGES)))
        closed.display = none_open

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.id == "clinic":
            now = time.monotonic()
            self._taps = [x for x in self._taps if now - x < STAFF_TAP_SECONDS] + [now]
            if len(self._taps) >= STAFF_TAPS:
                self._taps.clear()
                self.kiosk.action_quit()


# ---- services ----------------------------------------------------------------------------------
class ServiceScreen(KioskScreen):
    """The open services with their current wait, and appointment check-in."""

    def __init__(self) -> None:
        super().__init__()
        #: the services drawn (None until the screen is composed)
        self.shown: list[KioskDepartment] | None = None

    def compose_body(self) -> ComposeResult:
        yield title(t(self.lang, "service.title"))
        with VerticalScroll(id="choices"):
            yield from self._choices()
        yield Static("", id="message", classes="message")

    def _choices(self) -> Iterable[Choice]:
        kiosk = self.kiosk
        self.shown = list(kiosk.departments[:8])
        for number, department in enumerate(self.shown, start=1):
            yield self.choice(
                str(number), department.name, self._take(department), self.wait_line(department)
            )
        if not kiosk.departments:
            yield Static(Text(t(self.lang, "service.none")), classes="notice")
        yield self.choice("9", t(self.lang, "service.appointment"), self._appointment)
        yield self.choice("0", t(self.lang, "common.back"), kiosk.go_home)

    def wait_line(self, department: KioskDepartment) -> str:
        wait = self.kiosk.waits.get(department.id)
        if wait is None or not self.kiosk.waits_known:
            return t(self.lang, "wait.unknown")
        return (
            f"{waiting_text(self.lang, wait.waiting)} · "
            f"{wait_range_text(self.lang, wait.estimate.p50_minutes, wait.estimate.p90_minutes)}"
        )

    def reload(self) -> None:
        """New waits (the queue moved): their second lines again; other services: all again."""
        if self.shown is None:
            return  # pushed, not composed yet: it draws the waits as they are then
        if self.kiosk.departments[:8] != self.shown:
            self.shown = list(self.kiosk.departments[:8])
            self.refresh(recompose=True)
            return
        for number, department in enumerate(self.shown, start=1):
            for choice in self.query(f"#choice-{number}").results(Choice):
                choice.detail = self.wait_line(department)
                choice.refresh()

    def _take(self, department: KioskDepartment) -> Callable[[], None]:
        def take() -> None:
            if self.kiosk.offer_sms:
                self.app.push_screen(SmsOfferScreen(department))
            else:
                self.kiosk.issue_ticket(self, department, None)

        return take

    def _appointment(self) -> None:
        self.app.push_screen(CheckInScreen())


# ---- SMS -----------------------------------------------------------------------------------------
class SmsOfferScreen(KioskScreen):
    """Would the patient like an SMS when it is almost their turn?"""

    def __init__(self, department: KioskDepartment) -> None:
        super().__init__()
        self.department = department

    def compose_body(self) -> ComposeResult:
        yield title(self.department.name, id="department")
        yield Static(Text(t(self.lang, "sms.title")), classes="subtitle")
        yield self.choice("1", t(self.lang, "sms.no"), self._no)
        yield self.choice("2", t(self.lang, "sms.yes"), self._yes)
        yield self.choice("0", t(self.lang, "common.back"), self.app.pop_screen)
        yield Static("", id="message", classes="message")

    def _no(self) -> None:
        self.kiosk.issue_ticket(self, self.department, None)

    def _yes(self) -> None:
        self.app.push_screen(SmsFormScreen(self.department))


class FormScreen(KioskScreen):
    """A screen of fields: Enter goes to the next field (the last one submits), Escape back.

    Digits go into the fields here, so its two choices show Enter and Esc instead.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", show=False)]

    def form_choices(self, submit: str) -> ComposeResult:
        with Horizontal(classes="row"):
            yield self.choice("↵", submit, self.action_submit, name="ok")
            yield self.choice("Esc", t(self.lang, "common.back"), self.action_back, name="back")

    def action_choose(self, key: str) -> None:
        if isinstance(self.focused, Input):
            return  # a digit typed into a field is not a choice
        super().action_choose(key)

    def action_back(self) -> None:
        if not self.busy:
            self.app.pop_screen()

    def on_mount(self) -> None:
        fields = list(self.query(Input))
        if fields:
            fields[0].focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        fields = list(self.query(Input))
        index = fields.index(event.input) if event.input in fields else len(fields) - 1
        if index + 1 < len(fields):
            fields[index + 1].focus()
        else:
            self.action_submit()

    def action_submit(self) -> None:
        """Check the fields and go on (override)."""

    def field(self, label: str, widget: Input) -> Iterable[Any]:
        yield Label(Text(label), classes="field-label")
        yield widget

    def phone_and_birth(self) -> tuple[str, date] | None:
        """The ``#phone`` and ``#birth`` fields read; None (and the field to mend) if not valid."""
        phone = parse_phone(self.query_one("#phone", Input).value)
        if phone is None:
            self.say(t(self.lang, "sms.bad_phone"))
            self.query_one("#phone", Input).focus()
            return None
        born = parse_birth_date(self.query_one("#birth", MaskedInput).value)
        if born is None:
            self.say(t(self.lang, "sms.bad_birth"))
            self.query_one("#birth", MaskedInput).focus()
            return None
        return phone, born


def parse_birth_date(text: str) -> date | None:
    """``11/02/1984`` (day / month / year) as a date, if it is one and could be a birth date."""
    parts = [p for p in text.replace("-", "/").replace(".", "/").split("/") if p.strip()]
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        return None
    day, month, year = (int(p) for p in parts)
    try:
        born = date(year, month, day)
    except ValueError:
        return None
    today = date.today()
    if born > today or born.year < today.year - 130:
        return None
    return born


def parse_phone(text: str) -> str | None:
    try:
        return normalise_phone(text)
    except ValueError:
        return None


class SmsFormScreen(FormScreen):
    """Phone, date of birth (to find the patient's record) and name, and the consent."""

    def __init__(self, department: KioskDepartment) -> None:
        super().__init__()
        self.department = department

    def compose_body(self) -> ComposeResult:
        yield title(t(self.lang, "sms.form"))
        with VerticalScroll(id="form"):
            yield from self.field(t(self.lang, "sms.phone"),
                                  Input(id="phone", restrict=r"[0-9+ ]*", max_length=20))  # fmt: skip
            yield from self.field(t(self.lang, "sms.birth"),
                                  MaskedInput(template="00/00/0000", id="birth"))  # fmt: skip
            yield from self.field(t(self.lang, "sms.name"), Input(id="name", max_length=120))
            yield Static(Text(t(self.lang, "sms.consent")), classes="consent", id="consent")
        yield from self.form_choices(t(self.lang, "sms.agree"))
        yield Static("", id="message", classes="message")

    def action_submit(self) -> None:
        if self.busy:
            return
        checked = self.phone_and_birth()
        if checked is None:
            return
        phone, born = checked
        name = " ".join(self.query_one("#name", Input).value.split())
        if not name:
            self.say(t(self.lang, "sms.no_name"))
            self.query_one("#name", Input).focus()
            return
        contact = Contact(name, phone, born, t(self.lang, "sms.consent"))
        self.kiosk.pressed_at = time.perf_counter()
        self.kiosk.issue_ticket(self, self.department, contact)


# ---- appointments ----------------------------------------------------------------------------------
class CheckInScreen(KioskScreen):
    """How to find the appointment: booking code, or phone and date of birth."""

    def compose_body(self) -> ComposeResult:
        yield title(t(self.lang, "checkin.title"))
        yield self.choice("1", t(self.lang, "checkin.by_code"), self._code)
        yield self.choice("2", t(self.lang, "checkin.by_phone"), self._phone)
        yield self.choice("0", t(self.lang, "common.back"), self.app.pop_screen)
        yield Static("", id="message", classes="message")

    def _code(self) -> None:
        self.app.push_screen(CheckInFormScreen(by_code=True))

    def _phone(self) -> None:
        self.app.push_screen(CheckInFormScreen(by_code=False))


class CheckInFormScreen(FormScreen):
    """The booking code, or the phone and date of birth."""

    def __init__(self, *, by_code: bool) -> None:
        super().__init__()
        self.by_code = by_code

    def compose_body(self) -> ComposeResult:
        yield title(t(self.lang, "checkin.title"))
        with VerticalScroll(id="form"):
            if self.by_code:
                yield from self.field(t(self.lang, "checkin.code"),
                                      MaskedInput(template="0000 0000", id="code"))  # fmt: skip
            else:
                yield from self.field(t(self.lang, "sms.phone"),
                                      Input(id="phone", restrict=r"[0-9+ ]*", max_length=20))  # fmt: skip
                yield from self.field(t(self.lang, "sms.birth"),
                                      MaskedInput(template="00/00/0000", id="birth"))  # fmt: skip
        yield from self.form_choices(t(self.lang, "checkin.submit"))
        yield Static("", id="message", classes="message")

    def action_submit(self) -> None:
        if self.busy:
            return
        if self.by_code:
            code = "".join(ch for ch in self.query_one("#code", MaskedInput).value if ch.isdigit())
            if len(code) != 8:
                self.say(t(self.lang, "checkin.bad_code"))
                return
            self.kiosk.pressed_at = time.perf_counter()
            self.kiosk.check_in(self, booking_code=code)
            return
        checked = self.phone_and_birth()
        if checked is None:
            return
        phone, born = checked
        self.kiosk.pressed_at = time.perf_counter()
        self.kiosk.check_in(self, phone=phone, date_of_birth=born)


class CheckInOfflineScreen(KioskScreen):
    """Check-in needs the central database; offline, a normal ticket still works."""

    def compose_body(self) -> ComposeResult:
        yield title(t(self.lang, "checkin.title"))
        yield Static(Text(t(self.lang, "checkin.offline")), classes="notice", id="offline")
        yield self.choice("1", t(self.lang, "checkin.ticket"), self.kiosk.show_services)
        yield self.choice("0", t(self.lang, "common.back"), self.kiosk.go_home)
        yield Static("", id="message", classes="message")


# ---- the number ----------------------------------------------------------------------------------
class ResultScreen(KioskScreen):
    """The number in very large letters; where, how long; printed or to be noted."""

    def __init__(self, issued: Issued) -> None:
        super().__init__()
        self.issued = issued

    def compose_body(self) -> ComposeResult:
        issued, lang = self.issued, self.lang
        yield Static(Text(t(lang, "ticket.your_number")), classes="subtitle")
        yield BigNumber(issued.number, id="number")
        where = issued.department
        if issued.room:
            where += " · " + t(lang, "result.room", room=issued.room)
        yield Static(Text(where), classes="title", id="where")
        yield Static(Text(self.wait_line()), classes="subtitle", id="wait")
        yield Static(Text(t(lang, "result.printing")), classes="status", id="status")
        if issued.contact is not None:
            yield Static(Text(t(lang, "sms.sent_to", last=issued.contact.last_digits)),
                         classes="subtitle", id="sms")  # fmt: skip
        with Horizontal(classes="row", id="actions"):
            yield self.choice("1", t(lang, "result.reprint"), self._reprint)
            yield self.choice("0", t(lang, "result.done"), self.kiosk.go_home)

    def on_mount(self) -> None:
        self.query_one("#choice-1", Choice).display = False

    def wait_line(self) -> str:
        issued, lang = self.issued, self.lang
        parts = []
        if issued.appointment_at is not None:
            when = issued.appointment_at.astimezone(self.kiosk.settings.tz).strftime("%H:%M")
            parts.append(t(lang, "checkin.at", time=when))
        if issued.offline:
            parts.append(t(lang, "result.offline"))
        else:
            if issued.ahead is not None:
                parts.append(ahead_text(lang, issued.ahead))
            parts.append(issued.slip.wait_line())
        return " · ".join(parts)

    def printed(self, text: str, *, problem: bool) -> None:
        """The outcome of printing (or of a reprint)."""
        parts = self.parts("status", "choice-1", "choice-0")
        if parts is None:
            return  # the patient left meanwhile (or the kiosk went back to its start)
        status = cast(Static, parts["status"])
        status.update(Text(text))
        status.set_class(problem, "-error")
        parts["choice-1"].display = self.kiosk.desk.can_reprint(self.issued)
        parts["choice-0"].focus()

    def _reprint(self) -> None:
        if self.kiosk.desk.can_reprint(self.issued):
            self.kiosk.reprint(self)


# ---- starting and staff -----------------------------------------------------------------------------
class StartingScreen(KioskScreen):
    """Before the kiosk is signed in: says it is starting (and why it waits)."""

    def compose_body(self) -> ComposeResult:
        yield Static(Text(self.kiosk.settings.clinic_name), classes="clinic")
        yield Static(Text("\n".join(t(lang, "start.starting") for lang in LANGUAGES)),
                     classes="subtitle", id="starting")  # fmt: skip
        yield Static("", id="detail", classes="notice")

    def detail(self, text: str) -> None:
        # (not yet composed when the first attempt fails at once: the next one shows it)
        for line in self.query("#detail").results(Static):
            line.update(Text(text))


class PinDialog(ModalScreen[bool]):
    """Staff only: the kiosk's PIN (``IQMS_KIOSK_ADMIN_PIN``) lets them quit it."""

    DEFAULT_CSS = """
    PinDialog { align: center middle; background: $background 70%; }
    PinDialog > Vertical {
        width: 60; height: auto; border: round $primary; background: $surface; padding: 1 2;
    }
    PinDialog .title { text-style: bold; color: $primary; margin-bottom: 1; }
    PinDialog #pin-message { color: $error; text-style: bold; height: auto; }
    PinDialog .hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def __init__(self, *, configured: bool) -> None:
        super().__init__()
        self.configured = configured

    @property
    def kiosk(self) -> KioskApp:
        return cast("KioskApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Quit the kiosk (staff)", classes="title")
            if self.configured:
                yield Label("PIN")
                yield Input(password=True, restrict=r"\d*", max_length=12, id="pin")
            else:
                yield Static(
                    "No PIN is set (IQMS_KIOSK_ADMIN_PIN), so the kiosk cannot be quit from "
                    "its screen. Stop it on its computer (e.g. 'systemctl stop', or send it "
                    "SIGTERM)."
                )
            yield Static("", id="pin-message")
            yield Label("Enter: quit   Esc: back to the kiosk", classes="hint")

    def on_mount(self) -> None:
        if self.configured:
            self.query_one("#pin", Input).focus()

    @on(Input.Submitted, "#pin")
    def _submitted(self, event: Input.Submitted) -> None:
        problem = self.kiosk.check_pin(event.value)
        if problem is None:
            self.dismiss(True)
            return
        self.query_one("#pin-message", Static).update(problem)
        event.input.value = ""

    def action_cancel(self) -> None:
        self.dismiss(False)


__all__ = [
    "CheckInFormScreen",
    "CheckInOfflineScreen",
    "CheckInScreen",
    "Choice",
    "KioskScreen",
    "PinDialog",
    "ResultScreen",
    "ServiceScreen",
    "SmsFormScreen",
    "SmsOfferScreen",
    "StartScreen",
    "StartingScreen",
    "parse_birth_date",
    "parse_phone",
]
