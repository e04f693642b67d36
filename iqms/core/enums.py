"""The fixed vocabularies of the clinic, shared by models, schemas and services."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    DOCTOR = "doctor"
    PATIENT = "patient"
    KIOSK = "kiosk"
    DISPLAY = "display"  # a waiting-room board; a device role, never a person's account


#: Roles held only by devices (through a device key), never by a login account.
DEVICE_ONLY_ROLES = frozenset({Role.DISPLAY})


class TriageCategory(IntEnum):
    """Manchester Triage System categories (1 = most urgent)."""

    IMMEDIATE = 1
    VERY_URGENT = 2
    URGENT = 3
    STANDARD = 4
    NON_URGENT = 5

    @property
    def colour(self) -> str:
        return TRIAGE_COLOURS[self]

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


TRIAGE_COLOURS = {
    TriageCategory.IMMEDIATE: "red",
    TriageCategory.VERY_URGENT: "orange",
    TriageCategory.URGENT: "yellow",
    TriageCategory.STANDARD: "green",
    TriageCategory.NON_URGENT: "blue",
}

# Target maximum wait in minutes; a department may override these.
DEFAULT_TRIAGE_TARGET_MINUTES = {
    TriageCategory.IMMEDIATE: 0,
    TriageCategory.VERY_URGENT: 10,
    TriageCategory.URGENT: 60,
    TriageCategory.STANDARD: 120,
    TriageCategory.NON_URGENT: 240,
}


class DoctorStatus(StrEnum):
    AVAILABLE = "available"
    PAUSED = "paused"
    OFF = "off"


class NotifyChannel(StrEnum):
    SMS = "sms"
    PUSH = "push"
    NONE = "none"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    CANCELLED = "cancelled"
    MISSED = "missed"


class TicketStatus(StrEnum):
    WAITING = "waiting"
    HELD = "held"
    CALLED = "called"
    IN_SERVICE = "in_service"
    SERVED = "served"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    TRANSFERRED = "transferred"

    @property
    def is_final(self) -> bool:
        return self in FINAL_TICKET_STATUSES


FINAL_TICKET_STATUSES = frozenset(
    {TicketStatus.SERVED, TicketStatus.NO_SHOW, TicketStatus.CANCELLED, TicketStatus.TRANSFERRED}
)


class TicketSource(StrEnum):
    KIOSK = "kiosk"
    RECEPTION = "reception"
    APPOINTMENT = "appointment"
    SYNC = "sync"
    TRANSFER = "transfer"


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # permanent failure, not retried
    DEAD = "dead"  # transient failures exhausted the attempts


class DeviceKind(StrEnum):
    KIOSK = "kiosk"
    TERMINAL = "terminal"
    DISPLAY = "display"


class SyncResult(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    MERGED = "merged"
    CONFLICT = "conflict"


class ConflictStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class PrinterState(StrEnum):
    """What a kiosk's ticket printer is doing, as kiosks report it and reception shows it."""

    READY = "ready"
    PAPER_LOW = "paper_low"  # the near-end sensor: still printing, change the roll soon
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"  # switched on but not printing (error, paper feed, ...)
    UNREACHABLE = "unreachable"  # connection refused, no such device, switched off
    TIMEOUT = "timeout"  # it did not answer in time
    DISCONNECTED = "disconnected"  # the connection dropped during a ticket
    ERROR = "error"
    NO_PRINTER = "no_printer"  # none configured: the number is shown on screen only

    @property
    def severity(self) -> str:
        """``ok``, ``warning`` (still printing) or ``fault`` (no tickets are printed)."""
        if self in (PrinterState.READY, PrinterState.NO_PRINTER):
            return "ok"
        if self is PrinterState.PAPER_LOW:
            return "warning"
        return "fault"

    @property
    def can_print(self) -> bool:
        return self in (PrinterState.READY, PrinterState.PAPER_LOW)
