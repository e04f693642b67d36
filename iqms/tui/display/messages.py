"""Messages of the waiting-room board besides the shared live ones."""

from __future__ import annotations

from textual.message import Message

from iqms.core.queue.events import DisplayMessageChanged
from iqms.tui.messages import LiveMessage


class MessageLineChanged(LiveMessage, bubble=False):
    """Staff set or cleared the message line of the boards."""

    def __init__(self, event: DisplayMessageChanged) -> None:
        self.event = event
        super().__init__()


class SoundChanged(Message, bubble=False):
    """Announcements stopped being heard (``problem`` says why) or work again (None)."""

    def __init__(self, problem: str | None) -> None:
        self.problem = problem
        super().__init__()


__all__ = ["MessageLineChanged", "SoundChanged"]
