"""Widgets every console shares: the status bar, the key bar, the triage tag and the queue list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Input, Static

from iqms.tui.format import clock_time, triage_text

if TYPE_CHECKING:
    from iqms.tui.app import ConsoleApp


class StatusBar(Static):
    """One line: clinic, who is signed in, database online/offline, offline operations, clock."""

    DEFAULT_CSS = """
    StatusBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    StatusBar.-offline {
        background: $error;
        color: $text;
    }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "status_version", self._changed, init=True)
        self._minute = ""
        self.set_interval(1.0, self._tick)

    @property
    def console_app(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def _tick(self) -> None:
        now = clock_time(self.console_app.clock.now(), self.console_app.settings.tz)
        if now != self._minute:
            self.refresh()

    def _changed(self, _value: Any = None) -> None:
        self.set_class(not self.console_app.db_online, "-offline")
        self.refresh()

    def describe(self) -> tuple[str, str, str]:
        """The three parts of the bar as plain text: clinic, who, connection and clock."""
        app = self.console_app
        clinic = f"IQMS · {app.settings.clinic_name}"
        who = app.sign_in.label if app.sign_in is not None else "not signed in"
        self._minute = clock_time(app.clock.now(), app.settings.tz)
        return clinic, who, f"{app.connection_text()} · {self._minute}"

    def render(self) -> Table:
        clinic, who, right = self.describe()
        alert = self.console_app.status_alert()  # takes the clinic's place while it lasts
        left = (
            Text(alert, style=f"bold {self.console_app.current_theme.warning}")
            if alert
            else Text(clinic, style="bold")
        )
        # The connection and the clock always show in full; clinic and name give way.
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(justify="left", ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="center", ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True, min_width=len(right))
        grid.add_row(left, Text(who), Text(right))
        return grid


class KeyBar(Widget):
    """Every key the current screen offers, wrapped over as many lines as it takes.

    Like Textual's footer (the same bindings, dimmed when disabled, hidden when
    not shown), but nothing is cut off on a narrow terminal: the keys wrap
    onto a second or third line.
    """

    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--disabled"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: auto;
        max-height: 4;
        background: $footer-background;
        padding: 0 1;
    }
    KeyBar > .keybar--key {
        color: $footer-key-foreground;
        text-style: bold;
    }
    KeyBar > .keybar--description {
        color: $footer-description-foreground;
    }
    KeyBar > .keybar--disabled {
        color: $text-disabled;
    }
    """
    SEPARATOR = "   "

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: Screen[Any]) -> None:
        self.refresh(layout=True)

    def items(self) -> list[tuple[str, str, bool]]:
        """(key, description, enabled) of every binding shown, in the footer's order."""
        seen: set[str] = set()
        found: list[tuple[str, str, bool]] = []
        for _key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.show or not binding.description or binding.action in seen:
                continue
            seen.add(binding.action)
            found.append((self.app.get_key_display(binding), binding.description, active.enabled))
        if self.app.ENABLE_COMMAND_PALETTE and self.app.check_action("command_palette", ()):
            palette = Binding(self.app.COMMAND_PALETTE_BINDING, "command_palette")
            found.append((self.app.get_key_display(palette), "Commands", True))
        return found

    def _lines(self, width: int) -> list[Text]:
        key_style = self.get_component_rich_style("keybar--key", partial=True)
        text_style = self.get_component_rich_style("keybar--description", partial=True)
        off_style = self.get_component_rich_style("keybar--disabled", partial=True)
        lines: list[Text] = []
        line = Text()
        for key, description, enabled in self.items():
            item = Text.assemble(
                (key, key_style if enabled else off_style),
                " ",
                (description, text_style if enabled else off_style),
            )
            gap = self.SEPARATOR if line.cell_len else ""
            if line.cell_len and line.cell_len + cell_len(gap) + item.cell_len > width:
                lines.append(line)
                line, gap = Text(), ""
            line.append(gap)
            line.append_text(item)
        if line.cell_len or not lines:
            lines.append(line)
        return lines

    def render(self) -> Text:
        return Text("\n").join(self._lines(max(self.content_size.width, 10)))

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self._lines(max(width, 10)))


class FieldInput(Input):
    """A form field where Enter moves to the next field at once.

    The binding has priority, so the app moves the focus while it routes the
    Enter key, before it routes the keys typed after it: what a fast typist
    (or a barcode scanner) types right after Enter lands in the next field,
    not in this one.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "next_field", "Next", show=False, priority=True)
    ]

    def action_next_field(self) -> None:
        self.screen.focus_next()


class TriageTag(Static):
    """A triage category as a coloured tag (``3 Urgent`` on yellow)."""

    DEFAULT_CSS = """
    TriageTag {
        width: auto;
        height: 1;
    }
    """

    def __init__(self, category: int, *, short: bool = False, **kwargs: Any) -> None:
        super().__init__(triage_text(category, short=short), **kwargs)
        self.category = int(category)
        self.short = short

    def set_category(self, category: int) -> None:
        self.category = int(category)
        self.update(triage_text(category, short=self.short))


class RowMessage(Message):
    """A :class:`QueueList`'s message about one of its rows (``@on`` matches the list's id)."""

    def __init__(self, queue_list: QueueList, key: str | None) -> None:
        super().__init__()
        self.queue_list = queue_list
        self.key = key

    @property
    def control(self) -> QueueList:
        return self.queue_list


class QueueList(ScrollView, can_focus=True):
    """Rows of text with a cursor, drawn line by line (Textual's line API).

    Made for a queue that changes every few seconds: a row is rendered once
    and kept until its text changes, so a live update redraws only the rows
    that changed (a data table renders every visible cell again).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
        Binding("enter", "choose", "Call selected", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"queue-list--cursor", "queue-list--odd"}
    DEFAULT_CSS = """
    QueueList { overflow-x: hidden; }
    QueueList > .queue-list--cursor { background: $primary 40%; text-style: bold; }
    QueueList:blur > .queue-list--cursor { background: $primary 20%; }
    QueueList > .queue-list--odd { background: $boost; }
    """

    class Highlighted(RowMessage):
        """The cursor moved to another row (``key`` None: no rows)."""

    class Chosen(RowMessage):
        """Enter on a row (``key`` never None)."""

    def __init__(self, *, render: Callable[[Any], Text] | None = None, **kwargs: Any) -> None:
        """``render``: the line of a row's item (items are lines themselves without it)."""
        super().__init__(**kwargs)
        self.rows: list[tuple[str, Any]] = []  # (key, item)
        self.cursor = 0
        self._render = render
        self._made: dict[str, tuple[Any, Text]] = {}  # key -> (item, its line), as last made
        self._strips: dict[tuple[str, str, int, bool, int], Strip] = {}

    # -- content --
    def set_rows(self, rows: Sequence[tuple[str, Any]]) -> None:
        """Show these (key, item) rows; the cursor stays on its key (or its place).

        A row's line is made when it is first drawn (a list of 1,000 rows draws the few
        on screen); an item that is the same object as before keeps its line.
        """
        old_key = self.key
        before = dict(self.rows)
        self.rows = list(rows)
        keys = [key for key, _ in self.rows]
        if old_key in keys:
            self.cursor = keys.index(old_key)
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        self.virtual_size = Size(self.size.width, len(self.rows))
        if len(self._made) > 2 * len(self.rows) + 100:  # rows long gone
            self._made = {key: self._made[key] for key in keys if key in self._made}
        if keys != list(before):  # rows added, removed or moved: every line below may differ
            self.refresh()
        else:
            for y, (key, item) in enumerate(self.rows):
                if not _same(before[key], item):
                    self._refresh_row(y)
        self._keep_cursor_visible()
        if self.key != old_key:
            self.post_message(self.Highlighted(self, self.key))

    @property
    def key(self) -> str | None:
        return self.rows[self.cursor][0] if self.rows else None

    def forget_lines(self) -> None:
        """Make every line again when next drawn (the way items are shown has changed)."""
        self._made.clear()
        self._strips.clear()
        self.refresh()

    def line(self, index: int) -> Text:
        """The line of the row at ``index``."""
        key, item = self.rows[index]
        if self._render is None:
            return cast(Text, item)
        made = self._made.get(key)
        if made is None or made[0] is not item:
            made = self._made[key] = (item, self._render(item))
        return made[1]

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def move_to(self, row: int) -> None:
        if not self.rows:
            return
        before = self.cursor
        self.cursor = max(0, min(row, len(self.rows) - 1))
        if self.cursor != before:
            self._refresh_row(before)
            self._refresh_row(self.cursor)
            self._keep_cursor_visible()
            self.post_message(self.Highlighted(self, self.key))

    # -- keys --
    def action_cursor(self, step: int) -> None:
        self.move_to(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(1, self.size.height - 1))

    def action_edge(self, last: int) -> None:
        self.move_to(len(self.rows) - 1 if last else 0)

    def action_choose(self) -> None:
        if self.key is not None:
            self.post_message(self.Chosen(self, self.key))

    def on_click(self, event: events.Click) -> None:
        row = event.y + int(self.scroll_offset.y)
        if 0 <= row < len(self.rows):
            self.move_to(row)

    # -- drawing --
    def _refresh_row(self, y: int) -> None:
        self.refresh(Region(0, y - int(self.scroll_offset.y), self.size.width, 1))

    def _keep_cursor_visible(self) -> None:
        if self.rows:
            self.scroll_to_region(
                Region(0, self.cursor, 1, 1), animate=False, immediate=True, force=True
            )

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows))
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        index = y + int(self.scroll_offset.y)
        width = self.size.width
        base = self.rich_style
        if index >= len(self.rows):
            return Strip.blank(width, base)
        key = self.rows[index][0]
        line = self.line(index)
        selected = index == self.cursor
        cache_key = (key, line.plain, hash(tuple(line.spans)), selected, index % 2)
        strip = self._strips.get(cache_key)  # type: ignore[arg-type]
        if strip is None:
            if selected:
                style = self.get_component_rich_style("queue-list--cursor")
            elif index % 2:
                style = base + self.get_component_rich_style("queue-list--odd")
            else:
                style = base
            text = line.copy()
            text.stylize_before(style)
            segments = list(text.render(self.app.console))
            strip = Strip(segments).adjust_cell_length(width, style)
            if len(self._strips) > 4 * max(len(self.rows), 50):
                self._strips.clear()
            self._strips[cache_key] = strip  # type: ignore[index]
        return strip


def _same(before: Any, now: Any) -> bool:
    """Whether a row's item is unchanged (lines: the same text and styles)."""
    if before is now:
        return True
    if isinstance(before, Text) and isinstance(now, Text):
        return before.plain == now.plain and before.spans == now.spans
    return False


def cells_line(
    cells: Sequence[object], widths: Sequence[int], *, gap: int = 1, style: str = ""
) -> Text:
    """One row of a :class:`QueueList`: cells padded (or cut) to their widths, ``gap`` spaces
    apart, a space before the first and after the last."""
    line = Text(" ", style=style, no_wrap=True, overflow="ellipsis")
    for n, (width, cell) in enumerate(zip(widths, cells, strict=True)):
        if n:
            line.append(" " * gap)
        piece = cell.copy() if isinstance(cell, Text) else Text(str(cell))
        piece.truncate(width, overflow="ellipsis", pad=True)
        line.append_text(piece)
    line.append(" ")
    return line


__all__ = [
    "FieldInput",
    "KeyBar",
    "QueueList",
    "RowMessage",
    "StatusBar",
    "TriageTag",
    "cells_line",
]
