"""Messages of the reception console."""

from __future__ import annotations

from iqms.tui.messages import LiveMessage


class QueueUpdated(LiveMessage, bubble=False):
    """The console's copy of the queue (or of the doctors) changed: redraw from it."""


__all__ = ["QueueUpdated"]
