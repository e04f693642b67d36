"""Connectivity: notice a lost central database, work offline, and sync when it returns.

A kiosk or console wraps each central operation in :meth:`Connectivity.run`
with an offline fallback that records the operation in the local journal::

    ticket = await conn.run(
        lambda: queue.issue(ctx, department_id=dept, ...),
        offline=lambda: journal.issue_ticket(dept),
    )

When a call fails because the database cannot be reached, the component
switches to offline mode (the fallback runs, now and for the next calls
without waiting on the network) and starts a background task that probes the
database with exponential backoff. When the database answers again it pushes
the journal (oldest first, in batches; an entry is cleared only once the
server confirmed it), tops up the reserved ticket numbers, and switches back
online. An entry the journal cannot read, or the server refuses as malformed,
is set aside in the journal's quarantine with the reason, and the others go on. Front ends show :meth:`status` and may register a listener that is
called on every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from iqms.core.db import is_connection_error
from iqms.core.errors import DatabaseUnavailable
from iqms.core.service import Context
from iqms.core.sync.batch import BatchRejected
from iqms.core.sync.journal import Journal

log = logging.getLogger(__name__)

_OPERATION_INDEX = re.compile(r"operations\[(\d+)\]")

T = TypeVar("T")


class ConnectionState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    SYNCING = "syncing"


@dataclass(frozen=True)
class SyncSummary:
    """What one push of the journal achieved."""

    at: datetime
    pushed: int
    counts: dict[str, int]
    conflicts: list[str] = field(default_factory=list)
    quarantined: int = 0  # damaged entries set aside during this push


@dataclass(frozen=True)
class ConnectivityStatus:
    """A snapshot for the kiosk and console status bars."""

    state: ConnectionState
    since: datetime
    pending: int
    last_error: str | None = None
    attempts: int = 0
    next_retry_in: float | None = None
    last_sync: SyncSummary | None = None

    @property
    def online(self) -> bool:
        return self.state == ConnectionState.ONLINE

    def describe(self) -> str:
        """One line for a status bar."""
        if self.state == ConnectionState.ONLINE:
            return "online" + (f", {self.pending} to sync" if self.pending else "")
        if self.state == ConnectionState.SYNCING:
            return f"syncing {self.pending} offline operations"
        retry = f", retrying in {self.next_retry_in:.0f} s" if self.next_retry_in else ""
        return f"offline since {self.since:%H:%M}: {self.pending} operations saved locally{retry}"


class Backoff:
    """Exponential backoff with a cap and some jitter (so terminals do not retry in step)."""

    def __init__(
        self,
        *,
        base: float = 1.0,
        factor: float = 2.0,
        maximum: float = 60.0,
        jitter: float = 0.2,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if base <= 0 or factor < 1 or maximum < base or not 0 <= jitter < 1:
            raise ValueError(
                "backoff needs base > 0, factor >= 1, maximum >= base, 0 <= jitter < 1"
            )
        self.base, self.factor, self.maximum, self.jitter = base, factor, maximum, jitter
        self.rng = rng
        self.attempts = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (grows, capped at ``maximum``)."""
        delay = min(self.maximum, self.base * self.factor**self.attempts)
        self.attempts += 1
        return delay * (1 - self.jitter * self.rng())

    def reset(self) -> None:
        self.attempts = 0


def _is_lost(exc: BaseException) -> bool:
    return isinstance(exc, DatabaseUnavailable) or is_connection_error(exc)


class Connectivity:
    """Online/offline state of one terminal, its journal and its automatic sync."""

    def __init__(
        self,
        ctx: Context,
        journal: Journal,
        *,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        batch_size: int = 200,
        departments: Sequence[uuid.UUID] = (),
        block_size: int = 20,
        low_water: int = 5,
    ) -> None:
        self.ctx = ctx
        self.journal = journal
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self.batch_size = batch_size
        self.departments = list(departments)
        self.block_size = block_size
        self.low_water = low_water
        self._status = ConnectivityStatus(
            state=ConnectionState.ONLINE, since=ctx.now(), pending=journal.pending_count()
        )
        self._listeners: list[Callable[[ConnectivityStatus], Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._push_lock = asyncio.Lock()

    # ---- state ------------------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        return self._status.state

    def status(self) -> ConnectivityStatus:
        return replace(self._status, pending=self.journal.pending_count())

    def add_listener(self, listener: Callable[[ConnectivityStatus], Any]) -> Callable[[], None]:
        """Call ``listener(status)`` on every change; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _set(self, **changes: Any) -> None:
        if "state" in changes and changes["state"] != self._status.state:
            changes.setdefault("since", self.ctx.now())
        self._status = replace(self._status, **changes)
        snapshot = self.status()
        for listener in list(self._listeners):
            try:
                listener(snapshot)
            except Exception:  # a broken status bar must not stop the terminal
                log.exception("connectivity listener failed")
        self._changed.set()

    async def wait_for(self, state: ConnectionState) -> None:
        """Wait until the component reaches ``state`` (wrap in ``asyncio.timeout``)."""
        while self._status.state != state:
            self._changed.clear()
            await self._changed.wait()

    # ---- running operations -------------------------------------------------------------
    async def run(
        self,
        online: Callable[[], Awaitable[T]],
        *,
        offline: Callable[[], T] | None = None,
    ) -> T:
        """Run ``online`` against the central database; fall back to ``offline`` when it is lost."""
        if self._status.state != ConnectionState.ONLINE:
            return self._offline(offline)
        try:
            return await online()
        except Exception as exc:
            if not _is_lost(exc):
                raise
            self.go_offline(exc)
            return self._offline(offline)

    def _offline(self, offline: Callable[[], T] | None) -> T:
        if offline is None:
            raise DatabaseUnavailable(
                "working offline: this needs the central database; try again when it is back"
            )
        result = offline()
        self._set()  # pending count changed
        return result

    def go_offline(self, exc: BaseException | str) -> None:
        """Switch to offline mode and start reconnecting in the background."""
        reason = exc if isinstance(exc, str) else _first_line(exc)
        if self._status.state == ConnectionState.OFFLINE:
            self._set(last_error=reason)
        else:
            log.warning("central database lost: %s", reason)
            self._set(state=ConnectionState.OFFLINE, last_error=reason)
        self._ensure_reconnecting()

    def _ensure_reconnecting(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop: reconnect() must be called by the owner
        self._task = loop.create_task(self._reconnect_loop(), name="iqms-reconnect")

    async def _reconnect_loop(self) -> None:
        while self._status.state != ConnectionState.ONLINE:
            delay = self.backoff.next_delay()
            self._set(attempts=self.backoff.attempts, next_retry_in=delay)
            await self._sleep(delay)
            try:
                if await self.reconnect():
                    return
            except Exception as exc:  # e.g. the device was disabled: keep trying, say why
                log.error("offline sync refused: %s", _first_line(exc))

    async def reconnect(self) -> bool:
        """Probe the database; if it answers, push the journal and go online. True on success."""
        try:
            await self.ctx.db.check()
        except Exception as exc:
            if not _is_lost(exc):
                raise
            self._set(last_error=_first_line(exc))
            return False
        self._set(state=ConnectionState.SYNCING)
        try:
            await self.check_sequence()
            await self.push_pending()
            await self.top_up_numbers()
        except Exception as exc:
            if not _is_lost(exc):
                self._set(state=ConnectionState.OFFLINE, last_error=_first_line(exc))
                raise
            self._set(state=ConnectionState.OFFLINE, last_error=_first_line(exc))
            return False
        self.backoff.reset()
        self._set(state=ConnectionState.ONLINE, last_error=None, attempts=0, next_retry_in=None)
        log.warning("central database back; offline operations synced")
        return True

    # ---- syncing -------------------------------------------------------------------------
    async def check_sequence(self) -> None:
        """Before the first push of a journal with a known device id: continue its numbering."""
        from iqms.core.services import sync

        if self.journal.sequence_checked:
            return
        last = await sync.last_sequence(self.ctx, device_id=self.journal.device_id)
        self.journal.continue_after(last)

    async def push_pending(self) -> SyncSummary:
        """Push the whole journal, batch by batch; confirmed entries are cleared as they go."""
        from iqms.core.services import sync

        async with self._push_lock:
            counts: dict[str, int] = {}
            conflicts: list[str] = []
            pushed = 0
            set_aside = len(self.journal.quarantined())
            while True:
                batch = self.journal.next_batch(limit=self.batch_size)
                if batch is None:
                    break
                op_ids = [uuid.UUID(op["op_id"]) for op in batch["operations"]]
                try:
                    report = await sync.push(self.ctx, batch=batch)
                except BatchRejected as exc:
                    refused = _refused_operations(exc, batch["operations"])
                    if refused and self.journal.quarantine(refused):
                        continue  # the malformed ones are set aside; push the rest
                    self.journal.note_push_failed(op_ids, _first_line(exc))
                    raise
                except Exception as exc:
                    self.journal.note_push_failed(op_ids, _first_line(exc))
                    raise
                self.journal.confirm([r.as_dict() for r in report.results])
                pushed += len(report.results)
                for res in report.results:
                    counts[res.result.value] = counts.get(res.result.value, 0) + 1
                    if res.reason:
                        conflicts.append(res.reason)
                if len(report.results) < len(op_ids):  # pragma: no cover - server contract
                    break
            summary = SyncSummary(
                at=self.ctx.now(),
                pushed=pushed,
                counts=counts,
                conflicts=conflicts,
                quarantined=len(self.journal.quarantined()) - set_aside,
            )
            if pushed:
                self._set(last_sync=summary)
            return summary

    async def top_up_numbers(self) -> int:
        """Reserve more offline ticket numbers where fewer than ``low_water`` are left."""
        from iqms.core.services import sync

        left = {n.department_id: n.left for n in self.journal.numbers_left()}
        reserved = 0
        for department_id in self.departments:
            if left.get(department_id, 0) >= self.low_water:
                continue
            block = await sync.reserve_numbers(
                self.ctx,
                department_id=department_id,
                size=self.block_size,
                device_id=self.journal.device_id,
                device_name=self.journal.device_name,
            )
            self.journal.add_number_block(block)
            reserved += block.last_number - block.first_number + 1
        return reserved

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> ConnectivityStatus:
        """Check the database now: sync and top up if it answers, else start offline."""
        try:
            await self.ctx.db.check()
        except Exception as exc:
            if not _is_lost(exc):
                raise
            self.go_offline(exc)
            return self.status()
        if not await self.reconnect():
            self._ensure_reconnecting()
        return self.status()

    async def stop(self) -> None:
        """Stop reconnecting (the journal keeps whatever is pending)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _refused_operations(
    exc: BatchRejected, operations: Sequence[Mapping[str, Any]]
) -> dict[uuid.UUID, str]:
    """The operations a refused batch names as malformed (``operations[3].patient.phone``),
    with the server's reason; none if the batch as a whole was refused."""
    refused: dict[uuid.UUID, str] = {}
    for where, problem in exc.problems:
        match = _OPERATION_INDEX.match(where)
        if match is None or int(match[1]) >= len(operations):
            continue
        try:
            op_id = uuid.UUID(str(operations[int(match[1])]["op_id"]))
        except (KeyError, ValueError):
            continue
        field_name = where[match.end() :].lstrip(".")
        what = f"{field_name}: {problem}" if field_name else problem
        refused.setdefault(op_id, f"refused by the server: {what}")
    return refused


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["Backoff", "ConnectionState", "Connectivity", "ConnectivityStatus", "SyncSummary"]
