"""The doctor console: ``iqms doctor``.

A :class:`~iqms.tui.app.ConsoleApp` for doctor accounts with one view
(:class:`~iqms.tui.doctor.screen.DoctorScreen`). It does not keep an offline
journal: calling a patient needs the central database, so while it is away
the console says it is reconnecting and refuses actions.
"""

from __future__ import annotations

from typing import Any, ClassVar

from iqms.core.config import Settings
from iqms.core.services import clinic
from iqms.tui.app import ConsoleApp
from iqms.tui.auth import AuthSource, SignIn
from iqms.tui.doctor.screen import DoctorScreen


class DoctorConsole(ConsoleApp):
    """Call, see and finish patients from the consulting room."""

    TITLE = "Doctor console"
    ALLOWED_ROLES = frozenset({"doctor"})
    CSS_PATH = "doctor.tcss"
    MODES: ClassVar[dict[str, Any]] = {"doctor": DoctorScreen}

    def __init__(
        self, settings: Settings, auth: AuthSource, *, room: str | None = None, **options: Any
    ) -> None:
        super().__init__(settings, auth, **options)
        #: the room asked for on the command line (``--room``), set once signed in
        self.requested_room = room.strip() if room and room.strip() else None

    def role_problem(self, sign_in: SignIn) -> str | None:
        problem = super().role_problem(sign_in)
        if problem is None and sign_in.principal.doctor_id is None:
            name = sign_in.principal.username
            return (
                f"{name} is not set up as a doctor with a room yet; an administrator runs "
                f"'iqms admin doctors add {name} --department CODE --room ROOM'"
            )
        return problem

    async def after_sign_in(self, sign_in: SignIn, *, first: bool) -> None:
        room, self.requested_room = self.requested_room, None
        if room is not None:
            moved = await self.core(lambda: clinic.change_room(self.ctx, room=room))
            if moved is not None:
                self.notify(f"Your room is {moved.room}.", markup=False)
        if first:
            await self.switch_mode("doctor")


__all__ = ["DoctorConsole"]
