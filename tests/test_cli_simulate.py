"""``iqms simulate``: a report on stdout, JSON for machines, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iqms.cli import app

runner = CliRunner()

QUICK = """\
name = "Quick morning"
opens = "08:00"
closes = "08:45"
date = "2026-03-02"
no_show_rate = 0.1

[[departments]]
code = "GEN"
prefix = "A"
service_minutes = { mean = 8, sd = 3 }
arrivals_per_hour = { "08:00" = 12, "08:20" = 20 }

[[departments.doctors]]
name = "Dr Quick"
room = "Room 1"
"""


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IQMS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("IQMS_TIMEZONE", "Europe/London")
    monkeypatch.delenv("IQMS_DATABASE_URL", raising=False)
    path = tmp_path / "quick.toml"
    path.write_text(QUICK, encoding="utf-8")
    return path


def test_json_report_is_reproducible_for_a_seed(scenario: Path) -> None:
    first = runner.invoke(app, ["simulate", "--scenario", str(scenario), "--seed", "5", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["scenario"] == "Quick morning"
    assert report["day"] == "2026-03-02"
    assert report["seed"] == 5
    assert set(report["estimate_mae_minutes"]) == {"iqms", "queue_length", "last_to_enter_service"}
    assert set(report["within_target_pct"]) >= {"1", "2", "3", "4", "5"}
    assert report["patients"]["arrived"] > 3

    again = runner.invoke(app, ["simulate", "--scenario", str(scenario), "--seed", "5", "--json"])
    assert again.exit_code == 0
    assert again.stdout == first.stdout


def test_the_people_report_shows_waits_and_predictors(scenario: Path) -> None:
    result = runner.invoke(
        app, ["simulate", "-s", str(scenario), "--seed", "2", "--no-show-rate", "0"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Quick morning" in out
    assert "Waits until called, by triage category" in out
    assert "IQMS estimate" in out and "last to enter service" in out
    assert "Dr Quick" in out
    assert "0 did not answer their call" in out


def test_patients_option_scales_the_day(scenario: Path) -> None:
    result = runner.invoke(
        app, ["simulate", "-s", str(scenario), "--seed", "1", "--patients", "4", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["patients"]["arrived"] < 10


def test_a_bad_scenario_is_one_line_and_exit_7(scenario: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("departments:\n  - code: GEN\n    arrivals_per_hour: 5\n", encoding="utf-8")
    result = runner.invoke(app, ["simulate", "--scenario", str(bad)])
    assert result.exit_code == 7
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == ["iqms: error: scenario: departments[0].doctors: give at least one doctor"]


def test_a_missing_file_and_a_bad_day_are_refused(scenario: Path, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["simulate", "--scenario", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 7
    assert "does not exist" in missing.stderr
    bad_day = runner.invoke(app, ["simulate", "--scenario", str(scenario), "--day", "Monday"])
    assert bad_day.exit_code == 2
    assert "--day 'Monday' is not a date" in bad_day.stderr
