"""Patients: register, look up (audited), change with an optimistic version check, search.

Every read of a patient's details writes an audit record. Patients reached
through a patient account see and change only their own record.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from iqms.core.enums import Role
from iqms.core.errors import Conflict, PermissionDenied, ValidationError
from iqms.core.models import AuditRecord, Patient
from iqms.core.queue import engine as queue_engine
from iqms.core.schemas.clinic import parse
from iqms.core.schemas.common import normalise_phone
from iqms.core.schemas.patients import PatientCreate, PatientMatch, PatientOut, PatientUpdate
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission, require, require_own_patient
from iqms.core.service import Context, operation

MRN_PREFIX = "MRN"
MRN_DIGITS = 6
MRN_LOCK_KEY = 0x1A4D18  # pg_advisory_xact_lock key serialising MRN allocation
SEARCH_LIMIT_MAX = 200
NAMES_MAX = 1000
_CLEARABLE = ("phone", "date_of_birth", "national_id", "push_token")


def _out(patient: Patient) -> PatientOut:
    return PatientOut(
        id=patient.id,
        mrn=patient.mrn,
        full_name=patient.full_name,
        phone=patient.phone,
        date_of_birth=patient.date_of_birth,
        national_id=patient.national_id,
        notify_channel=patient.notify_channel,
        language=patient.language,
        has_push_token=bool(patient.push_token),
        version=patient.version,
        created_at=patient.created_at,
        updated_at=patient.updated_at,
    )


async def _next_mrn(ctx: Context) -> str:
    """``MRN000123``: one more than the highest generated MRN (serialised per database)."""
    if ctx.db.is_postgres:
        await ctx.s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MRN_LOCK_KEY})
    rows = (
        await ctx.s.execute(
            select(Patient.mrn)
            .where(Patient.mrn.like(f"{MRN_PREFIX}%"))
            .order_by(func.length(Patient.mrn).desc(), Patient.mrn.desc())
            .limit(20)
        )
    ).scalars()
    highest = 0
    for mrn in rows:
        digits = mrn[len(MRN_PREFIX) :]
        if digits.isdigit():
            highest = max(highest, int(digits))
    return f"{MRN_PREFIX}{highest + 1:0{MRN_DIGITS}d}"


async def _same_person(ctx: Context, data: PatientCreate) -> Patient | None:
    """A record with the same national id, else one with the same phone and date of birth."""
    if data.national_id:
        found = (
            await ctx.s.execute(select(Patient).where(Patient.national_id == data.national_id))
        ).scalar_one_or_none()
        if found is not None:
            return found
    if data.phone and data.date_of_birth:
        stmt = (
            select(Patient)
            .where(Patient.phone == data.phone, Patient.date_of_birth == data.date_of_birth)
            .order_by(Patient.mrn)
            .limit(1)
        )
        return (await ctx.s.execute(stmt)).scalar_one_or_none()
    return None


@operation(Permission.PATIENTS_CREATE)
async def register(
    ctx: Context,
    *,
    full_name: str,
    phone: str | None = None,
    date_of_birth: Any = None,
    national_id: str | None = None,
    notify_channel: str | None = None,
    language: str = "en",
    push_token: str | None = None,
    allow_duplicate: bool = False,
) -> PatientOut:
    """Register a patient (MRN generated); refuses a likely duplicate unless allowed."""
    values: dict[str, Any] = {
        "full_name": full_name,
        "phone": phone,
        "date_of_birth": date_of_birth,
        "national_id": national_id,
        "language": language,
        "push_token": push_token,
    }
    if notify_channel is not None:
        values["notify_channel"] = notify_channel
    data = parse(PatientCreate, **values)
    same = await _same_person(ctx, data)
    if same is not None and data.national_id and same.national_id == data.national_id:
        raise Conflict(f"national id already registered to patient {same.mrn}", field="national_id")
    if same is not None and not allow_duplicate:
        raise Conflict(
            f"a patient with this phone and date of birth is already registered ({same.mrn}); "
            "use that record, or register anyway if this is another person",
            field="phone",
            mrn=same.mrn,
        )
    patient = Patient(
        id=uuid.uuid4(),
        mrn=await _next_mrn(ctx),
        full_name=data.full_name,
        phone=data.phone,
        date_of_birth=data.date_of_birth,
        national_id=data.national_id,
        notify_channel=data.notify_channel,
        language=data.language,
        push_token=data.push_token,
    )
    ctx.s.add(patient)
    try:
        async with ctx.s.begin_nested():
            await ctx.s.flush()
    except IntegrityError:
        raise Conflict("this patient was registered at the same moment; search again") from None
    await log_action(
        ctx,
        action="patient.registered",
        target=("patient", patient.id),
        details={"mrn": patient.mrn, "duplicate_allowed": bool(same)},
    )
    return _out(patient)


@operation(Permission.PATIENTS_READ)
async def get(ctx: Context, *, patient: uuid.UUID | str) -> PatientOut:
    """One patient's record by id or MRN (the read is audited)."""
    if ctx.principal.role == Role.PATIENT and patient in ("me", None):
        patient = ctx.principal.patient_id or ""
    found = await queue_engine.find_patient(ctx.s, patient)
    require_own_patient(ctx.principal, found.id)
    await log_action(ctx, action="patient.viewed", target=("patient", found.id))
    return _out(found)


async def _last_change(ctx: Context, found: Patient) -> str:
    """`` (rita at 10:42: phone)``: who last changed a record, from the audit trail."""
    record = (
        await ctx.s.execute(
            select(AuditRecord)
            .where(
                AuditRecord.target_type == "patient",
                AuditRecord.target_id == str(found.id),
                AuditRecord.action == "patient.updated",
            )
            .order_by(AuditRecord.seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if record is None:
        return ""
    when = record.at.astimezone(ctx.settings.tz).strftime("%H:%M")
    fields = ", ".join(str(f).replace("_", " ") for f in record.details.get("changed", []))
    return f" ({record.actor_name} at {when}" + (f": {fields})" if fields else ")")


@operation(Permission.PATIENTS_UPDATE)
async def update(
    ctx: Context,
    *,
    patient: uuid.UUID | str,
    version: int,
    full_name: str | None = None,
    phone: str | None = None,
    date_of_birth: Any = None,
    national_id: str | None = None,
    notify_channel: str | None = None,
    language: str | None = None,
    push_token: str | None = None,
) -> PatientOut:
    """Change a patient's record; ``version`` must match (else someone changed it meanwhile).

    ``None`` leaves a field unchanged; an empty string clears an optional one.
    """
    given = {
        "full_name": full_name,
        "phone": phone,
        "date_of_birth": date_of_birth,
        "national_id": national_id,
        "notify_channel": notify_channel,
        "language": language,
        "push_token": push_token,
    }
    given = {k: v for k, v in given.items() if v is not None}
    cleared = {k for k, v in given.items() if k in _CLEARABLE and v == ""}
    data = parse(PatientUpdate, **{k: v for k, v in given.items() if k not in cleared})
    found = await queue_engine.find_patient(ctx.s, patient)
    require_own_patient(ctx.principal, found.id)
    if found.version != version:
        who = await _last_change(ctx, found)
        raise Conflict(
            f"patient {found.mrn} was changed by someone else{who} since you opened it; "
            f"reload and try again (version {found.version}, you had {version})",
            field="version",
        )
    changed: list[str] = []
    for key in given:
        new = None if key in cleared else getattr(data, key)
        if getattr(found, key) != new:
            setattr(found, key, new)
            changed.append(key)
    if changed:
        try:
            async with ctx.s.begin_nested():
                await ctx.s.flush()
        except StaleDataError:
            raise Conflict(
                f"patient {found.mrn} was changed by someone else; reload and try again",
                field="version",
            ) from None
        except IntegrityError:
            raise Conflict(
                "national id already registered to another patient", field="national_id"
            ) from None
        await log_action(
            ctx,
            action="patient.updated",
            target=("patient", found.id),
            details={"mrn": found.mrn, "changed": sorted(changed)},
        )
    return _out(found)


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y")


def _date_of_birth(text_: str) -> date | None:
    """A date typed as ``1984-03-07``, ``07/03/1984``, ``07.03.1984`` or ``07-03-1984``."""
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text_, fmt).date()
        except ValueError:
            continue
    return None


@operation(Permission.PATIENTS_READ)
async def search(ctx: Context, *, query: str, limit: int = 20) -> list[PatientMatch]:
    """Patients whose name, MRN, phone or date of birth matches ``query`` (audited)."""
    if ctx.principal.role == Role.PATIENT:
        raise PermissionDenied("patients may only see their own record")
    text_ = re.sub(r"\s+", " ", query or "").strip()
    if len(text_) < 2:
        raise ValidationError("type at least 2 characters to search", field="query")
    if not 1 <= limit <= SEARCH_LIMIT_MAX:
        raise ValidationError(f"limit must be 1-{SEARCH_LIMIT_MAX}", field="limit")
    conditions = [Patient.mrn == text_.upper()]
    escaped = text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    words = escaped.lower().split(" ")
    pattern = "%" + "%".join(words) + "%"
    conditions.append(func.lower(Patient.full_name).like(pattern, escape="\\"))
    born = _date_of_birth(text_)
    if born is not None:
        conditions.append(Patient.date_of_birth == born)
    digits = re.sub(r"\D", "", text_)
    if len(digits) >= 4 and born is None:
        try:
            conditions.append(Patient.phone == normalise_phone(text_))
        except ValueError:
            conditions.append(Patient.phone.like(f"%{digits}%"))
    rows = (
        (
            await ctx.s.execute(
                select(Patient)
                .where(or_(*conditions))
                .order_by(Patient.full_name, Patient.mrn)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    await log_action(
        ctx,
        action="patient.searched",
        details={"query": text_, "results": [str(p.id) for p in rows]},
    )
    return [PatientMatch.model_validate(p) for p in rows]


@operation(Permission.QUEUE_VIEW, readonly=True)
async def names(ctx: Context, *, patient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names of the given patients (for staff queue views); the read is audited."""
    require(ctx.principal, Permission.PATIENTS_READ)
    wanted = sorted({p for p in patient_ids if p is not None}, key=str)
    if not wanted:
        return {}
    if len(wanted) > NAMES_MAX:
        raise ValidationError(f"at most {NAMES_MAX} patients at a time", field="patient_ids")
    rows = await ctx.s.execute(select(Patient.id, Patient.full_name).where(Patient.id.in_(wanted)))
    found = {pid: name for pid, name in rows}
    if found:
        await log_action(
            ctx,
            action="queue.names_viewed",
            details={"view": "names", "patients": sorted(str(p) for p in found)},
        )
    return found
