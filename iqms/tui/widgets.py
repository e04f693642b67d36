"""Widgets every console shares: the status bar, the key bar and the triage tag."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.screen import Screen
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


__all__ = ["FieldInput", "KeyBar", "StatusBar", "TriageTag"]
