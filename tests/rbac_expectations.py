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
    "iqms.core.services.clinic.change_room": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.clinic.book_appointment": frozenset({ADMIN, STAFF}),
    "iqms.core.services.clinic.cancel_appointment": frozenset({ADMIN, STAFF}),
    "iqms.core.services.clinic.list_appointments": frozenset({ADMIN, STAFF}),
    "iqms.core.services.clinic.check_in": frozenset({ADMIN, STAFF, PATIENT, KIOSK}),
    "iqms.core.services.patients.register": frozenset({ADMIN, STAFF, KIOSK}),
    "iqms.core.services.patients.get": frozenset({ADMIN, STAFF, DOCTOR, PATIENT}),
    "iqms.core.services.patients.update": frozenset({ADMIN, STAFF, PATIENT}),
    "iqms.core.services.patients.search": frozenset({ADMIN, STAFF, DOCTOR, PATIENT}),
    # public entry points of patients' phones, before login (rate-limited in the service)
    "iqms.core.services.patient_access.self_register": ALL,
    "iqms.core.services.patient_access.request_login_code": ALL,
    "iqms.core.services.patient_access.login_with_code": ALL,
    "iqms.core.services.patient_access.login_with_birth_date": ALL,
    "iqms.core.services.patients.names": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.issue": frozenset({ADMIN, STAFF, KIOSK}),
    "iqms.core.services.queue.call_next": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.call": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.recall": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.start": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.serve": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.no_show": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.cancel": frozenset({ADMIN, STAFF}),
    # doctors: only the patients they called (checked by the operation)
    "iqms.core.services.queue.transfer": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.hold": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.return_to_queue": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.set_note": frozenset({ADMIN, STAFF}),
    "iqms.core.services.queue.doctor_day": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.change_category": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.undo_last": frozenset({ADMIN, STAFF}),
    "iqms.core.services.queue.ticket_status": ALL,
    "iqms.core.services.queue.my_tickets": frozenset({PATIENT}),
    # public: holding the unguessable code printed on the ticket is the permission
    "iqms.core.services.queue.ticket_status_by_code": ALL,
    "iqms.core.services.queue.board": ALL,
    "iqms.core.services.queue.doctor_queue": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.queue_list": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.get_ticket": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.slip_language": frozenset({ADMIN, STAFF, DOCTOR}),
    "iqms.core.services.queue.watch": ALL,
    # self-service (kiosk, patient pages)
    "iqms.core.services.selfservice.department_waits": ALL,
    "iqms.core.services.selfservice.register_for_messages": frozenset({ADMIN, STAFF, KIOSK}),
    "iqms.core.services.selfservice.check_in": frozenset({ADMIN, STAFF, PATIENT, KIOSK}),
    # devices (kiosks, display boards)
    "iqms.core.services.devices.add": frozenset({ADMIN}),
    "iqms.core.services.devices.list_devices": frozenset({ADMIN, STAFF}),
    "iqms.core.services.devices.get": frozenset({ADMIN, STAFF}),
    "iqms.core.services.devices.revoke": frozenset({ADMIN}),
    "iqms.core.services.devices.new_key": frozenset({ADMIN}),
    "iqms.core.services.devices.authenticate": ALL,
    "iqms.core.services.devices.report_printer": frozenset({KIOSK}),
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
    "iqms.core.services.sync.last_sequence": frozenset({ADMIN, STAFF, DOCTOR, KIOSK}),
    "iqms.core.services.sync.reserve_numbers": frozenset({ADMIN, STAFF, KIOSK}),
    "iqms.core.services.sync.list_conflicts": frozenset({ADMIN, STAFF}),
    "iqms.core.services.sync.resolve_conflict": frozenset({ADMIN, STAFF}),
}

# ---- HTTP routes (iqms serve) -----------------------------------------------------------------
# Who may call each route of the HTTP API: "METHOD path" -> roles. ANONYMOUS is a caller with no
# credential: open routes list it (the core decides, e.g. a login), every other route answers 401
# without one, and 403 to a role not listed. The route walk in tests/api/test_api_routes.py calls
# every route as every role (display boards with their device key).
ANONYMOUS = "anonymous"
OPEN = ALL | {ANONYMOUS}
STAFFISH = frozenset({ADMIN, STAFF, DOCTOR})

ROUTES: dict[str, frozenset[str]] = {
    # logging in; one's own session
    "POST /api/auth/token": OPEN,
    "GET /api/auth/me": PEOPLE_AND_KIOSK,
    "POST /api/auth/logout-everywhere": PEOPLE_AND_KIOSK,
    "POST /api/auth/password": frozenset({ADMIN, STAFF, DOCTOR, PATIENT}),
    # patients on their phones (registration and login are open and rate-limited)
    "POST /api/patients/register": OPEN,
    "POST /api/patients/login/code": OPEN,
    "POST /api/patients/login/verify": OPEN,
    "POST /api/patients/login/birth-date": OPEN,
    "GET /api/patients/me": frozenset({ADMIN, STAFF, DOCTOR, PATIENT}),
    "PATCH /api/patients/me": frozenset({ADMIN, STAFF, PATIENT}),
    "GET /api/patients/me/tickets": frozenset({PATIENT}),
    "GET /api/patients/{patient}": frozenset({ADMIN, STAFF, DOCTOR, PATIENT}),  # patient: own
    # reception (kiosks issue tickets and register patients too)
    "GET /api/staff/patients": STAFFISH,
    "POST /api/staff/patients": frozenset({ADMIN, STAFF, KIOSK}),
    "GET /api/staff/patients/{patient}": frozenset({ADMIN, STAFF, DOCTOR, PATIENT}),
    "PATCH /api/staff/patients/{patient}": frozenset({ADMIN, STAFF, PATIENT}),  # patient: own
    "POST /api/staff/tickets": frozenset({ADMIN, STAFF, KIOSK}),
    "GET /api/staff/queue": STAFFISH,
    "GET /api/staff/tickets/{ticket}": STAFFISH,
    "POST /api/staff/tickets/{ticket}/category": STAFFISH,
    "POST /api/staff/tickets/{ticket}/cancel": frozenset({ADMIN, STAFF}),
    "POST /api/staff/tickets/{ticket}/hold": frozenset({ADMIN, STAFF}),
    "POST /api/staff/tickets/{ticket}/return": frozenset({ADMIN, STAFF}),
    "POST /api/staff/tickets/{ticket}/transfer": frozenset({ADMIN, STAFF}),
    # doctors (staff may act for a doctor)
    "GET /api/doctor/queue": STAFFISH,
    "POST /api/doctor/status": STAFFISH,
    "POST /api/doctor/call-next": STAFFISH,
    "POST /api/doctor/tickets/{ticket}/call": STAFFISH,
    "POST /api/doctor/tickets/{ticket}/recall": STAFFISH,
    "POST /api/doctor/tickets/{ticket}/start": STAFFISH,
    "POST /api/doctor/tickets/{ticket}/serve": STAFFISH,
    "POST /api/doctor/tickets/{ticket}/no-show": STAFFISH,
    "POST /api/doctor/tickets/{ticket}/hold": STAFFISH,  # doctors: the patients they called
    "POST /api/doctor/tickets/{ticket}/return": STAFFISH,
    "POST /api/doctor/tickets/{ticket}/transfer": STAFFISH,
    # administrators
    "GET /api/admin/users": frozenset({ADMIN}),
    "POST /api/admin/users": frozenset({ADMIN}),
    "GET /api/admin/users/{user}": frozenset({ADMIN}),
    "POST /api/admin/users/{user}/disable": frozenset({ADMIN}),
    "POST /api/admin/users/{user}/enable": frozenset({ADMIN}),
    "POST /api/admin/users/{user}/password": frozenset({ADMIN}),
    "POST /api/admin/users/{user}/role": frozenset({ADMIN}),
    "GET /api/admin/reports": frozenset({ADMIN}),
    "GET /api/admin/audit/verify": frozenset({ADMIN}),
    # offline journals of remote terminals
    "POST /api/sync": frozenset({ADMIN, STAFF, DOCTOR, KIOSK}),
    "POST /api/sync/numbers": frozenset({ADMIN, STAFF, KIOSK}),
    # shared views; the ticket's own code is the key to its status
    "GET /api/status/{code}": OPEN,
    "GET /api/departments": ALL,
    "GET /api/board/{department}": ALL,
    "GET /healthz": OPEN,
    # pages
    "GET /": OPEN,
    "GET /t/{code}": OPEN,
    "GET /t/{code}/events": OPEN,
    "GET /board": ALL,
    "GET /board/events": ALL,
}
