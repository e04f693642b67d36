"""Widgets every console shares: the status bar and the triage tag."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

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
        # The connection and the clock always show in full; clinic and name give way.
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(justify="left", ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="center", ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True, min_width=len(right))
        grid.add_row(Text(clinic, style="bold"), Text(who), Text(right))
        return grid


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


__all__ = ["StatusBar", "TriageTag"]
