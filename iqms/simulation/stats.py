"""What a simulated day measured: waits, targets, doctors' time, queue lengths, estimate accuracy.

Everything here is plain arithmetic on the records the simulator kept; the
report is a JSON-ready dict (rounded, so the same seed gives the same report).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = (1, 2, 3, 4, 5)


@dataclass
class PatientRecord:
    """One simulated patient, from arrival to the end of their consultation."""

    department: str
    category: int
    arrived: float  # minutes since local midnight
    no_show: bool
    service_minutes: float
    ticket: str | None = None
    called: float | None = None
    finished: float | None = None
    doctor: str | None = None
    outcome: str = "waiting"  # served | no_show | unserved
    # estimates made at arrival (minutes until called)
    iqms_p50: float | None = None
    iqms_p90: float | None = None
    queue_length_estimate: float | None = None
    les_estimate: float | None = None

    @property
    def wait(self) -> float | None:
        return None if self.called is None else self.called - self.arrived


@dataclass
class DoctorRecord:
    name: str
    department: str
    room: str
    on_duty_minutes: float = 0.0
    busy_minutes: float = 0.0
    patients: int = 0


@dataclass
class QueueSample:
    minute: float
    waiting: Mapping[str, int]


@dataclass
class DayRecord:
    scenario: str
    seed: int
    day: str
    backend: str
    opens: float
    closes: float
    targets: Mapping[str, Mapping[int, float]]  # department -> category -> minutes
    patients: list[PatientRecord] = field(default_factory=list)
    doctors: list[DoctorRecord] = field(default_factory=list)
    samples: list[QueueSample] = field(default_factory=list)
    ended: float = 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between order statistics."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, median, p90 and max of some minutes (None when there are none)."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None, "max": None}
    return {
        "count": len(values),
        "mean": _r(sum(values) / len(values)),
        "median": _r(percentile(values, 50)),
        "p90": _r(percentile(values, 90)),
        "max": _r(max(values)),
    }


def mean_absolute_error(pairs: Iterable[tuple[float, float]]) -> float | None:
    errors = [abs(estimate - actual) for estimate, actual in pairs]
    return _r(sum(errors) / len(errors)) if errors else None


def _r(value: float) -> float:
    return round(value, 2)


def _clock(minute: float) -> str:
    m = round(minute)
    return f"{m // 60:02d}:{m % 60:02d}"


def build_report(day: DayRecord) -> dict[str, Any]:
    """The day's report as a JSON-ready dict."""
    called = [p for p in day.patients if p.called is not None]
    waits: dict[str, Any] = {}
    within: dict[str, float | None] = {}
    for category in CATEGORIES:
        mine = [p for p in day.patients if p.category == category]
        waits[str(category)] = summarise([p.wait for p in mine if p.wait is not None])
        within[str(category)] = _within_pct(day, mine)
    waits["all"] = summarise([p.wait for p in called if p.wait is not None])
    within["all"] = _within_pct(day, day.patients)

    compared = [p for p in called if p.iqms_p50 is not None and p.wait is not None]
    mae = {
        "iqms": mean_absolute_error((p.iqms_p50, p.wait) for p in compared),  # type: ignore[misc]
        "queue_length": mean_absolute_error(
            (p.queue_length_estimate, p.wait)  # type: ignore[misc]
            for p in compared
            if p.queue_length_estimate is not None
        ),
        "last_to_enter_service": mean_absolute_error(
            (p.les_estimate, p.wait)  # type: ignore[misc]
            for p in compared
            if p.les_estimate is not None
        ),
    }
    bias = {
        "iqms": _bias((p.iqms_p50, p.wait) for p in compared),  # type: ignore[misc]
        "queue_length": _bias((p.queue_length_estimate, p.wait) for p in compared),  # type: ignore[misc]
        "last_to_enter_service": _bias((p.les_estimate, p.wait) for p in compared),  # type: ignore[misc]
    }
    covered = [p for p in compared if p.iqms_p90 is not None]
    coverage = (
        _r(100.0 * sum(1 for p in covered if p.wait <= p.iqms_p90 + 1e-9) / len(covered))  # type: ignore[operator]
        if covered
        else None
    )

    doctors = [
        {
            "doctor": d.name,
            "department": d.department,
            "room": d.room,
            "patients": d.patients,
            "on_duty_minutes": _r(d.on_duty_minutes),
            "busy_minutes": _r(d.busy_minutes),
            "utilisation_pct": _r(100.0 * d.busy_minutes / d.on_duty_minutes)
            if d.on_duty_minutes > 0
            else None,
        }
        for d in day.doctors
    ]
    on_duty = sum(d.on_duty_minutes for d in day.doctors)
    busy = sum(d.busy_minutes for d in day.doctors)

    departments = sorted({code for s in day.samples for code in s.waiting})
    totals = [sum(s.waiting.values()) for s in day.samples]
    queue = {
        "times": [_clock(s.minute) for s in day.samples],
        "by_department": {
            code: [s.waiting.get(code, 0) for s in day.samples] for code in departments
        },
        "total": totals,
        "mean": _r(sum(totals) / len(totals)) if totals else None,
        "max": max(totals) if totals else None,
    }
    return {
        "scenario": day.scenario,
        "seed": day.seed,
        "day": day.day,
        "backend": day.backend,
        "opens": _clock(day.opens),
        "closes": _clock(day.closes),
        "last_patient_done": _clock(day.ended),
        "patients": {
            "arrived": len(day.patients),
            "served": sum(1 for p in day.patients if p.outcome == "served"),
            "no_show": sum(1 for p in day.patients if p.outcome == "no_show"),
            "unserved": sum(1 for p in day.patients if p.outcome == "unserved"),
            "by_category": {
                str(c): sum(1 for p in day.patients if p.category == c) for c in CATEGORIES
            },
        },
        "waits_minutes": waits,
        "within_target_pct": within,
        "doctor_utilisation": doctors,
        "overall_utilisation_pct": _r(100.0 * busy / on_duty) if on_duty > 0 else None,
        "queue_length": queue,
        "estimates_compared": len(compared),
        "estimate_mae_minutes": mae,
        "estimate_bias_minutes": bias,
        "iqms_p90_coverage_pct": coverage,
    }


def _bias(pairs: Iterable[tuple[float | None, float]]) -> float | None:
    diffs = [e - a for e, a in pairs if e is not None]
    return _r(sum(diffs) / len(diffs)) if diffs else None


def _within_pct(day: DayRecord, patients: Sequence[PatientRecord]) -> float | None:
    """Share of patients called within their category's target; never-called ones count as late."""
    if not patients:
        return None
    ok = 0
    for p in patients:
        target = day.targets.get(p.department, {}).get(p.category, 0.0)
        if p.wait is not None and p.wait <= target + 1e-9:
            ok += 1
    return _r(100.0 * ok / len(patients))


__all__ = [
    "DayRecord",
    "DoctorRecord",
    "PatientRecord",
    "QueueSample",
    "build_report",
    "mean_absolute_error",
    "percentile",
    "summarise",
]
