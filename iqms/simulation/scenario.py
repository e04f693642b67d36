"""Simulation scenarios: a clinic day described in TOML or YAML.

A scenario names the departments, their doctors and shifts, how many patients
arrive per hour (a time-varying Poisson process), the triage mix, how long
consultations take (lognormal: a mean and a spread) and how many called
patients do not show up. Times are the clinic's local times (``"08:30"``).

Example (TOML)::

    name = "Weekday"
    opens = "08:00"
    closes = "17:00"
    no_show_rate = 0.05

    [triage_mix]          # shares of patients per category (normalised)
    1 = 0.01
    2 = 0.09
    3 = 0.30
    4 = 0.45
    5 = 0.15

    [[departments]]
    code = "GEN"
    name = "General Practice"
    prefix = "A"
    service_minutes = { mean = 12, sd = 6 }
    arrivals_per_hour = { "08:00" = 14, "10:00" = 24, "12:00" = 12, "14:00" = 18, "16:00" = 8 }

    [[departments.doctors]]
    name = "Dr Smith"
    room = "Room 1"
    shifts = ["08:00-12:30", "13:30-17:00"]

Every problem is reported as one :class:`~iqms.core.errors.ValidationError`
naming the place in the file (``departments[1].doctors[0].shifts``).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from iqms.core.errors import ValidationError

TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
MAX_DOCTORS = 100
MAX_DEPARTMENTS = 30
MAX_RATE_PER_HOUR = 600.0


@dataclass(frozen=True)
class Shift:
    """Minutes since local midnight: when a doctor is on duty."""

    start: int
    end: int


@dataclass(frozen=True)
class DoctorPlan:
    name: str
    room: str
    shifts: tuple[Shift, ...]
    # Use this existing doctor account (its username) instead of creating one.
    username: str | None = None


@dataclass(frozen=True)
class RatePeriod:
    """Patients per hour from ``start`` (minutes since midnight) until ``end``."""

    start: int
    end: int
    per_hour: float


@dataclass(frozen=True)
class DepartmentPlan:
    code: str
    name: str
    prefix: str
    service_mean: float
    service_sd: float
    arrivals: tuple[RatePeriod, ...]
    doctors: tuple[DoctorPlan, ...]
    triage_mix: Mapping[int, float] | None = None
    # What the department is configured with (used by estimates before there is history).
    default_service_minutes: int = 12

    def expected_patients(self) -> float:
        return sum(p.per_hour * (p.end - p.start) / 60.0 for p in self.arrivals)


@dataclass(frozen=True)
class Scenario:
    name: str
    opens: int
    closes: int
    departments: tuple[DepartmentPlan, ...]
    triage_mix: Mapping[int, float]
    no_show_rate: float = 0.05
    no_show_wait_minutes: float = 3.0
    day: date | None = None
    seed: int = 1
    # Use departments and doctors already in the database (matched by code / username).
    use_existing_clinic: bool = False

    def expected_patients(self) -> float:
        return sum(d.expected_patients() for d in self.departments)

    def scaled_to(self, patients: int) -> Scenario:
        """The same day with arrival rates scaled so that about ``patients`` arrive."""
        if patients < 1:
            raise ValidationError("the number of patients must be at least 1", field="patients")
        expected = self.expected_patients()
        if expected <= 0:
            raise ValidationError("the scenario has no arrivals to scale", field="patients")
        factor = patients / expected
        departments = tuple(
            replace(
                d,
                arrivals=tuple(replace(p, per_hour=p.per_hour * factor) for p in d.arrivals),
            )
            for d in self.departments
        )
        return replace(self, departments=departments)

    def mix_for(self, department: DepartmentPlan) -> Mapping[int, float]:
        return department.triage_mix or self.triage_mix


DEFAULT_TRIAGE_MIX = {1: 0.01, 2: 0.09, 3: 0.30, 4: 0.45, 5: 0.15}


# ---- parsing ------------------------------------------------------------------------------
def _fail(where: str, problem: str) -> ValidationError:
    return ValidationError(f"scenario: {where}: {problem}", field=where)


def parse_time(value: Any, where: str) -> int:
    """``"08:30"`` -> minutes since midnight (``"24:00"`` allowed as the end of the day)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24 * 60:
        return value
    match = TIME_RE.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise _fail(where, f"{value!r} is not a time like 08:30")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise _fail(where, f"{value!r} is not a time of day")
    return hours * 60 + minutes


def _number(value: Any, where: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"{value!r} is not a number")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise _fail(where, f"{value!r} must be between {low:g} and {high:g}")
    return number


def _text(value: Any, where: str, *, max_len: int, pattern: str | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "must be a non-empty text")
    text = value.strip()
    if len(text) > max_len:
        raise _fail(where, f"must be at most {max_len} characters")
    if pattern and not re.fullmatch(pattern, text):
        raise _fail(where, f"{text!r} has characters that are not allowed")
    return text


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, "must be a table of named values")
    return value


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(map(str, data)) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise _fail(
            f"{prefix}{unknown[0]}", f"unknown setting (known: {', '.join(sorted(allowed))})"
        )


def parse_mix(value: Any, where: str) -> dict[int, float]:
    data = _mapping(value, where)
    mix: dict[int, float] = {}
    for key, share in data.items():
        try:
            category = int(str(key))
        except ValueError:
            raise _fail(f"{where}.{key}", "triage categories are 1 to 5") from None
        if not 1 <= category <= 5:
            raise _fail(f"{where}.{key}", "triage categories are 1 to 5")
        mix[category] = _number(share, f"{where}.{key}", low=0.0, high=1e6)
    total = sum(mix.values())
    if total <= 0:
        raise _fail(where, "the shares add up to nothing")
    return {c: mix.get(c, 0.0) / total for c in range(1, 6)}


def _parse_shifts(value: Any, where: str, opens: int, closes: int) -> tuple[Shift, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise _fail(where, 'give one or more shifts like "08:00-12:30"')
    shifts: list[Shift] = []
    for i, item in enumerate(items):
        here = f"{where}[{i}]"
        if not isinstance(item, str) or item.count("-") != 1:
            raise _fail(here, f'{item!r} is not a shift like "08:00-12:30"')
        start_text, end_text = item.split("-")
        start, end = parse_time(start_text, here), parse_time(end_text, here)
        if end <= start:
            raise _fail(here, f"{item!r} ends before it starts")
        if shifts and start < shifts[-1].end:
            raise _fail(here, f"{item!r} overlaps the shift before it")
        shifts.append(Shift(start, end))
    return tuple(shifts)


def _parse_arrivals(value: Any, where: str, opens: int, closes: int) -> tuple[RatePeriod, ...]:
    """A table ``{"08:00": 12, "10:00": 20}`` or a list of hourly rates from opening time."""
    points: list[tuple[int, float]] = []
    if isinstance(value, Mapping):
        for key, rate in value.items():
            points.append(
                (
                    parse_time(key, f"{where}.{key}"),
                    _number(rate, f"{where}.{key}", low=0, high=MAX_RATE_PER_HOUR),
                )
            )
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for i, rate in enumerate(value):
            points.append(
                (opens + 60 * i, _number(rate, f"{where}[{i}]", low=0, high=MAX_RATE_PER_HOUR))
            )
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        points.append((opens, _number(value, where, low=0, high=MAX_RATE_PER_HOUR)))
    else:
        raise _fail(where, 'give patients per hour: a number, a list, or {"08:00" = 12, ...}')
    if not points:
        raise _fail(where, "no arrival rates given")
    points.sort()
    if points[0][0] > opens:
        points.insert(0, (opens, 0.0))
    periods: list[RatePeriod] = []
    for i, (start, rate) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else closes
        start, end = max(start, opens), min(end, closes)
        if end > start:
            periods.append(RatePeriod(start, end, rate))
    if not periods:
        raise _fail(where, "no arrival rate falls within opening hours")
    return tuple(periods)


def _parse_service(value: Any, where: str) -> tuple[float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        mean = _number(value, where, low=0.5, high=600)
        return mean, mean * 0.5
    data = _mapping(value, where)
    _check_keys(data, {"mean", "sd"}, where)
    if "mean" not in data:
        raise _fail(f"{where}.mean", "missing")
    mean = _number(data["mean"], f"{where}.mean", low=0.5, high=600)
    sd = _number(data.get("sd", mean * 0.5), f"{where}.sd", low=0.0, high=600)
    return mean, sd


DEPARTMENT_KEYS = {
    "code",
    "name",
    "prefix",
    "service_minutes",
    "arrivals_per_hour",
    "doctors",
    "triage_mix",
    "default_service_minutes",
}
DOCTOR_KEYS = {"name", "room", "shifts", "shift", "username"}
SCENARIO_KEYS = {
    "name",
    "opens",
    "closes",
    "departments",
    "triage_mix",
    "no_show_rate",
    "no_show_wait_minutes",
    "date",
    "seed",
    "use_existing_clinic",
}


def _parse_doctor(data: Any, where: str, opens: int, closes: int, index: int) -> DoctorPlan:
    data = _mapping(data, where)
    _check_keys(data, DOCTOR_KEYS, where)
    name = _text(data.get("name", f"Doctor {index + 1}"), f"{where}.name", max_len=120)
    room = _text(data.get("room", f"Room {index + 1}"), f"{where}.room", max_len=20)
    shifts_value = data.get("shifts", data.get("shift"))
    if shifts_value is None:
        shifts = (Shift(opens, closes),)
    else:
        shifts = _parse_shifts(shifts_value, f"{where}.shifts", opens, closes)
    username = data.get("username")
    if username is not None:
        username = _text(username, f"{where}.username", max_len=64)
    return DoctorPlan(name=name, room=room, shifts=shifts, username=username)


def _parse_department(data: Any, where: str, opens: int, closes: int) -> DepartmentPlan:
    data = _mapping(data, where)
    _check_keys(data, DEPARTMENT_KEYS, where)
    if "code" not in data:
        raise _fail(f"{where}.code", "missing")
    code = _text(data["code"], f"{where}.code", max_len=16, pattern=r"[A-Za-z0-9_-]+").upper()
    name = _text(data.get("name", code), f"{where}.name", max_len=80)
    prefix = _text(data.get("prefix", code[0]), f"{where}.prefix", max_len=3, pattern=r"[A-Za-z]+")
    mean, sd = _parse_service(data.get("service_minutes", 12), f"{where}.service_minutes")
    if "arrivals_per_hour" not in data:
        raise _fail(f"{where}.arrivals_per_hour", "missing")
    arrivals = _parse_arrivals(
        data["arrivals_per_hour"], f"{where}.arrivals_per_hour", opens, closes
    )
    doctors_data = data.get("doctors")
    if not isinstance(doctors_data, Sequence) or isinstance(doctors_data, str) or not doctors_data:
        raise _fail(f"{where}.doctors", "give at least one doctor")
    if len(doctors_data) > MAX_DOCTORS:
        raise _fail(f"{where}.doctors", f"at most {MAX_DOCTORS} doctors per department")
    doctors = tuple(
        _parse_doctor(d, f"{where}.doctors[{i}]", opens, closes, i)
        for i, d in enumerate(doctors_data)
    )
    mix = parse_mix(data["triage_mix"], f"{where}.triage_mix") if "triage_mix" in data else None
    default = int(
        _number(
            data.get("default_service_minutes", 12),
            f"{where}.default_service_minutes",
            low=1,
            high=600,
        )
    )
    return DepartmentPlan(
        code=code,
        name=name,
        prefix=prefix.upper(),
        service_mean=mean,
        service_sd=sd,
        arrivals=arrivals,
        doctors=doctors,
        triage_mix=mix,
        default_service_minutes=default,
    )


def scenario_from_dict(data: Any, *, source: str = "scenario") -> Scenario:
    """Build and check a scenario from parsed TOML / YAML data."""
    data = _mapping(data, source)
    _check_keys(data, SCENARIO_KEYS, "")
    opens = parse_time(data.get("opens", "08:00"), "opens")
    closes = parse_time(data.get("closes", "17:00"), "closes")
    if closes <= opens:
        raise _fail("closes", "the clinic must close after it opens")
    departments_data = data.get("departments")
    if (
        not isinstance(departments_data, Sequence)
        or isinstance(departments_data, str)
        or not departments_data
    ):
        raise _fail("departments", "give at least one department")
    if len(departments_data) > MAX_DEPARTMENTS:
        raise _fail("departments", f"at most {MAX_DEPARTMENTS} departments")
    departments = tuple(
        _parse_department(d, f"departments[{i}]", opens, closes)
        for i, d in enumerate(departments_data)
    )
    seen: set[str] = set()
    prefixes: set[str] = set()
    for i, dept in enumerate(departments):
        if dept.code in seen:
            raise _fail(f"departments[{i}].code", f"{dept.code} appears twice")
        if dept.prefix in prefixes:
            raise _fail(f"departments[{i}].prefix", f"prefix {dept.prefix} is used twice")
        seen.add(dept.code)
        prefixes.add(dept.prefix)
    mix = (
        parse_mix(data["triage_mix"], "triage_mix")
        if "triage_mix" in data
        else dict(DEFAULT_TRIAGE_MIX)
    )
    day = data.get("date")
    if day is not None and not isinstance(day, date):
        try:
            day = date.fromisoformat(str(day))
        except ValueError:
            raise _fail("date", f"{day!r} is not a date like 2026-03-02") from None
    seed = data.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _fail("seed", f"{seed!r} is not a whole number")
    existing = data.get("use_existing_clinic", False)
    if not isinstance(existing, bool):
        raise _fail("use_existing_clinic", "must be true or false")
    return Scenario(
        name=_text(data.get("name", "Clinic day"), "name", max_len=120),
        opens=opens,
        closes=closes,
        departments=departments,
        triage_mix=mix,
        no_show_rate=_number(data.get("no_show_rate", 0.05), "no_show_rate", low=0, high=1),
        no_show_wait_minutes=_number(
            data.get("no_show_wait_minutes", 3), "no_show_wait_minutes", low=0, high=120
        ),
        day=day,
        seed=seed,
        use_existing_clinic=existing,
    )


def load_scenario(path: Path) -> Scenario:
    """Read a ``.toml``, ``.yaml`` or ``.yml`` scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"scenario file {path} does not exist", field="scenario") from None
    except IsADirectoryError:
        raise ValidationError(f"scenario file {path} is a directory", field="scenario") from None
    except UnicodeDecodeError:
        raise ValidationError(f"scenario file {path} is not UTF-8 text", field="scenario") from None
    except OSError as exc:
        raise ValidationError(
            f"cannot read scenario file {path}: {exc.strerror}", field="scenario"
        ) from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        else:
            raise ValidationError(
                f"scenario file {path} must end in .toml, .yaml or .yml", field="scenario"
            )
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(
            f"scenario file {path} is not valid TOML: {exc}", field="scenario"
        ) from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValidationError(
            f"scenario file {path} is not valid YAML{where}: {first}", field="scenario"
        ) from None
    if data is None:
        raise ValidationError(f"scenario file {path} is empty", field="scenario")
    return scenario_from_dict(data, source=str(path))


#: The built-in scenario, shipped with the package.
DEFAULT_SCENARIO_FILE = "weekday.toml"


def default_scenario() -> Scenario:
    """A weekday of about 300 patients: a morning peak, a lunch dip, an afternoon bump."""
    text = resources.files("iqms.simulation").joinpath(DEFAULT_SCENARIO_FILE).read_text("utf-8")
    return scenario_from_dict(tomllib.loads(text), source="built-in scenario")


__all__ = [
    "DEFAULT_TRIAGE_MIX",
    "DepartmentPlan",
    "DoctorPlan",
    "RatePeriod",
    "Scenario",
    "Shift",
    "default_scenario",
    "load_scenario",
    "parse_time",
    "scenario_from_dict",
]
