"""The reception's own dialogs: issue a ticket, transfer one, filter the queue."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option

from iqms.core.enums import TriageCategory
from iqms.core.errors import IQMSError
from iqms.core.schemas.clinic import DepartmentOut, DoctorOut
from iqms.core.schemas.patients import PatientMatch
from iqms.tui.dialogs import Dialog
from iqms.tui.format import status_word, target_text, triage_label
from iqms.tui.reception.rows import OPEN_STATUSES, QueueFilter, doctor_label
from iqms.tui.widgets import KeyBar

ANY_DOCTOR = "any"
SEARCH_DELAY = 0.3


@dataclass(frozen=True)
class ChosenPatient:
    """A patient picked for a ticket: a record (id) or one registered offline (op id)."""

    name: str
    mrn: str | None = None
    patient_id: uuid.UUID | None = None
    op_id: uuid.UUID | None = None

    def describe(self) -> str:
        return f"{self.name} ({self.mrn})" if self.mrn else f"{self.name} (registered offline)"

    @classmethod
    def of(cls, match: PatientMatch) -> ChosenPatient:
        return cls(match.full_name, mrn=match.mrn, patient_id=match.id)


def patient_label(match: PatientMatch) -> str:
    """One search result as the desk reads it: name, MRN, date of birth, phone."""
    born = f" · born {match.date_of_birth:%d/%m/%Y}" if match.date_of_birth else ""
    phone = f" · {match.phone}" if match.phone else ""
    return f"{match.full_name} · {match.mrn}{born}{phone}"


@dataclass(frozen=True)
class IssueRequest:
    department_id: uuid.UUID
    triage_category: int
    patient: ChosenPatient | None = None
    doctor_id: uuid.UUID | None = None


@dataclass(frozen=True)
class TransferRequest:
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None
    reason: str


def _category_options(targets: dict[int, int] | None) -> list[tuple[str, int]]:
    return [(f"{triage_label(c)} — seen {target_text(c, targets)}", int(c)) for c in TriageCategory]


def _doctor_options(
    doctors: Sequence[DoctorOut], department_id: uuid.UUID | None
) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [("any doctor of the department", ANY_DOCTOR)]
    by_id = {d.id: d for d in doctors}
    for doc in doctors:
        if doc.department_id == department_id:
            options.append(
                (f"{doctor_label(by_id, doc.id)} · {doc.room} · {doc.status.value}", doc.id)
            )
    return options


class IssueDialog(Dialog):
    """Issue a ticket: a patient found by name/MRN/phone/date of birth (or a walk-in)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "issue", "Issue ticket"),
    ]

    def __init__(
        self,
        *,
        departments: Sequence[DepartmentOut],
        doctors: Sequence[DoctorOut],
        department_id: uuid.UUID | None = None,
        patient: ChosenPatient | None = None,
        search: Callable[[str], Awaitable[list[tuple[str, ChosenPatient]]]] | None = None,
        offline: bool = False,
    ) -> None:
        super().__init__()
        self.departments = list(departments)
        self.doctors = list(doctors)
        self.department_id = department_id or (self.departments[0].id if self.departments else None)
        self.patient = patient
        self.search = search
        self.offline = offline
        self.matches: list[tuple[str, ChosenPatient]] = []
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Issue a ticket" + (" (offline)" if self.offline else ""), classes="title")
            yield Static(self._patient_text(), id="chosen")
            yield Input(
                placeholder="find patient: name, MRN, phone, date of birth (empty: walk-in)",
                compact=True,
                id="search",
                disabled=self.search is None,
            )
            yield OptionList(id="matches")
            yield Label("Department")
            yield Select(
                [(f"{d.code} · {d.name}", d.id) for d in self.departments],
                value=self.department_id if self.department_id else Select.NULL,
                allow_blank=False,
                compact=True,
                id="department",
            )
            yield Label("Triage category")
            yield Select(
                _category_options(self._targets()),
                value=int(TriageCategory.STANDARD),
                allow_blank=False,
                compact=True,
                id="category",
            )
            yield Label("Doctor")
            yield Select(
                _doctor_options(self.doctors, self.department_id),
                value=ANY_DOCTOR,
                allow_blank=False,
                compact=True,
                id="doctor",
            )
            yield Label("", classes="message", id="message")
            yield Label("Enter on an empty search or Ctrl+S: issue   Esc: cancel", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#matches", OptionList).display = False
        if self.search is not None:
            self.query_one("#search", Input).focus()
        else:
            self.query_one("#category", Select).focus()

    def _targets(self) -> dict[int, int] | None:
        for dept in self.departments:
            if dept.id == self.department_id:
                return dept.targets
        return None

    def _patient_text(self) -> Text:
        if self.patient is None:
            return Text.assemble(("Patient: ", "bold"), ("walk-in (no patient record)", "italic"))
        return Text.assemble(("Patient: ", "bold"), self.patient.describe())

    @on(Select.Changed, "#department")
    def _department_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, uuid.UUID) and event.value != self.department_id:
            self.department_id = event.value
            self.query_one("#doctor", Select).set_options(
                _doctor_options(self.doctors, event.value)
            )
            category = self.query_one("#category", Select)
            chosen = category.value  # the targets differ per department; the choice stays
            category.set_options(_category_options(self._targets()))
            category.value = chosen

    @on(Input.Changed, "#search")
    def _typed(self, event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(SEARCH_DELAY, lambda: self._find(event.value))

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.action_issue()
        elif self.matches:
            self._choose(self.matches[0][1])

    @work(exclusive=True, group="patient-search", exit_on_error=False)
    async def _find(self, text: str) -> None:
        options = self.query_one("#matches", OptionList)
        if self.search is None or len(text.strip()) < 2:
            self.matches = []
            options.clear_options()
            options.display = False
            return
        try:
            self.matches = await self.search(text)
        except IQMSError as exc:
            self.query_one("#message", Label).update(str(exc))
            return
        options.clear_options()
        options.add_options([Option(label, id=str(i)) for i, (label, _) in enumerate(self.matches)])
        options.display = bool(self.matches)
        self.query_one("#message", Label).update(
            "" if self.matches else f"nobody found for {text!r}"
        )

    @on(OptionList.OptionSelected, "#matches")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self._choose(self.matches[int(event.option.id or 0)][1])

    def _choose(self, patient: ChosenPatient) -> None:
        self.patient = patient
        self.query_one("#chosen", Static).update(self._patient_text())
        search = self.query_one("#search", Input)
        search.value = ""
        self.matches = []
        options = self.query_one("#matches", OptionList)
        options.clear_options()
        options.display = False
        self.query_one("#category", Select).focus()

    def action_issue(self) -> None:
        if self.department_id is None:
            self.query_one("#message", Label).update("There is no open department.")
            return
        category = self.query_one("#category", Select).value
        doctor = self.query_one("#doctor", Select).value
        self.dismiss(
            IssueRequest(
                department_id=self.department_id,
                triage_category=int(category) if isinstance(category, int) else 4,
                patient=self.patient,
                doctor_id=doctor if isinstance(doctor, uuid.UUID) else None,
            )
        )


class TransferDialog(Dialog):
    """Transfer a ticket to another department or doctor (it keeps its arrival time)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "transfer", "Transfer"),
    ]

    def __init__(
        self,
        *,
        ticket_number: str,
        departments: Sequence[DepartmentOut],
        doctors: Sequence[DoctorOut],
        department_id: uuid.UUID,
    ) -> None:
        super().__init__()
        self.ticket_number = ticket_number
        self.departments = list(departments)
        self.doctors = list(doctors)
        self.department_id = department_id

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Transfer {self.ticket_number}", classes="title")
            yield Label("To department")
            yield Select(
                [(f"{d.code} · {d.name}", d.id) for d in self.departments],
                value=self.department_id,
                allow_blank=False,
                compact=True,
                id="department",
            )
            yield Label("To doctor")
            yield Select(
                _doctor_options(self.doctors, self.department_id),
                value=ANY_DOCTOR,
                allow_blank=False,
                compact=True,
                id="doctor",
            )
            yield Label("Reason (optional)")
            yield Input(placeholder="why it moves", max_length=200, compact=True, id="reason")
            yield Label("", classes="message", id="message")
            yield Label("Enter in the reason or Ctrl+S: transfer   Esc: cancel", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#department", Select).focus()

    @on(Select.Changed, "#department")
    def _department_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, uuid.UUID) and event.value != self.department_id:
            self.department_id = event.value
            self.query_one("#doctor", Select).set_options(
                _doctor_options(self.doctors, event.value)
            )

    @on(Input.Submitted, "#reason")
    def _submitted(self) -> None:
        self.action_transfer()

    def action_transfer(self) -> None:
        doctor = self.query_one("#doctor", Select).value
        self.dismiss(
            TransferRequest(
                department_id=self.department_id,
                doctor_id=doctor if isinstance(doctor, uuid.UUID) else None,
                reason=self.query_one("#reason", Input).value.strip(),
            )
        )


class FilterDialog(Dialog):
    """Which departments and statuses the queue shows (Space toggles, F or Ctrl+S applies)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("f,ctrl+s", "apply", "Apply"),
    ]

    def __init__(self, *, departments: Sequence[DepartmentOut], current: QueueFilter) -> None:
        super().__init__()
        self.departments = list(departments)
        self.current = current

    def compose(self) -> ComposeResult:
        chosen = self.current.departments
        with Vertical(id="dialog"):
            yield Label("Show in the queue", classes="title")
            yield Label("Departments")
            yield SelectionList[str](
                *[
                    (f"{d.code} · {d.name}", d.code, chosen is None or d.code in chosen)
                    for d in self.departments
                ],
                id="departments",
            )
            yield Label("Statuses")
            yield SelectionList[str](
                *[
                    (status_word(s), s.value, s.value in self.current.statuses)
                    for s in OPEN_STATUSES
                ],
                id="statuses",
            )
            yield Label("", classes="message", id="message")
            yield Label("Space: toggle   Tab: next list   F: apply   Esc: cancel", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#departments", SelectionList).focus()

    def action_apply(self) -> None:
        departments = set(self.query_one("#departments", SelectionList).selected)
        statuses = set(self.query_one("#statuses", SelectionList).selected)
        if not departments or not statuses:
            self.query_one("#message", Label).update(
                "Choose at least one department and one status."
            )
            return
        every = departments == {d.code for d in self.departments}
        self.dismiss(
            QueueFilter(
                departments=None if every else frozenset(departments),
                statuses=frozenset(statuses),
                search=self.current.search,
            )
        )


__all__ = [
    "ChosenPatient",
    "FilterDialog",
    "IssueDialog",
    "IssueRequest",
    "TransferDialog",
    "TransferRequest",
    "patient_label",
]
