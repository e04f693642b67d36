"""Patients: find by name, MRN, phone or date of birth; register; edit with the version check.

The form checks each field with the core's own schema as the receptionist
leaves it and shows the schema's message beside the field; the core checks
again when the form is saved (a duplicate, a national id in use, a record
changed meanwhile) and its message goes beside the field it names.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, cast

import pydantic
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Input, Label, Select, Static

from iqms.core.enums import NotifyChannel
from iqms.core.errors import Conflict, DatabaseUnavailable, IQMSError, ValidationError
from iqms.core.schemas.patients import PatientCreate, PatientMatch, PatientOut
from iqms.core.services import patients
from iqms.core.sync.journal import JournalEntry
from iqms.tui.dialogs import ConfirmDialog, Dialog
from iqms.tui.errors import notice_for
from iqms.tui.reception.dialogs import ChosenPatient, IssueDialog, IssueRequest
from iqms.tui.screens import ConsoleScreen
from iqms.tui.widgets import FieldInput, KeyBar

if TYPE_CHECKING:
    from iqms.tui.reception.app import ReceptionApp

SEARCH_DELAY = 0.3
TEXT_FIELDS = (
    ("full_name", "Full name", "as on their documents"),
    ("phone", "Mobile phone", "e.g. 07700 900123 or +44 7700 900123"),
    ("date_of_birth", "Date of birth", "YYYY-MM-DD or DD/MM/YYYY"),
    ("national_id", "National id", "optional"),
)
CHANNELS = [("no messages", "none"), ("SMS to the mobile phone", "sms"), ("push (app)", "push")]
LANGUAGES = [("English", "en"), ("Spanish", "es")]
_DMY = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*$")


def typed_date(text: str) -> str:
    """``07/03/1984`` -> ``1984-03-07`` (day first, as written here); other text unchanged."""
    match = _DMY.match(text)
    if not match:
        return text.strip()
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return text.strip()


def field_errors(model: type[pydantic.BaseModel], values: dict[str, Any]) -> dict[str, str]:
    """The core schema's message for each field it rejects."""
    try:
        model.model_validate(values)
    except pydantic.ValidationError as exc:
        found: dict[str, str] = {}
        for err in exc.errors():
            loc = err.get("loc") or ("",)
            name = str(loc[0])
            kind = str(err.get("type", ""))
            message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            if kind in ("missing", "too_short", "string_too_short") and not values.get(name):
                message = "required"  # pydantic's words for an empty field are for programmers
            elif name == "date_of_birth" and kind.startswith(("date", "datetime")):
                message += " (write it as YYYY-MM-DD or DD/MM/YYYY)"
            found.setdefault(name, message)
        return found
    return {}


class PatientForm(Dialog):
    """Register a new patient, or change one (with the version the form was opened at)."""

    DEFAULT_CSS = """
    PatientForm > #dialog { width: 72; }
    PatientForm .field-error { color: $error; height: auto; width: 100%; }
    PatientForm Input { margin-bottom: 0; background: $boost; }
    PatientForm Input:focus { background: $primary 25%; }
    PatientForm #fields { height: auto; max-height: 100%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+r", "reload", "Reload record"),
    ]

    def __init__(self, *, patient: PatientOut | None = None) -> None:
        super().__init__()
        self.patient = patient
        self.touched: set[str] = set()

    @property
    def reception(self) -> ReceptionApp:
        return cast("ReceptionApp", self.app)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "reload":
            return self.patient is not None
        return True

    def compose(self) -> ComposeResult:
        p = self.patient
        with Vertical(id="dialog"):
            title = f"Patient {p.mrn}" if p else "Register a new patient"
            yield Label(title + ("" if self.reception.db_online else " (offline)"), classes="title")
            yield Label("", classes="message", id="message")
            with VerticalScroll(id="fields"):
                for name, label, hint in TEXT_FIELDS:
                    yield Label(label)
                    value = getattr(p, name, None) if p else None
                    yield FieldInput(
                        value="" if value is None else str(value),
                        placeholder=hint,
                        compact=True,
                        id=f"f-{name}",
                    )
                    yield Label("", classes="field-error", id=f"e-{name}")
                with Horizontal(classes="choices"):
                    with Vertical():
                        yield Label("Messages by")
                        yield Select(
                            CHANNELS,
                            value=p.notify_channel.value if p else NotifyChannel.NONE.value,
                            allow_blank=False,
                            compact=True,
                            id="f-notify_channel",
                        )
                        yield Label("", classes="field-error", id="e-notify_channel")
                    with Vertical():
                        yield Label("Language")
                        yield Select(
                            LANGUAGES,
                            value=p.language if p else "en",
                            allow_blank=False,
                            compact=True,
                            id="f-language",
                        )
                        yield Label("", classes="field-error", id="e-language")
            yield Label("Ctrl+S: save   Esc: cancel", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#f-full_name", Input).focus()

    # ---- values and checks --------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, _, _ in TEXT_FIELDS:
            text = self.query_one(f"#f-{name}", Input).value
            out[name] = typed_date(text) if name == "date_of_birth" else text.strip()
        out["notify_channel"] = self.query_one("#f-notify_channel", Select).value
        out["language"] = self.query_one("#f-language", Select).value
        return out

    def _for_schema(self, values: dict[str, Any]) -> dict[str, Any]:
        return {k: (None if v == "" and k != "full_name" else v) for k, v in values.items()}

    def check(self, *, every: bool = False) -> dict[str, str]:
        """Show the schema's message beside each field the receptionist has been to."""
        errors = field_errors(PatientCreate, self._for_schema(self.values()))
        typed = self.query_one("#f-date_of_birth", Input).value.strip()
        if "date_of_birth" in errors and _DMY.match(typed):
            errors["date_of_birth"] = f"there is no date {typed}"
        for name in [n for n, _, _ in TEXT_FIELDS] + ["notify_channel", "language"]:
            shown = errors.get(name, "") if (every or name in self.touched) else ""
            self.query_one(f"#e-{name}", Label).update(shown)
        return errors

    def show_field_error(self, field: str | None, message: str) -> None:
        if field and self.query(f"#e-{field}"):
            self.query_one(f"#e-{field}", Label).update(message)
            target = self.query(f"#f-{field}")
            if target:
                target.first().focus()
        else:
            self.query_one("#message", Label).update(message)

    @on(Input.Blurred)
    def _left_field(self, event: Input.Blurred) -> None:
        if event.input.id and event.input.id.startswith("f-"):
            self.touched.add(event.input.id[2:])
            self.check()

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        name = (event.input.id or "")[2:]
        if name in self.touched:
            self.check()

    # ---- saving -------------------------------------------------------------------------------
    def action_save(self) -> None:
        errors = self.check(every=True)
        if errors:
            first = (
                next(n for n, _, _ in TEXT_FIELDS if n in errors)
                if any(n in errors for n, _, _ in TEXT_FIELDS)
                else None
            )
            if first:
                self.query_one(f"#f-{first}", Input).focus()
            self.query_one("#message", Label).update("Please correct the fields marked below.")
            return
        self.query_one("#message", Label).update("")
        self._save()

    @work(exclusive=True, group="save-patient", exit_on_error=False)
    async def _save(self, allow_duplicate: bool = False) -> None:
        app = self.reception
        values = self.values()
        try:
            if self.patient is None:
                result = await self._register(values, allow_duplicate)
            else:
                result = await self._update(values)
        except Conflict as exc:
            if self.patient is None and exc.details.get("mrn"):
                again = await app.push_screen_wait(
                    ConfirmDialog(
                        "Possible duplicate",
                        f"{exc}.\n\nRegister a new record anyway (another person)?",
                    )
                )
                if again:
                    self._save(allow_duplicate=True)
                return
            field = exc.details.get("field")
            if field == "version":
                self.show_field_error(None, f"{exc}. Ctrl+R loads the record as it is now.")
            else:
                self.show_field_error(field, str(exc))
            return
        except ValidationError as exc:
            self.show_field_error(exc.field, str(exc))
            return
        except Exception as exc:
            self.show_field_error(None, notice_for(exc).message)
            return
        if result is not None:
            self.dismiss(result)

    async def _register(self, values: dict[str, Any], allow_duplicate: bool) -> Any:
        app = self.reception
        journal = app.journal
        clean = {k: v for k, v in values.items() if v not in ("", None)}
        offline = None
        if journal is not None and not allow_duplicate:
            offline = lambda: journal.register_patient(clean)  # noqa: E731
        return await app.core(
            lambda: patients.register(app.ctx, **clean, allow_duplicate=allow_duplicate),
            offline=offline,
            errors="raise",
        )

    async def _update(self, values: dict[str, Any]) -> Any:
        app = self.reception
        journal = app.journal
        p = self.patient
        assert p is not None
        before = {
            "full_name": p.full_name,
            "phone": p.phone or "",
            "date_of_birth": p.date_of_birth.isoformat() if p.date_of_birth else "",
            "national_id": p.national_id or "",
            "notify_channel": p.notify_channel.value,
            "language": p.language,
        }
        changed = {k: v for k, v in values.items() if v != before.get(k)}
        if not changed:
            return p
        offline = None
        if journal is not None:
            offline = lambda: journal.update_patient(  # noqa: E731
                changes={k: (v if v != "" else None) for k, v in changed.items()},
                patient_id=p.id,
                base_version=p.version,
                base={k: (before[k] or None) for k in changed},
            )
        return await app.core(
            lambda: patients.update(app.ctx, patient=p.id, version=p.version, **changed),
            offline=offline,
            errors="raise",
        )

    @work(exclusive=True, group="reload-patient", exit_on_error=False)
    async def action_reload(self) -> None:
        if self.patient is None:
            return
        app = self.reception
        current = await app.core(lambda: patients.get(app.ctx, patient=self.patient.id))  # type: ignore[union-attr]
        if current is None:
            return
        self.patient = current
        for name, _, _ in TEXT_FIELDS:
            value = getattr(current, name)
            self.query_one(f"#f-{name}", Input).value = "" if value is None else str(value)
        self.query_one("#f-notify_channel", Select).value = current.notify_channel.value
        self.query_one("#f-language", Select).value = current.language
        self.query_one("#message", Label).update(
            f"Reloaded: version {current.version} as saved at "
            f"{current.updated_at.astimezone(app.settings.tz):%H:%M}. Make your change again."
        )
        self.check()


class PatientsScreen(ConsoleScreen):
    """F2: find, register and edit patients; issue a ticket for one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", key_display="/"),
        Binding("ctrl+n", "new", "New patient", priority=True),
        Binding("ctrl+e", "edit", "Edit", priority=True),
        Binding("ctrl+t", "issue", "Issue ticket", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.results: list[PatientMatch | ChosenPatient] = []
        self._timer: Timer | None = None

    @property
    def reception(self) -> ReceptionApp:
        return cast("ReceptionApp", self.app)

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="find a patient: name, MRN, phone or date of birth", id="find")
        yield DataTable(id="patients", cursor_type="row", zebra_stripes=True)
        yield Static(
            "Type at least 2 characters. Ctrl+N registers a new patient.", id="patient-info"
        )

    def on_mount(self) -> None:
        table = self.query_one("#patients", DataTable)
        table.add_column("MRN", key="mrn", width=10)
        table.add_column("Name", key="name", width=28)
        table.add_column("Born", key="born", width=10)
        table.add_column("Phone", key="phone", width=14)
        self.query_one("#find", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("edit", "issue"):
            chosen = self.selected()
            if chosen is None:
                return None
            if action == "edit" and isinstance(chosen, ChosenPatient):
                return None  # registered offline: editable once the server has it
        return True

    def action_search(self) -> None:
        self.query_one("#find", Input).focus()

    @on(Input.Changed, "#find")
    def _typed(self, event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(SEARCH_DELAY, lambda: self._search(event.value))

    @on(Input.Submitted, "#find")
    def _to_results(self) -> None:
        self.query_one("#patients", DataTable).focus()

    @on(DataTable.RowSelected, "#patients")
    def _row_selected(self) -> None:
        chosen = self.selected()
        if isinstance(chosen, ChosenPatient):
            self.action_issue()
        elif chosen is not None:
            self.action_edit()

    @on(DataTable.RowHighlighted, "#patients")
    def _row_highlighted(self) -> None:
        self.refresh_bindings()

    def selected(self) -> PatientMatch | ChosenPatient | None:
        table = self.query_one("#patients", DataTable)
        if not self.results or table.row_count == 0:
            return None
        index = table.cursor_row
        return self.results[index] if 0 <= index < len(self.results) else None

    @work(exclusive=True, group="patient-search", exit_on_error=False)
    async def _search(self, text: str) -> None:
        app = self.reception
        info = self.query_one("#patient-info", Static)
        if len(text.strip()) < 2:
            self._show([])
            info.update("Type at least 2 characters. Ctrl+N registers a new patient.")
            return
        found: list[PatientMatch | ChosenPatient] = []
        if app.db_online:
            try:
                found.extend(
                    await app.core(lambda: patients.search(app.ctx, query=text), errors="raise")
                    or []
                )
            except DatabaseUnavailable:
                pass
            except IQMSError as exc:
                info.update(str(exc))
                return
        words = text.lower().split()
        found.extend(
            ChosenPatient(name, op_id=op_id)
            for op_id, name in app.offline_patients.items()
            if all(w in name.lower() for w in words)
        )
        self._show(found)
        info.update(
            f"{len(found)} found. Enter: open   Ctrl+T: issue a ticket   Ctrl+N: new patient"
            if found
            else f"Nobody found for {text!r}. Ctrl+N registers a new patient."
        )

    def _show(self, found: list[PatientMatch | ChosenPatient]) -> None:
        self.results = found
        table = self.query_one("#patients", DataTable)
        table.clear()
        for i, p in enumerate(found):
            if isinstance(p, ChosenPatient):
                table.add_row(Text("offline", style="italic"), p.name, "", "", key=f"offline-{i}")
            else:
                born = f"{p.date_of_birth:%d/%m/%Y}" if p.date_of_birth else ""
                table.add_row(p.mrn, p.full_name, born, p.phone or "", key=str(p.id))
        self.refresh_bindings()

    def action_new(self) -> None:
        if self.reception.refused_offline():
            return
        self.app.push_screen(PatientForm(), self._saved)

    @work(exclusive=True, group="open-patient", exit_on_error=False)
    async def action_edit(self) -> None:
        chosen = self.selected()
        if not isinstance(chosen, PatientMatch):
            return
        app = self.reception
        record = await app.core(lambda: patients.get(app.ctx, patient=chosen.id))
        if record is not None:
            self.app.push_screen(PatientForm(patient=record), self._saved)

    def _saved(self, result: Any) -> None:
        app = self.reception
        if isinstance(result, PatientOut):
            app.names[result.id] = result.full_name
            self.app.notify(
                f"Saved {result.full_name} ({result.mrn})", title="Patient", markup=False
            )
            self.query_one("#find", Input).value = result.mrn
        elif isinstance(result, JournalEntry):
            if result.kind == "patient.register":
                name = str(result.body.get("patient", {}).get("full_name", "patient"))
                app.offline_patients[result.op_id] = name
                self.query_one("#find", Input).value = name
                message = f"{name} registered offline; the MRN comes when the database is back"
            else:
                message = "Changes saved offline; they are sent when the database is back"
            self.app.notify(message, title="Patient", severity="warning", markup=False)
        app.bump_status()

    def action_issue(self) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        patient = chosen if isinstance(chosen, ChosenPatient) else ChosenPatient.of(chosen)
        app = self.reception
        departments = app.open_departments()
        if not departments:
            self.app.notify("There is no open department to issue tickets for.", severity="warning")
            return
        dialog = IssueDialog(
            departments=departments,
            doctors=list(app.doctors.values()),
            patient=patient,
            offline=not app.db_online,
        )
        self.app.push_screen(dialog, self._issue)

    def _issue(self, request: IssueRequest | None) -> None:
        from iqms.tui.reception.queue_screen import issue_ticket

        if request is not None:
            self.run_worker(issue_ticket(self.reception, request, None), exit_on_error=False)


__all__ = ["PatientForm", "PatientsScreen", "field_errors", "typed_date"]
