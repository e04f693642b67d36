"""Role-based access control: one permission matrix, deny by default.

Every core service operation names one :class:`Permission` (see
:func:`iqms.core.service.operation`). Ownership rules (a doctor's own queue, a
patient's own record) are checked by the operation itself with the helpers
below.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from iqms.core.enums import Role
from iqms.core.errors import PermissionDenied

SYSTEM_ROLE = "system"
# Someone not yet logged in (the login and bootstrap entry points); holds no permission.
ANONYMOUS_ROLE = "anonymous"


class Permission(StrEnum):
    # accounts
    USERS_MANAGE = "users.manage"
    USERS_VIEW = "users.view"
    OWN_PASSWORD = "users.own_password"
    OWN_SESSION = "users.own_session"
    # clinic setup
    DEPARTMENTS_MANAGE = "departments.manage"
    DEPARTMENTS_VIEW = "departments.view"
    DOCTORS_MANAGE = "doctors.manage"
    DOCTORS_VIEW = "doctors.view"
    DOCTOR_STATUS = "doctors.set_status"
    DEVICES_MANAGE = "devices.manage"
    DEVICES_VIEW = "devices.view"
    DEVICE_REPORT = "devices.report_status"
    # patients and appointments
    PATIENTS_CREATE = "patients.create"
    PATIENTS_READ = "patients.read"
    PATIENTS_UPDATE = "patients.update"
    APPOINTMENTS_MANAGE = "appointments.manage"
    APPOINTMENTS_CHECK_IN = "appointments.check_in"
    # queue
    QUEUE_ISSUE = "queue.issue"
    QUEUE_CALL = "queue.call"
    QUEUE_MANAGE = "queue.manage"
    QUEUE_TRIAGE = "queue.triage"
    QUEUE_VIEW = "queue.view"
    QUEUE_BOARD = "queue.board"
    QUEUE_OWN_TICKET = "queue.own_ticket"
    DISPLAY_MESSAGE = "display.message"
    EVENTS_SUBSCRIBE = "events.subscribe"
    NUMBERS_RESERVE = "numbers.reserve"
    # notifications
    NOTIFICATIONS_VIEW = "notifications.view"
    NOTIFICATIONS_MANAGE = "notifications.manage"
    NOTIFICATIONS_SEND = "notifications.send"
    # audit, reports, exports
    AUDIT_VIEW = "audit.view"
    REPORTS_VIEW = "reports.view"
    EXPORT_RUN = "export.run"
    # offline sync
    SYNC_PUSH = "sync.push"
    SYNC_CONFLICTS = "sync.conflicts"


P = Permission

# What each permission lets someone do, in the words of a refusal: "doctors cannot ...".
PERMISSION_PHRASES: dict[Permission, str] = {
    P.USERS_MANAGE: "add, change or disable accounts",
    P.USERS_VIEW: "see the list of accounts",
    P.OWN_PASSWORD: "change a password",
    P.OWN_SESSION: "use a login session",
    P.DEPARTMENTS_MANAGE: "add, change or close departments",
    P.DEPARTMENTS_VIEW: "see the departments",
    P.DOCTORS_MANAGE: "add doctors or move them to other rooms",
    P.DOCTORS_VIEW: "see the doctors",
    P.DOCTOR_STATUS: "change a doctor's availability",
    P.DEVICES_MANAGE: "add kiosks and display boards or revoke their keys",
    P.DEVICES_VIEW: "see the kiosks and display boards",
    P.DEVICE_REPORT: "report a kiosk's printer state",
    P.DISPLAY_MESSAGE: "set the message line of the waiting-room boards",
    P.PATIENTS_CREATE: "register patients",
    P.PATIENTS_READ: "see patient records",
    P.PATIENTS_UPDATE: "change patient records",
    P.APPOINTMENTS_MANAGE: "book or cancel appointments",
    P.APPOINTMENTS_CHECK_IN: "check patients in for appointments",
    P.QUEUE_ISSUE: "issue tickets",
    P.QUEUE_CALL: "call patients or mark them served",
    P.QUEUE_MANAGE: "cancel tickets, undo moves or leave notes for doctors",
    P.QUEUE_TRIAGE: "change a ticket's triage category",
    P.QUEUE_VIEW: "see the queue",
    P.QUEUE_BOARD: "see the waiting-room board",
    P.QUEUE_OWN_TICKET: "follow their own tickets",
    P.EVENTS_SUBSCRIBE: "watch live queue events",
    P.NUMBERS_RESERVE: "reserve offline ticket numbers",
    P.NOTIFICATIONS_VIEW: "see patient messages",
    P.NOTIFICATIONS_MANAGE: "retry patient messages or send test messages",
    P.NOTIFICATIONS_SEND: "send patient messages",
    P.AUDIT_VIEW: "read or verify the audit trail",
    P.REPORTS_VIEW: "see reports",
    P.EXPORT_RUN: "export records",
    P.SYNC_PUSH: "sync offline operations",
    P.SYNC_CONFLICTS: "review sync conflicts",
}

# Who holds a role, as a refusal names them.
ROLE_PLURALS: dict[str, str] = {
    Role.ADMIN: "administrators",
    Role.STAFF: "reception staff",
    Role.DOCTOR: "doctors",
    Role.PATIENT: "patients",
    Role.KIOSK: "kiosks",
    Role.DISPLAY: "display boards",
}

_STAFF = {
    P.OWN_PASSWORD, P.OWN_SESSION, P.DEPARTMENTS_VIEW, P.DOCTORS_VIEW, P.DOCTOR_STATUS,
    P.PATIENTS_CREATE, P.PATIENTS_READ, P.PATIENTS_UPDATE, P.APPOINTMENTS_MANAGE,
    P.APPOINTMENTS_CHECK_IN, P.QUEUE_ISSUE, P.QUEUE_CALL, P.QUEUE_MANAGE, P.QUEUE_TRIAGE,
    P.QUEUE_VIEW, P.QUEUE_BOARD, P.EVENTS_SUBSCRIBE, P.NUMBERS_RESERVE, P.SYNC_PUSH,
    P.SYNC_CONFLICTS, P.NOTIFICATIONS_VIEW, P.DEVICES_VIEW, P.DISPLAY_MESSAGE,
}  # fmt: skip

_DOCTOR = {
    P.OWN_PASSWORD, P.OWN_SESSION, P.DEPARTMENTS_VIEW, P.DOCTORS_VIEW, P.DOCTOR_STATUS,
    P.PATIENTS_READ, P.QUEUE_CALL, P.QUEUE_TRIAGE, P.QUEUE_VIEW, P.QUEUE_BOARD,
    P.EVENTS_SUBSCRIBE, P.SYNC_PUSH,
}  # fmt: skip

_PATIENT = {
    P.OWN_PASSWORD, P.OWN_SESSION, P.DEPARTMENTS_VIEW, P.PATIENTS_READ, P.PATIENTS_UPDATE,
    P.APPOINTMENTS_CHECK_IN, P.QUEUE_OWN_TICKET, P.QUEUE_BOARD, P.EVENTS_SUBSCRIBE,
}  # fmt: skip

_KIOSK = {
    P.OWN_SESSION, P.DEPARTMENTS_VIEW, P.PATIENTS_CREATE, P.APPOINTMENTS_CHECK_IN,
    P.QUEUE_ISSUE, P.QUEUE_BOARD, P.EVENTS_SUBSCRIBE, P.NUMBERS_RESERVE, P.SYNC_PUSH,
    P.DEVICE_REPORT,
}  # fmt: skip

# A waiting-room board: numbers and rooms, nothing else.
_DISPLAY = {P.DEPARTMENTS_VIEW, P.QUEUE_BOARD, P.EVENTS_SUBSCRIBE}

# The one permission matrix. Anything not listed is denied.
PERMISSION_MATRIX: dict[str, frozenset[Permission]] = {
    # Reporting a printer's state is for the device itself.
    Role.ADMIN: frozenset(
        set(Permission) - {P.NOTIFICATIONS_SEND, P.QUEUE_OWN_TICKET, P.DEVICE_REPORT}
    ),
    Role.STAFF: frozenset(_STAFF),
    Role.DOCTOR: frozenset(_DOCTOR),
    Role.PATIENT: frozenset(_PATIENT),
    Role.KIOSK: frozenset(_KIOSK),
    Role.DISPLAY: frozenset(_DISPLAY),
    # Internal principal of the notification worker, the simulator and the demo seeder.
    SYSTEM_ROLE: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: decoded from a token, or the internal system principal."""

    user_id: uuid.UUID | None
    username: str
    role: str
    token_version: int = 0
    patient_id: uuid.UUID | None = None
    doctor_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None

    @classmethod
    def system(cls, name: str = "system") -> Principal:
        return cls(user_id=None, username=name, role=SYSTEM_ROLE)

    @classmethod
    def anonymous(cls, name: str = "anonymous") -> Principal:
        """Someone who has not logged in yet: no permission at all."""
        return cls(user_id=None, username=name, role=ANONYMOUS_ROLE)

    @property
    def is_system(self) -> bool:
        return self.role == SYSTEM_ROLE


def has_permission(principal: Principal, permission: Permission) -> bool:
    return permission in PERMISSION_MATRIX.get(principal.role, frozenset())


def denial(principal: Principal, permission: Permission) -> str:
    """Why ``principal`` is refused, in plain words: "doctors cannot transfer, hold or ..."."""
    what = PERMISSION_PHRASES.get(permission, permission.value.replace(".", " "))
    if principal.role == ANONYMOUS_ROLE:
        return f"log in first: only a logged-in user can {what}"
    who = ROLE_PLURALS.get(principal.role, f"users with the role {principal.role}")
    return f"{who} cannot {what} (logged in as {principal.username})"


def require(principal: Principal, permission: Permission) -> None:
    """Raise :class:`PermissionDenied` unless the principal's role grants ``permission``."""
    if not has_permission(principal, permission):
        raise PermissionDenied(denial(principal, permission), permission=permission.value)


def require_own_patient(principal: Principal, patient_id: uuid.UUID | None) -> None:
    """Patients may only touch their own record; other roles pass."""
    if principal.role == Role.PATIENT and (
        patient_id is None or principal.patient_id != patient_id
    ):
        raise PermissionDenied("patients may only see and change their own record")


def require_own_doctor(principal: Principal, doctor_id: uuid.UUID | None) -> None:
    """Doctors may only act on their own queue; other roles pass."""
    if principal.role == Role.DOCTOR and (doctor_id is None or principal.doctor_id != doctor_id):
        raise PermissionDenied("doctors may only act on their own queue")
