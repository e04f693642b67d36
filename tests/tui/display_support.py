"""What the board tests share: a clinic with named patients, a board's device key, the board's text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import devices, patients, queue
from iqms.tui.display import BoardApp
from iqms.tui.display.bigtext import BigText
from tests.test_queue_fixtures import Clinic, as_doctor, small_clinic
from tests.tui.support import screen_text

#: patients of the test clinic: none of these may ever reach a board
NAMES = ("Amelia Hughes", "Oliver Brown", "Zainab Okafor", "Mateo Garcia")


async def named_clinic(ctx: Context, waiting: int = 4) -> Clinic:
    """GEN (A, rooms 1 and 2) and PED (P, room 5); GEN has ``waiting`` tickets of named patients."""
    c = await small_clinic(ctx)
    for n in range(waiting):
        person = await patients.register(ctx, full_name=NAMES[n % len(NAMES)],
                                         allow_duplicate=True)  # fmt: skip
        await queue.issue(ctx, department="GEN", patient=person.id)
    return c


async def call(ctx: Context, clinic: Clinic, doctor: str) -> str:
    """The doctor calls their next patient; the ticket number."""
    ticket = await queue.call_next(as_doctor(ctx, clinic.doctors[doctor]))
    assert ticket is not None
    return ticket.ticket_number


async def board_key(ctx: Context, name: str = "hall-board") -> str:
    """A display device added by an administrator; its key."""
    return (await devices.add(ctx, name=name, role="display")).key


def signs_in_with(key: str) -> Callable[[Context], Awaitable[Principal]]:
    """How ``iqms display`` signs in: the device key, checked by the core."""

    async def authenticate(ctx: Context) -> Principal:
        return await devices.authenticate(ctx, key=key)

    return authenticate


def big(app: BoardApp, widget_id: str) -> str:
    """The text of one of the board's large-letter widgets."""
    return app.board.query_one(f"#{widget_id}", BigText).text


def everything_shown(app: BoardApp) -> str:
    """The whole screen as text, plus the text behind every large-letter drawing."""
    drawn = [w.text for w in app.board.query(BigText)]
    return screen_text(app) + "\n" + "\n".join(drawn)


def ready(app: BoardApp) -> bool:
    return app.signed_in and app.board.view is not None


__all__ = [
    "NAMES",
    "big",
    "board_key",
    "call",
    "everything_shown",
    "named_clinic",
    "ready",
    "signs_in_with",
]
