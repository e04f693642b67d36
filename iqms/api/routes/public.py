"""What every caller shares: a ticket's status by its code, departments, boards, health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from iqms.api.deps import BoardContext, UserContext, anonymous_context, state_of
from iqms.core.errors import DatabaseUnavailable
from iqms.core.schemas.clinic import DepartmentOut
from iqms.core.schemas.queue import BoardView, TicketStatusView
from iqms.core.services import clinic, queue

router = APIRouter(tags=["queue status"])
NO_STORE = {"Cache-Control": "no-store"}


@router.get("/api/status/{code}", response_model=TicketStatusView)
async def ticket_status(code: str, request: Request) -> Response:
    """Where a ticket stands, by the code printed on it: position, estimate, room once called.

    No login: the unguessable code is the key. No names.
    """
    state = state_of(request)
    cache = state.status_cache
    cached = cache.enabled
    if cached:
        state.hub.ensure_started()  # queue events keep the kept answers current
        cached = state.hub.live
    generation = cache.generation
    body = cache.get(code) if cached else None
    if body is None:
        view = await queue.ticket_status_by_code(anonymous_context(request), code=code)
        body = view.model_dump_json().encode()
        if cached:
            cache.put(code, view.department_id, body, generation=generation)
    return Response(body, media_type="application/json", headers=NO_STORE)


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
