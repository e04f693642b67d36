"""Applying offline patient operations: registrations matched and merged, stale updates resolved.

A patient registered offline who matches an existing one (national id, or
phone + date of birth with a compatible name) is merged into that record, not
duplicated. An update based on an old version is resolved field by field: a
field only the terminal changed is applied; a contact detail changed on both
sides keeps the newer value; an identity detail (name, birth date, national
id) changed on both sides is kept as a conflict for staff. Both values go to
the audit trail either way.
"""

from __future__ import annotations

import difflib
import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import select

from iqms.core.enums import SyncResult
from iqms.core.models import AuditRecord, Patient
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission, require
from iqms.core.service import Context
from iqms.core.sync.apply import BatchState, OpConflict, Outcome, jsonable, patient_from_op
from iqms.core.sync.batch import Operation, RegisterPatient, UpdatePatient

IDENTITY_FIELDS = ("full_name", "date_of_birth", "national_id")
CONTACT_FIELDS = ("phone", "notify_channel", "language")


def name_key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    return " ".join(sorted(folded.replace("-", " ").replace(".", " ").split()))


def same_person_name(a: str, b: str) -> bool:
    """Loose match of two spellings of one person's name (case, accents, order, small typos)."""
    ka, kb = name_key(a), name_key(b)
    if ka == kb:
        return True
    ta, tb = set(ka.split()), set(kb.split())
    if ta and tb and (ta <= tb or tb <= ta):
        return True
    return difflib.SequenceMatcher(None, ka, kb).ratio() >= 0.85


async def register_patient(ctx: Context, state: BatchState, op: Operation) -> Outcome:
    assert isinstance(op, RegisterPatient)
    from iqms.core.services import patients

    require(ctx.principal, Permission.PATIENTS_CREATE)
    offline = op.patient
    by_national_id: Patient | None = None
    if offline.national_id:
        by_national_id = (
            await ctx.s.execute(select(Patient).where(Patient.national_id == offline.national_id))
        ).scalar_one_or_none()
    by_phone: list[Patient] = []
    if offline.phone and offline.date_of_birth:
        by_phone = list(
            (
                await ctx.s.execute(
                    select(Patient)
                    .where(
                        Patient.phone == offline.phone,
                        Patient.date_of_birth == offline.date_of_birth,
                    )
                    .order_by(Patient.mrn)
                )
            ).scalars()
        )
    match: Patient | None = None
    if by_national_id is not None:
        others = [p for p in by_phone if p.id != by_national_id.id]
        if others and by_national_id not in by_phone:
            raise OpConflict(
                f"the national id belongs to patient {by_national_id.mrn} but the phone and "
                f"date of birth to {others[0].mrn}; the patient was not merged",
                candidates=[by_national_id.mrn, *(p.mrn for p in others)],
            )
        match = by_national_id
    elif by_phone:
        candidates = [
            p
            for p in by_phone
            if same_person_name(p.full_name, offline.full_name)
            and not (p.national_id and offline.national_id and p.national_id != offline.national_id)
        ]
        if len(candidates) > 1:
            raise OpConflict(
                "the phone and date of birth match several patients "
                f"({', '.join(p.mrn for p in candidates)}); pick the right one",
                candidates=[p.mrn for p in candidates],
            )
        if not candidates:
            first = by_phone[0]
            raise OpConflict(
                f"patient {first.mrn} has the same phone and date of birth but another name "
                f"({first.full_name!r}, offline {offline.full_name!r}); "
                "is this the same person or, say, a twin?",
                candidates=[p.mrn for p in by_phone],
            )
        match = candidates[0]
    if match is None:
        created = await patients.register(
            ctx,
            full_name=offline.full_name,
            phone=offline.phone,
            date_of_birth=offline.date_of_birth,
            national_id=offline.national_id,
            notify_channel=offline.notify_channel.value,
            language=offline.language,
        )
        return Outcome(
            SyncResult.APPLIED,
            {"patient_id": str(created.id), "mrn": created.mrn},
            target=("patient", str(created.id)),
        )
    return await _merge_into(ctx, state, op, match)


async def _merge_into(
    ctx: Context, state: BatchState, op: RegisterPatient, patient: Patient
) -> Outcome:
    """Merge an offline registration into the existing record: fill blanks, keep the rest."""
    offline = op.patient
    filled: list[str] = []
    differing: dict[str, dict[str, Any]] = {}
    for name in ("phone", "date_of_birth", "national_id"):
        value = getattr(offline, name)
        if value is None:
            continue
        current = getattr(patient, name)
        if current is None:
            setattr(patient, name, value)
            filled.append(name)
        elif current != value:
            differing[name] = {"central": current, "offline": value}
    if name_key(patient.full_name) != name_key(offline.full_name):
        differing["full_name"] = {"central": patient.full_name, "offline": offline.full_name}
    if patient.notify_channel.value == "none" and offline.notify_channel.value != "none":
        if offline.notify_channel.value != "sms" or patient.phone:
            patient.notify_channel = offline.notify_channel
            filled.append("notify_channel")
    if filled:
        patient.updated_at = ctx.now()
        await ctx.s.flush()
    details = {
        "patient_id": str(patient.id),
        "mrn": patient.mrn,
        "filled": filled,
        "kept_central": jsonable(differing),
    }
    await log_action(
        ctx,
        action="sync.patient_merged",
        target=("patient", patient.id),
        details={**details, "op_id": str(op.op_id), "device": state.device.name},
    )
    return Outcome(SyncResult.MERGED, details, target=("patient", str(patient.id)))


async def _central_change_times(ctx: Context, patient: Patient) -> dict[str, datetime]:
    """When each field of a patient was last changed centrally (from the audit trail)."""
    rows = (
        await ctx.s.execute(
            select(AuditRecord.at, AuditRecord.action, AuditRecord.details)
            .where(
                AuditRecord.target_type == "patient",
                AuditRecord.target_id == str(patient.id),
                AuditRecord.action.in_(
                    ["patient.registered", "patient.updated", "sync.patient_updated"]
                ),
            )
            .order_by(AuditRecord.seq.desc())
            .limit(500)
        )
    ).all()
    times: dict[str, datetime] = {}
    created_at: datetime | None = None
    for at, action, details in rows:
        if action == "patient.registered":
            created_at = at if created_at is None else min(created_at, at)
            continue
        changed = (details or {}).get("changed") or []
        if action == "sync.patient_updated":
            changed = list(((details or {}).get("applied") or {}).keys())
        for name in changed:
            times.setdefault(name, at)
    if created_at is not None:
        for name in (*IDENTITY_FIELDS, *CONTACT_FIELDS):
            times.setdefault(name, created_at)
    return times


def _comparable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    return value


async def update_patient(ctx: Context, state: BatchState, op: Operation) -> Outcome:
    assert isinstance(op, UpdatePatient)
    from iqms.core.services import patients

    require(ctx.principal, Permission.PATIENTS_UPDATE)
    if op.patient_op_id is not None:
        patient_id = await patient_from_op(ctx, state, op.patient_op_id)
        if patient_id is None:
            raise OpConflict(
                "the patient's offline registration awaits staff review; "
                "this change was kept with it",
                patient_op_id=str(op.patient_op_id),
            )
    else:
        assert op.patient_id is not None
        patient_id = op.patient_id
    patient = await ctx.s.get(Patient, patient_id)
    if patient is None:
        raise OpConflict(f"patient {patient_id} does not exist on the server")
    changes = op.changes.given()
    base = op.base.given() if op.base is not None else {}
    stale = op.base_version is not None and op.base_version != patient.version
    if op.base_version is None and op.patient_op_id is not None:
        # Based on the device's own registration: stale only if that registration was
        # merged into (or linked to) a record the server already had.
        stale = op.patient_op_id in state.existing_patient_ops
    times = await _central_change_times(ctx, patient) if stale else {}
    apply: dict[str, Any] = {}
    kept: dict[str, dict[str, Any]] = {}
    unresolved: dict[str, dict[str, Any]] = {}
    for name, offline_value in changes.items():
        central_value = _comparable(getattr(patient, name))
        if central_value == offline_value:
            continue
        if not stale:
            apply[name] = offline_value
            continue
        if name in base and base[name] == central_value:
            apply[name] = offline_value  # only the terminal changed this field
            continue
        changed_at = times.get(name)
        both = {"central": central_value, "offline": offline_value}
        if name in IDENTITY_FIELDS:
            unresolved[name] = both
        elif changed_at is None or op.occurred_at >= changed_at:
            apply[name] = offline_value
            kept[name] = {**both, "kept": "offline"}
        else:
            kept[name] = {**both, "kept": "central"}
    if apply:
        await patients.update(
            ctx,
            patient=patient.id,
            version=patient.version,
            **{k: ("" if v is None else v) for k, v in apply.items()},
        )
    details: dict[str, Any] = {
        "patient_id": str(patient.id),
        "mrn": patient.mrn,
        "applied": {k: v for k, v in apply.items()},
    }
    if kept:
        details["newer_wins"] = kept
    if unresolved:
        details["unresolved"] = unresolved
    await log_action(
        ctx,
        action="sync.patient_updated",
        target=("patient", patient.id),
        details={
            **details,
            "op_id": str(op.op_id),
            "device": state.device.name,
            "based_on_version": op.base_version,
            "offline_at": op.occurred_at.isoformat(),
        },
    )
    if unresolved:
        fields = ", ".join(name.replace("_", " ") for name in unresolved)
        return Outcome(
            SyncResult.CONFLICT,
            details,
            f"{fields} of patient {patient.mrn} changed both centrally and offline; "
            "choose which to keep",
            ("patient", str(patient.id)),
        )
    return Outcome(SyncResult.MERGED if stale else SyncResult.APPLIED, details)
