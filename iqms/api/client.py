"""A terminal talking to a remote ``iqms serve``: its offline journal pushed over HTTPS.

The batches are the ones ``iqms sync push`` hands the core directly, posted to
``/api/sync``; the server applies them with the same idempotency and conflict
rules. An entry leaves the journal only once the server confirmed it. The
server's problem details come back as the core's own errors, so the command
line reports them the same way (one line, the usual exit code).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from iqms import __version__
from iqms.core import errors
from iqms.core.sync.connectivity import SyncSummary
from iqms.core.sync.journal import Journal

DEFAULT_TIMEOUT = 30.0

# HTTP status -> the core error a problem answer stands for.
STATUS_ERRORS: dict[int, type[errors.IQMSError]] = {
    400: errors.ValidationError,
    401: errors.AuthenticationFailed,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.ValidationError,
    422: errors.ValidationError,
    503: errors.DatabaseUnavailable,
}


def server_url(value: str) -> str:
    """The server's base address, checked (``https://queue.clinic.org``, no trailing slash)."""
    text = value.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise errors.ValidationError(
            f"{value!r} is not a server address; give one like https://queue.clinic.org",
            field="server",
        )
    return text


class RemoteServer:
    """One IQMS server, reached with a login token (``Authorization: Bearer``)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = server_url(base_url)
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"iqms/{__version__}",
            },
        )

    async def __aenter__(self) -> RemoteServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    async def post(self, path: str, body: Any) -> Any:
        """POST JSON; the answer's JSON, or the core error its problem details stand for."""
        try:
            response = await self._client.post(path, json=body)
        except httpx.TransportError as exc:
            reason = str(exc).strip() or type(exc).__name__
            raise errors.DatabaseUnavailable(
                f"cannot reach the IQMS server at {self.base_url}: {reason}"
            ) from None
        if response.is_success:
            return response.json()
        raise self._error(response)

    def _error(self, response: httpx.Response) -> errors.IQMSError:
        detail = f"the server answered {response.status_code}"
        field = None
        try:
            problem = response.json()
            detail = str(problem.get("detail") or detail)
            field = problem.get("field")
        except ValueError:
            pass
        if response.status_code == 429:
            retry = response.headers.get("retry-after", "60")
            return errors.RateLimited(detail, retry_after=int(retry) if retry.isdigit() else 60)
        cls = STATUS_ERRORS.get(response.status_code)
        if cls is errors.ValidationError:
            return errors.ValidationError(detail, field=field)
        if cls is errors.DatabaseUnavailable:
            return errors.DatabaseUnavailable(f"the IQMS server at {self.base_url}: {detail}")
        if cls is not None:
            return cls(detail)
        return errors.IQMSError(f"the IQMS server at {self.base_url}: {detail}")

    async def push_journal(self, journal: Journal, *, batch_size: int = 200) -> SyncSummary:
        """Push the whole journal, batch by batch; confirmed entries are cleared as they go."""
        counts: dict[str, int] = {}
        conflicts: list[str] = []
        pushed = 0
        while True:
            batch = journal.next_batch(limit=batch_size)
            if batch is None:
                break
            op_ids = [uuid.UUID(op["op_id"]) for op in batch["operations"]]
            try:
                report = await self.post("/api/sync", batch)
            except errors.IQMSError as exc:
                journal.note_push_failed(op_ids, str(exc))
                raise
            results = report["results"]
            journal.confirm(results)
            pushed += len(results)
            for result in results:
                counts[result["result"]] = counts.get(result["result"], 0) + 1
                reason = (result.get("details") or {}).get("reason")
                if reason:
                    conflicts.append(str(reason))
            if len(results) < len(op_ids):  # pragma: no cover - server contract
                break
        return SyncSummary(
            at=journal.clock.now(), pushed=pushed, counts=counts, conflicts=conflicts
        )


__all__ = ["RemoteServer", "server_url"]
