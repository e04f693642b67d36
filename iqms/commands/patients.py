"""``iqms patients ...``: register patients, find them, show and change their records.

Every read of a patient's record is audited. Messages (SMS) go only to patients
who agreed to them: opting in takes ``--notify sms`` together with ``--consent``.
Changes carry the record's version (``--if-version``, as ``patients show``
prints it), so a change made meanwhile at another desk is never overwritten.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from iqms.commands._common import (
    CsvOpt,
    ExitCode,
    JsonOpt,
    fail,
    info,
    kv,
    local_time,
    print_json,
    print_rows,
    settings_or_exit,
)
from iqms.commands._session import run_as_user
from iqms.core.config import Settings
from iqms.core.schemas.patients import PatientOut
from iqms.core.service import Context
from iqms.core.services import patients

app = typer.Typer(
    help="Patients: register, find, show and change records (every read is audited).",
    no_args_is_help=True,
)


class Messages(StrEnum):
    """How a patient hears about their ticket (push needs the patient's phone app)."""

    SMS = "sms"
    NONE = "none"


LANGUAGES = {"en": "English", "es": "Spanish"}

PatientArg = Annotated[str, typer.Argument(help="The patient's MRN (like MRN000042) or id.")]
PhoneOpt = Annotated[
    str | None,
    typer.Option("--phone", help="Mobile number, international (+44...) or national."),
]
BirthOpt = Annotated[
    str | None, typer.Option("--dob", help="Date of birth, YYYY-MM-DD (e.g. 1984-02-11).")
]
NationalIdOpt = Annotated[
    str | None, typer.Option("--national-id", help="National identity number, if known.")
]
LanguageOpt = Annotated[
    str | None,
    typer.Option("--language", help="Language of their messages: en (English) or es (Spanish)."),
]
NotifyOpt = Annotated[
    Messages | None,
    typer.Option(
        "--notify",
        help="Send SMS about their ticket ('sms', needs --phone and --consent) or not ('none').",
        case_sensitive=False,
    ),
]
ConsentOpt = Annotated[
    bool,
    typer.Option(
        "--consent",
        help="The patient agreed to receive messages about their ticket (needed for --notify sms).",
    ),
]

LIST_COLUMNS = ["mrn", "full_name", "phone", "date_of_birth"]
MACHINE_COLUMNS = [*LIST_COLUMNS, "id"]


def _check_consent(notify: Messages | None, consent: bool) -> None:
    if notify == Messages.SMS and not consent:
        fail(
            "SMS only with the patient's consent: ask them, then add --consent",
            ExitCode.INVALID,
        )


def _channel(record: PatientOut) -> str:
    channel = record.notify_channel.value
    if channel == "none":
        return "no messages"
    return f"{channel} to {record.phone}" if channel == "sms" else channel


def _describe(settings: Settings, record: PatientOut) -> list[tuple[str, Any]]:
    return [
        ("mrn", record.mrn),
        ("name", record.full_name),
        ("date of birth", record.date_of_birth or "-"),
        ("phone", record.phone or "-"),
        ("national id", record.national_id or "-"),
        ("messages", _channel(record)),
        ("language", LANGUAGES.get(record.language, record.language)),
        ("version", record.version),
        ("registered", local_time(settings, record.created_at)),
        ("changed", local_time(settings, record.updated_at)),
    ]


@app.command()
def add(
    full_name: Annotated[str, typer.Argument(help="The patient's full name.")],
    phone: PhoneOpt = None,
    date_of_birth: BirthOpt = None,
    national_id: NationalIdOpt = None,
    language: LanguageOpt = "en",
    notify: NotifyOpt = None,
    consent: ConsentOpt = False,
    allow_duplicate: Annotated[
        bool,
        typer.Option(
            "--allow-duplicate",
            help="Register even though a patient with this phone and date of birth exists "
            "(a different person, e.g. twins sharing a parent's phone).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a patient; prints the new MRN."""
    settings = settings_or_exit()
    _check_consent(notify, consent)
    if notify == Messages.SMS and not phone:
        fail("SMS needs a phone number: add --phone", ExitCode.INVALID)
    record = run_as_user(
        settings,
        lambda ctx: patients.register(
            ctx,
            full_name=full_name,
            phone=phone,
            date_of_birth=date_of_birth,
            national_id=national_id,
            notify_channel=(notify or Messages.NONE).value,
            language=language or "en",
            allow_duplicate=allow_duplicate,
        ),
    )
    if as_json:
        print_json(record.model_dump(mode="json"))
    else:
        typer.echo(record.mrn)
    info(f"{record.mrn} registered: {record.full_name} ({_channel(record)}).")


@app.command("list")
def list_(
    query: Annotated[
        str, typer.Argument(help="Part of the name, the MRN, or the phone number (2+ characters).")
    ],
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=200, help="Show at most this many.")
    ] = 20,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Find patients by name, MRN or phone (the search is audited)."""
    settings = settings_or_exit()
    found = run_as_user(settings, lambda ctx: patients.search(ctx, query=query, limit=limit))
    rows = [
        {
            "mrn": p.mrn,
            "full_name": p.full_name,
            "phone": p.phone,
            "date_of_birth": p.date_of_birth,
            "id": str(p.id),
        }
        for p in found
    ]
    if not rows and not (as_json or as_csv):
        info(f"No patient matches {query!r}.")
        return
    columns = MACHINE_COLUMNS if as_json or as_csv else LIST_COLUMNS
    print_rows(rows, columns, as_json=as_json, as_csv=as_csv, title="Patients")


@app.command()
def show(patient: PatientArg, as_json: JsonOpt = False) -> None:
    """One patient's record, with its version for 'patients update' (the read is audited)."""
    settings = settings_or_exit()
    record = run_as_user(settings, lambda ctx: patients.get(ctx, patient=patient))
    if as_json:
        print_json(record.model_dump(mode="json"))
        return
    kv(_describe(settings, record))


@app.command()
def update(
    patient: PatientArg,
    if_version: Annotated[
        int | None,
        typer.Option(
            "--if-version",
            min=1,
            help="Change it only if it is still at this version (as 'patients show' printed "
            "it); default: the version it has now.",
        ),
    ] = None,
    full_name: Annotated[
        str | None, typer.Option("--name", help="The corrected full name.")
    ] = None,
    phone: PhoneOpt = None,
    date_of_birth: BirthOpt = None,
    national_id: NationalIdOpt = None,
    language: LanguageOpt = None,
    notify: NotifyOpt = None,
    consent: ConsentOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Change a patient's record; an empty value ("") clears phone, date of birth or national id."""
    settings = settings_or_exit()
    _check_consent(notify, consent)
    changes = {
        "full_name": full_name,
        "phone": phone,
        "date_of_birth": date_of_birth,
        "national_id": national_id,
        "language": language,
        "notify_channel": notify.value if notify else None,
    }
    if all(value is None for value in changes.values()):
        fail("nothing to change: give at least one of --name, --phone, --dob, --national-id, "
             "--language, --notify", ExitCode.USAGE)  # fmt: skip

    async def change(ctx: Context) -> tuple[PatientOut, PatientOut]:
        before = await patients.get(ctx, patient=patient)
        version = if_version if if_version is not None else before.version
        sms = notify == Messages.SMS or (notify is None and before.notify_channel.value == "sms")
        if sms and not (phone or (phone is None and before.phone)):
            fail(
                "SMS needs a phone number: give --phone, or stop the messages with --notify none",
                ExitCode.INVALID,
            )
        after = await patients.update(ctx, patient=before.id, version=version, **changes)
        return before, after

    before, after = run_as_user(settings, change)
    if as_json:
        print_json(after.model_dump(mode="json"))
    else:
        typer.echo(after.mrn)
    if after.version == before.version:
        info(f"{after.mrn}: nothing changed (version {after.version}).")
        return
    changed = [
        label
        for label, key in (
            ("name", "full_name"),
            ("phone", "phone"),
            ("date of birth", "date_of_birth"),
            ("national id", "national_id"),
            ("language", "language"),
            ("messages", "notify_channel"),
        )
        if getattr(before, key) != getattr(after, key)
    ]
    info(f"{after.mrn} updated ({', '.join(changed)}); now version {after.version}.")
