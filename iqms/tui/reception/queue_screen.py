"""The queue: every open ticket of the chosen departments in calling order, and the moves on them.

Rows are drawn line by line and only those whose text changed are drawn again
when the queue changes (rows added, removed and re-ordered), so the list does
not flicker and the cursor stays on the same ticket. Moves the state machine
does not allow for the selected ticket are dimmed in the key bar; the core
refuses anything stale with its own message and nothing changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Input, Static

from iqms.core.enums import TicketStatus
from iqms.core.queue import policy as queue_policy
from iqms.core.schemas.clinic import AppointmentOut
from iqms.core.schemas.queue import TicketOut
from iqms.core.services import clinic, patients, queue
from iqms.core.sync.journal import OfflineTicket as JournalTicket
from iqms.tui.dialogs import ListDialog, TextDialog, TriageDialog
from iqms.tui.reception.dialogs import (
    ChosenPatient,
    FilterDialog,
    IssueDialog,
    IssueRequest,
    TransferDialog,
    TransferRequest,
    patient_label,
)
from iqms.tui.reception.messages import QueueUpdated
from iqms.tui.reception.printing import print_ticket
from iqms.tui.reception.rows import (
    COLUMNS,
    NARROW_LABELS,
    OfflineTicket,
    QueueFilter,
    Row,
    RowCache,
    build_rows,
    describe_ticket,
)
from iqms.tui.screens import ConsoleScreen
from iqms.tui.widgets import QueueList, cells_line

if TYPE_CHECKING:
    from iqms.tui.reception.app import ReceptionApp

#: terminals at least this wide show full triage labels, the 90% bound and the department
WIDE_WIDTH = 110
NARROW_COLUMNS = ("ticket", "patient", "triage", "waited", "due", "estimate", "doctor", "status")
WIDE_COLUMNS = tuple(key for key, _ in COLUMNS)
WIDTHS = {
    False: {"ticket": 5, "patient": 16, "triage": 3, "waited": 4, "due": 8, "estimate": 5,
            "doctor": 9, "status": 10},
    True: {"ticket": 6, "patient": 21, "triage": 15, "waited": 6, "due": 9, "estimate": 10,
           "doctor": 16, "status": 10, "dept": 4},
}  # fmt: skip
#: the state-machine move behind each key (None: any ticket of the console may try)
MOVES: dict[str, tuple[str, ...] | None] = {
    "triage": ("change_category",),
    "transfer": ("transfer",),
    "hold": ("hold", "return"),
    "cancel_ticket": ("cancel",),
    "no_show": ("no_show",),
    "recall": ("recall",),
    "undo": None,
    "print_ticket": None,  # the slip of any ticket of the console (the printer says the rest)
}
#: what a ticket issued offline (not on the server yet) can still undergo, through the journal
OFFLINE_MOVES = {"cancel_ticket", "triage"}


class QueueScreen(ConsoleScreen):
    """F1: the live queue."""

    # Priority bindings: the console acts on a key while routing it, so keys typed fast after
    # it (a name after "n", a number after "/") reach the dialog or the search box, not the
    # table. While the search box has the focus, letters are text (see check_action).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "issue", "Issue", priority=True),
        Binding("a", "check_in", "Check-in", priority=True),
        Binding("t", "triage", "Triage", priority=True),
        Binding("m", "transfer", "Transfer", priority=True),
        Binding("h", "hold", "Hold/return", priority=True),
        Binding("c", "cancel_ticket", "Cancel", priority=True),
        Binding("o", "no_show", "No-show", priority=True),
        Binding("r", "recall", "Recall", priority=True),
        Binding("u", "undo", "Undo", priority=True),
        Binding("p", "print_ticket", "Print", priority=True),
        Binding("slash", "search", "Search", key_display="/", priority=True),
        Binding("f", "filter", "Filter", priority=True),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]
    TYPED_KEYS = frozenset(
        {"issue", "check_in", "triage", "transfer", "hold", "cancel_ticket", "no_show",
         "recall", "undo", "print_ticket", "search", "filter"}
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.view = QueueFilter()
        self.wide = False
        self.shown: dict[str, Row] = {}  # the rows shown, by key, in order
        self.widths: list[int] = []
        self.positions: list[int] = []
        self.row_cache = RowCache()
        self._drawn: tuple[object, ...] | None = None
        self.select_next: str | None = None
        self._view_ready = False
        # the app's tickets by row key, for the list they were indexed from (the key bar asks
        # for the selected ticket once per key on every refresh)
        self._index: dict[str, TicketOut] = {}
        self._indexed: list[TicketOut] | None = None

    @property
    def reception(self) -> ReceptionApp:
        return cast("ReceptionApp", self.app)

    # ---- layout -------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Horizontal(id="toolbar"):
            yield Static("", id="showing")
            yield Input(placeholder="/ search number or name", id="search")
        yield Static("", id="tickets-header")
        yield QueueList(id="tickets", render=self._line)
        yield Static("", id="details")

    @property
    def table(self) -> QueueList:
        return self.query_one("#tickets", QueueList)

    def on_mount(self) -> None:
        self.view = QueueFilter(departments=self.reception.chosen_codes)
        self.wide = self.size.width >= WIDE_WIDTH
        self._set_columns()
        self.table.focus()
        self.set_interval(30, self.redraw, name="waits")  # waits and due times move on
        self.redraw()

    def on_resize(self) -> None:
        wide = self.size.width >= WIDE_WIDTH
        if wide != self.wide:
            self.wide = wide
            self._set_columns()
            self.redraw()

    def _set_columns(self) -> None:
        self.shown.clear()
        self.table.forget_lines()
        self._drawn = None
        labels = dict(COLUMNS) if self.wide else {**dict(COLUMNS), **NARROW_LABELS}
        columns = WIDE_COLUMNS if self.wide else NARROW_COLUMNS
        self.widths = [WIDTHS[self.wide][key] for key in columns]
        self.positions = [i for i, (key, _) in enumerate(COLUMNS) if key in columns]
        header = cells_line([labels[key] for key in columns], self.widths, gap=2, style="bold")
        self.query_one("#tickets-header", Static).update(header)

    # ---- drawing ------------------------------------------------------------------------------
    def _line(self, row: Row) -> Text:
        """A row's line: its cells of the columns shown, at their widths."""
        return cells_line([row.cells[i] for i in self.positions], self.widths, gap=2)

    def reload(self) -> None:
        self.redraw()

    def on_queue_updated(self, _message: QueueUpdated) -> None:
        self.redraw()

    def rows(self) -> list[Row]:
        app = self.reception
        return build_rows(
            app.tickets,
            offline=app.offline_tickets,
            names=app.names,
            doctors=app.doctors,
            now=app.clock.now(),
            tz=app.settings.tz,
            view=self.view,
            wide=self.wide,
            cache=self.row_cache,
        )

    def redraw(self, *, force: bool = False) -> None:
        """Bring the table in line with the app's copy of the queue, changing only what changed."""
        if not self.is_mounted:
            return
        if force:
            self._drawn = None
        app = self.reception
        state = (
            id(app.tickets), len(app.offline_tickets), len(app.names), id(app.doctors),
            self.view, self.wide, app.clock.now().replace(second=0, microsecond=0),
            self.select_next,
        )  # fmt: skip
        if state == self._drawn:
            return  # nothing it shows has changed since it was drawn
        self._drawn = state
        selected = self.select_next or self.selected_key()
        rows = self.rows()
        self.shown = {row.key: row for row in rows}
        table = self.table
        table.set_rows([(row.key, row) for row in rows])  # lines made as they are drawn
        if selected in self.shown:
            table.move_to(list(self.shown).index(selected))
            if self.select_next == selected:
                self.select_next = None
        self._describe()
        self.refresh_bindings()

    def _describe(self) -> None:
        app = self.reception
        count = len(self.shown)
        total = len(app.tickets) + len(app.offline_tickets)
        shown = f"{count} of {total}" if count != total else f"{count}"
        more = " (first 1000 open tickets)" if app.truncated else ""
        search = f" · matching {self.view.search!r}" if self.view.search else ""
        self.query_one("#showing", Static).update(
            f"{shown} tickets{more} · {self.view.describe()}{search}"
        )
        ticket = self.selected()
        details = self.query_one("#details", Static)
        if ticket is None:
            details.update("No open tickets." if not count else "")
        elif isinstance(ticket, OfflineTicket):
            details.update(
                Text.assemble(
                    (ticket.ticket_number, "bold"),
                    f"  {ticket.patient_name or 'walk-in'}  issued offline at "
                    f"{ticket.arrived_at.astimezone(app.settings.tz):%H:%M}; "
                    "it joins the queue when the database is back",
                )
            )
        else:
            dept = app.departments.get(ticket.department_id)
            details.update(
                describe_ticket(
                    ticket,
                    name=app.names.get(ticket.patient_id) if ticket.patient_id else None,
                    doctors=app.doctors,
                    targets=dept.targets if dept else None,
                    tz=app.settings.tz,
                )
            )

    @on(QueueList.Highlighted, "#tickets")
    def _highlighted(self) -> None:
        self._describe()
        self.refresh_bindings()

    # ---- the selected ticket ------------------------------------------------------------------
    def selected_key(self) -> str | None:
        return self.table.key

    def selected(self) -> TicketOut | OfflineTicket | None:
        key = self.selected_key()
        if key is None:
            return None
        if key.startswith("offline:"):
            return next((t for t in self.reception.offline_tickets if t.key == key), None)
        tickets = self.reception.tickets
        if self._indexed is not tickets:
            self._index = {str(t.id): t for t in tickets}
            self._indexed = tickets
        return self._index.get(key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.TYPED_KEYS and isinstance(self.focused, Input):
            return False  # typing in the search box
        if action not in MOVES:
            return True
        ticket = self.selected()
        if ticket is None:
            return None  # shown, dimmed: nothing selected
        if isinstance(ticket, OfflineTicket):
            return True if action in OFFLINE_MOVES else None
        moves = MOVES[action]
        if moves is None:
            return True
        allowed = set(queue_policy.allowed_actions(ticket.status))
        return True if allowed & set(moves) else None

    # ---- running a move -----------------------------------------------------------------------
    async def _move(
        self,
        ticket: TicketOut,
        call: Callable[[], Awaitable[TicketOut]],
        done: str,
        *,
        offline: Callable[[], Any] | None = None,
    ) -> TicketOut | None:
        app = self.reception
        result = await app.core(call, offline=offline)
        if isinstance(result, TicketOut):
            app.put_ticket(result)
            self.redraw()  # the row first; the notice follows once it is on screen
            message = done.format(n=result.ticket_number)
            self.call_after_refresh(lambda: self.app.notify(message, markup=False))
            return result
        if result is not None:  # recorded in the offline journal
            self.app.notify(
                done.format(n=ticket.ticket_number)
                + " (saved offline; sent when the database is back)",
                severity="warning",
                markup=False,
            )
        return None

    def _ticket_or_none(self) -> TicketOut | None:
        ticket = self.selected()
        return ticket if isinstance(ticket, TicketOut) else None

    # ---- issuing ------------------------------------------------------------------------------
    def action_issue(self, patient: ChosenPatient | None = None) -> None:
        app = self.reception
        if app.refused_offline():
            return
        departments = app.open_departments()
        if not departments:
            self.app.notify("There is no open department to issue tickets for.", severity="warning")
            return
        chosen = self.view.departments
        default = next((d.id for d in departments if chosen and d.code in chosen), None)
        dialog = IssueDialog(
            departments=departments,
            doctors=list(app.doctors.values()),
            department_id=default,
            patient=patient,
            search=find_patients(app),
            offline=not app.db_online,
        )
        self.app.push_screen(dialog, self._issue_chosen)

    def _issue_chosen(self, request: IssueRequest | None) -> None:
        if request is not None:
            self.run_worker(issue_ticket(self.reception, request, self), exit_on_error=False)

    # ---- appointments -------------------------------------------------------------------------
    @work(exclusive=True, group="check-in", exit_on_error=False)
    async def action_check_in(self) -> None:
        app = self.reception
        found = await app.core(
            lambda: clinic.list_appointments(app.ctx, status="booked"),
            offline=lambda: app.appointments,
        )
        if found is None:
            return
        if app.db_online:
            app.appointments = list(found)
            unknown = {a.patient_id for a in found if a.patient_id not in app.names}
            if unknown:
                names = await app.core(lambda: patients.names(app.ctx, patient_ids=unknown))
                app.names.update(names or {})
        chosen = app.chosen_codes
        listed = [a for a in found if chosen is None or a.department_code in chosen]
        tz = app.settings.tz
        options = [
            (
                a,
                f"{a.scheduled_at.astimezone(tz):%H:%M}  {a.department_code}  "
                f"{app.names.get(a.patient_id, a.patient_mrn)} ({a.patient_mrn})",
            )
            for a in listed
        ]
        appointment = await self.app.push_screen_wait(
            ListDialog(
                "Check in an appointment",
                options,
                message="Today's booked appointments"
                + ("" if app.db_online else " (offline copy)"),
                empty="No booked appointments left today.",
            )
        )
        if appointment is not None:
            await self._check_in(cast(AppointmentOut, appointment))

    async def _check_in(self, appointment: AppointmentOut) -> None:
        app = self.reception
        journal = app.journal
        name = app.names.get(appointment.patient_id, appointment.patient_mrn)
        offline = None
        if journal is not None:
            offline = lambda: journal.check_in_appointment(  # noqa: E731
                appointment.id, department_id=appointment.department_id
            )
        result = await app.core(
            lambda: clinic.check_in(app.ctx, appointment=appointment.id), offline=offline
        )
        if isinstance(result, AppointmentOut):
            app.appointments = [a for a in app.appointments if a.id != appointment.id]
            self.app.notify(f"{name} checked in: ticket {result.ticket}", markup=False)
            app.request_refresh(0)
        elif isinstance(result, JournalTicket):
            app.appointments = [a for a in app.appointments if a.id != appointment.id]
            remember_offline(app, result, appointment.department_code, name, 4, None)
            self.app.notify(
                f"{name} checked in offline: ticket {result.ticket_number}",
                severity="warning",
                markup=False,
            )

    # ---- moves on the selected ticket ---------------------------------------------------------
    def action_triage(self) -> None:
        ticket = self.selected()
        if ticket is None:
            return
        app = self.reception
        dept = app.departments.get(ticket.department_id)
        dialog = TriageDialog(
            current=ticket.triage_category,
            targets=dept.targets if dept else None,
            subject=ticket.ticket_number,
        )
        self.app.push_screen(dialog, lambda c: self._triage(ticket, c))

    def _triage(self, ticket: TicketOut | OfflineTicket, category: int | None) -> None:
        if category is None or category == ticket.triage_category:
            return
        app = self.reception
        journal = app.journal
        if isinstance(ticket, OfflineTicket):
            if journal is not None:
                journal.set_triage(triage_category=category, ticket_op_id=ticket.op_id)
                ticket.triage_category = category
                self.redraw(force=True)
                self.app.notify(f"{ticket.ticket_number}: category {category} (saved offline)",
                                severity="warning", markup=False)  # fmt: skip
            return
        offline = None
        if journal is not None:
            offline = lambda: journal.set_triage(triage_category=category, ticket_id=ticket.id)  # noqa: E731
        self.run_worker(
            self._move(
                ticket,
                lambda: queue.change_category(app.ctx, ticket=ticket.id, triage_category=category),
                f"{{n}}: triage category {category}",
                offline=offline,
            ),
            exit_on_error=False,
        )

    def action_transfer(self) -> None:
        ticket = self._ticket_or_none()
        if ticket is None:
            return
        app = self.reception
        dialog = TransferDialog(
            ticket_number=ticket.ticket_number,
            departments=app.open_departments() or list(app.departments.values()),
            doctors=list(app.doctors.values()),
            department_id=ticket.department_id,
        )
        self.app.push_screen(dialog, lambda request: self._transfer(ticket, request))

    def _transfer(self, ticket: TicketOut, request: TransferRequest | None) -> None:
        if request is None:
            return
        app = self.reception

        async def run() -> None:
            moved = await app.core(
                lambda: queue.transfer(
                    app.ctx,
                    ticket=ticket.id,
                    department=request.department_id,
                    doctor=request.doctor_id,
                    reason=request.reason or None,
                )
            )
            if moved is None:
                return
            app.drop_ticket(ticket.id)
            self.select_next = str(moved.id)
            app.put_ticket(moved)
            self.app.notify(
                f"{ticket.ticket_number} transferred: now {moved.ticket_number} in "
                f"{moved.department_code}",
                markup=False,
            )

        self.run_worker(run(), exit_on_error=False)

    def action_hold(self) -> None:
        ticket = self._ticket_or_none()
        if ticket is None:
            return
        app = self.reception
        if ticket.status == TicketStatus.HELD:
            call = lambda: queue.return_to_queue(app.ctx, ticket=ticket.id)  # noqa: E731
            done = "{n} is back in the queue"
        else:
            call = lambda: queue.hold(app.ctx, ticket=ticket.id)  # noqa: E731
            done = "{n} is on hold"
        self.run_worker(self._move(ticket, call, done), exit_on_error=False)

    def action_cancel_ticket(self) -> None:
        ticket = self.selected()
        if ticket is None:
            return
        dialog = TextDialog(
            f"Cancel {ticket.ticket_number}",
            prompt="The patient leaves the queue. Why? (optional; Esc keeps the ticket)",
            placeholder="e.g. left before being seen",
        )
        self.app.push_screen(dialog, lambda reason: self._cancel(ticket, reason))

    def _cancel(self, ticket: TicketOut | OfflineTicket, reason: str | None) -> None:
        if reason is None:
            return
        app = self.reception
        journal = app.journal
        if isinstance(ticket, OfflineTicket):
            if journal is not None:
                journal.cancel_ticket(ticket_op_id=ticket.op_id, reason=reason or None)
                app.offline_tickets = [t for t in app.offline_tickets if t.op_id != ticket.op_id]
                self.redraw()
                self.app.notify(f"{ticket.ticket_number} cancelled (saved offline)",
                                severity="warning", markup=False)  # fmt: skip
            return
        offline = None
        if journal is not None:
            offline = lambda: journal.cancel_ticket(ticket_id=ticket.id, reason=reason or None)  # noqa: E731
        self.run_worker(
            self._move(
                ticket,
                lambda: queue.cancel(app.ctx, ticket=ticket.id, reason=reason or None),
                "{n} cancelled (u: undo)",
                offline=offline,
            ),
            exit_on_error=False,
        )

    def _move_selected(self, operation: Callable[..., Awaitable[TicketOut]], done: str) -> None:
        """Run a core move (``operation(ctx, ticket=...)``) on the selected ticket in the background."""
        ticket = self._ticket_or_none()
        if ticket is not None:
            app = self.reception
            self.run_worker(
                self._move(ticket, lambda: operation(app.ctx, ticket=ticket.id), done),
                exit_on_error=False,
            )

    def action_no_show(self) -> None:
        self._move_selected(queue.no_show, "{n} marked as a no-show (u: undo)")

    def action_recall(self) -> None:
        self._move_selected(queue.recall, "{n} called again")

    def action_undo(self) -> None:
        self._move_selected(queue.undo_last, "{n}: last move undone")

    def action_print_ticket(self) -> None:
        """The selected ticket's slip on this desk's printer (in the background)."""
        ticket = self._ticket_or_none()  # not one issued offline (dimmed): no slip data yet
        if ticket is not None:
            self.run_worker(
                print_ticket(self.reception, ticket), group="print", exit_on_error=False
            )

    # ---- search and filter --------------------------------------------------------------------
    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""
        self.table.focus()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.view = QueueFilter(self.view.departments, self.view.statuses, event.value)
        self.redraw()  # keeps the selected ticket selected if it still shows
        if event.value.strip() and self.table.row_count:
            self.table.move_to(0)  # typing: the first match

    @on(Input.Submitted, "#search")
    def _search_done(self) -> None:
        self.table.focus()

    def action_filter(self) -> None:
        dialog = FilterDialog(departments=self.reception.open_departments(), current=self.view)
        self.app.push_screen(dialog, self._filtered)

    def _filtered(self, view: QueueFilter | None) -> None:
        if view is not None:
            self.view = view
            self.redraw()


# ---- shared with the patients screen ----------------------------------------------------------
def find_patients(app: ReceptionApp) -> Callable[[str], Awaitable[list[tuple[str, ChosenPatient]]]]:
    """The issue dialog's patient search: the server's, or patients registered here offline."""

    async def search(text: str) -> list[tuple[str, ChosenPatient]]:
        if app.db_online:
            found = await app.core(lambda: patients.search(app.ctx, query=text), errors="raise")
            return [(patient_label(m), ChosenPatient.of(m)) for m in found or []]
        words = text.lower().split()
        return [
            (f"{name} · registered offline", ChosenPatient(name, op_id=op_id))
            for op_id, name in app.offline_patients.items()
            if all(w in name.lower() for w in words)
        ]

    return search


def remember_offline(
    app: ReceptionApp,
    ticket: JournalTicket,
    department_code: str,
    name: str | None,
    category: int,
    doctor_id: uuid.UUID | None,
) -> OfflineTicket:
    row = OfflineTicket(
        op_id=ticket.op_id,
        ticket_number=ticket.ticket_number,
        department_id=ticket.department_id,
        department_code=department_code,
        triage_category=category,
        arrived_at=ticket.arrived_at,
        patient_name=name,
        doctor_id=doctor_id,
    )
    app.offline_tickets.append(row)
    app.deliver(QueueUpdated())
    return row


async def issue_ticket(
    app: ReceptionApp, request: IssueRequest, screen: QueueScreen | None
) -> None:
    """Issue a ticket centrally, or from the reserved numbers when the database is away."""
    patient = request.patient
    journal = app.journal
    op_id = uuid.uuid4()
    offline = None
    if journal is not None:
        offline = lambda: journal.issue_ticket(  # noqa: E731
            request.department_id,
            patient_id=patient.patient_id if patient else None,
            patient_op_id=patient.op_id if patient else None,
            doctor_id=request.doctor_id,
            triage_category=request.triage_category,
        )
    if patient is not None and patient.patient_id is None:
        # registered offline: only the journal knows this patient until it is sent
        if offline is None or app.connectivity is None:
            return
        result: Any = offline()
        if app.db_online:  # the database is back already: send it now
            app.run_worker(app.connectivity.push_pending(), exit_on_error=False)
    else:
        result = await app.core(
            lambda: queue.issue(
                app.ctx,
                department=request.department_id,
                patient=patient.patient_id if patient else None,
                triage_category=request.triage_category,
                doctor=request.doctor_id,
                client_op_id=op_id,
            ),
            offline=offline,
        )
    name = patient.name if patient else None
    who = name or "a walk-in"
    if isinstance(result, TicketOut):
        if screen is not None:
            screen.select_next = str(result.id)
        app.put_ticket(result, name=name)
        wait = (
            f", about {round(result.estimate.p50_minutes)} min"
            if result.estimate is not None
            else ""
        )
        where = f"number {result.position} in line" if result.position else "in the queue"
        app.notify(f"Ticket {result.ticket_number} for {who}: {where}{wait}", title="Issued",
                   markup=False)  # fmt: skip
    elif isinstance(result, JournalTicket):
        dept = app.departments.get(request.department_id)
        row = remember_offline(app, result, dept.code if dept else "?", name,
                               request.triage_category, request.doctor_id)  # fmt: skip
        if screen is not None:
            screen.select_next = row.key
            screen.redraw()
        app.notify(
            f"Ticket {result.ticket_number} for {who} (offline: it joins the queue when the "
            "database is back)",
            title="Issued offline",
            severity="warning",
            markup=False,
        )


__all__ = ["QueueScreen", "find_patients", "issue_ticket", "remember_offline"]
