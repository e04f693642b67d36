"""Which queue events produce which patient messages (outbox rows, same transaction)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iqms.core.service import Context


async def on_queue_event(ctx: Context, event: Any) -> None:
    """Write the outbox rows a queue event calls for, inside the event's transaction."""
    # Filled in by the notifications work (outbox rows for issued / approaching / called / ...).
    return None
