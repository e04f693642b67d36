"""A login rate limit per client address: a sliding window kept in the server's memory.

This sits in front of the login entry points (staff passwords, patient codes,
self-registration) and slows a guesser down before the database sees them.
The durable limits live in the core: account lockout after failed passwords,
codes per phone number, failures per record. Each server process keeps its own
window (with several workers a client gets up to that many times the limit).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from iqms.core.errors import RateLimited

WINDOW_SECONDS = 60.0
MAX_TRACKED_CLIENTS = 50_000


class SlidingWindowLimiter:
    """At most ``limit`` hits per ``window`` seconds for each key."""

    def __init__(
        self,
        limit: int,
        *,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> None:
        """Count one attempt for ``key``; raise :class:`RateLimited` if it is one too many."""
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= MAX_TRACKED_CLIENTS:
                self._forget_idle(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            retry = math.ceil(hits[0] + self.window - now)
            raise RateLimited(
                f"too many login attempts from your address; wait {retry} seconds and try again",
                retry_after=retry,
            )
        hits.append(now)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]


__all__ = ["SlidingWindowLimiter"]
