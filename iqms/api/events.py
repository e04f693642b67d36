"""Live pages: one core event subscription per server process, fanned out to every open page.

Each open board or status page holds a :class:`Listener` for the departments it
shows. The :class:`EventHub` keeps a single subscription to the core's live
events (``queue.watch``: LISTEN/NOTIFY on PostgreSQL, the events table on
SQLite) and wakes the listeners an event concerns; a page then reads its view
again through the core and sends it if it changed. Bursts of events collapse
into one read. After the subscription drops and comes back every page reloads
(the stream may have missed something), and pages also refresh now and then so
estimates follow the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from iqms.core.errors import AuthenticationFailed, IQMSError, NotFound, PermissionDenied
from iqms.core.queue.events import Resync, Subscription

log = logging.getLogger("iqms.api.events")

KEEPALIVE_SECONDS = 15.0
REFRESH_SECONDS = 60.0
RETRY_MS = 3000
RECONNECT_MAX_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 5.0


@dataclass(eq=False)
class Listener:
    """One open page: the departments it shows, and a flag set when one of them changed."""

    departments: set[uuid.UUID] = field(default_factory=set)
    woken: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, event: Any) -> bool:
        concerns = getattr(event, "concerns", None)
        if concerns is None:
            return False
        return any(concerns(d) for d in self.departments)

    async def wait(self, seconds: float) -> bool:
        """True when woken within ``seconds`` (the flag is cleared)."""
        try:
            async with asyncio.timeout(seconds):
                await self.woken.wait()
        except TimeoutError:
            return False
        self.woken.clear()
        return True


class EventHub:
    """The process's one live-event subscription, shared by every open page.

    Observers (e.g. the ticket-status cache) see every event first; ``live`` says
    whether the subscription is in place right now (events are not being missed).
    """

    def __init__(self, open_subscription: Callable[[], Awaitable[Subscription]]) -> None:
        self._open = open_subscription
        self._listeners: set[Listener] = set()
        self._observers: list[Callable[[Any], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._live = False

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    @property
    def live(self) -> bool:
        """True while the subscription is in place (no event can be missed)."""
        return self._live and self._task is not None and not self._task.done()

    def observe(self, observer: Callable[[Any], None]) -> None:
        """Call ``observer(event)`` for every event (and a ``Resync`` after a gap)."""
        self._observers.append(observer)

    def ensure_started(self) -> None:
        """Start listening in the background, if not already."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="iqms-api-events")

    async def start(self) -> None:
        """Start listening (once); wait a little for the subscription to be in place."""
        self.ensure_started()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT_SECONDS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._ready.clear()
        self._live = False

    @contextlib.asynccontextmanager
    async def listen(self, departments: set[uuid.UUID]) -> AsyncIterator[Listener]:
        """A listener for these departments while the page is open."""
        await self.start()
        listener = Listener(set(departments))
        self._listeners.add(listener)
        try:
            yield listener
        finally:
            self._listeners.discard(listener)

    def _dispatch(self, event: Any) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:  # an observer's bug must not stop the pages
                log.exception("live event observer failed")
        for listener in list(self._listeners):
            if listener.wants(event):
                listener.woken.set()

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                subscription = await self._open()
                async with subscription:
                    self._live = True
                    if self._ready.is_set():  # a reconnect: pages may have missed events
                        self._dispatch(Resync("reconnected"))
                    self._ready.set()
                    delay = 0.5
                    async for event in subscription:
                        self._dispatch(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._live = False
                log.warning("live events interrupted (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            finally:
                self._live = False


class StatusCache:
    """Recent answers of the public ticket-status route, dropped when their queue moves.

    Patients' phones ask for a ticket's status far more often than it changes,
    and it changes only with a queue event of its department. So answers are
    kept (as the JSON sent) until such an event, or for at most ``seconds`` so
    estimates follow the clock, and only while the event subscription is live.
    An answer read while an event arrived is not kept (it may predate it).
    """

    def __init__(
        self,
        seconds: float,
        *,
        max_entries: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._clock = clock
        self._jitter = jitter
        # code -> (expires at, department, answer)
        self._entries: dict[str, tuple[float, uuid.UUID | None, bytes]] = {}
        self.generation = 0

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, code: str) -> bytes | None:
        entry = self._entries.get(code)
        if entry is None:
            return None
        if self._clock() >= entry[0]:
            self._entries.pop(code, None)
            return None
        return entry[2]

    def put(
        self, code: str, department_id: uuid.UUID | None, body: bytes, *, generation: int
    ) -> None:
        """Keep an answer read when ``generation`` was current (else it may be stale)."""
        if generation != self.generation or not self.enabled:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        # Lifetimes spread over the last fifth, so answers kept together do not expire together.
        lifetime = self.seconds * (1 - 0.2 * self._jitter())
        self._entries[code] = (self._clock() + lifetime, department_id, body)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def on_event(self, event: Any) -> None:
        """Drop the answers of the departments an event concerns (all of them on a resync)."""
        self.generation += 1
        concerns = getattr(event, "concerns", None)
        if isinstance(event, Resync) or concerns is None:
            self._entries.clear()
            return
        stale = [
            code
            for code, (_, department, _) in self._entries.items()
            if department is None or concerns(department)
        ]
        for code in stale:
            del self._entries[code]


def sse(data: str, *, event: str = "update") -> str:
    """One server-sent event (``data`` is one line of JSON)."""
    return f"event: {event}\ndata: {data}\n\n"


async def page_stream(
    listener: Listener,
    read: Callable[[], Awaitable[tuple[str, str]]],
    *,
    keepalive: float = KEEPALIVE_SECONDS,
    refresh: float = REFRESH_SECONDS,
) -> AsyncIterator[str]:
    """The event stream of one page: its view now, then again whenever it changes.

    ``read`` returns ``(json_to_send, comparison_key)``; a view is sent only when
    its key changed. A core error ends the stream with a ``problem`` event (the
    page then shows the message, or reloads to log in again).
    """
    yield f"retry: {RETRY_MS}\n\n"
    last_key: str | None = None
    last_read = 0.0
    woken = True
    while True:
        if woken or time.monotonic() - last_read >= refresh:
            try:
                payload, key = await read()
            except (NotFound, PermissionDenied, AuthenticationFailed) as exc:
                yield sse(
                    json.dumps({"detail": exc.message, "kind": type(exc).__name__}), event="problem"
                )
                return
            except IQMSError as exc:  # e.g. the database is away for a moment: keep the page
                log.warning("live page could not refresh: %s", exc)
                payload, key = "", last_key or ""
            last_read = time.monotonic()
            if payload and key != last_key:
                last_key = key
                yield sse(payload)
        woken = await listener.wait(keepalive)
        if not woken:
            yield ": keepalive\n\n"


__all__ = ["EventHub", "Listener", "StatusCache", "page_stream", "sse"]
