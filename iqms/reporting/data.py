"""A clinic report as plain data: a JSON document, or long-format rows for CSV."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from iqms.core.services.reports import (
    Breakdown,
    ClinicReport,
    Distribution,
    Outcomes,
)

DEFINITIONS = {
    "dates": "service days in the clinic's time zone, both ends included",
    "wait": "arrival to first call, for tickets that were called "
    "(a transferred ticket counts once, in its new queue, from its original arrival)",
    "service_time": "start of the consultation (or the call) to its end, for served tickets",
    "rates": "share of tickets with an outcome (served, no-show or cancelled)",
    "within_target": "waited no longer than the category's target, in whole minutes "
    "(department overrides apply)",
    "hours": "hour of arrival, clinic time",
}

CSV_COLUMNS = ("section", "breakdown", "key", "label", "metric", "value")


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def distribution(d: Distribution) -> dict[str, Any]:
    return {
        "count": d.count,
        "mean_minutes": _round(d.mean),
        "median_minutes": _round(d.median),
        "p90_minutes": _round(d.p90),
    }


def outcomes(o: Outcomes) -> dict[str, Any]:
    return {
        "tickets": o.total,
        "served": o.served,
        "no_show": o.no_show,
        "cancelled": o.cancelled,
        "transferred": o.transferred,
        "open": o.open,
        "no_show_rate": _round(o.no_show_rate, 4),
        "cancellation_rate": _round(o.cancellation_rate, 4),
    }


def _breakdown(rows: list[Breakdown]) -> list[dict[str, Any]]:
    return [{"key": b.key, "label": b.label, **distribution(b.minutes)} for b in rows]


def report_to_dict(r: ClinicReport) -> dict[str, Any]:
    """Everything in the report, JSON-ready (minutes rounded to 0.1)."""
    s = r.scope
    return {
        "scope": {
            "from": s.date_from.isoformat(),
            "to": s.date_to.isoformat(),
            "days": s.days,
            "timezone": s.timezone,
            "department": {"code": s.department_code, "name": s.department_name}
            if s.department_code
            else None,
            "doctor": {"username": s.doctor_username, "name": s.doctor_name}
            if s.doctor_username
            else None,
        },
        "generated_at": r.generated_at.isoformat(),
        "definitions": DEFINITIONS,
        "volumes": {
            **outcomes(r.outcomes),
            "patients": r.patients,
            "walk_ins": r.walk_ins,
            "open_days": r.open_days,
            "by_source": r.by_source,
            "by_department": [
                {"code": d.code, "name": d.name, **outcomes(d.outcomes)} for d in r.by_department
            ],
            "by_day": [{"date": d.day.isoformat(), **outcomes(d.outcomes)} for d in r.by_day],
        },
        "waits": {
            "overall": distribution(r.waits),
            "by_department": _breakdown(r.waits_by_department),
            "by_category": _breakdown(r.waits_by_category),
            "by_hour": _breakdown(r.waits_by_hour),
            "by_doctor": _breakdown(r.waits_by_doctor),
        },
        "service_times": {
            "overall": distribution(r.service_times),
            "by_department": _breakdown(r.service_by_department),
            "by_doctor": _breakdown(r.service_by_doctor),
        },
        "triage_targets": [
            {
                "category": t.category,
                "label": t.label,
                "target_minutes": t.target_min
                if t.target_min == t.target_max
                else [t.target_min, t.target_max],
                "seen": t.seen,
                "within_target": t.within_target,
                "percent_within": _round(t.percent_within),
            }
            for t in r.triage
        ],
        "arrivals_by_hour": [
            {"hour": h.hour, "arrivals": h.arrivals, "per_open_day": _round(h.per_open_day)}
            for h in r.arrivals_by_hour
        ],
        "busiest_hours": [h.hour for h in r.busiest_hours],
    }


def report_to_rows(r: ClinicReport) -> Iterator[dict[str, Any]]:
    """Long-format rows (``CSV_COLUMNS``): one number per row, easy to pivot."""

    def row(section: str, breakdown: str, key: Any, label: str, metric: str, value: Any):  # type: ignore[no-untyped-def]
        return {
            "section": section,
            "breakdown": breakdown,
            "key": key,
            "label": label,
            "metric": metric,
            "value": value,
        }

    for metric, value in outcomes(r.outcomes).items():
        yield row("volumes", "all", "", "", metric, value)
    for metric, value in (
        ("patients", r.patients),
        ("walk_ins", r.walk_ins),
        ("open_days", r.open_days),
    ):
        yield row("volumes", "all", "", "", metric, value)
    for source, n in r.by_source.items():
        yield row("volumes", "source", source, source, "tickets", n)
    for d in r.by_department:
        for metric, value in outcomes(d.outcomes).items():
            yield row("volumes", "department", d.code, d.name, metric, value)
    for day in r.by_day:
        for metric, value in outcomes(day.outcomes).items():
            yield row("volumes", "day", day.day.isoformat(), day.day.isoformat(), metric, value)
    for section, overall, groups in (
        ("waits", r.waits, {
            "department": r.waits_by_department, "category": r.waits_by_category,
            "hour": r.waits_by_hour, "doctor": r.waits_by_doctor,
        }),
        ("service_times", r.service_times, {
            "department": r.service_by_department, "doctor": r.service_by_doctor,
        }),
    ):  # fmt: skip
        for metric, value in distribution(overall).items():
            yield row(section, "all", "", "", metric, value)
        for name, rows in groups.items():
            for b in rows:
                for metric, value in distribution(b.minutes).items():
                    yield row(section, name, b.key, b.label, metric, value)
    for t in r.triage:
        label = f"{t.category} {t.label}"
        yield row(
            "triage_targets", "category", t.category, label, "target_minutes_min", t.target_min
        )
        yield row(
            "triage_targets", "category", t.category, label, "target_minutes_max", t.target_max
        )
        yield row("triage_targets", "category", t.category, label, "seen", t.seen)
        yield row("triage_targets", "category", t.category, label, "within_target", t.within_target)
        yield row("triage_targets", "category", t.category, label, "percent_within",
                  _round(t.percent_within))  # fmt: skip
    for h in r.arrivals_by_hour:
        label = f"{h.hour:02d}:00"
        yield row("arrivals", "hour", h.hour, label, "arrivals", h.arrivals)
        yield row("arrivals", "hour", h.hour, label, "per_open_day", _round(h.per_open_day))


def scope_line(r: ClinicReport) -> str:
    """The dates, time zone and any department or doctor the report is limited to."""
    s = r.scope
    parts = [
        f"{s.date_from:%d %b %Y} to {s.date_to:%d %b %Y}",
        f"{s.days} day{'s' if s.days != 1 else ''}",
        s.timezone,
    ]
    if s.department_code:
        parts.append(f"department {s.department_code} ({s.department_name})")
    if s.doctor_username:
        parts.append(f"doctor {s.doctor_name} ({s.doctor_username})")
    return " · ".join(parts)


def volume_series(r: ClinicReport) -> tuple[str, list[tuple[str, int]]]:
    """Tickets per day, week or month (whichever keeps a chart readable), with the unit."""
    days = r.scope.days
    counts = {d.day: d.outcomes.total for d in r.by_day}
    if days <= 31:
        unit, buckets = "day", [r.scope.date_from + timedelta(days=i) for i in range(days)]
        key = _identity
    elif days <= 26 * 7:
        unit, key = "week", _week_start
        buckets = sorted({_week_start(r.scope.date_from + timedelta(days=i)) for i in range(days)})
    else:
        unit, key = "month", _month_start
        buckets = sorted({_month_start(r.scope.date_from + timedelta(days=i)) for i in range(days)})
    totals = dict.fromkeys(buckets, 0)
    for day, n in counts.items():
        totals[key(day)] = totals.get(key(day), 0) + n
    fmt = {"day": "%d %b", "week": "%d %b", "month": "%b %Y"}[unit]
    return unit, [(b.strftime(fmt), totals[b]) for b in buckets]


def _identity(d: date) -> date:
    return d


def _week_start(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _month_start(d: date) -> date:
    return d.replace(day=1)
