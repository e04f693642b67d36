"""Messages shared by every console: live queue events, resync, connection state, sign-in.

The console base posts the live ones to every screen of the current screen
stack (top first); they do not bubble, so each screen sees one copy. A screen
handles what it shows (``on_ticket_changed``, ``on_doctor_changed``) and
reloads its view on :class:`Resync`.
"""

from __future__ import annotations

from textual.message import Message

from iqms.core.queue.events import DoctorChanged as DoctorEvent
from iqms.core.queue.events import PrinterFault, TicketEvent
from iqms.core.sync.connectivity import ConnectivityStatus
from iqms.tui.auth import SignIn


class LiveMessage(Message, bubble=False):
    """Base of the messages the console sends to its screens."""


class TicketChanged(LiveMessage, bubble=False):
    """A committed queue event about one ticket (issued, called, cancelled, ...)."""

    def __init__(self, event: TicketEvent) -> None:
        self.event = event
        super().__init__()


class DoctorChanged(LiveMessage, bubble=False):
    """A doctor's status or room changed."""

    def __init__(self, event: DoctorEvent) -> None:
        self.event = event
        super().__init__()


class PrinterChanged(LiveMessage, bubble=False):
    """A kiosk's ticket printer has a fault, a warning (paper low), or works again."""

    def __init__(self, event: PrinterFault) -> None:
        self.event = event
        super().__init__()


class Resync(LiveMessage, bubble=False):
    """Events may have been missed (reconnect, offline sync, screen shown again): reload."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__()


class ConnectionChanged(LiveMessage, bubble=False):
    """The database went away or came back; ``status`` has the pending offline operations."""

    def __init__(self, online: bool, status: ConnectivityStatus | None = None) -> None:
        self.online = online
        self.status = status
        super().__init__()


class SignedIn(LiveMessage, bubble=False):
    """Somebody signed in (or unlocked as somebody else)."""

    def __init__(self, sign_in: SignIn) -> None:
        self.sign_in = sign_in
        super().__init__()


__all__ = [
    "ConnectionChanged",
    "DoctorChanged",
    "LiveMessage",
    "PrinterChanged",
    "Resync",
    "SignedIn",
    "TicketChanged",
]
