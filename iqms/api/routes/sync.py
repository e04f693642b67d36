"""``/api/sync``: a remote terminal's offline journal, pushed over HTTPS.

The body is the same batch ``iqms sync push`` sends to the database (format 1),
checked by the core: a malformed batch is refused whole (422, every problem
listed), each operation is applied once (a replay reports ``duplicate`` and
changes nothing), and conflicts are kept for staff review.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from iqms.api.deps import UserContext
from iqms.api.schemas import SYNC_EXAMPLE, NumbersOut, NumbersRequest, SyncPushOut, SyncResultOut
from iqms.core.services import sync

router = APIRouter(prefix="/api/sync", tags=["sync"])


@router.post("", response_model=SyncPushOut)
async def push(
    batch: Annotated[
        dict[str, Any],
        Body(
            description="One device's journal entries, oldest first (the offline batch format)",
            examples=[SYNC_EXAMPLE],
        ),
    ],
    ctx: UserContext,
) -> SyncPushOut:
    """Apply a device's offline batch in device order; every operation gets a result."""
    report = await sync.push(ctx, batch=batch)
    return SyncPushOut(
        device_id=report.device_id,
        device_name=report.device_name,
        counts=report.counts(),
        results=[SyncResultOut(**r.as_dict()) for r in report.results],
    )


@router.post("/numbers", response_model=NumbersOut, status_code=201)
async def reserve_numbers(body: NumbersRequest, ctx: UserContext) -> NumbersOut:
    """Reserve a block of today's ticket numbers of a department for the device's offline use."""
    block = await sync.reserve_numbers(
        ctx,
        department_id=body.department_id,
        size=body.size,
        device_id=body.device_id,
        device_name=body.device_name,
    )
    return NumbersOut(
        department_id=block.department_id,
        department_code=block.department_code,
        department_name=block.department_name,
        ticket_prefix=block.ticket_prefix,
        service_date=block.service_date,
        first_number=block.first_number,
        last_number=block.last_number,
    )
