"""The audit trail: append-only, hash-chained records written in the caller's transaction.

Each record stores the previous record's hash and its own SHA-256 over a
canonical JSON encoding, so editing or deleting any record breaks the chain
at that point. The newest records have no successor to break, so every append
also moves the chain head (``audit_chain_head``: the newest sequence number and
hash) in the same statement, by a trigger; deleting records from the end leaves the head
pointing past them. Appends are serialised (an advisory lock on PostgreSQL, taken
together with the read of the last record by ``iqms_audit_tail()``; the write
lock that every SQLite write transaction takes up front), so concurrent
writers never fork the chain.

What verify proves: every record from the first to the head is present,
unchanged and in order, as far as the database itself can show. It cannot
prove anything against someone able to rewrite the log *and* the head
consistently (on SQLite anyone who can write the file; on PostgreSQL an owner
or superuser who disables the triggers): for that, keep the head that verify
prints somewhere else and check it later with ``--anchor``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from iqms.core.models import AuditChainHead, AuditRecord

if TYPE_CHECKING:
    from iqms.core.service import Context

GENESIS_HASH = "0" * 64
AUDIT_LOCK_KEY = 0x1A4D17  # pg_advisory_xact_lock key serialising audit appends

# Keys holding secrets never reach the audit trail: any key containing one of these ...
_SECRET_SUBSTRINGS = ("password", "passwd", "secret", "token", "credential", "api_key", "apikey")
# ... or having one of these as a word (so "auth_header" goes, "author" stays).
_SECRET_WORDS = frozenset({"hash", "auth", "pin", "pwd", "otp"})


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if any(marker in lowered for marker in _SECRET_SUBSTRINGS):
        return True
    return any(word in _SECRET_WORDS for word in re.split(r"[^a-z0-9]+", lowered))


def _scrub_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return scrub(value)
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v) for v in value]
    return value


def scrub(details: Mapping[str, Any]) -> dict[str, Any]:
    """Drop anything that looks like a secret; make the rest JSON-plain."""
    clean: dict[str, Any] = {}
    for key, value in details.items():
        clean[str(key)] = "[redacted]" if _is_secret_key(str(key)) else _scrub_value(value)
    return json.loads(json.dumps(clean, default=str))


def canonical(record: AuditRecord | Mapping[str, Any]) -> bytes:
    """The bytes a record's hash covers."""

    def get(key: str) -> Any:
        return record[key] if isinstance(record, Mapping) else getattr(record, key)

    at: datetime = get("at")
    body = {
        "seq": int(get("seq")),
        "at": at.isoformat(timespec="microseconds"),
        "actor_id": str(get("actor_id")) if get("actor_id") else None,
        "actor_name": get("actor_name"),
        "role": get("role"),
        "action": get("action"),
        "target_type": get("target_type"),
        "target_id": get("target_id"),
        "details": get("details"),
        "prev_hash": get("prev_hash"),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(record: AuditRecord | Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


_TAIL_PG = text("SELECT seq, hash FROM iqms_audit_tail(:k)")
_AUDIT_TABLE = cast(Table, AuditRecord.__table__)
_TAIL = select(_AUDIT_TABLE.c.seq, _AUDIT_TABLE.c.hash).order_by(_AUDIT_TABLE.c.seq.desc()).limit(1)
_APPEND = insert(_AUDIT_TABLE)


async def _chain_tail(session: AsyncSession) -> tuple[int, str] | None:
    """The last record's (seq, hash), with appends locked until the commit (one round trip)."""
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        row = (await conn.execute(_TAIL_PG, {"k": AUDIT_LOCK_KEY})).first()
    else:  # the SQLite write transaction holds the database write lock already
        row = (await conn.execute(_TAIL)).first()
    if row is None or row[0] is None:
        return None
    return int(row[0]), str(row[1])


async def log_action(
    ctx: Context,
    *,
    action: str,
    target: tuple[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit record for the current operation, in its transaction."""
    session = ctx.s
    await session.flush()  # pending changes first, as they happened
    last = await _chain_tail(session)
    principal = ctx.principal
    record: dict[str, Any] = {
        "id": uuid.uuid4(),
        "seq": (last[0] + 1) if last else 1,
        "at": ctx.now(),
        "actor_id": principal.user_id,
        "actor_name": principal.username,
        "role": principal.role,
        "action": action,
        "target_type": target[0] if target else None,
        "target_id": str(target[1]) if target and target[1] is not None else None,
        "details": scrub(details or {}),
        "prev_hash": last[1] if last else GENESIS_HASH,
    }
    record["hash"] = compute_hash(record)
    conn = await session.connection()
    await conn.execute(_APPEND, record)
    # The insert moves the chain head too (trigger audit_log_moves_chain_head, migration 0101).


@dataclass(frozen=True)
class AuditEntry:
    """One audit record as the audit views show it."""

    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, Any]
    hash: str

    @classmethod
    def of(cls, record: AuditRecord) -> AuditEntry:
        return cls(
            seq=record.seq,
            at=record.at,
            actor=record.actor_name,
            role=record.role,
            action=record.action,
            target_type=record.target_type,
            target_id=record.target_id,
            details=dict(record.details or {}),
            hash=record.hash,
        )

    @property
    def target(self) -> str:
        if self.target_type is None:
            return ""
        return f"{self.target_type}:{self.target_id}" if self.target_id else self.target_type

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "details": self.details,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    record_id: str | None
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    first_break: ChainBreak | None
    head_seq: int | None = None  # the newest record the chain head names
    head_hash: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_break is None


async def iter_records(session: AsyncSession, batch: int = 2000) -> AsyncIterator[AuditRecord]:
    last_seq = 0
    while True:
        rows = (
            (
                await session.execute(
                    select(AuditRecord)
                    .where(AuditRecord.seq > last_seq)
                    .order_by(AuditRecord.seq)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield row
        last_seq = rows[-1].seq
        session.expunge_all()


async def verify_chain(
    session: AsyncSession, *, anchor: tuple[int, str] | None = None
) -> VerifyResult:
    """Walk the chain in order up to its head; report the first record that does not hold.

    ``anchor`` (a sequence number and hash noted earlier, outside the database) must
    still be in the chain: then nothing up to it was rewritten since it was noted.
    """
    head = (await session.execute(select(AuditChainHead.seq, AuditChainHead.hash))).first()
    checked, last_hash, brk = await _walk(session, anchor)
    if brk is None and head is None:
        brk = ChainBreak(checked + 1, None, "the chain head (audit_chain_head) is missing")
    elif brk is None and head is not None and head.seq > checked:
        gone = (
            f"record {head.seq}" if head.seq == checked + 1 else f"records {checked + 1}-{head.seq}"
        )
        brk = ChainBreak(checked + 1, None, f"{gone} missing: the newest records were deleted")
    elif brk is None and head is not None and (head.seq, head.hash) != (checked, last_hash):
        brk = ChainBreak(
            head.seq, None, f"the chain head (record {head.seq}) does not match the newest record"
        )
    if head is None:
        return VerifyResult(checked, brk)
    return VerifyResult(checked, brk, head.seq, head.hash)


async def _walk(
    session: AsyncSession, anchor: tuple[int, str] | None
) -> tuple[int, str, ChainBreak | None]:
    """Records checked, the last one's hash, and the first break (None if they all hold)."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    anchored = anchor is None or anchor[0] == 0
    async for rec in iter_records(session):
        if rec.seq != expected_seq:
            reason = f"record {expected_seq} is missing (next is {rec.seq})"
            return checked, expected_prev, ChainBreak(expected_seq, None, reason)
        if rec.prev_hash != expected_prev:
            reason = "previous-hash link does not match"
            return checked, expected_prev, ChainBreak(rec.seq, str(rec.id), reason)
        if compute_hash(rec) != rec.hash:
            reason = "contents do not match the stored hash"
            return checked, expected_prev, ChainBreak(rec.seq, str(rec.id), reason)
        if anchor is not None and rec.seq == anchor[0]:
            if rec.hash != anchor[1]:
                reason = "does not match the anchor noted earlier (rewritten since)"
                return checked, expected_prev, ChainBreak(rec.seq, str(rec.id), reason)
            anchored = True
        expected_prev = rec.hash
        expected_seq += 1
        checked += 1
    if not anchored and anchor is not None:
        reason = f"record {anchor[0]} of the anchor noted earlier is missing"
        return checked, expected_prev, ChainBreak(anchor[0], None, reason)
    return checked, expected_prev, None
