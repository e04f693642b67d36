"""``iqms admin report`` and ``iqms admin export`` through Typer's CliRunner, on both backends."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iqms.cli import app
from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.enums import Role
from iqms.core.models import User
from iqms.core.security.rbac import Principal
from iqms.core.security.tokens import issue_token
from iqms.core.service import Context
from tests.conftest import make_settings
from tests.test_reports import seed_history

runner = CliRunner()


@dataclass
class CliClinic:
    admin_token: str
    staff_token: str
    tmp: Path


def make_cli_clinic(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> CliClinic:
    """Seed the two-day history, an admin and a receptionist; point the CLI at the database."""
    settings = make_settings(tmp_path, url)
    env = {
        "IQMS_DATABASE_URL": url,
        "IQMS_DATA_DIR": str(tmp_path / "data"),
        "IQMS_CONFIG_DIR": str(tmp_path / "config"),
        "IQMS_SECRET_KEY": settings.signing_secret(),
        "IQMS_TIMEZONE": "Europe/London",
        "IQMS_CLINIC_NAME": "Riverside Clinic",
        "COLUMNS": "120",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("IQMS_TOKEN", raising=False)

    async def seed() -> tuple[str, str]:
        db = Database.from_settings(settings)
        try:
            ctx = Context(
                db=db, principal=Principal.system("test"), settings=settings, clock=FrozenClock()
            )
            await seed_history(ctx)
            tokens = []
            async with db.transaction() as s:
                for username, role in (("boss", Role.ADMIN), ("rita", Role.STAFF)):
                    user = User(
                        id=uuid.uuid4(),
                        username=username,
                        full_name=username.title(),
                        role=role,
                        password_hash="!",
                    )
                    s.add(user)
                    tokens.append(
                        issue_token(
                            settings,
                            user_id=user.id,
                            username=username,
                            role=role.value,
                            token_version=1,
                            now=datetime.now(UTC),
                        )
                    )
            return tokens[0], tokens[1]
        finally:
            await db.dispose()

    admin, staff = asyncio.run(seed())
    return CliClinic(admin_token=admin, staff_token=staff, tmp=tmp_path)


@pytest.fixture
def clinic(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> CliClinic:
    return make_cli_clinic(tmp_path, db_url, monkeypatch)


def invoke(args: list[str], token: str | None):  # type: ignore[no-untyped-def]
    env = {"IQMS_TOKEN": token} if token else {}
    return runner.invoke(app, args, env=env, prog_name="iqms")


RANGE = ["--from", "2026-01-12", "--to", "2026-01-13"]


def test_report_prints_tables_and_charts(clinic: CliClinic) -> None:
    result = invoke(["admin", "report", *RANGE], clinic.admin_token)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Riverside Clinic: 12 Jan 2026 to 13 Jan 2026 · 2 days · Europe/London" in out
    for heading in (
        "Patient volumes",
        "Waits by department",
        "Waits by triage category",
        "Waits by doctor",
        "Median wait (minutes) by hour of arrival",  # a plotext bar chart
        "Seen within the triage target",
        "Service times by doctor",
        "Arrivals per open day by hour",
    ):
        assert heading in out, heading
    gen_row = next(line for line in out.splitlines() if line.strip().startswith("General Practice"))
    assert gen_row.split()[2:] == ["10", "7", "1", "(11.1%)", "1", "(11.1%)", "0", "1"]
    assert "█" in out
    assert "Busiest hours: 09:00–10:00 (2.0 a day)" in out
    assert result.stderr == ""


def test_report_json_and_csv_carry_the_same_numbers(clinic: CliClinic) -> None:
    result = invoke(["admin", "report", *RANGE, "--json"], clinic.admin_token)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["scope"]["from"] == "2026-01-12" and data["scope"]["days"] == 2
    assert data["volumes"]["tickets"] == 12
    assert data["volumes"]["no_show_rate"] == 0.1
    assert data["waits"]["overall"] == {
        "count": 9,
        "mean_minutes": 34.4,
        "median_minutes": 25.0,
        "p90_minutes": 66.0,
    }
    triage = {t["category"]: t for t in data["triage_targets"]}
    assert triage[3]["target_minutes"] == [30, 60]
    assert triage[3]["percent_within"] == 50.0
    assert data["busiest_hours"] == [9, 10, 11]

    result = invoke(["admin", "report", *RANGE, "--csv"], clinic.admin_token)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["section", "breakdown", "key", "label", "metric", "value"]
    found = {(r["section"], r["breakdown"], r["key"], r["metric"]): r["value"] for r in rows}
    assert found[("waits", "department", "GEN", "median_minutes")] == "22.5"
    assert found[("waits", "doctor", "drsmith", "p90_minutes")] == "90.0"
    assert found[("volumes", "all", "", "tickets")] == "12"
    assert found[("triage_targets", "category", "4", "within_target")] == "4"


def test_report_scoped_to_a_department_and_a_doctor(clinic: CliClinic) -> None:
    result = invoke(
        ["admin", "report", *RANGE, "--department", "gen", "--doctor", "drsmith", "--json"],
        clinic.admin_token,
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["scope"]["department"] == {"code": "GEN", "name": "General Practice"}
    assert data["scope"]["doctor"] == {"username": "drsmith", "name": "Dr Sam Smith"}
    assert data["volumes"]["tickets"] == 6


def test_report_writes_a_self_contained_html_file(clinic: CliClinic) -> None:
    target = clinic.tmp / "january.html"
    result = invoke(["admin", "report", *RANGE, "--html", str(target)], clinic.admin_token)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert f"Wrote the HTML report to {target}" in result.stderr
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "Riverside Clinic · Clinic report" in page
    assert page.count("<svg") == 4  # volumes, waits by hour, triage targets, busiest hours
    assert "General Practice" in page and "Dr Sam Smith" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")


def test_export_queue_history_to_csv_and_jsonl(clinic: CliClinic) -> None:
    target = clinic.tmp / "history.csv"
    result = invoke(["admin", "export", "queue", *RANGE, "-o", str(target)], clinic.admin_token)
    assert result.exit_code == 0, result.stderr
    assert "Exported 12 queue history rows (2026-01-12 to 2026-01-13, csv)" in result.stderr
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert len(rows) == 12
    assert {r["department"] for r in rows} == {"GEN", "PED"}
    assert sorted(r["wait_minutes"] for r in rows if r["source"] == "transfer") == ["130.0"]

    result = invoke(
        ["admin", "export", "queue", *RANGE, "--department", "PED", "-o", "-", "--format", "jsonl"],
        clinic.admin_token,
    )
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["status"] for r in lines] == ["served", "transferred"]


def test_export_audit_records(clinic: CliClinic) -> None:
    invoke(["admin", "report", *RANGE, "--json"], clinic.admin_token)  # leaves an audit record
    target = clinic.tmp / "audit.jsonl"
    result = invoke(
        ["admin", "export", "audit", "--from", "today", "--to", "today", "-o", str(target)],
        clinic.admin_token,
    )
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["action"] for r in records] == ["report.viewed"]
    assert records[0]["actor_name"] == "boss"
    assert records[0]["details"]["date_from"] == "2026-01-12"


def test_export_never_overwrites_without_force(clinic: CliClinic) -> None:
    target = clinic.tmp / "keep.csv"
    target.write_text("precious\n")
    result = invoke(["admin", "export", "queue", *RANGE, "-o", str(target)], clinic.admin_token)
    assert result.exit_code == 6
    assert result.stderr == f"iqms: error: {target} already exists; use --force to replace it\n"
    assert target.read_text() == "precious\n"
    result = invoke(
        ["admin", "export", "queue", *RANGE, "-o", str(target), "--force"], clinic.admin_token
    )
    assert result.exit_code == 0, result.stderr
    assert target.read_text().startswith("id,service_date,department,ticket_number")


def test_failed_export_leaves_no_partial_file(clinic: CliClinic) -> None:
    target = clinic.tmp / "nope.csv"
    result = invoke(
        ["admin", "export", "queue", *RANGE, "--department", "XYZ", "-o", str(target)],
        clinic.admin_token,
    )
    assert result.exit_code == 3
    assert result.stderr == "iqms: error: no department with code 'XYZ'\n"
    assert list(clinic.tmp.glob("*nope*")) == []
