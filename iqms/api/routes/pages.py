"""The pages people open in a browser: a ticket's status page and the waiting-room board.

Both are rendered on the server (Jinja templates, one small script, no build
step) and stay current through server-sent events: the stream sends the page's
live part, rendered again, whenever a queue event concerns it. Without
JavaScript they still work and reload themselves now and then.

* ``/t/{code}``: the link of a ticket's QR code. The unguessable code is the
  only key; the page shows the ticket number, its place, the estimated wait and
  the room once called, never a name.
* ``/board?department=GEN``: for a TV in the waiting room, the same content as
  ``iqms display``: rooms and the numbers they call, recent calls, the next
  numbers. A TV's browser is given its key once (``?key=...``), which is kept in
  a cookie for the board pages only.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from iqms.api.deps import (
    BOARD_COOKIE,
    anonymous_context,
    board_context,
    principal_for_credential,
    state_of,
)
from iqms.api.events import page_stream
from iqms.core.enums import TicketStatus
from iqms.core.errors import AuthenticationFailed, NotFound, PermissionDenied
from iqms.core.schemas.queue import BoardView, TicketStatusView
from iqms.core.services import display, queue

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
MAX_BOARD_DEPARTMENTS = 6
KEY_COOKIE_DAYS = 400
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
PAGE_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": CSP}
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}

router = APIRouter(include_in_schema=False)

# The words of the pages, in the languages of the patient messages.
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "ticket": "Ticket",
        "position": "You are number {n} in the queue",
        "next": "You are next",
        "ahead": "{n} ahead of you",
        "wait": "Estimated wait: about {wait} minutes",
        "wait_unknown": "We will show an estimate as soon as a doctor is available",
        "held": "Your ticket is on hold. Please see reception.",
        "called": "Please go to {room} now",
        "in_service": "You are being seen in {room}",
        "called_at": "Called at {time}",
        "served": "Your visit is complete. Thank you.",
        "no_show": "We called you but could not find you. Please see reception.",
        "cancelled": "This ticket was cancelled.",
        "transferred": "This ticket moved to another queue. Please see reception.",
        "moved": "Ticket {old} moved here; your new number is {new}.",
        "updated": "Updated",
        "live": "Live",
        "offline": "Reconnecting...",
        "not_found": "We cannot find this ticket. Please check the link or ask at reception.",
        "now_serving": "Now serving",
        "room": "Room",
        "recent": "Recently called",
        "next_up": "Next",
        "waiting": "{n} waiting",
        "nobody": "No one is waiting",
        "needs_key": "This board needs a key. Open its address once with ?key=KEY "
        "(an administrator can create one).",
        "refused": "This key may not show the board.",
        "no_department": "Name the department: /board?department=CODE",
    },
    "es": {
        "ticket": "Turno",
        "position": "Usted es el número {n} de la cola",
        "next": "Usted es el siguiente",
        "ahead": "{n} por delante",
        "wait": "Espera estimada: unos {wait} minutos",
        "wait_unknown": "Mostraremos una estimación en cuanto haya un médico disponible",
        "held": "Su turno está en espera. Acuda a recepción, por favor.",
        "called": "Pase ahora a {room}, por favor",
        "in_service": "Le están atendiendo en {room}",
        "called_at": "Llamado a las {time}",
        "served": "Su visita ha terminado. Gracias.",
        "no_show": "Le llamamos y no le encontramos. Acuda a recepción, por favor.",
        "cancelled": "Este turno se canceló.",
        "transferred": "Este turno pasó a otra cola. Acuda a recepción, por favor.",
        "moved": "El turno {old} pasó aquí; su nuevo número es {new}.",
        "updated": "Actualizado",
        "live": "En directo",
        "offline": "Reconectando...",
        "not_found": "No encontramos este turno. Revise el enlace o pregunte en recepción.",
        "now_serving": "Atendiendo",
        "room": "Sala",
        "recent": "Últimos llamados",
        "next_up": "Siguientes",
        "waiting": "{n} en espera",
        "nobody": "No hay nadie esperando",
        "needs_key": "Esta pantalla necesita una clave. Abra su dirección una vez con ?key=CLAVE "
        "(un administrador puede crearla).",
        "refused": "Esta clave no puede mostrar la pantalla.",
        "no_department": "Indique el servicio: /board?department=CODIGO",
    },
}


def language_of(request: Request, wanted: str | None = None) -> str:
    """The page language: ``?lang=``, else the browser's preference, else English."""
    if wanted and wanted[:2].lower() in TEXT:
        return wanted[:2].lower()
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip()[:2].lower()
        if code in TEXT:
            return code
    return "en"


def _wait_text(view: TicketStatusView) -> str | None:
    if view.estimate is None or view.estimate.servers == 0:
        return None
    low = max(1, round(view.estimate.p50_minutes))
    high = max(low, round(view.estimate.p90_minutes))
    return str(low) if high == low else f"{low}-{high}"


def _local(settings_tz: Any, when: datetime | None) -> str:
    return when.astimezone(settings_tz).strftime("%H:%M") if when else ""


def _render(request: Request, name: str, **context: Any) -> str:
    template = TEMPLATES.get_template(name)
    return template.render(request=request, **context)


# ---- ticket status page -------------------------------------------------------------------------
def _status_context(request: Request, view: TicketStatusView, lang: str) -> dict[str, Any]:
    text = TEXT[lang]
    state = state_of(request)
    room = view.room or text["room"]
    if view.status == TicketStatus.WAITING:
        headline = text["next"] if view.position == 1 else text["position"].format(n=view.position)
        wait = _wait_text(view)
        lines = [text["ahead"].format(n=view.ahead)] if view.ahead else []
        lines.append(text["wait"].format(wait=wait) if wait else text["wait_unknown"])
    else:
        headline = text[view.status.value].format(room=room)
        lines = []
    moved = (
        text["moved"].format(old=view.transferred_from, new=view.ticket_number)
        if view.transferred_from
        else None
    )
    return {
        "view": view,
        "text": text,
        "lang": lang,
        "clinic": state.settings.clinic_name,
        "headline": headline,
        "lines": lines,
        "moved": moved,
        "called": view.status in (TicketStatus.CALLED, TicketStatus.IN_SERVICE),
        "called_at": _local(state.settings.tz, view.called_at),
    }


@router.get("/t/{code}", response_class=HTMLResponse)
async def status_page(
    request: Request, code: str, lang: Annotated[str | None, Query(max_length=8)] = None
) -> HTMLResponse:
    """A ticket's public status page (the link printed as the ticket's QR code)."""
    language = language_of(request, lang)
    state = state_of(request)
    try:
        view = await queue.ticket_status_by_code(anonymous_context(request), code=code)
    except NotFound:
        html = _render(
            request,
            "message.html",
            text=TEXT[language],
            lang=language,
            clinic=state.settings.clinic_name,
            message=TEXT[language]["not_found"],
        )
        return HTMLResponse(html, status_code=404, headers=PAGE_HEADERS)
    context = _status_context(request, view, language)
    html = _render(
        request,
        "status.html",
        body=_render(request, "_status.html", **context),
        events_url=str(
            request.url_for("status_events", code=code).include_query_params(lang=language)
        ),
        **context,
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get("/t/{code}/events", name="status_events")
async def status_events(
    request: Request, code: str, lang: Annotated[str | None, Query(max_length=8)] = None
) -> StreamingResponse:
    """The status page's live part, again whenever the ticket's queue moves."""
    language = language_of(request, lang)
    state = state_of(request)
    ctx = anonymous_context(request)
    first = await queue.ticket_status_by_code(ctx, code=code)  # 404 before streaming
    departments = {first.department_id} if first.department_id else set()

    async def stream() -> Any:
        async with state.hub.listen(departments) as listener:

            async def read() -> tuple[str, str]:
                view = await queue.ticket_status_by_code(ctx, code=code)
                if view.department_id is not None:
                    listener.departments = {view.department_id}
                context = _status_context(request, view, language)
                html = _render(request, "_status.html", **context)
                return json.dumps({"html": html, "called": context["called"]}), html

            async for chunk in page_stream(listener, read):
                yield chunk

    return StreamingResponse(stream(), media_type="text/event-stream", headers=STREAM_HEADERS)


# ---- waiting-room board -------------------------------------------------------------------------
_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _departments(values: list[str] | None) -> list[str]:
    codes: list[str] = []
    for value in values or []:
        for part in value.split(","):
            code = part.strip().upper()
            if code and _CODE_RE.fullmatch(code) and code not in codes:
                codes.append(code)
    return codes[:MAX_BOARD_DEPARTMENTS]


def _board_context(
    request: Request, views: list[BoardView], lang: str, message: str | None = None
) -> dict[str, Any]:
    state = state_of(request)
    tz = state.settings.tz
    return {
        "views": views,
        "message": message,
        "text": TEXT[lang],
        "lang": lang,
        "clinic": state.settings.clinic_name,
        "local": lambda when: _local(tz, when),
    }


async def _board_views(request: Request, codes: list[str]) -> tuple[list[BoardView], str | None]:
    """The departments' boards and the message line staff set for every board (or None)."""
    ctx = await board_context(request)
    views = [await queue.board(ctx, department=code) for code in codes]
    message = await display.get_message(ctx)
    return views, message.text if message is not None else None


def _board_message(request: Request, lang: str, message: str, status: int) -> HTMLResponse:
    html = _render(
        request,
        "message.html",
        text=TEXT[lang],
        lang=lang,
        clinic=state_of(request).settings.clinic_name,
        message=message,
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


@router.get("/board", response_class=HTMLResponse)
async def board_page(
    request: Request,
    department: Annotated[list[str] | None, Query(max_length=200)] = None,
    key: Annotated[str | None, Query(max_length=2000)] = None,
    lang: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    """The waiting-room board of one or more departments (numbers and rooms, no names)."""
    language = language_of(request, lang)
    codes = _departments(department)
    if key:
        # Check the key, keep it in a cookie for the board pages, and take it out of the address.
        try:
            await principal_for_credential(request, key.strip())
        except AuthenticationFailed:
            return _board_message(request, language, TEXT[language]["needs_key"], 401)
        params = [("department", c) for c in codes] + ([("lang", lang)] if lang else [])
        # A relative address: the same page without the key, wherever a proxy mounted it.
        response = RedirectResponse(_query(params) or "?", 303)
        response.set_cookie(
            BOARD_COOKIE,
            key.strip(),
            max_age=KEY_COOKIE_DAYS * 86400,
            path=request.scope.get("root_path", "") + "/board",
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="strict",
        )
        return response
    if not codes:
        return _board_message(request, language, TEXT[language]["no_department"], 400)
    try:
        views, message = await _board_views(request, codes)
    except AuthenticationFailed:
        return _board_message(request, language, TEXT[language]["needs_key"], 401)
    except PermissionDenied:
        return _board_message(request, language, TEXT[language]["refused"], 403)
    except NotFound as exc:
        return _board_message(request, language, exc.message, 404)
    context = _board_context(request, views, language, message)
    events_url = str(request.url_for("board_events")) + _query(
        [("department", c) for c in codes] + [("lang", language)]
    )
    html = _render(
        request,
        "board.html",
        body=_render(request, "_board.html", **context),
        events_url=events_url,
        **context,
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


def _query(params: list[tuple[str, str]]) -> str:
    return ("?" + urlencode(params)) if params else ""


@router.get("/board/events", name="board_events")
async def board_events(
    request: Request,
    department: Annotated[list[str] | None, Query(max_length=200)] = None,
    lang: Annotated[str | None, Query(max_length=8)] = None,
) -> StreamingResponse:
    """The board's live part, again whenever one of its departments' queues moves."""
    language = language_of(request, lang)
    state = state_of(request)
    codes = _departments(department)
    if not codes:
        raise NotFound("name the department: /board/events?department=CODE", field="department")
    views, _ = await _board_views(request, codes)  # 401 / 403 / 404 before streaming
    departments: set[uuid.UUID] = {v.department_id for v in views}

    async def stream() -> Any:
        async with state.hub.listen(departments) as listener:

            async def read() -> tuple[str, str]:
                current, message = await _board_views(request, codes)
                html = _render(
                    request, "_board.html", **_board_context(request, current, language, message)
                )
                return json.dumps({"html": html}), html

            async for chunk in page_stream(listener, read):
                yield chunk

    return StreamingResponse(stream(), media_type="text/event-stream", headers=STREAM_HEADERS)


__all__ = ["TEXT", "language_of", "router"]
