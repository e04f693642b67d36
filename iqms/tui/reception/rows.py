"""The reception queue as table rows: what each ticket shows, in calling order, filtered.

Pure functions and small records (no widgets), so the queue screen, its tests
and the benchmark share them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from rich.text import Text

from iqms.core.enums import TicketStatus
from iqms.core.schemas.clinic import DoctorOut
from iqms.core.schemas.queue import TicketOut
from iqms.tui.format import (
    DUE_STYLES,
    due_state,
    status_word,
    target_text,
    triage_label,
    triage_text,
)

COLUMNS: tuple[tuple[str, str], ...] = (
    ("ticket", "No."),
    ("patient", "Patient"),
    ("triage", "Triage"),
    ("waited", "Waited"),
    ("due", "Due"),
    ("estimate", "Est."),
    ("doctor", "Doctor/room"),
    ("status", "Status"),
    ("dept", "Dept"),
)
#: shorter headings for narrow terminals
NARROW_LABELS = {"triage": "Cat", "waited": "Wait", "doctor": "Doctor"}
OPEN_STATUSES = (
    TicketStatus.WAITING,
    TicketStatus.HELD,
    TicketStatus.CALLED,
    TicketStatus.IN_SERVICE,
)
OFFLINE = "offline"  # the status of a ticket issued here while the database was away


def short_minutes(value: float) -> str:
    """``7m``, ``1h05``: compact durations for table cells."""
    total = max(0, round(value))
    return f"{total}m" if total < 60 else f"{total // 60}h{total % 60:02d}"


def rough(minutes: float, *, up: bool = False) -> float:
    """An estimate as precise as it is: to the minute under 10, then to 5 minutes.

    ``up`` rounds a bound upwards (a "90% within" figure must not shrink).
    """
    if minutes < 10:
        return math.ceil(minutes) if up else round(minutes)
    return 5 * (math.ceil(minutes / 5) if up else round(minutes / 5))


@dataclass
class OfflineTicket:
    """A ticket issued here while offline: shown until the server has it."""

    op_id: uuid.UUID
    ticket_number: str
    department_id: uuid.UUID
    department_code: str
    triage_category: int
    arrived_at: datetime
    patient_name: str | None = None
    doctor_id: uuid.UUID | None = None

    @property
    def key(self) -> str:
        return f"offline:{self.op_id}"


@dataclass
class QueueFilter:
    """What the receptionist chose to see: departments, statuses and a search text."""

    departments: frozenset[str] | None = None  # codes; None: every department
    statuses: frozenset[str] = field(
        default_factory=lambda: frozenset(s.value for s in OPEN_STATUSES)
    )
    search: str = ""

    def describe(self) -> str:
        depts = (
            "all departments" if self.departments is None else ", ".join(sorted(self.departments))
        )
        every = len(self.statuses) == len(OPEN_STATUSES)
        statuses = (
            "every status"
            if every
            else ", ".join(
                status_word(s) for s in [x.value for x in OPEN_STATUSES] if s in self.statuses
            )
        )
        return f"{depts} · {statuses}"

    def matches(self, number: str, name: str | None, department: str, status: str) -> bool:
        if self.departments is not None and department not in self.departments:
            return False
        if status != OFFLINE and status not in self.statuses:
            return False
        text = self.search.strip().lower()
        if not text:
            return True
        compact = number.lower().replace("-", "")
        typed = text.replace("-", "").replace(" ", "")
        if compact.startswith(typed) or compact.endswith(typed.lstrip("0") or typed):
            return True
        return bool(name) and all(word in (name or "").lower() for word in text.split())


@dataclass(frozen=True)
class Row:
    """One table row: its key (ticket id, or ``offline:<op id>``) and its cells."""

    key: str
    number: str
    cells: tuple[object, ...]
    status: str


def doctor_label(doctors: Mapping[uuid.UUID, DoctorOut], doctor_id: uuid.UUID | None) -> str:
    if doctor_id is None:
        return ""
    doc = doctors.get(doctor_id)
    if doc is None:
        return "?"
    surname = doc.full_name.split()[-1] if doc.full_name else doc.username
    return f"Dr {surname}" if not surname.lower().startswith("dr") else surname


def ticket_row(
    ticket: TicketOut,
    *,
    now: datetime,
    tz: tzinfo,
    name: str | None,
    doctors: Mapping[uuid.UUID, DoctorOut],
    wide: bool,
) -> Row:
    """The cells of one ticket: number, name, coloured category, waits, doctor, status."""
    status = ticket.status
    if status == TicketStatus.WAITING:
        state = due_state(now, ticket.arrived_at, ticket.due_at)
        left = (ticket.due_at - now).total_seconds() / 60
        due: object = Text(
            f"{short_minutes(-left)} over" if state == "overdue" else f"in {short_minutes(left)}",
            style=DUE_STYLES[state],
        )
    elif status == TicketStatus.HELD:
        due = Text("held", style="italic")
    else:
        due = Text("")
    estimate = ""
    if ticket.estimate is not None:
        p50 = ticket.estimate.p50_minutes
        estimate = "next" if p50 < 1 else f"~{short_minutes(rough(p50))}"
        if wide and ticket.estimate.p90_minutes >= 1:
            estimate += f" ≤{short_minutes(rough(ticket.estimate.p90_minutes, up=True))}"
    word = status_word(status)
    if status in (TicketStatus.CALLED, TicketStatus.IN_SERVICE):
        # Where the patient should be: the room (and, on a wide screen, whose room it is).
        doctor = ticket.called_room or ""
        if wide and ticket.called_doctor_id is not None:
            doctor = f"{doctor} {doctor_label(doctors, ticket.called_doctor_id)}".strip()
    else:
        doctor = doctor_label(doctors, ticket.doctor_id)
    if ticket.recall_count and status == TicketStatus.CALLED:
        word += f" ×{ticket.recall_count + 1}"
    cell = ticket.ticket_number
    patient: object = (
        name if name else Text("walk-in" if ticket.patient_id is None else "—", style="dim")
    )
    cells = (
        cell,
        patient,
        triage_text(ticket.triage_category, short=not wide),
        short_minutes((now - ticket.arrived_at).total_seconds() / 60),
        due,
        estimate,
        doctor,
        word,
        ticket.department_code,
    )
    return Row(str(ticket.id), ticket.ticket_number, cells, status.value)


def offline_row(
    ticket: OfflineTicket, *, now: datetime, doctors: Mapping[uuid.UUID, DoctorOut], wide: bool
) -> Row:
    cells = (
        ticket.ticket_number,
        ticket.patient_name or Text("walk-in", style="dim"),
        triage_text(ticket.triage_category, short=not wide),
        short_minutes((now - ticket.arrived_at).total_seconds() / 60),
        Text(""),
        "",
        doctor_label(doctors, ticket.doctor_id),
        Text("not synced", style="bold #ffaf00"),
        ticket.department_code,
    )
    return Row(ticket.key, ticket.ticket_number, cells, OFFLINE)


class RowCache:
    """Rows already built, reused while their ticket, name, minute and width are unchanged."""

    def __init__(self) -> None:
        self._rows: dict[uuid.UUID, tuple[TicketOut, str | None, Row]] = {}
        self._stamp: tuple[datetime, bool, int] | None = None

    def start(self, now: datetime, wide: bool, doctors: Mapping[uuid.UUID, DoctorOut]) -> None:
        """Forget everything when the minute, the width or the doctors changed."""
        stamp = (now.replace(second=0, microsecond=0), wide, id(doctors))
        if stamp != self._stamp:
            self._rows.clear()
            self._stamp = stamp

    def get(self, ticket: TicketOut, name: str | None) -> Row | None:
        found = self._rows.get(ticket.id)
        if found is not None and found[1] == name and (found[0] is ticket or found[0] == ticket):
            return found[2]  # a reload hands back equal tickets for most rows
        return None

    def put(self, ticket: TicketOut, name: str | None, row: Row) -> None:
        self._rows[ticket.id] = (ticket, name, row)


def build_rows(
    tickets: Iterable[TicketOut],
    *,
    offline: Iterable[OfflineTicket] = (),
    names: Mapping[uuid.UUID, str],
    doctors: Mapping[uuid.UUID, DoctorOut],
    now: datetime,
    tz: tzinfo,
    view: QueueFilter,
    wide: bool,
    cache: RowCache | None = None,
) -> list[Row]:
    """The visible rows in calling order (the order the core returned), offline ones last."""
    if cache is not None:
        cache.start(now, wide, doctors)
    rows: list[Row] = []
    for ticket in tickets:
        name = names.get(ticket.patient_id) if ticket.patient_id else None
        if not view.matches(
            ticket.ticket_number, name, ticket.department_code, ticket.status.value
        ):
            continue
        row = cache.get(ticket, name) if cache is not None else None
        if row is None:
            row = ticket_row(ticket, now=now, tz=tz, name=name, doctors=doctors, wide=wide)
            if cache is not None:
                cache.put(ticket, name, row)
        rows.append(row)
    for extra in offline:
        if view.matches(extra.ticket_number, extra.patient_name, extra.department_code, OFFLINE):
            rows.append(offline_row(extra, now=now, doctors=doctors, wide=wide))
    return rows


def describe_ticket(
    ticket: TicketOut,
    *,
    name: str | None,
    doctors: Mapping[uuid.UUID, DoctorOut],
    targets: Mapping[int, int] | None,
    tz: tzinfo,
) -> Text:
    """The line under the table about the selected ticket."""
    parts: list[object] = [(ticket.ticket_number, "bold"), "  "]
    parts += [name or ("walk-in" if ticket.patient_id is None else "patient"), "  "]
    parts += [triage_text(ticket.triage_category), " "]
    parts.append((target_text(ticket.triage_category, dict(targets or {})), "italic"))
    parts.append(f"  arrived {ticket.arrived_at.astimezone(tz):%H:%M}")
    if ticket.status == TicketStatus.WAITING:
        parts.append(f", due {ticket.due_at.astimezone(tz):%H:%M}")
        if ticket.position is not None:
            parts.append(f", position {ticket.position}")
        if ticket.estimate is not None:
            parts.append(
                f", est. {round(ticket.estimate.p50_minutes)} min (90%: ≤{round(ticket.estimate.p90_minutes)})"
            )
    elif ticket.called_room:
        parts.append(f", {status_word(ticket.status)} to {ticket.called_room}")
    doctor = doctor_label(doctors, ticket.doctor_id)
    if doctor:
        parts.append(f", for {doctor}")
    parts.append(f"  [{ticket.department_code}]")
    return Text.assemble(*parts)  # type: ignore[arg-type]


__all__ = [
    "COLUMNS",
    "NARROW_LABELS",
    "OFFLINE",
    "OPEN_STATUSES",
    "OfflineTicket",
    "QueueFilter",
    "Row",
    "RowCache",
    "build_rows",
    "describe_ticket",
    "doctor_label",
    "offline_row",
    "rough",
    "short_minutes",
    "ticket_row",
    "triage_label",
]
