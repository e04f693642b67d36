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
}
