"""The doctor console's one view: who is in the room, who is next, one key per action.

Every action goes through the core services with the signed-in doctor's
context (``app.core``): a refusal becomes a short notice, nothing else
changes. One action runs at a time (a second press of "call next" while the
first is on its way calls nobody else). While the database is away the
screen says it is reconnecting and refuses actions; when it is back the view
reloads from the core, so a call whose answer was lost shows up as it is.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from iqms.core.db import is_connection_error
from iqms.core.enums import DoctorStatus, TicketStatus
from iqms.core.queue.events import TicketTransferred
from iqms.core.schemas.clinic import DepartmentOut
from iqms.core.schemas.patients import PatientOut
from iqms.core.schemas.queue import DoctorDay, DoctorQueueView, TicketOut
from iqms.core.services import clinic, patients, queue
from iqms.tui.dialogs import ConfirmDialog, ListDialog, TextDialog
from iqms.tui.doctor.widgets import (
    DayLine,
    DoctorHeader,
    MyQueue,
    OfflineBanner,
    PatientPanel,
    QueueList,
)
from iqms.tui.messages import ConnectionChanged, DoctorChanged, Resync, SignedIn, TicketChanged
from iqms.tui.screens import ConsoleScreen

T = TypeVar("T")

#: how many tickets "my queue" shows
QUEUE_ROWS = 50
#: seconds between redraws of waits and due times from the last view (no database read)
REDRAW_SECONDS = 30.0
#: keys kept while an action is on its way (more are dropped)
MAX_KEYS_AHEAD = 3

#: actions that need a patient called to this doctor, or one in the room
_NEEDS_CALLED = {"recall", "start", "no_show"}
_NEEDS_CURRENT = {"done", "hold", "transfer"}


class DoctorScreen(ConsoleScreen):
    """Header, the current patient, my queue, the day; the footer lists the keys that apply."""

    # The footer shows what applies now (the keys for the patient in the room first); keys
    # that do not apply are hidden, and the hidden twins of "next", "call" and "pause" still
    # answer while a patient is with the doctor (to say why not, or to offer to finish first).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start"),
        Binding("d", "done", "Done"),
        Binding("r", "recall", "Recall"),
        Binding("x", "no_show", "No-show"),
        Binding("b", "back_to_queue", "Requeue"),
        Binding("h", "hold", "Hold"),
        Binding("t", "transfer", "Transfer"),
        Binding("n", "call_next", "Next"),
        Binding("n", "call_next_busy", "Call next", show=False),
        Binding("c", "call_selected", "Call"),
        Binding("c", "call_selected_busy", "Call the selected ticket", show=False),
        Binding("p", "pause", "Pause"),
        Binding("p", "resume", "Available"),
        Binding("p", "toggle_pause", "Pause or available", show=False),
        Binding("m", "room", "Room"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: DoctorQueueView | None = None
        self.day: DoctorDay | None = None
        self.department: DepartmentOut | None = None
        self.patients: dict[uuid.UUID, PatientOut] = {}
        self.acting = False
        self._want_load = False
        self._want_day = True
        self._loading = False
        self._shown_bindings: tuple[object, ...] = ()
        self._queued: deque[Callable[[], None]] = deque()

    # ---- layout ---------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        yield OfflineBanner(id="offline")
        yield DoctorHeader(id="header")
        yield PatientPanel(id="patient")
        yield MyQueue(id="queue")
        yield DayLine(id="day")

    def on_mount(self) -> None:
        self.query_one("#offline").display = not self.console.db_online
        self.query_one("#queue-table").focus()
        self.set_interval(1.0, self._tick, name="consultation-clock")
        self.set_interval(REDRAW_SECONDS, self._redraw, name="redraw-waits")

    # ---- what is shown ----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """An action or a load is on its way (the screen may not show the latest yet)."""
        return self.acting or self._loading

    @property
    def current(self) -> TicketOut | None:
        """The patient with this doctor: the one in the room, else the first one called."""
        if self.view is None or not self.view.current:
            return None
        for ticket in self.view.current:
            if ticket.status == TicketStatus.IN_SERVICE:
                return ticket
        return self.view.current[0]

    def _show(self, *, queue_too: bool = True) -> None:
        view = self.view
        if view is None:
            return
        app = self.console
        now, tz = app.clock.now(), app.settings.tz
        today = now.astimezone(tz).date()
        current = self.current
        targets = self.department.targets if self.department is not None else {}
        self.query_one(DoctorHeader).show(view)
        self.query_one(PatientPanel).show(
            current,
            patient=self.patients.get(current.patient_id)
            if current is not None and current.patient_id
            else None,
            others=[t for t in view.current if current is None or t.id != current.id],
            next_up=view.waiting[0] if view.waiting else None,
            now=now,
            today=today,
            tz=tz,
            targets=targets,
            idle_note=self._idle_note(view),
        )
        if queue_too:
            self.query_one(MyQueue).show(
                view.held,
                view.waiting,
                counts=view.waiting_by_category,
                me=view.doctor_id,
                now=now,
            )
        self.query_one(DayLine).show(self.day)
        # The footer is rebuilt when the keys change: after the frame that shows the patient.
        self.call_after_refresh(self._bindings_changed)

    @staticmethod
    def _idle_note(view: DoctorQueueView) -> Text:
        """The third line of an empty panel: why nobody is called, or who is on hold."""
        if view.status != DoctorStatus.AVAILABLE:
            word = "paused" if view.status == DoctorStatus.PAUSED else "off duty"
            return Text.assemble(
                (f"You are {word}: ", "bold #ffaf00"),
                "patients are not called to you. Press ",
                (" p ", "bold reverse"),
                " when you are available.",
            )
        if view.held:
            numbers = ", ".join(t.ticket_number for t in view.held)
            return Text(f"On hold: {numbers} (select it and press b to put it back in the queue)")
        return Text("")

    def _binding_state(self) -> tuple[object, ...]:
        current = self.current
        selected = self.query_one(MyQueue).selected()
        return (
            current.status if current is not None else None,
            self.view.status if self.view is not None else None,
            selected is not None and selected.status == TicketStatus.HELD,
        )

    def _bindings_changed(self) -> None:
        """Redraw the footer only when the keys that apply changed (it is rebuilt each time)."""
        state = self._binding_state()
        if state != self._shown_bindings:
            self._shown_bindings = state
            self.refresh_bindings()

    def _tick(self) -> None:
        now = self.console.clock.now()
        self.query_one(PatientPanel).tick(now, now.astimezone(self.console.settings.tz).date())

    def _redraw(self) -> None:
        if self.view is not None and not self.acting:
            self._show()

    # ---- loading ----------------------------------------------------------------------------
    def reload(self) -> None:
        """Load the view again; calls arriving meanwhile are folded into one more load."""
        self._want_load = True
        if not self._loading:
            self._loading = True
            self.run_worker(self._load_loop(), group="load", exit_on_error=False)

    async def _load_loop(self) -> None:
        try:
            while self._want_load:
                self._want_load = False
                await self._load()
        finally:
            self._loading = False

    async def _quiet(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """A read for the view: a lost database shows in the banner, not as a notice each time."""
        try:
            return await self.console.core(call, errors="raise")
        except Exception as exc:
            if not is_connection_error(exc):
                self.console.show_error(exc)
            return None

    async def _load(self) -> None:
        app = self.console
        if not app.signed_in:
            return
        view = await self._quiet(lambda: queue.doctor_queue(app.ctx, limit=QUEUE_ROWS))
        if view is None:
            return
        if self.department is None or self.department.id != view.department_id:
            self.department = await self._quiet(
                lambda: clinic.get_department(app.ctx, department=view.department_id)
            )
        if self._want_day or self.day is None:
            self._want_day = False
            self.day = await self._quiet(lambda: queue.doctor_day(app.ctx)) or self.day
        self.view = view
        self._show()
        await self._load_patients()

    async def _load_patients(self) -> None:
        """The record of each patient with this doctor (name, age), read once (audited)."""
        if self.view is None:
            return
        with_me = {t.patient_id for t in self.view.current if t.patient_id is not None}
        # Only the records of the patients with this doctor are kept (read again next time).
        self.patients = {pid: p for pid, p in self.patients.items() if pid in with_me}
        wanted = [pid for pid in with_me if pid not in self.patients]
        for patient_id in wanted:
            found = await self._quiet(
                lambda pid=patient_id: patients.get(self.console.ctx, patient=pid)
            )  # type: ignore[misc]
            if found is not None:
                self.patients[patient_id] = found
        if wanted:
            self._show()

    # ---- live updates -----------------------------------------------------------------------
    def _concerns_me(self, event: Any) -> bool:
        view = self.view
        if view is None:
            return True
        if event.department_id == view.department_id:
            return True
        if (
            isinstance(event, TicketTransferred)
            and event.target_department_id == view.department_id
        ):
            return True
        return getattr(event, "doctor_id", None) == view.doctor_id

    def on_ticket_changed(self, message: TicketChanged) -> None:
        if not self._concerns_me(message.event):
            return
        if self.view is not None and message.event.doctor_id == self.view.doctor_id:
            self._want_day = True  # one of this doctor's patients moved: the day may change
        if self.acting:
            self._want_load = True  # the action reloads when it is done
        else:
            self.reload()

    def on_doctor_changed(self, message: DoctorChanged) -> None:
        event = message.event
        if (
            self.view is None
            or event.department_id == self.view.department_id
            or (event.previous_department_id == self.view.department_id)
        ):
            self.reload()

    def on_resync(self, message: Resync) -> None:
        self._want_day = True  # the base class reloads; events may have been missed

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        self.query_one("#offline").display = not message.online

    def on_signed_in(self, message: SignedIn) -> None:
        if self.view is not None and message.sign_in.principal.doctor_id != self.view.doctor_id:
            self.view = None  # another doctor took over this console
            self.day = None
            self.patients.clear()

    # ---- which keys apply -------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        current = self.current
        status = self.view.status if self.view is not None else None
        if action in _NEEDS_CALLED:
            return current is not None and current.status == TicketStatus.CALLED
        if action in _NEEDS_CURRENT:
            return current is not None
        if action == "back_to_queue":
            if current is not None:
                return current.status == TicketStatus.CALLED
            selected = self.query_one(MyQueue).selected() if self.is_mounted else None
            return selected is not None and selected.status == TicketStatus.HELD
        idle = current is None
        if action in ("call_next", "call_selected", "room"):
            return idle
        if action in ("call_next_busy", "call_selected_busy", "toggle_pause"):
            return not idle
        if action == "pause":
            return idle and (status is None or status == DoctorStatus.AVAILABLE)
        if action == "resume":
            return idle and status is not None and status != DoctorStatus.AVAILABLE
        return True

    @on(QueueList.Highlighted)
    def _row_moved(self) -> None:
        self._bindings_changed()  # "back to queue" applies to a held ticket under the cursor

    @on(QueueList.Chosen)
    def _row_chosen(self) -> None:
        self.action_call_selected()

    # ---- running an action ------------------------------------------------------------------
    def _refused_offline(self, what: str) -> bool:
        """While the database is away nothing is tried: say so (True) instead."""
        if self.console.db_online:
            return False
        self.notify(
            f"The database cannot be reached; reconnecting. {what} was not done.",
            title="Reconnecting",
            severity="warning",
            markup=False,
        )
        return True

    def _later(self, again: Callable[[], None]) -> bool:
        """While an action runs, keep a key pressed meanwhile for when it is done (True: kept).

        It runs then, against what the screen shows at that moment: "done" pressed
        while "start" is on its way finishes the patient; a second "call next"
        is refused because somebody is called by then.
        """
        if not self.acting:
            return False
        if len(self._queued) < MAX_KEYS_AHEAD:
            self._queued.append(again)
        return True

    def _act(self, what: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run one action at a time; refused while offline."""
        if self.acting or self._refused_offline(what):
            return
        self.acting = True

        async def run() -> None:
            try:
                await body()
            finally:
                self.acting = False
                self._want_day = True
                if self._queued:
                    self._queued.popleft()()
                if self.acting:
                    self._want_load = True  # the next action reloads when it is done
                else:
                    self.reload()

        self.run_worker(run(), group="action", exit_on_error=False)

    async def _core(self, call: Callable[[], Awaitable[T]]) -> T | None:
        return await self.console.core(call)

    def _adopt(self, ticket: TicketOut) -> None:
        """Show a ticket this doctor just called or moved at once (the reload follows).

        The patient panel first; the queue table is redrawn by the reload, so the
        panel's frame is not held up by a table's.
        """
        if self.view is None:
            return
        others = [t for t in self.view.current if t.id != ticket.id]
        mine = ticket.status in (TicketStatus.CALLED, TicketStatus.IN_SERVICE)
        current = [ticket, *others] if mine else others
        self.view = self.view.model_copy(update={"current": current})
        self._show(queue_too=False)

    def _busy_reason(self) -> str | None:
        current = self.current
        if current is None:
            return None
        if current.status == TicketStatus.IN_SERVICE:
            return f"{current.ticket_number} is still in the room"
        return (
            f"{current.ticket_number} is called and not seen yet: start (s), done (d), "
            "recall (r), no-show (x) or back to queue (b) first"
        )

    # ---- the actions ------------------------------------------------------------------------
    def action_call_next(self) -> None:
        if self._later(self.action_call_next):
            return
        self._call(None)

    def action_call_next_busy(self) -> None:
        if self._later(self.action_call_next_busy):
            return
        self._call(None)

    def action_call_selected_busy(self) -> None:
        if self._later(self.action_call_selected_busy):
            return
        self.action_call_selected()

    def action_call_selected(self) -> None:
        if self._later(self.action_call_selected):
            return
        selected = self.query_one(MyQueue).selected()
        if selected is None:
            self.notify("Nobody is waiting for you.", markup=False)
            return
        self._call(selected)

    def _call(self, ticket: TicketOut | None) -> None:
        current = self.current
        what = "Call next" if ticket is None else f"Calling {ticket.ticket_number}"
        if current is not None and current.status == TicketStatus.IN_SERVICE:
            if self._refused_offline(what):
                return

            def answer(yes: bool | None) -> None:
                if yes:
                    self._act(what, lambda: self._finish_and_call(current, ticket))

            self.app.push_screen(
                ConfirmDialog(
                    f"{current.ticket_number} is still in the room",
                    f"Finish {current.ticket_number} (done) and call "
                    + ("the next patient?" if ticket is None else f"{ticket.ticket_number}?"),
                ),
                answer,
            )
            return
        if current is not None:
            self.notify(
                f"Not calling anyone: {self._busy_reason()}.",
                title="One patient at a time",
                severity="warning",
                markup=False,
            )
            return
        self._act(what, lambda: self._do_call(ticket))

    async def _finish_and_call(self, current: TicketOut, ticket: TicketOut | None) -> None:
        done = await self._core(lambda: queue.serve(self.console.ctx, ticket=current.id))
        if done is None:
            return  # refused or offline: nobody new is called
        self._adopt(done)
        await self._do_call(ticket)

    async def _do_call(self, ticket: TicketOut | None) -> None:
        ctx = self.console.ctx
        try:
            if ticket is None:
                called = await self.console.core(
                    lambda: queue.call_next(ctx, include_name=True), errors="raise"
                )
            else:
                called = await self.console.core(
                    lambda: queue.call(ctx, ticket=ticket.id, include_name=True), errors="raise"
                )
        except Exception as exc:
            self.console.show_error(exc)
            return
        if called is None:
            self.notify("Nobody is waiting for you.", markup=False)
            return
        self._adopt(called)
        await self._load_patients()

    def action_start(self) -> None:
        if self._later(self.action_start):
            return
        self._move("Start", lambda ctx, t: queue.start(ctx, ticket=t.id))

    def action_done(self) -> None:
        if self._later(self.action_done):
            return
        self._move("Done", lambda ctx, t: queue.serve(ctx, ticket=t.id), after="done")

    def action_recall(self) -> None:
        if self._later(self.action_recall):
            return
        self._move("Recall", lambda ctx, t: queue.recall(ctx, ticket=t.id), after="recalled")

    def action_no_show(self) -> None:
        if self._later(self.action_no_show):
            return
        self._move("No-show", lambda ctx, t: queue.no_show(ctx, ticket=t.id), after="no-show")

    def action_hold(self) -> None:
        if self._later(self.action_hold):
            return
        self._move(
            "Hold",
            lambda ctx, t: queue.hold(ctx, ticket=t.id),
            after="on hold; select it and press b to put it back in the queue",
        )

    def action_back_to_queue(self) -> None:
        if self._later(self.action_back_to_queue):
            return
        current = self.current
        if current is not None:
            self._move(
                "Back to queue",
                lambda ctx, t: queue.no_show(ctx, ticket=t.id, requeue=True),
                after="back in the queue",
            )
            return
        selected = self.query_one(MyQueue).selected()
        if selected is None or selected.status != TicketStatus.HELD:
            return
        ctx = self.console.ctx

        async def body() -> None:
            out = await self._core(lambda: queue.return_to_queue(ctx, ticket=selected.id))
            if out is not None:
                self.notify(f"{out.ticket_number} is back in the queue.", markup=False)

        self._act("Back to queue", body)

    def _move(
        self,
        what: str,
        call: Callable[[Any, TicketOut], Awaitable[TicketOut]],
        *,
        after: str | None = None,
    ) -> None:
        current = self.current
        if current is None:
            return
        ctx = self.console.ctx

        async def body() -> None:
            out = await self._core(lambda: call(ctx, current))
            if out is None:
                return
            self._adopt(out)
            if after:
                self.notify(f"{out.ticket_number} {after}.", markup=False)

        self._act(what, body)

    def action_transfer(self) -> None:
        if self._later(self.action_transfer):
            return
        current = self.current
        if current is None:
            return
        self._act("Transfer", lambda: self._choose_transfer(current))

    async def _choose_transfer(self, current: TicketOut) -> None:
        ctx = self.console.ctx
        departments = await self._core(lambda: clinic.list_departments(ctx))
        doctors = await self._core(lambda: clinic.list_doctors(ctx))
        if departments is None or doctors is None or self.view is None:
            return
        options: list[tuple[Any, str]] = [
            (("department", d.id), f"Department  {d.code:<6} {d.name}") for d in departments
        ]
        options += [
            (
                ("doctor", d.id),
                f"Doctor      {d.full_name} · {d.room} · {d.department_code} ({d.status.value})",
            )
            for d in doctors
            if d.id != self.view.doctor_id
        ]
        choice = await self.app.push_screen_wait(
            ListDialog(
                f"Transfer {current.ticket_number} to",
                options,
                message="The patient keeps their arrival time (and reception's note).",
            )
        )
        if choice is None:
            return
        kind, target = choice
        moved = await self._core(
            lambda: queue.transfer(
                ctx,
                ticket=current.id,
                department=target if kind == "department" else None,
                doctor=target if kind == "doctor" else None,
            )
        )
        if moved is not None:
            self._adopt(current.model_copy(update={"status": TicketStatus.TRANSFERRED}))
            self.notify(
                f"{current.ticket_number} transferred: now {moved.ticket_number} "
                f"in {moved.department_code}.",
                markup=False,
            )

    def action_pause(self) -> None:
        if self._later(self.action_pause):
            return
        self._set_status(DoctorStatus.PAUSED)

    def action_toggle_pause(self) -> None:
        if self._later(self.action_toggle_pause):
            return
        available = self.view is not None and self.view.status == DoctorStatus.AVAILABLE
        self._set_status(DoctorStatus.PAUSED if available else DoctorStatus.AVAILABLE)

    def action_resume(self) -> None:
        if self._later(self.action_resume):
            return
        self._set_status(DoctorStatus.AVAILABLE)

    def _set_status(self, status: DoctorStatus) -> None:
        ctx = self.console.ctx

        async def body() -> None:
            done = await self._core(lambda: clinic.set_doctor_status(ctx, status=status))
            if done is not None and self.view is not None:
                self.view = self.view.model_copy(update={"status": done.status})
                self._show()

        self._act("Pause" if status == DoctorStatus.PAUSED else "Available", body)

    def action_room(self) -> None:
        if self._later(self.action_room):
            return
        if self.view is None:
            return
        room = self.view.room

        def answer(value: str | None) -> None:
            if value and value != room:
                self._act("Room change", lambda: self._change_room(value))

        self.app.push_screen(
            TextDialog(
                "Your room",
                prompt="Patients are called to this room.",
                value=room,
                required=True,
                max_length=20,
            ),
            answer,
        )

    async def _change_room(self, room: str) -> None:
        done = await self._core(lambda: clinic.change_room(self.console.ctx, room=room))
        if done is not None:
            self.notify(f"Your room is now {done.room}.", markup=False)


__all__ = ["DoctorScreen"]
