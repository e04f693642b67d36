"""Role-based access: every operation as every role, every operation declares a permission,
and the ownership rules (a doctor's own queue, a patient's own record) on real accounts."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import uuid
from types import ModuleType

import pytest

import iqms.core
import iqms.core.services
from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.enums import DoctorStatus, Role
from iqms.core.errors import PermissionDenied
from iqms.core.models import Department, Doctor, Patient
from iqms.core.security.rbac import (
    PERMISSION_MATRIX,
    PERMISSION_PHRASES,
    ROLE_PLURALS,
    Permission,
    Principal,
    require,
    require_own_doctor,
    require_own_patient,
)
from iqms.core.service import OPERATIONS, Context, is_operation
from iqms.core.services import auth, users
from tests.rbac_expectations import EXPECTED

ROLES = ("admin", "staff", "doctor", "patient", "kiosk", "display")
CALL_TIMEOUT_S = 5.0


def _import_all(package: ModuleType) -> list[ModuleType]:
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    ]


_import_all(iqms.core)  # so that OPERATIONS holds every operation of the core


def core_operations() -> dict[str, object]:
    return {name: op for name, op in OPERATIONS.items() if name.startswith("iqms.core.")}


def principal_for(role: str) -> Principal:
    """A principal of ``role`` with the links that role would have (none of them real)."""
    return Principal(
        user_id=uuid.uuid4(),
        username=f"{role}-under-test",
        role=role,
        patient_id=uuid.uuid4() if role == "patient" else None,
        doctor_id=uuid.uuid4() if role == "doctor" else None,
        device_id=uuid.uuid4() if role in ("kiosk", "display") else None,
    )


def test_expectations_name_exactly_the_operations_that_exist() -> None:
    ops = core_operations()
    assert ops, "no operations found"
    missing = sorted(set(ops) - set(EXPECTED))
    assert missing == [], f"operations missing from tests/rbac_expectations.py: {missing}"
    unknown = sorted(name for name in EXPECTED if name not in ops)
    assert unknown == [], f"EXPECTED names operations that do not exist: {unknown}"
    bad_roles = {n: r for n, r in EXPECTED.items() if not set(r) <= set(ROLES)}
    assert bad_roles == {}


async def test_every_operation_as_every_role(db: Database, settings, clock: FrozenClock) -> None:  # type: ignore[no-untyped-def]
    problems: list[str] = []
    for name, op in sorted(core_operations().items()):
        permission: Permission | None = op.__iqms_permission__  # type: ignore[attr-defined]
        allowed = EXPECTED.get(name, frozenset())
        for role in ROLES:
            ctx = Context(db=db, principal=principal_for(role), settings=settings, clock=clock)
            outcome: BaseException | None = None
            try:
                await asyncio.wait_for(op(ctx), CALL_TIMEOUT_S)  # type: ignore[operator]
            except TimeoutError:
                outcome = None  # it got past the guard and was busy working
            except Exception as exc:
                outcome = exc
            denied = isinstance(outcome, PermissionDenied)
            if role in allowed and denied:
                problems.append(f"{name}: {role} is allowed but got PermissionDenied: {outcome}")
            if role not in allowed:
                if not denied:
                    problems.append(
                        f"{name}: {role} must get PermissionDenied before anything happens, "
                        f"got {type(outcome).__name__ if outcome else 'success'}: {outcome}"
                    )
                elif permission is not None and outcome.details.get("permission") != permission:  # type: ignore[union-attr]
                    problems.append(f"{name}: {role} was denied by the body, not the guard")
    assert problems == [], "\n".join(problems)


def test_matrix_denies_by_default() -> None:
    nobody = Principal(user_id=uuid.uuid4(), username="x", role="visitor")
    for permission in Permission:
        with pytest.raises(PermissionDenied):
            require(nobody, permission)
        with pytest.raises(PermissionDenied):
            require(Principal.anonymous(), permission)
    assert set(PERMISSION_MATRIX) >= set(Role)
    assert Permission.USERS_MANAGE not in PERMISSION_MATRIX[Role.STAFF]
    assert Permission.AUDIT_VIEW in PERMISSION_MATRIX[Role.ADMIN]
    assert Permission.QUEUE_OWN_TICKET in PERMISSION_MATRIX[Role.PATIENT]


def test_refusals_say_in_plain_words_who_cannot_do_what() -> None:
    assert set(PERMISSION_PHRASES) == set(Permission)
    assert set(ROLE_PLURALS) == set(Role)
    doctor = Principal(user_id=uuid.uuid4(), username="drsmith", role=Role.DOCTOR)
    with pytest.raises(PermissionDenied) as refused:
        require(doctor, Permission.QUEUE_MANAGE)
    assert str(refused.value) == (
        "doctors cannot cancel tickets, undo moves or leave notes for doctors (logged in as drsmith)"
    )
    with pytest.raises(PermissionDenied) as refused:
        require(Principal.anonymous(), Permission.REPORTS_VIEW)
    assert str(refused.value) == "log in first: only a logged-in user can see reports"


def test_every_public_service_function_is_an_operation_with_a_permission() -> None:
    modules = _import_all(iqms.core.services)
    assert {m.__name__.rsplit(".", 1)[1] for m in modules} >= {"users", "auth", "audit"}
    problems: list[str] = []
    for module in modules:
        for attr, obj in vars(module).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if not inspect.iscoroutinefunction(obj):
                continue
            where = f"{module.__name__}.{attr}"
            if not is_operation(obj):
                problems.append(f"{where} is a public async function but not an @operation")
                continue
            permission = obj.__iqms_permission__
            if permission is None and not obj.__iqms_public__:
                problems.append(f"{where} declares no permission")
            if permission is not None and not isinstance(permission, Permission):
                problems.append(f"{where} declares {permission!r}, not a Permission")
            if where not in OPERATIONS:
                problems.append(f"{where} is not registered")
    assert problems == [], "\n".join(problems)


def test_public_operations_are_only_the_entry_points_before_login() -> None:
    public = sorted(
        name for name, op in core_operations().items() if getattr(op, "__iqms_public__", False)
    )
    for name in public:
        assert EXPECTED[name] == frozenset(ROLES), name
    assert {
        "iqms.core.services.auth.login",
        "iqms.core.services.auth.authenticate",
        "iqms.core.services.auth.bootstrap",
    } <= set(public)


async def test_ownership_rules_on_real_accounts(ctx: Context, clock: FrozenClock) -> None:
    async with ctx.db.transaction() as s:
        dept = Department(id=uuid.uuid4(), code="GEN", name="General", ticket_prefix="A")
        amelia = Patient(id=uuid.uuid4(), mrn="MRN000001", full_name="Amelia Hughes")
        oliver = Patient(id=uuid.uuid4(), mrn="MRN000002", full_name="Oliver Brown")
        s.add_all([dept, amelia, oliver])
    for username, role, mrn in (
        ("amelia", "patient", "MRN000001"),
        ("drsmith", "doctor", None),
        ("drjones", "doctor", None),
        ("rita", "staff", None),
    ):
        await users.create(
            ctx, username=username, full_name=username.title(), role=role,
            password=f"{username}-pass-123", patient_mrn=mrn,
        )  # fmt: skip
    doctor_ids: dict[str, uuid.UUID] = {}
    async with ctx.db.transaction() as s:
        for n, name in enumerate(("drsmith", "drjones"), start=1):
            account = await users.get(ctx, user=name)
            doctor = Doctor(
                id=uuid.uuid4(), user_id=account.id, department_id=dept.id, room=f"Room {n}",
                status=DoctorStatus.AVAILABLE, status_changed_at=clock.now(),
            )  # fmt: skip
            s.add(doctor)
            doctor_ids[name] = doctor.id

    async def principal(username: str) -> Principal:
        result = await auth.login(ctx, username=username, password=f"{username}-pass-123")
        # the token round trip gives the same principal, links included
        assert await auth.authenticate(ctx, token=result.token) == result.principal
        return result.principal

    patient = await principal("amelia")
    assert patient.patient_id == amelia.id
    require_own_patient(patient, amelia.id)
    with pytest.raises(PermissionDenied, match="their own record"):
        require_own_patient(patient, oliver.id)

    smith = await principal("drsmith")
    assert smith.doctor_id == doctor_ids["drsmith"]
    require_own_doctor(smith, doctor_ids["drsmith"])
    with pytest.raises(PermissionDenied, match="their own queue"):
        require_own_doctor(smith, doctor_ids["drjones"])
    with pytest.raises(PermissionDenied):
        require_own_doctor(smith, None)

    rita = await principal("rita")  # reception may act for any patient and any doctor
    require_own_patient(rita, oliver.id)
    require_own_doctor(rita, doctor_ids["drjones"])
    assert (await auth.whoami(ctx.as_principal(smith))).doctor_id == doctor_ids["drsmith"]
