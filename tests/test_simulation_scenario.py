"""Scenario files and the report arithmetic of the simulator (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iqms.core.errors import ValidationError
from iqms.simulation.scenario import (
    default_scenario,
    load_scenario,
    scenario_from_dict,
)
from iqms.simulation.stats import (
    DayRecord,
    DoctorRecord,
    PatientRecord,
    QueueSample,
    build_report,
    percentile,
    summarise,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "scenarios"


def _minimal(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "departments": [
            {
                "code": "gen",
                "arrivals_per_hour": 10,
                "doctors": [{"name": "Dr A", "room": "Room 1"}],
            }
        ]
    }
    data.update(overrides)
    return data


def test_the_example_scenarios_load() -> None:
    files = sorted(EXAMPLES.glob("*.toml")) + sorted(EXAMPLES.glob("*.y*ml"))
    files.append(Path(__file__).parent.parent / "iqms" / "simulation" / "weekday.toml")
    assert len(files) >= 2
    for path in files:
        scenario = load_scenario(path)
        assert scenario.expected_patients() > 0
        assert all(d.doctors for d in scenario.departments)


def test_the_built_in_day_is_the_weekday_example_of_about_300_patients() -> None:
    scenario = default_scenario()
    assert scenario.expected_patients() == pytest.approx(300)
    rates = [p.per_hour for p in scenario.departments[0].arrivals]
    assert max(rates) >= 2 * min(rates)  # arrivals vary through the day


def test_yaml_hourly_list_becomes_rate_periods_from_opening() -> None:
    scenario = load_scenario(EXAMPLES / "small_practice.yaml")
    periods = scenario.departments[0].arrivals
    assert [(p.start, p.end, p.per_hour) for p in periods][:2] == [
        (480, 540, 6.0),
        (540, 600, 11.0),
    ]
    assert scenario.departments[0].doctors[1].shifts[0].start == 8 * 60 + 30


def test_defaults_fill_in_a_minimal_scenario() -> None:
    scenario = scenario_from_dict(_minimal())
    dept = scenario.departments[0]
    assert dept.code == "GEN" and dept.prefix == "G"
    assert (scenario.opens, scenario.closes) == (8 * 60, 17 * 60)
    assert dept.doctors[0].shifts[0].start == scenario.opens
    assert sum(scenario.triage_mix.values()) == pytest.approx(1.0)


def test_scaling_keeps_the_shape_of_the_day() -> None:
    scenario = default_scenario().scaled_to(600)
    assert scenario.expected_patients() == pytest.approx(600)
    original = [p.per_hour for p in default_scenario().departments[0].arrivals]
    scaled = [p.per_hour for p in scenario.departments[0].arrivals]
    assert scaled == pytest.approx([2 * r for r in original])


@pytest.mark.parametrize(
    ("data", "where", "says"),
    [
        (_minimal(opens="8h"), "opens", "not a time"),
        (_minimal(closes="07:00"), "closes", "close after it opens"),
        (_minimal(colour="red"), "colour", "unknown setting"),
        (_minimal(no_show_rate=1.5), "no_show_rate", "between 0 and 1"),
        (_minimal(triage_mix={"7": 1}), "triage_mix.7", "1 to 5"),
        (_minimal(departments=[]), "departments", "at least one"),
        (
            _minimal(departments=[{"code": "A", "arrivals_per_hour": 5, "doctors": []}]),
            "departments[0].doctors",
            "at least one doctor",
        ),
        (
            _minimal(
                departments=[
                    {
                        "code": "A",
                        "arrivals_per_hour": 5,
                        "doctors": [{"shifts": ["08:00-12:00", "11:00-13:00"]}],
                    }
                ]
            ),
            "departments[0].doctors[0].shifts[1]",
            "overlaps",
        ),
        (
            _minimal(
                departments=[
                    {"code": "A", "arrivals_per_hour": {"09:00": -1}, "doctors": [{}]},
                ]
            ),
            "departments[0].arrivals_per_hour.09:00",
            "between 0",
        ),
        (
            _minimal(
                departments=[
                    {"code": "A", "arrivals_per_hour": 5, "doctors": [{}]},
                    {"code": "a", "arrivals_per_hour": 5, "doctors": [{}]},
                ]
            ),
            "departments[1].code",
            "appears twice",
        ),
    ],
)
def test_scenario_mistakes_are_named_precisely(data: object, where: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        scenario_from_dict(data)
    message = str(caught.value)
    assert where in message
    assert says in message
    assert "\n" not in message


def test_unreadable_scenario_files_give_one_clear_line(tmp_path: Path) -> None:
    broken = tmp_path / "day.yaml"
    broken.write_text("departments: [\n  - code: A\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"not valid YAML \(line \d+\)"):
        load_scenario(broken)
    bad_toml = tmp_path / "day.toml"
    bad_toml.write_text("opens = \n", encoding="utf-8")
    with pytest.raises(ValidationError, match="not valid TOML"):
        load_scenario(bad_toml)
    with pytest.raises(ValidationError, match="does not exist"):
        load_scenario(tmp_path / "missing.toml")
    other = tmp_path / "day.json"
    other.write_text("{}", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"\.toml, \.yaml or \.yml"):
        load_scenario(other)


# ---- report arithmetic ---------------------------------------------------------------------
def test_percentiles_interpolate() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10], 90) == 10
    assert percentile(list(range(11)), 90) == pytest.approx(9.0)
    assert summarise([]) == {"count": 0, "mean": None, "median": None, "p90": None, "max": None}


def _patient(category: int, arrived: float, called: float | None, **kw: object) -> PatientRecord:
    p = PatientRecord("GEN", category, arrived, False, 10.0, **kw)  # type: ignore[arg-type]
    p.called = called
    p.outcome = "served" if called is not None else "unserved"
    return p


def test_report_counts_waits_targets_and_estimate_errors() -> None:
    day = DayRecord(
        scenario="t",
        seed=1,
        day="2026-03-02",
        backend="sqlite",
        opens=480,
        closes=540,
        targets={"GEN": {1: 0, 2: 10, 3: 60, 4: 120, 5: 240}},
    )
    day.patients = [
        _patient(2, 480, 485, iqms_p50=4, iqms_p90=9, queue_length_estimate=10, les_estimate=0),
        _patient(2, 490, 505, iqms_p50=12, iqms_p90=14, queue_length_estimate=5, les_estimate=5),
        _patient(4, 495, 520, iqms_p50=20, iqms_p90=30, queue_length_estimate=40, les_estimate=15),
        _patient(5, 530, None),
    ]
    day.doctors = [DoctorRecord("Dr A", "GEN", "Room 1", on_duty_minutes=60, busy_minutes=45)]
    day.samples = [QueueSample(480, {"GEN": 0}), QueueSample(510, {"GEN": 2})]
    report = build_report(day)
    assert report["patients"]["arrived"] == 4
    assert report["patients"]["unserved"] == 1
    assert report["waits_minutes"]["2"]["mean"] == 10.0
    assert report["waits_minutes"]["2"]["max"] == 15.0
    assert report["within_target_pct"]["2"] == 50.0  # 5 min ok, 15 min late
    assert report["within_target_pct"]["4"] == 100.0
    assert report["within_target_pct"]["5"] == 0.0  # never called: counts as late
    assert report["within_target_pct"]["1"] is None
    # errors: iqms |4-5|,|12-15|,|20-25| = 1,3,5; queue length 5,10,15; LES 5,10,10
    assert report["estimate_mae_minutes"] == {
        "iqms": 3.0,
        "queue_length": 10.0,
        "last_to_enter_service": 8.33,
    }
    assert report["iqms_p90_coverage_pct"] == pytest.approx(66.67)
    assert report["doctor_utilisation"][0]["utilisation_pct"] == 75.0
    assert report["queue_length"]["total"] == [0, 2]
    assert report["queue_length"]["times"] == ["08:00", "08:30"]
