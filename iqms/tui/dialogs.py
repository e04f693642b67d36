"""Dialogs every console shares: triage category, a line of text, a yes/no question, a list.

Each is a modal screen that returns its answer with ``dismiss`` (``None`` when
cancelled with Escape), so a console writes
``self.app.push_screen(TriageDialog(...), callback)`` or awaits
``push_screen_wait`` from a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from iqms.core.enums import DEFAULT_TRIAGE_TARGET_MINUTES, TriageCategory
from iqms.tui.format import TAG_WIDTH, target_text, triage_text
from iqms.tui.widgets import KeyBar

DIALOG_CSS = """
    Dialog {
        align: center middle;
        background: $background 60%;
    }
    Dialog > #dialog {
        width: 64;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    Dialog .title { text-style: bold; color: $primary; width: 100%; margin-bottom: 1; }
    Dialog .hint { color: $text-muted; width: 100%; }
    Dialog .message { color: $error; text-style: bold; height: auto; width: 100%; }
    Dialog OptionList { height: auto; max-height: 14; margin-bottom: 1; }
    Dialog Input { margin-bottom: 1; }
    Dialog Input.-textual-compact { background: $boost; }
    Dialog Input.-textual-compact:focus { background: $primary 25%; }
"""


class Dialog(ModalScreen[Any]):
    """Base of the shared dialogs: a framed box over the console; Escape cancels."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)


class TriageDialog(Dialog):
    """The five Manchester categories with their target waits; 1-5 or arrows and Enter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "choose", "Set category", show=True),
        *[Binding(str(c), f"pick({c})", f"{c}", show=False) for c in range(1, 6)],
    ]

    def __init__(
        self,
        *,
        current: int | None = None,
        targets: dict[int, int] | None = None,
        subject: str = "",
    ) -> None:
        super().__init__()
        self.current = current
        self.targets = targets or {int(k): v for k, v in DEFAULT_TRIAGE_TARGET_MINUTES.items()}
        self.subject = subject

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            title = "Triage category" + (f" of {self.subject}" if self.subject else "")
            yield Label(title, classes="title")
            options = []
            for cat in TriageCategory:
                line = Text.assemble(
                    triage_text(cat, width=TAG_WIDTH),
                    "  ",
                    (f"seen {target_text(cat, self.targets)}", ""),
                    ("  (now)" if self.current == int(cat) else "", "italic"),
                )
                options.append(Option(line, id=str(int(cat))))
            yield OptionList(*options, id="categories")
            yield Label("1-5 or ↑↓ and Enter: choose   Esc: cancel", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = (self.current or 4) - 1
        options.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 4))

    def action_choose(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self.dismiss(options.highlighted + 1)

    def action_pick(self, category: int) -> None:
        self.dismiss(int(category))


class TextDialog(Dialog):
    """One line of text (a reason, a note); Enter confirms, Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "confirm", "Confirm"),
    ]

    def __init__(
        self,
        title: str,
        *,
        prompt: str = "",
        value: str = "",
        placeholder: str = "",
        required: bool = False,
        max_length: int = 200,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.value = value
        self.placeholder = placeholder
        self.required = required
        self.max_length = max_length

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, classes="title")
            if self.prompt:
                yield Static(self.prompt)
            yield Input(
                value=self.value,
                placeholder=self.placeholder,
                max_length=self.max_length,
                compact=True,
                id="text",
            )
            yield Label("", classes="message", id="message")
            yield Label("Enter: confirm   Esc: cancel", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_confirm()

    def action_confirm(self) -> None:
        text = self.query_one(Input).value.strip()
        if self.required and not text:
            self.query_one("#message", Label).update("This cannot be empty.")
            return
        self.dismiss(text)


class ConfirmDialog(Dialog):
    """A yes/no question: Y or Enter for yes, N or Escape for no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, message: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, classes="title")
            if self.message:
                yield Static(self.message)
            yield Label("Y / Enter: yes   N / Esc: no", classes="hint")
        yield KeyBar()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(bool(yes))


class ListDialog(Dialog):
    """Pick one of a list (↑↓ and Enter); returns the chosen option's id."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "choose", "Choose", show=True),
    ]

    def __init__(
        self,
        title: str,
        options: Sequence[tuple[str, Any]],
        *,
        message: str = "",
        empty: str = "Nothing to choose from.",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.choices = list(options)
        self.message = message
        self.empty = empty

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, classes="title")
            if self.message:
                yield Static(self.message)
            if self.choices:
                yield OptionList(
                    *[Option(label, id=str(i)) for i, (_, label) in enumerate(self.choices)],
                    id="choices",
                )
            else:
                yield Static(self.empty)
            yield Label("↑↓ and Enter: choose   Esc: cancel", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        if self.choices:
            options = self.query_one(OptionList)
            options.highlighted = 0
            options.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[int(event.option.id or 0)][0])

    def action_choose(self) -> None:
        if not self.choices:
            self.dismiss(None)
            return
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self.dismiss(self.choices[options.highlighted][0])


__all__ = ["ConfirmDialog", "Dialog", "ListDialog", "TextDialog", "TriageDialog"]
