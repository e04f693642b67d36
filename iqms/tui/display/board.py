"""The board's one screen: the latest calls in large letters, the queues, the message line.

What it shows comes from one core view (:func:`iqms.core.services.display.board`),
loaded again whenever a live event says something changed and after any gap
in the events (reconnect, database back), so what it shows as current is what
the database holds. Only a call that comes in live is shown before that
reload, straight from its committed event: on top at once, highlighted,
blinking for a few seconds and announced (the reload then confirms it and
brings the counts). Calls found by a reload after a gap are shown but neither
blinked nor announced, because they are no longer news. While the database
is away the calls are dimmed and titled as of the last time they were known,
with a "reconnecting" mark in the top line.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Footer, Static

from iqms.core.clock import service_date
from iqms.core.db import is_connection_error
from iqms.core.enums import TicketStatus
from iqms.core.queue.events import TicketEvent
from iqms.core.schemas.display import BoardCall, BoardDepartment, ClinicBoard
from iqms.core.services import display
from iqms.tui.display.bigtext import BigText, can_draw, size_at
from iqms.tui.display.messages import MessageLineChanged, SoundChanged
from iqms.tui.messages import ConnectionChanged, Resync, TicketChanged
from iqms.tui.screens import ConsoleScreen

if TYPE_CHECKING:
    from iqms.tui.display.app import BoardApp

#: how long a new call blinks
BLINK_SECONDS = 10.0
BLINK_INTERVAL = 0.5
#: how many waiting numbers to ask for per department (as many as fit are shown)
NEXT_NUMBERS = 12
ARROW = "→"


#: screen height from which the board uses its large layout (the -tall breakpoint)
TALL_FROM = 36
#: on a large screen, how many of a department's next numbers are drawn large
NEXT_LARGE = 2


def _is_tall(widget: Widget) -> bool:
    return widget.app.size.height >= TALL_FROM


def _changed(widget: Static, text: str) -> bool:
    """True (and remembered) when ``widget`` is to show other text than it does."""
    if getattr(widget, "_iqms_text", None) == text:
        return False
    widget._iqms_text = text  # type: ignore[attr-defined]
    return True


class DepartmentHead(Static):
    """The department's name and how many wait, on one line."""

    def render(self) -> Table:
        box = cast("DepartmentBox", self.parent)
        dept = box.department
        count = dept.waiting_count
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True)
        grid.add_row(
            Text(dept.name, style="bold"),
            Text(f"{count} waiting" if count else "no one waiting", style="bold"),
        )
        return grid


class NextNumbers(Static):
    """The next numbers to be called, on at most two lines (after the large ones, if any)."""

    def render(self) -> Text:
        box = cast("DepartmentBox", self.parent)
        numbers = box.department.next_numbers
        large = box.large_numbers()
        rest = numbers[len(large) :]
        if not rest:
            return Text("")
        width = self.content_size.width or 30
        lead = "then " if large else "Next "
        lines = [Text.assemble((lead, "dim"))]
        shown = len(large)
        for number in rest:
            if lines[-1].cell_len + len(number) > width:
                if len(lines) == 2:  # two lines of numbers at most
                    break
                lines.append(Text(" " * len(lead)))
            lines[-1].append(number, style="bold")
            lines[-1].append("  ")
            shown += 1
        if shown < box.department.waiting_count:
            lines[-1].append("…")
        for line in lines:
            line.rstrip()
        text = Text("\n").join(lines)
        text.no_wrap = True
        text.overflow = "crop"
        return text


class DepartmentBox(Vertical):
    """One department: its name, how many wait, and the next numbers to be called."""

    DEFAULT_CSS = """
    DepartmentBox { height: auto; padding: 0 0 1 0; }
    DepartmentBox > DepartmentHead { height: 1; }
    DepartmentBox > BigText { height: 4; color: $accent; display: none; }
    DepartmentBox.-large > BigText { display: block; }
    DepartmentBox > NextNumbers { height: auto; }
    """

    def __init__(self, department: BoardDepartment, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.department = department
        self._large: list[str] | None = None

    def compose(self) -> ComposeResult:
        yield DepartmentHead()
        yield BigText("", max_scale=1)
        yield NextNumbers()

    def on_mount(self) -> None:
        self.show(self.department)

    def on_resize(self) -> None:
        self.show(self.department)  # how many numbers fit large depends on the width

    def large_numbers(self) -> list[str]:
        """The next numbers drawn large: on a large screen, as many as fit one line (up to 2)."""
        if not _is_tall(self):
            return []
        width = self.content_size.width
        numbers = self.department.next_numbers[:NEXT_LARGE]
        while numbers and not (
            can_draw("  ".join(numbers)) and size_at("  ".join(numbers), 1)[0] <= width
        ):
            numbers = numbers[:-1]
        return numbers

    def show(self, department: BoardDepartment) -> None:
        """Show the department's latest figures (redrawn only when they changed)."""
        changed = department != self.department
        self.department = department
        # A resize or a reload can reach a box not composed yet (its on_mount shows it then)
        # or being taken down: nothing to draw on.
        bigs, heads = list(self.query_children(BigText)), list(self.query_children(DepartmentHead))
        rests = list(self.query_children(NextNumbers))
        if not (bigs and heads and rests):
            return
        large = self.large_numbers()
        if large != self._large:
            changed = True
            self._large = large
        if not changed:
            return
        self.set_class(bool(large), "-large")
        bigs[0].update("  ".join(large))
        heads[0].refresh()
        rests[0].refresh(layout=True)  # one line or two


class BoardScreen(ConsoleScreen):
    """Calls (newest large and blinking), queues per department, the message line."""

    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (110, "-wide"),
    ]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-short"),
        (TALL_FROM, "-tall"),
    ]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "test_sound", "Test sound"),
        Binding("m", "mute", "Mute"),
        Binding("h", "contrast", "High contrast"),
    ]
    DEFAULT_CSS = """
    BoardScreen { background: $background; }
    #top { dock: top; height: 1; background: $panel; padding: 0 1; }
    BoardScreen.-tall #top { height: 5; padding: 1 2 0 2; }
    #clinic { width: 1fr; color: $primary; text-style: bold; }
    #marks { width: auto; color: $warning; text-style: bold; padding: 0 2; }
    BoardScreen.-tall #marks { padding: 1 2; }
    #clock { width: 13; height: 1fr; }
    BoardScreen.-tall #clock { width: 36; }
    #main { height: 1fr; }
    #calls { width: 3fr; padding: 0 1; }
    #queues { width: 2fr; padding: 0 1; border-left: tall $panel; }
    BoardScreen.-tall #calls, BoardScreen.-tall #queues { padding: 1 2; }
    .title { height: 1; color: $text-muted; text-style: bold; margin-bottom: 1; }
    #current { height: 10; padding: 0 1; }
    BoardScreen.-tall #current { height: 3fr; }
    #current-ticket { color: $accent; height: 1fr; }
    #current-room { height: 1fr; text-style: bold; }
    #current.-new { background: $accent; }
    #current.-new #current-ticket, #current.-new #current-room { color: $background; }
    #current.-new.-blink-off { background: $surface; }
    #current.-new.-blink-off #current-ticket { color: $accent; }
    #current.-new.-blink-off #current-room { color: $foreground; }
    #recent { height: 1fr; margin-top: 1; overflow: hidden hidden; }
    BoardScreen.-tall #recent { height: 2fr; }
    .recent-call { height: 2; padding: 0 1; }
    BoardScreen.-tall .recent-call { height: 4; margin-bottom: 1; }
    #calls.-stale #current-ticket, #calls.-stale #current-room, #calls.-stale .recent-call {
        color: $text-muted;
    }
    #calls.-stale #current { background: $background; }
    #message {
        height: auto;
        max-height: 4;
        display: none;
        background: $warning;
        color: $background;
        text-style: bold;
        text-align: center;
        padding: 0 1;
    }
    BoardScreen.-tall #message { padding: 1 2; }
    #message.-shown { display: block; }
    """

    def __init__(
        self,
        *,
        departments: list[str] | None = None,
        rows: int = 5,
        blink_seconds: float = BLINK_SECONDS,
    ) -> None:
        super().__init__()
        self.wanted_departments = list(departments or [])
        self.rows = rows
        self.blink_seconds = blink_seconds
        self.view: ClinicBoard | None = None
        #: the last view loaded from the core (``view`` may have a live call on top of it)
        self.loaded_view: ClinicBoard | None = None
        #: when the view was last loaded from the database (clinic time)
        self.loaded_at: datetime | None = None
        #: ticket number -> when its live highlight ends (monotonic)
        self.highlights: dict[str, float] = {}
        self.department_ids: set[uuid.UUID] = set()
        #: why the view was loaded, latest last (the board runs for weeks: a bounded record)
        self.reload_reasons: deque[str] = deque(maxlen=100)
        #: why the events had a gap, latest last (the view was loaded again after each)
        self.resyncs: deque[str] = deque(maxlen=100)
        self.sound_problem: str | None = None
        self._reload_wanted = False
        self._loading = False
        self._blink_on = True
        self._minute = ""

    @property
    def board_app(self) -> BoardApp:
        return cast("BoardApp", self.app)

    # ---- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield BigText(self.board_app.settings.clinic_name, id="clinic", max_scale=1)
            yield Static("", id="marks")
            yield BigText("", id="clock", max_scale=1, align="right")
        with Horizontal(id="main"):
            with Vertical(id="calls"):
                yield Static("Connecting to the database…", id="calls-title", classes="title")
                with Vertical(id="current"):
                    yield BigText("", id="current-ticket", max_scale=6)
                    yield BigText("", id="current-room", max_scale=4)
                with Vertical(id="recent"):
                    for n in range(max(self.rows - 1, 0)):
                        yield BigText("", id=f"recent-{n}", classes="recent-call", max_scale=1)
            yield Vertical(Static("Waiting", classes="title"), id="queues")
        yield Static("", id="message")
        yield Footer(compact=True)

    def on_resize(self) -> None:
        for box in self.query(DepartmentBox):
            box.show(box.department)  # large next numbers only on a large screen

    def on_mount(self) -> None:
        self._tick()
        self.set_interval(1.0, self._tick, name="clock")
        self.set_interval(BLINK_INTERVAL, self._blink, name="blink")

    # ---- loading the view ---------------------------------------------------------------------
    def reload(self, reason: str = "resync") -> None:
        """Load the board view again (coalesced: one load at a time, one more if asked meanwhile)."""
        if not self.board_app.signed_in:
            return
        self.reload_reasons.append(reason)
        self._reload_wanted = True
        if not self._loading:
            self._loading = True
            self.run_worker(self._load(), group="board-load", exit_on_error=False)

    async def _load(self) -> None:
        app = self.board_app
        try:
            while self._reload_wanted:
                self._reload_wanted = False
                try:
                    view = await app.core(
                        lambda: display.board(
                            app.ctx,
                            departments=self.wanted_departments or None,
                            calls=max(self.rows, 1),
                            next_count=NEXT_NUMBERS,
                        ),
                        errors="raise",
                    )
                except Exception as exc:
                    if is_connection_error(exc):
                        self._show_connection(False)
                    else:
                        app.board_failed(exc)
                    return
                if view is not None:
                    self.show(view)
        finally:
            self._loading = False

    def show(self, view: ClinicBoard) -> None:
        """Draw a freshly loaded view."""
        self.view = self.loaded_view = view
        self.loaded_at = view.generated_at
        self.department_ids = {d.id for d in view.departments}
        self._show_connection(self.board_app.db_online)
        self._show_calls()
        self._show_departments(view.departments)
        message = self.query_one("#message", Static)
        if _changed(message, view.message or ""):
            message.update(Text(view.message or ""))
            message.set_class(bool(view.message), "-shown")

    def _show_calls(self) -> None:
        view = self.view
        current = self.query_one("#current", Vertical)
        ticket = self.query_one("#current-ticket", BigText)
        room = self.query_one("#current-room", BigText)
        calls = view.calls if view is not None else []
        if calls:
            newest = calls[0]
            ticket.update(newest.ticket_number)
            room.update(f"{ARROW} {newest.room}" if newest.room else "")
        else:
            ticket.update("No calls yet today" if view is not None else "", plain=True)
            room.update("")
        for n, widget in enumerate(self.query(".recent-call").results(BigText)):
            if n + 1 < len(calls):
                call = calls[n + 1]
                widget.update(f"{call.ticket_number} {ARROW} {call.room or ''}".rstrip(" →"))
            else:
                widget.update("")
        newest_number = calls[0].ticket_number if calls else None
        current.set_class(self._is_highlighted(newest_number), "-new")
        current.set_class(False, "-blink-off")

    def _show_departments(self, departments: list[BoardDepartment]) -> None:
        queues = self.query_one("#queues", Vertical)
        boxes = {box.department.id: box for box in queues.query(DepartmentBox)}
        if list(boxes) != [d.id for d in departments]:
            for box in boxes.values():
                box.remove()
            queues.mount_all(DepartmentBox(d, classes="department") for d in departments)
            return
        for dept in departments:
            boxes[dept.id].show(dept)

    # ---- live events --------------------------------------------------------------------------
    def on_ticket_changed(self, message: TicketChanged) -> None:
        event = message.event
        if not self._concerns(event):
            return
        if event.kind in ("called", "recalled"):
            now = time.monotonic()
            self.highlights = {k: v for k, v in self.highlights.items() if v > now}
            self.highlights[event.ticket_number] = now + self.blink_seconds
            self.board_app.announce(event.ticket_number, event.room)
            self._show_live_call(event)
        self.reload(event.kind)

    def _show_live_call(self, event: TicketEvent) -> None:
        """Put a call that just came in on top at once; the reload that follows confirms it
        (and brings the counts and next numbers)."""
        view = self.view
        if view is None or not self.board_app.db_online:
            return
        codes = {d.id: d.code for d in view.departments}
        call = BoardCall(
            ticket_number=event.ticket_number,
            room=event.room,
            department_code=codes.get(event.department_id, ""),
            called_at=event.occurred_at,
            recall_count=getattr(event, "recall_count", 0),
            status=TicketStatus.CALLED,
        )
        others = [c for c in view.calls if c.ticket_number != event.ticket_number]
        self.view = view.model_copy(update={"calls": [call, *others][: max(self.rows, 1)]})
        self._show_calls()

    def on_resync(self, message: Resync) -> None:
        self.resyncs.append(message.reason)  # ConsoleScreen.on_resync reloads the view

    def on_message_line_changed(self, message: MessageLineChanged) -> None:
        self.reload("message")

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        self._show_connection(message.online)

    def on_sound_changed(self, message: SoundChanged) -> None:
        self.sound_problem = message.problem
        self._show_marks()

    def _concerns(self, event: TicketEvent) -> bool:
        if not self.wanted_departments:
            return True
        return any(event.concerns(dept_id) for dept_id in self.department_ids)

    # ---- connection, marks, highlight, clock --------------------------------------------------
    def _show_connection(self, online: bool) -> None:
        calls = self.query_one("#calls", Vertical)
        title = self.query_one("#calls-title", Static)
        signed_in = self.board_app.signed_in
        stale = not online and self.view is not None
        calls.set_class(stale, "-stale")
        if stale:
            # Whatever was being called may have changed: never present it as current.
            self.highlights.clear()
            self.query_one("#current", Vertical).remove_class("-new", "-blink-off")
            when = self._clock_text(self.loaded_at) if self.loaded_at else "?"
            heading = f"Last calls known at {when}"
        elif not signed_in or self.view is None:
            heading = "Connecting to the database…"
        else:
            heading = "Now calling"
        if _changed(title, heading):
            title.update(heading, layout=False)
        self._show_marks()

    def _show_marks(self) -> None:
        app = self.board_app
        marks = []
        if app.signed_in and not app.db_online:
            marks.append("⟳ reconnecting")
        if app.muted:
            marks.append("sound muted")
        elif self.sound_problem:
            marks.append("no sound")
        shown = self.query_one("#marks", Static)
        if _changed(shown, "  ".join(marks)):
            shown.update("  ".join(marks))

    def _is_highlighted(self, ticket_number: str | None) -> bool:
        until = self.highlights.get(ticket_number or "")
        return until is not None and until > time.monotonic()

    def _blink(self) -> None:
        current = self.query_one("#current", Vertical)
        if not current.has_class("-new"):
            return
        newest = self.view.calls[0].ticket_number if self.view and self.view.calls else None
        if not self._is_highlighted(newest):
            current.remove_class("-new", "-blink-off")  # blinked long enough: stays current
            self.highlights = {k: v for k, v in self.highlights.items() if v > time.monotonic()}
            return
        self._blink_on = not self._blink_on
        current.set_class(not self._blink_on, "-blink-off")

    def _clock_text(self, when: datetime | None = None) -> str:
        app = self.board_app
        moment = when or app.clock.now()
        return moment.astimezone(app.settings.tz).strftime("%H:%M")

    def _tick(self) -> None:
        now = self._clock_text()
        if now == self._minute:
            return
        self._minute = now
        self.query_one("#clock", BigText).update(now)
        app = self.board_app
        if self.view is not None and service_date(app.clock.now(), app.settings.tz) != (
            self.view.service_date
        ):
            self.reload("new day")  # yesterday's calls leave the board at midnight

    # ---- keys ---------------------------------------------------------------------------------
    def action_test_sound(self) -> None:
        """Announce the newest call again (or a sample) to check the speakers."""
        calls = self.view.calls if self.view is not None else []
        if calls:
            self.board_app.announce(calls[0].ticket_number, calls[0].room, test=True)
        else:
            self.board_app.announce("A-001", "1", test=True)

    def action_mute(self) -> None:
        self.board_app.muted = not self.board_app.muted
        self._show_marks()

    def action_contrast(self) -> None:
        self.board_app.toggle_high_contrast()


__all__ = ["BLINK_SECONDS", "BoardScreen", "DepartmentBox"]
