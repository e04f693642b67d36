"""Reading and checking the audit trail (administrators)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from iqms.core.errors import ValidationError
from iqms.core.models import AuditRecord
from iqms.core.security.audit import AuditEntry, VerifyResult, verify_chain
from iqms.core.security.rbac import Permission
from iqms.core.service import Context, operation

MAX_LIMIT = 100_000


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationError(f"{name} needs a time zone", field=name)
    return value


@operation(Permission.AUDIT_VIEW, readonly=True)
async def show(
    ctx: Context,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """The newest matching audit records (oldest first); ``action`` may end in ``*``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    since, until = _aware(since, "since"), _aware(until, "until")
    if since is not None and until is not None and since >= until:
        raise ValidationError("the start of the time range must be before its end", field="since")
    stmt = select(AuditRecord)
    if actor:
        stmt = stmt.where(AuditRecord.actor_name == actor.strip())
    if action:
        pattern = action.strip()
        if pattern.endswith("*"):
            prefix = pattern[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(AuditRecord.action.like(prefix + "%", escape="\\"))
        else:
            stmt = stmt.where(AuditRecord.action == pattern)
    if target_type:
        stmt = stmt.where(AuditRecord.target_type == target_type.strip())
    if target_id:
        stmt = stmt.where(AuditRecord.target_id == target_id.strip())
    if since is not None:
        stmt = stmt.where(AuditRecord.at >= since)
    if until is not None:
        stmt = stmt.where(AuditRecord.at < until)
    rows = (await ctx.s.execute(stmt.order_by(AuditRecord.seq.desc()).limit(limit))).scalars()
    return [AuditEntry.of(r) for r in reversed(rows.all())]


@operation(Permission.AUDIT_VIEW, readonly=True)
async def verify(ctx: Context, *, anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the whole chain to its head; report how many records hold and the first that does
    not. ``anchor`` (sequence number, hash) noted earlier must still be part of the chain."""
    if anchor is not None and (anchor[0] < 0 or len(anchor[1]) != 64):
        raise ValidationError("the anchor must be SEQ:HASH as verify printed it", field="anchor")
    return await verify_chain(ctx.s, anchor=anchor)
