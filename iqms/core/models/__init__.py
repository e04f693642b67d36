"""The IQMS data model (SQLAlchemy 2, UUID primary keys)."""

from iqms.core.models._access import PatientLoginCode
from iqms.core.models._base import Base, UTCDateTime, utcnow
from iqms.core.models._clinic import Appointment, Department, Device, Doctor
from iqms.core.models._display import DisplayMessage
from iqms.core.models._ops import (
    AuditChainHead,
    AuditRecord,
    Notification,
    SyncConflict,
    SyncOperation,
)
from iqms.core.models._people import Patient, User
from iqms.core.models._queue import (
    POOL_LANE,
    QueueEntry,
    QueueEvent,
    TicketBlock,
    TicketCounter,
    WaitingCount,
)

__all__ = [
    "POOL_LANE",
    "Appointment",
    "AuditChainHead",
    "AuditRecord",
    "Base",
    "Department",
    "Device",
    "DisplayMessage",
    "Doctor",
    "Notification",
    "Patient",
    "PatientLoginCode",
    "QueueEntry",
    "QueueEvent",
    "SyncConflict",
    "SyncOperation",
    "TicketBlock",
    "TicketCounter",
    "UTCDateTime",
    "User",
    "WaitingCount",
    "utcnow",
]
