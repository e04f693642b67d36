"""What every caller shares: a ticket's status by its code, departments, boards, health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from iqms.api.deps import AnonymousContext, BoardContext, UserContext, state_of
from iqms.core.errors import DatabaseUnavailable
from iqms.core.schemas.clinic import DepartmentOut
from iqms.core.schemas.queue import BoardView, TicketStatusView
from iqms.core.services import clinic, queue

router = APIRouter(tags=["queue status"])


@router.get("/api/status/{code}", response_model=TicketStatusView)
async def ticket_status(code: str, ctx: AnonymousContext) -> JSONResponse:
    """Where a ticket stands, by the code printed on it: position, estimate, room once called.

    No login: the unguessable code is the key. No names.
    """
    view = await queue.ticket_status_by_code(ctx, code=code)
    return JSONResponse(view.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.get("/api/departments", response_model=list[DepartmentOut])
async def departments(ctx: UserContext) -> list[DepartmentOut]:
    """The clinic's open departments."""
    return await clinic.list_departments(ctx)


@router.get("/api/board/{department}", response_model=BoardView)
async def board(department: str, ctx: BoardContext) -> BoardView:
    """A department's waiting-room board: rooms, the numbers they call, the next numbers."""
    return await queue.board(ctx, department=department)


@router.get("/healthz", tags=["server"])
async def health(request: Request) -> JSONResponse:
    """200 when the server and its database answer (for load balancers and monitoring)."""
    try:
        await state_of(request).db.check()
    except DatabaseUnavailable:
        return JSONResponse(
            {"status": "unavailable", "detail": "the database does not answer"}, status_code=503
        )
    return JSONResponse({"status": "ok"})
