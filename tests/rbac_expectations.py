"""Who may call each core service operation: the specification the RBAC matrix test checks.

Every operation registered with ``@operation`` must appear here (by its
``module.qualname``) with the roles allowed to call it. A role not listed must
get ``PermissionDenied`` before anything happens.
"""

from __future__ import annotations

ADMIN, STAFF, DOCTOR, PATIENT, KIOSK = "admin", "staff", "doctor", "patient", "kiosk"
DISPLAY = "display"
ALL = frozenset({ADMIN, STAFF, DOCTOR, PATIENT, KIOSK, DISPLAY})
PEOPLE_AND_KIOSK = ALL - {DISPLAY}

EXPECTED: dict[str, frozenset[str]] = {
    # "iqms.core.services.users.create": frozenset({ADMIN}),
    # accounts, login, audit
    "iqms.core.services.users.create": frozenset({ADMIN}),
    "iqms.core.services.users.get": frozenset({ADMIN}),
    "iqms.core.services.users.list_users": frozenset({ADMIN}),
    "iqms.core.services.users.update": frozenset({ADMIN}),
    "iqms.core.services.users.disable": frozenset({ADMIN}),
    "iqms.core.services.users.enable": frozenset({ADMIN}),
    "iqms.core.services.users.reset_password": frozenset({ADMIN}),
    "iqms.core.services.users.set_role": frozenset({ADMIN}),
    "iqms.core.services.users.change_own_password": frozenset({ADMIN, STAFF, DOCTOR, PATIENT}),
    "iqms.core.services.auth.login": ALL,
    "iqms.core.services.auth.authenticate": ALL,
    "iqms.core.services.auth.bootstrap": ALL,
    "iqms.core.services.auth.whoami": PEOPLE_AND_KIOSK,
    "iqms.core.services.auth.logout_everywhere": PEOPLE_AND_KIOSK,
    "iqms.core.services.audit.show": frozenset({ADMIN}),
    "iqms.core.services.audit.verify": frozenset({ADMIN}),
    # reports and exports
    "iqms.core.services.reports.clinic_report": frozenset({ADMIN}),
    "iqms.core.services.exports.export_queue_history": frozenset({ADMIN}),
    "iqms.core.services.exports.export_audit_records": frozenset({ADMIN}),
    # clinic setup, patients, queue
    "iqms.core.services.clinic.create_department": frozenset({ADMIN}),
    "iqms.core.services.clinic.list_departments": ALL,
    "iqms.core.services.clinic.get_department": ALL,
    "iqms.core.services.clinic.update_department": frozenset({ADMIN}),
    "iqms.core.services.clinic.deactivate_department": frozenset({ADMIN}),
    "iqms.core.services.clinic.create_doctor": frozenset({ADMIN}),
    "iqms.core.services.clinic.list_doctors": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.clinic.get_doctor": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.clinic.assign_room": frozenset({ADMIN}),
    "iqms.core.services.clinic.set_doctor_status": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.clinic.book_appointment": frozenset({ADMIN, STAFF}),
    "iqms.core.services.clinic.cancel_appointment": frozenset({ADMIN, STAFF}),
    "iqms.core.services.clinic.list_appointments": frozenset({ADMIN, STAFF}),
    "iqms.core.services.clinic.check_in": frozenset({ADMIN, STAFF, PATIENT, KIOSK}),
    "iqms.core.services.patients.register": frozenset({ADMIN, STAFF, KIOSK}),
    "iqms.core.services.patients.get": frozenset({ADMIN, STAFF, DOCTOR, PATIENT}),
    "iqms.core.services.patients.update": frozenset({ADMIN, STAFF, PATIENT}),
    "iqms.core.services.patients.search": frozenset({ADMIN, STAFF, DOCTOR, PATIENT}),
    "iqms.core.services.queue.issue": frozenset({ADMIN, STAFF, KIOSK}),
    "iqms.core.services.queue.call_next": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.call": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.recall": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.start": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.serve": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.no_show": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.cancel": frozenset({ADMIN, STAFF}),
    "iqms.core.services.queue.transfer": frozenset({ADMIN, STAFF}),
    "iqms.core.services.queue.hold": frozenset({ADMIN, STAFF}),
    "iqms.core.services.queue.return_to_queue": frozenset({ADMIN, STAFF}),
    "iqms.core.services.queue.change_category": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.ticket_status": ALL,
    "iqms.core.services.queue.my_tickets": frozenset({PATIENT}),
    "iqms.core.services.queue.board": ALL,
    "iqms.core.services.queue.doctor_queue": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.queue_list": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.get_ticket": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.watch": ALL,
    # devices (kiosks, display boards)
    "iqms.core.services.devices.add": frozenset({ADMIN}),
    "iqms.core.services.devices.list_devices": frozenset({ADMIN, STAFF}),
    "iqms.core.services.devices.get": frozenset({ADMIN, STAFF}),
    "iqms.core.services.devices.revoke": frozenset({ADMIN}),
    "iqms.core.services.devices.new_key": frozenset({ADMIN}),
    "iqms.core.services.devices.authenticate": ALL,
    # waiting-room boards
    "iqms.core.services.display.board": ALL,
    "iqms.core.services.display.get_message": ALL,
    "iqms.core.services.display.set_message": frozenset({ADMIN, STAFF}),
    "iqms.core.services.display.clear_message": frozenset({ADMIN, STAFF}),
    # notifications
    "iqms.core.services.notifications.list_notifications": frozenset({ADMIN, STAFF}),
    "iqms.core.services.notifications.retry": frozenset({ADMIN}),
    "iqms.core.services.notifications.retry_all_dead": frozenset({ADMIN}),
    "iqms.core.services.notifications.queue_test_sms": frozenset({ADMIN}),
    # offline sync
    "iqms.core.services.sync.push": frozenset({ADMIN, STAFF, DOCTOR, KIOSK}),
    "iqms.core.services.sync.reserve_numbers": frozenset({ADMIN, STAFF, KIOSK}),
    "iqms.core.services.sync.list_conflicts": frozenset({ADMIN, STAFF}),
    "iqms.core.services.sync.resolve_conflict": frozenset({ADMIN, STAFF}),
}
