"""Offline sync: number blocks for kiosks, applying a terminal's journal, conflicts for review.

``push`` applies one device's batch in device order inside one transaction,
each operation in its own savepoint. Every operation gets a result:

* ``applied`` - done as recorded (tickets keep their original arrival time);
* ``duplicate`` - this operation id was applied before; nothing changes and
  the original outcome is reported again;
* ``merged`` - combined with what the server already had (a patient
  registered offline who already exists; a stale update resolved field by
  field, newer value winning, both values in the audit trail);
* ``conflict`` - kept for staff review with a reason (``iqms admin sync
  conflicts``); whatever could safely be done (e.g. queueing the patient) is
  done and said so.

A batch that is malformed is refused whole before anything is written. If the
connection drops mid-batch the transaction rolls back and the terminal keeps
its journal; pushing again applies everything exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import DataError, IntegrityError

from iqms.core.enums import (
    ConflictStatus,
    DeviceKind,
    Role,
    SyncResult,
)
from iqms.core.errors import (
    Conflict,
    DatabaseUnavailable,
    IQMSError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from iqms.core.models import (
    Department,
    Device,
    QueueEntry,
    SyncConflict,
    SyncOperation,
    TicketBlock,
)
from iqms.core.queue import engine as queue_engine
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission
from iqms.core.service import Context, operation, savepoint
from iqms.core.sync import apply as sync_apply
from iqms.core.sync import patients as sync_patients
from iqms.core.sync.batch import (
    BatchRejected,
    Operation,
    SyncBatch,
    parse_batch,
)
from iqms.core.sync.journal import NumberBlockInfo

#: serialises pushes on PostgreSQL (SQLite write transactions are serial already), so two
#: kiosks registering the same patient at the same moment still end with one patient.
SYNC_LOCK_KEY = 0x51C0_0FF1
MAX_RESERVE = 100
RESOLUTIONS = ("keep", "apply", "link")


@dataclass
class OpResult:
    """The outcome of one operation of a batch."""

    op_id: uuid.UUID
    device_seq: int
    kind: str
    result: SyncResult
    details: dict[str, Any] = field(default_factory=dict)
    conflict_id: uuid.UUID | None = None

    @property
    def reason(self) -> str | None:
        value = self.details.get("reason")
        return str(value) if value else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "op_id": str(self.op_id),
            "device_seq": self.device_seq,
            "kind": self.kind,
            "result": self.result.value,
            "details": self.details,
            "conflict_id": str(self.conflict_id) if self.conflict_id else None,
        }


@dataclass
class PushReport:
    """What ``push`` did with a batch: one result per operation, in device order."""

    device_id: uuid.UUID
    device_name: str
    results: list[OpResult]

    def counts(self) -> dict[str, int]:
        out = {r.value: 0 for r in SyncResult}
        for res in self.results:
            out[res.result.value] += 1
        return out


@dataclass
class ConflictView:
    """A conflict as staff see it."""

    id: uuid.UUID
    created_at: datetime
    device_name: str
    kind: str
    target: str | None
    reason: str
    status: ConflictStatus
    payload: dict[str, Any]
    resolution: str | None
    resolved_at: datetime | None


# ---- devices ------------------------------------------------------------------------------------
async def _lock_sync(ctx: Context) -> None:
    if ctx.db.is_postgres:
        await ctx.s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SYNC_LOCK_KEY})


async def _device_for(
    ctx: Context, device_id: uuid.UUID | None, device_name: str | None, *, touch: bool = True
) -> Device:
    """The calling terminal's device record; a device seen for the first time is enrolled."""
    principal = ctx.principal
    session = ctx.s
    if device_id is None:
        device_id = principal.device_id
    if device_id is None:
        raise ValidationError("name the device (its journal's device id)", field="device_id")
    if principal.device_id is not None and device_id != principal.device_id:
        raise PermissionDenied(
            f"{principal.username} is the account of another device; "
            "a kiosk may only sync its own journal"
        )
    device = await session.get(Device, device_id)
    if device is None:
        base = (device_name or principal.username or "terminal").strip()[:48] or "terminal"
        name = base
        taken = (await session.execute(select(Device.id).where(Device.name == name))).first()
        if taken:
            name = f"{base}-{str(device_id)[:8]}"
        device = Device(
            id=device_id,
            name=name,
            kind=DeviceKind.KIOSK if principal.role == Role.KIOSK else DeviceKind.TERMINAL,
            active=True,
            last_seen_at=ctx.now(),
        )
        session.add(device)
        await session.flush()
        await log_action(
            ctx,
            action="device.enrolled",
            target=("device", device.id),
            details={"name": device.name, "kind": device.kind.value},
        )
    elif not device.active:
        raise PermissionDenied(f"device {device.name} is disabled; ask an administrator")
    if touch:
        device.last_seen_at = ctx.now()
    return device


# ---- number blocks ------------------------------------------------------------------------------
@operation(Permission.NUMBERS_RESERVE)
async def reserve_numbers(
    ctx: Context,
    *,
    department_id: uuid.UUID,
    size: int = 20,
    device_id: uuid.UUID | None = None,
    device_name: str | None = None,
) -> NumberBlockInfo:
    """Reserve a block of today's ticket numbers of a department for a device's offline use."""
    if not 1 <= size <= MAX_RESERVE:
        raise ValidationError(f"block size must be 1-{MAX_RESERVE} numbers", field="size")
    department = await ctx.s.get(Department, department_id)
    if department is None:
        raise NotFound(f"no department with id {department_id}")
    if not department.active:
        raise ValidationError(f"department {department.code} is closed", field="department_id")
    device = await _device_for(ctx, device_id, device_name)
    day = ctx.today()
    first, last = await queue_engine.reserve_block(ctx.s, department.id, day, size)
    ctx.s.add(
        TicketBlock(
            device_id=device.id,
            department_id=department.id,
            service_date=day,
            first_number=first,
            last_number=last,
            reserved_at=ctx.now(),
        )
    )
    await log_action(
        ctx,
        action="numbers.reserved",
        target=("device", device.id),
        details={
            "department": department.code,
            "service_date": day.isoformat(),
            "first": queue_engine.format_ticket_number(department.ticket_prefix, first),
            "last": queue_engine.format_ticket_number(department.ticket_prefix, last),
        },
    )
    return NumberBlockInfo(
        department_id=department.id,
        department_code=department.code,
        department_name=department.name,
        ticket_prefix=department.ticket_prefix,
        service_date=day,
        first_number=first,
        last_number=last,
    )


@operation(Permission.SYNC_PUSH, readonly=True)
async def last_sequence(ctx: Context, *, device_id: uuid.UUID | None = None) -> int:
    """The highest operation sequence number the server has from a device (0: none yet)."""
    device_id = device_id or ctx.principal.device_id
    if device_id is None:
        raise ValidationError("name the device (its journal's device id)", field="device_id")
    if ctx.principal.device_id is not None and device_id != ctx.principal.device_id:
        raise PermissionDenied(
            f"{ctx.principal.username} is the account of another device; "
            "a kiosk may only ask about its own journal"
        )
    found = (
        await ctx.s.execute(
            select(func.max(SyncOperation.device_seq)).where(SyncOperation.device_id == device_id)
        )
    ).scalar_one_or_none()
    return int(found or 0)


@operation(Permission.SYNC_PUSH)
async def push(ctx: Context, *, batch: SyncBatch | Mapping[str, Any] | str | bytes) -> PushReport:
    """Apply a device's offline batch in device order; every operation gets a result."""
    parsed = parse_batch(batch)
    await _lock_sync(ctx)
    session = ctx.s
    op_ids = [op.op_id for op in parsed.operations]
    seen = {
        row.op_id: row
        for row in (
            await session.execute(select(SyncOperation).where(SyncOperation.op_id.in_(op_ids)))
        ).scalars()
    }
    await _check_sequences(ctx, parsed, seen)
    fresh = any(op.op_id not in seen for op in parsed.operations)
    device = await _device_for(ctx, parsed.device_id, parsed.device_name, touch=fresh)
    for row in seen.values():
        if row.device_id != device.id:
            raise BatchRejected(
                [(f"operations[{op_ids.index(row.op_id)}].op_id", "was sent by another device")]
            )
    state = sync_apply.BatchState(device=device)
    results: list[OpResult] = []
    for op in parsed.operations:
        previous = seen.get(op.op_id)
        if previous is not None:
            results.append(
                OpResult(
                    op.op_id,
                    op.device_seq,
                    op.kind,
                    SyncResult.DUPLICATE,
                    {"original_result": previous.result.value, **previous.result_details},
                )
            )
            continue
        results.append(await _apply_one(ctx, state, op))
    counts = {r.value: sum(1 for x in results if x.result == r) for r in SyncResult}
    if fresh:  # a pure replay changes nothing, not even the audit trail
        await log_action(
            ctx,
            action="sync.pushed",
            target=("device", device.id),
            details={"device": device.name, "operations": len(results), **counts},
        )
    return PushReport(device_id=device.id, device_name=device.name, results=results)


async def _check_sequences(
    ctx: Context, batch: SyncBatch, seen: Mapping[uuid.UUID, SyncOperation]
) -> None:
    """A device sequence number already used by a different operation means a broken journal."""
    seqs = [op.device_seq for op in batch.operations if op.op_id not in seen]
    if not seqs:
        return
    rows = (
        await ctx.s.execute(
            select(SyncOperation.device_seq, SyncOperation.op_id).where(
                SyncOperation.device_id == batch.device_id,
                SyncOperation.device_seq.in_(seqs),
            )
        )
    ).all()
    if rows:
        used = {r.device_seq: r.op_id for r in rows}
        problems = [
            (
                f"operations[{i}].device_seq",
                f"sequence {op.device_seq} of this device was already used by operation "
                f"{used[op.device_seq]}",
            )
            for i, op in enumerate(batch.operations)
            if op.device_seq in used and op.op_id not in seen
        ]
        raise BatchRejected(problems)


async def _apply_one(ctx: Context, state: sync_apply.BatchState, op: Operation) -> OpResult:
    session = ctx.s
    handler = _HANDLERS[op.kind]
    try:
        async with savepoint(ctx):  # a refused operation leaves nothing behind
            done = await handler(ctx, state, op)
    except sync_apply.OpConflict as outcome:
        done = sync_apply.Outcome(SyncResult.CONFLICT, dict(outcome.details), outcome.reason)
    except DatabaseUnavailable:
        raise
    except IQMSError as exc:  # refused by the rules (permission, state, validation...)
        done = sync_apply.Outcome(SyncResult.CONFLICT, {}, str(exc))
    except (IntegrityError, DataError) as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        done = sync_apply.Outcome(SyncResult.CONFLICT, {}, f"the database refused it: {first}")
    if op.kind == "patient.register":
        state.patient_by_op[op.op_id] = (
            uuid.UUID(done.details["patient_id"]) if done.details.get("patient_id") else None
        )
        if done.result != SyncResult.APPLIED:
            state.existing_patient_ops.add(op.op_id)
    conflict_id: uuid.UUID | None = None
    details = dict(done.details)
    if done.conflict_reason is not None:
        details["reason"] = done.conflict_reason
        conflict = SyncConflict(
            id=uuid.uuid4(),
            op_id=op.op_id,
            device_id=state.device.id,
            kind=op.kind,
            target_type=done.target[0] if done.target else None,
            target_id=done.target[1] if done.target else None,
            reason=done.conflict_reason[:500],
            payload={"operation": sync_apply.op_json(op), "details": details},
            status=ConflictStatus.OPEN,
        )
        session.add(conflict)
        await session.flush()
        conflict_id = conflict.id
        details["conflict_id"] = str(conflict.id)
        await log_action(
            ctx,
            action="sync.conflict",
            target=("sync_conflict", conflict.id),
            details={
                "device": state.device.name,
                "op_id": str(op.op_id),
                "kind": op.kind,
                "reason": done.conflict_reason,
            },
        )
    session.add(
        SyncOperation(
            op_id=op.op_id,
            device_id=state.device.id,
            device_seq=op.device_seq,
            kind=op.kind,
            result=done.result,
            result_details=sync_apply.jsonable(details),
            occurred_at=op.occurred_at,
            applied_at=ctx.now(),
        )
    )
    await session.flush()
    return OpResult(
        op.op_id, op.device_seq, op.kind, done.result, sync_apply.jsonable(details), conflict_id
    )


_HANDLERS = {
    "patient.register": sync_patients.register_patient,
    "patient.update": sync_patients.update_patient,
    "ticket.issue": sync_apply.issue_ticket,
    "appointment.check_in": sync_apply.check_in,
    "ticket.cancel": sync_apply.cancel_ticket,
    "ticket.triage": sync_apply.set_triage,
}


# ---- conflicts ----------------------------------------------------------------------------------
@operation(Permission.SYNC_CONFLICTS, readonly=True)
async def list_conflicts(
    ctx: Context, *, status: ConflictStatus | None = ConflictStatus.OPEN, limit: int = 200
) -> list[ConflictView]:
    """Offline operations kept for staff review, oldest first."""
    stmt = (
        select(SyncConflict, Device.name)
        .join(Device, Device.id == SyncConflict.device_id)
        .order_by(SyncConflict.created_at, SyncConflict.id)
        .limit(max(1, min(limit, 5000)))
    )
    if status is not None:
        stmt = stmt.where(SyncConflict.status == status)
    rows = (await ctx.s.execute(stmt)).all()
    await log_action(
        ctx,
        action="sync.conflicts_viewed",
        details={"status": status.value if status else "all", "count": len(rows)},
    )
    return [_view(conflict, name) for conflict, name in rows]


def _view(conflict: SyncConflict, device_name: str) -> ConflictView:
    target = (
        f"{conflict.target_type} {conflict.target_id}"
        if conflict.target_type and conflict.target_id
        else None
    )
    return ConflictView(
        id=conflict.id,
        created_at=conflict.created_at,
        device_name=device_name,
        kind=conflict.kind,
        target=target,
        reason=conflict.reason,
        status=conflict.status,
        payload=conflict.payload,
        resolution=conflict.resolution,
        resolved_at=conflict.resolved_at,
    )


@operation(Permission.SYNC_CONFLICTS)
async def resolve_conflict(
    ctx: Context,
    *,
    conflict_id: uuid.UUID | str,
    action: str = "keep",
    note: str | None = None,
    patient: uuid.UUID | str | None = None,
) -> ConflictView:
    """Close a conflict: ``keep`` the central data, ``apply`` the offline values, or ``link``."""
    from iqms.core.services import patients

    if action not in RESOLUTIONS:
        raise ValidationError(
            f"resolution must be one of {', '.join(RESOLUTIONS)}, not {action!r}", field="action"
        )
    note = (note or "").strip() or None
    if note is not None and (len(note) > 300 or any(ord(c) < 32 for c in note)):
        raise ValidationError("the note must be one line of at most 300 characters", field="note")
    conflict = await _find_conflict(ctx, conflict_id)
    if conflict.status == ConflictStatus.RESOLVED:
        raise Conflict(
            f"conflict {conflict_id} was already resolved ({conflict.resolution})",
            field="conflict_id",
        )
    operation_data = (conflict.payload or {}).get("operation") or {}
    details = (conflict.payload or {}).get("details") or {}
    outcome: str
    if action == "keep":
        outcome = "kept the central data"
    elif action == "link":
        if conflict.kind != "patient.register":
            raise ValidationError("link is only for a patient registered offline", field="action")
        if patient is None:
            raise ValidationError("name the patient to link to (id or MRN)", field="patient")
        target = await queue_engine.find_patient(ctx.s, patient)
        linked = await _link_registration(ctx, conflict, target.id)
        outcome = f"linked to patient {target.mrn} ({linked} tickets)"
    elif conflict.kind == "patient.register":
        offline = operation_data.get("patient") or {}
        created = await patients.register(
            ctx,
            full_name=offline["full_name"],
            phone=offline.get("phone"),
            date_of_birth=offline.get("date_of_birth"),
            national_id=offline.get("national_id"),
            notify_channel=offline.get("notify_channel"),
            language=offline.get("language", "en"),
            allow_duplicate=True,
        )
        linked = await _link_registration(ctx, conflict, created.id)
        outcome = f"registered as new patient {created.mrn} ({linked} tickets linked)"
    elif conflict.kind == "patient.update" and details.get("unresolved"):
        found = await queue_engine.find_patient(ctx.s, details["patient_id"])
        values = {k: v["offline"] for k, v in details["unresolved"].items()}
        await patients.update(
            ctx,
            patient=found.id,
            version=found.version,
            **{k: ("" if v is None else v) for k, v in values.items()},
        )
        outcome = f"applied the offline {', '.join(sorted(values))} to patient {found.mrn}"
    else:
        raise ValidationError(
            f"there is nothing to apply for a {conflict.kind} conflict; resolve it with keep",
            field="action",
        )
    conflict.status = ConflictStatus.RESOLVED
    conflict.resolution = (outcome + (f": {note}" if note else ""))[:500]
    conflict.resolved_by_id = ctx.principal.user_id
    conflict.resolved_at = ctx.now()
    await ctx.s.flush()
    await log_action(
        ctx,
        action="sync.conflict_resolved",
        target=("sync_conflict", conflict.id),
        details={"action": action, "kind": conflict.kind, "resolution": conflict.resolution},
    )
    device = await ctx.s.get(Device, conflict.device_id)
    return _view(conflict, device.name if device else "?")


async def _find_conflict(ctx: Context, ref: uuid.UUID | str) -> SyncConflict:
    """A conflict by id or by the first characters of its id (as listed, at least 6)."""
    if isinstance(ref, uuid.UUID):
        found = await ctx.s.get(SyncConflict, ref)
        if found is None:
            raise NotFound(f"no sync conflict {ref}", field="conflict_id")
        return found
    text_ = ref.strip().lower()
    try:
        return await _find_conflict(ctx, uuid.UUID(text_))
    except ValueError:
        pass
    if len(text_) < 6 or any(ch not in "0123456789abcdef-" for ch in text_):
        raise ValidationError(
            f"{ref!r} is not a conflict id (give at least its first 6 characters)",
            field="conflict_id",
        )
    ids = (await ctx.s.execute(select(SyncConflict.id))).scalars()
    matches = [i for i in ids if str(i).startswith(text_)]
    if not matches:
        raise NotFound(f"no sync conflict {ref}", field="conflict_id")
    if len(matches) > 1:
        raise ValidationError(
            f"{ref!r} matches {len(matches)} conflicts; give more of the id", field="conflict_id"
        )
    found = await ctx.s.get(SyncConflict, matches[0])
    assert found is not None
    return found


async def _link_registration(ctx: Context, conflict: SyncConflict, patient_id: uuid.UUID) -> int:
    """Point an offline registration (and the tickets issued for it) at a server patient."""
    registration = (
        await ctx.s.execute(select(SyncOperation).where(SyncOperation.op_id == conflict.op_id))
    ).scalar_one_or_none()
    if registration is not None:
        registration.result_details = {
            **(registration.result_details or {}),
            "patient_id": str(patient_id),
        }
    tickets = (
        await ctx.s.execute(
            select(SyncOperation.result_details).where(
                SyncOperation.device_id == conflict.device_id,
                SyncOperation.kind == "ticket.issue",
            )
        )
    ).scalars()
    linked = 0
    for result in tickets:
        if (result or {}).get("patient_op_id") != str(conflict.op_id):
            continue
        entry = await ctx.s.get(QueueEntry, uuid.UUID(result["ticket_id"]))
        if entry is not None and entry.patient_id is None:
            entry.patient_id = patient_id
            linked += 1
            await log_action(
                ctx,
                action="ticket.patient_linked",
                target=("queue_entry", entry.id),
                details={"patient_id": str(patient_id), "ticket": entry.ticket_number},
            )
    await ctx.s.flush()
    return linked
