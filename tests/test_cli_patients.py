"""``iqms patients add / list / show / update`` as reception uses them, on both databases."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from tests.test_cli_first_contact import one_error_line
from tests.test_cli_queue import Tokens, iqms, make_clinic_cli

ANA = ["Ana Ruiz", "--phone", "+34 600 900 111", "--dob", "1990-01-02", "--language", "es"]


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tokens:
    return make_clinic_cli(db_url, tmp_path, monkeypatch)


def found(token: str, query: str) -> list[dict[str, str]]:
    listed = iqms(token, "patients", "list", query, "--csv")
    assert listed.exit_code == 0, listed.output
    return list(csv.DictReader(io.StringIO(listed.stdout)))


def shown(token: str, mrn: str) -> dict[str, str]:
    result = iqms(token, "patients", "show", mrn)
    assert result.exit_code == 0, result.output
    return dict(line.split(": ", 1) for line in result.stdout.splitlines())


def test_register_find_show_and_change_a_patient(cli: Tokens) -> None:
    refused = iqms(cli.staff, "patients", "add", *ANA, "--notify", "sms")
    assert refused.exit_code == 7
    assert one_error_line(refused) == (
        "SMS only with the patient's consent: ask them, then add --consent"
    )
    assert found(cli.staff, "Ruiz") == []

    added = iqms(cli.staff, "patients", "add", *ANA, "--notify", "sms", "--consent", "--json")
    assert added.exit_code == 0, added.output
    record = json.loads(added.stdout)
    mrn = record["mrn"]
    assert (record["phone"], record["language"], record["notify_channel"]) == (
        "+34600900111", "es", "sms",
    )  # fmt: skip
    assert added.stderr == f"{mrn} registered: Ana Ruiz (sms to +34600900111).\n"

    again = iqms(cli.staff, "patients", "add", *ANA)
    assert again.exit_code == 6
    assert f"already registered ({mrn})" in one_error_line(again)
    twin = iqms(cli.staff, "patients", "add", *ANA, "--allow-duplicate")
    assert twin.exit_code == 0 and twin.stdout.strip() != mrn

    rows = found(cli.staff, "ruiz")
    assert [r["mrn"] for r in rows] == sorted([mrn, twin.stdout.strip()])
    assert rows[0]["phone"] == "+34600900111" and rows[0]["date_of_birth"] == "1990-01-02"
    assert found(cli.staff, "600 900 111") == rows

    card = shown(cli.drsmith, mrn)  # doctors may read records
    assert card["name"] == "Ana Ruiz"
    assert card["messages"] == "sms to +34600900111"
    assert card["language"] == "Spanish"
    assert card["version"] == "1"

    changed = iqms(cli.staff, "patients", "update", mrn, "--language", "en", "--if-version", "1")
    assert changed.exit_code == 0, changed.output
    assert changed.stderr == f"{mrn} updated (language); now version 2.\n"
    stale = iqms(cli.staff, "patients", "update", mrn, "--name", "Ana R", "--if-version", "1")
    assert stale.exit_code == 6
    assert re.fullmatch(
        rf"patient {mrn} was changed by someone else \(\w+ at \d\d:\d\d: language\) since you "
        r"opened it; reload and try again \(version 2, you had 1\)",
        one_error_line(stale),
    ), one_error_line(stale)
    no_phone = iqms(cli.staff, "patients", "update", mrn, "--phone", "")
    assert no_phone.exit_code == 7
    assert "give --phone, or stop the messages with --notify none" in one_error_line(no_phone)
    assert shown(cli.staff, mrn) | {"changed": ""} == card | {
        "language": "English", "version": "2", "changed": "",
    }  # fmt: skip
    stopped = iqms(cli.staff, "patients", "update", mrn, "--notify", "none", "--phone", "")
    assert stopped.exit_code == 0
    assert shown(cli.staff, mrn)["messages"] == "no messages"


def test_an_sms_opt_in_brings_messages_in_the_patients_language(cli: Tokens) -> None:
    mrn = iqms(cli.staff, "patients", "add", *ANA, "--notify", "sms", "--consent").stdout.strip()
    silent = iqms(cli.staff, "patients", "add", "Noah Taylor", "--phone", "+447911123999")
    issued = iqms(cli.staff, "queue", "issue", "-d", "GEN", "--patient", mrn)
    assert issued.exit_code == 0, issued.output
    other = iqms(cli.staff, "queue", "issue", "-d", "GEN", "--patient", silent.stdout.strip())
    assert other.exit_code == 0, other.output
    outbox = iqms(cli.staff, "admin", "notifications", "list", "--json")
    assert outbox.exit_code == 0, outbox.output
    messages = json.loads(outbox.stdout)
    assert [(m["template"], m["language"], m["ticket_number"]) for m in messages] == [
        ("issued", "es", issued.stdout.strip())
    ]


def test_refusals_leave_no_record(cli: Tokens) -> None:
    cases = [
        (cli.drsmith, ["Ana Ruiz"], 4, "doctors cannot register patients (logged in as drsmith)"),
        (cli.staff, ["x" * 130], 7, "full name: must be at most 120 characters (not 130)"),
        (cli.staff, ["Ana Ruiz", "--dob", "2 January"], 7,
         "date of birth: must be a date like 1984-02-11"),
        (cli.staff, ["Ana Ruiz", "--phone", "12"], 7, "phone: '12' is not a valid phone number"),
        (cli.staff, ["Ana Ruiz", "--language", "spanish"], 7,
         "language: must be a language code like en or es"),
        (cli.staff, ["Ana Ruiz", "--notify", "sms", "--consent"], 7,
         "SMS needs a phone number: add --phone"),
    ]  # fmt: skip
    for token, args, code, message in cases:
        result = iqms(token, "patients", "add", *args)
        assert result.exit_code == code, (args, result.output)
        assert one_error_line(result) == message
    assert found(cli.staff, "Ana") == []
    nothing = iqms(cli.staff, "patients", "update", "MRN000001")
    assert nothing.exit_code == 2 and "nothing to change" in one_error_line(nothing)
    missing = iqms(cli.staff, "patients", "show", "MRN999999")
    assert missing.exit_code == 3 and one_error_line(missing) == "no patient MRN999999"
