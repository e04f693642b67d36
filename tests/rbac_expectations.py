"""Who may call each core service operation: the specification the RBAC matrix test checks.

Every operation registered with ``@operation`` must appear here (by its
``module.qualname``) with the roles allowed to call it. A role not listed must
get ``PermissionDenied`` before anything happens.
"""

from __future__ import annotations

ADMIN, STAFF, DOCTOR, PATIENT, KIOSK = "admin", "staff", "doctor", "patient", "kiosk"
ALL = frozenset({ADMIN, STAFF, DOCTOR, PATIENT, KIOSK})

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
    "iqms.core.services.auth.whoami": ALL,
    "iqms.core.services.auth.logout_everywhere": ALL,
    "iqms.core.services.audit.show": frozenset({ADMIN}),
    "iqms.core.services.audit.verify": frozenset({ADMIN}),
    # reports and exports
    "iqms.core.services.reports.clinic_report": frozenset({ADMIN}),
    "iqms.core.services.exports.export_queue_history": frozenset({ADMIN}),
    "iqms.core.services.exports.export_audit_records": frozenset({ADMIN}),
}
