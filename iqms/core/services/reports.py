"""Clinic reports: volumes, waits, service times, outcomes and triage targets.

Each ticket in scope is first reduced, by the database, to the few values the
report needs (its wait and service minutes, clinic hour of arrival, whether
the wait met its target). PostgreSQL then computes every figure with
aggregate queries (``GROUPING SETS``, ``percentile_cont``) over those rows in
a temporary table. SQLite, which has no percentile function, streams them
once into Python, which keeps every count and distribution in the same pass
(the same linear interpolation as ``percentile_cont``). A year of history
takes seconds on SQLite and well under one on PostgreSQL.

Definitions (shown with the report):

- the date range is inclusive and counts clinic service days;
- *wait*: arrival to first call, for tickets that were called (a transferred
  ticket counts once, in the queue it was transferred to, from its original
  arrival);
- *service time*: start of the consultation (or the call, if no start was
  recorded) to its end, for served tickets;
- *no-show* and *cancellation rates*: share of tickets with an outcome
  (served, no-show or cancelled);
- *within target*: waited no longer than the category's target, counting
  whole minutes (department overrides apply);
- hours of day are clinic time (``IQMS_TIMEZONE``).
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column,
    Date,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy.sql.elements import ColumnElement

from iqms.core.enums import TicketStatus, TriageCategory
from iqms.core.errors import NotFound, ValidationError
from iqms.core.models import Department, Doctor, QueueEntry, User
from iqms.core.queue.policy import targets as triage_targets
from iqms.core.security.audit import log_action
from iqms.core.security.rbac import Permission
from iqms.core.service import Context, operation

MAX_RANGE_DAYS = 3 * 366 + 1
BUSIEST_HOURS = 3

QE = QueueEntry


# ---- what a report holds ------------------------------------------------------------------
@dataclass(frozen=True)
class Distribution:
    """A sample of durations in minutes: size, mean, median and 90th percentile."""

    count: int
    mean: float | None
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class Breakdown:
    """One row of a grouped distribution (a department, category, hour or doctor)."""

    key: str  # stable: department code, category number, hour "09", doctor username
    label: str  # for people
    minutes: Distribution


@dataclass(frozen=True)
class Outcomes:
    """Ticket counts by how they ended."""

    total: int = 0
    served: int = 0
    no_show: int = 0
    cancelled: int = 0
    transferred: int = 0
    open: int = 0  # still waiting, called or in service

    @property
    def closed(self) -> int:
        """Tickets with an outcome: served, no-show or cancelled."""
        return self.served + self.no_show + self.cancelled

    @property
    def no_show_rate(self) -> float | None:
        return self.no_show / self.closed if self.closed else None

    @property
    def cancellation_rate(self) -> float | None:
        return self.cancelled / self.closed if self.closed else None


@dataclass(frozen=True)
class DepartmentVolume:
    code: str
    name: str
    outcomes: Outcomes


@dataclass(frozen=True)
class DayVolume:
    day: date
    outcomes: Outcomes


@dataclass(frozen=True)
class HourLoad:
    """Arrivals in one hour of the day (clinic time) over the range."""

    hour: int
    arrivals: int
    per_open_day: float


@dataclass(frozen=True)
class TriageResult:
    """How many called patients of a category waited no longer than its target."""

    category: int
    label: str
    target_min: int  # departments may override targets: the range in scope
    target_max: int
    seen: int
    within_target: int

    @property
    def percent_within(self) -> float | None:
        return 100.0 * self.within_target / self.seen if self.seen else None


@dataclass(frozen=True)
class ReportScope:
    date_from: date
    date_to: date
    timezone: str
    department_code: str | None = None
    department_name: str | None = None
    doctor_username: str | None = None
    doctor_name: str | None = None

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1


@dataclass(frozen=True)
class ClinicReport:
    """Everything ``iqms admin report`` shows."""

    scope: ReportScope
    generated_at: datetime
    outcomes: Outcomes
    patients: int  # distinct registered patients
    walk_ins: int  # tickets without a registered patient
    open_days: int  # service days with at least one ticket
    by_source: dict[str, int]
    by_department: list[DepartmentVolume]
    by_day: list[DayVolume]
    waits: Distribution
    waits_by_department: list[Breakdown]
    waits_by_category: list[Breakdown]
    waits_by_hour: list[Breakdown]
    waits_by_doctor: list[Breakdown]
    service_times: Distribution
    service_by_department: list[Breakdown]
    service_by_doctor: list[Breakdown]
    triage: list[TriageResult]
    arrivals_by_hour: list[HourLoad] = field(default_factory=list)

    @property
    def busiest_hours(self) -> list[HourLoad]:
        """The hours of the day with the most arrivals, busiest first."""
        ranked = sorted(self.arrivals_by_hour, key=lambda h: (-h.arrivals, h.hour))
        return [h for h in ranked if h.arrivals][:BUSIEST_HOURS]


# ---- the operation ------------------------------------------------------------------------
@operation(Permission.REPORTS_VIEW)
async def clinic_report(
    ctx: Context,
    *,
    date_from: date,
    date_to: date,
    department: str | None = None,
    doctor: str | None = None,
) -> ClinicReport:
    """Volumes, waits, service times, outcomes and triage targets for a date range."""
    _check_range(date_from, date_to)
    tz = ctx.settings.tz
    dept = await _department(ctx, department) if department else None
    doc = await _doctor(ctx, doctor) if doctor else None
    scope = ReportScope(
        date_from=date_from,
        date_to=date_to,
        timezone=tz.key,
        department_code=dept.code if dept else None,
        department_name=dept.name if dept else None,
        doctor_username=doc[1].username if doc else None,
        doctor_name=doc[1].full_name if doc else None,
    )
    q = _Queries(ctx, scope, tz, dept, doc[0] if doc else None)
    await q.load_labels()
    if q.pg:
        await q.build_sample()
        counts = await q.counts()
        patients, walk_ins = await q.people()
        waits = await q.distributions("wait_min", WAIT_KEYS)
        service = await q.distributions("service_min", SERVICE_KEYS)
        await q.drop_sample()
    else:
        counts, (patients, walk_ins), waits, service = await q.one_pass()
    outcomes = _outcomes({TicketStatus(s): int(n) for s, n in counts["status"]})
    by_day = _days_volume(counts["day"])
    report = ClinicReport(
        scope=scope,
        generated_at=ctx.now(),
        outcomes=outcomes,
        patients=patients,
        walk_ins=walk_ins,
        open_days=len(by_day),
        by_source={str(s): int(n) for s, n in sorted(counts["source"])},
        by_department=q.departments_volume(counts["department"]),
        by_day=by_day,
        waits=q.overall(waits),
        waits_by_department=q.breakdown(waits, "department"),
        waits_by_category=q.breakdown(waits, "category"),
        waits_by_hour=q.breakdown(waits, "hour"),
        waits_by_doctor=q.breakdown(waits, "doctor"),
        service_times=q.overall(service),
        service_by_department=q.breakdown(service, "department"),
        service_by_doctor=q.breakdown(service, "doctor"),
        triage=q.triage(waits),
        arrivals_by_hour=_hours_load(counts["hour"], len(by_day)),
    )
    await log_action(
        ctx,
        action="report.viewed",
        target=("department", dept.id) if dept else None,
        details={
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
            "department": scope.department_code,
            "doctor": scope.doctor_username,
            "tickets": outcomes.total,
        },
    )
    return report


# ---- scope -------------------------------------------------------------------------------
def _check_range(date_from: date, date_to: date) -> None:
    if date_from > date_to:
        raise ValidationError(
            f"the start date {date_from.isoformat()} is after the end date {date_to.isoformat()}",
            field="date_from",
        )
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        raise ValidationError(
            f"a report covers at most {MAX_RANGE_DAYS} days; choose a shorter range",
            field="date_to",
        )


async def _department(ctx: Context, code: str) -> Department:
    found = (
        await ctx.s.execute(
            select(Department).where(func.upper(Department.code) == code.strip().upper())
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no department with code {code!r}")
    return found


async def _doctor(ctx: Context, username: str) -> tuple[Doctor, User]:
    found = (
        await ctx.s.execute(
            select(Doctor, User)
            .join(User, User.id == Doctor.user_id)
            .where(func.lower(User.username) == username.strip().lower())
        )
    ).first()
    if found is None:
        raise NotFound(f"no doctor with username {username!r}")
    return found[0], found[1]


def _utc_offset_segments(
    tz: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime | None, int]]:
    """The zone's UTC offsets (minutes) between two instants, as (until, offset) segments.

    The last segment has ``until=None``. Used to turn stored UTC times into
    clinic hours on SQLite, which has no time-zone database.
    """

    def offset(at: datetime) -> int:
        delta = at.astimezone(tz).utcoffset() or timedelta(0)
        return int(delta.total_seconds() // 60)

    segments: list[tuple[datetime | None, int]] = []
    at = start.replace(minute=0, second=0, microsecond=0)
    current = offset(at)
    while at < end:
        step = at + timedelta(hours=1)
        if offset(step) != current:
            lo, hi = at, step  # the change happens in (lo, hi]: find the minute
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid <= lo:
                    mid = lo + timedelta(minutes=1)
                if offset(mid) == current:
                    lo = mid
                else:
                    hi = mid
            segments.append((hi, current))
            current = offset(hi)
        at = step
    segments.append((None, current))
    return segments


# ---- the queries ---------------------------------------------------------------------------
_COLUMN = {
    "department": "dept_id",
    "category": "category",
    "hour": "arrival_hour",
    "doctor": "doctor_id",
}
WAIT_KEYS = ("department", "category", "hour", "doctor")
SERVICE_KEYS = ("department", "doctor")


def _sample_table(name: str) -> Table:
    """One narrow row per ticket in scope, with its wait and service time worked out."""
    return Table(
        name,
        MetaData(),
        Column("dept_id", Uuid),
        Column("day", Date),
        Column("status", String(16)),
        Column("source", String(16)),
        Column("patient_id", Uuid),
        Column("category", Integer),
        Column("arrival_hour", Integer),
        Column("doctor_id", Uuid),
        Column("wait_min", Float),  # NULL unless the ticket was called (and not moved away)
        Column("on_target", Integer),  # 1 if the wait was within the category's target
        Column("service_min", Float),  # NULL unless served
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


class _Queries:
    """Builds and runs the report's queries for one scope.

    The tickets in scope are reduced to the few columns the report needs
    (wait and service minutes, clinic hour, target met): on PostgreSQL copied
    into a temporary table that the aggregate queries read (one scan of
    ``queue_entries`` instead of one per figure); on SQLite read once by
    :meth:`one_pass`.
    """

    def __init__(
        self,
        ctx: Context,
        scope: ReportScope,
        tz: ZoneInfo,
        department: Department | None,
        doctor: Doctor | None,
    ) -> None:
        self.ctx = ctx
        self.scope = scope
        self.tz = tz
        self.pg = ctx.db.is_postgres
        self.department = department
        self.doctor = doctor
        self.where: list[ColumnElement[bool]] = [
            QE.service_date >= scope.date_from,
            QE.service_date <= scope.date_to,
        ]
        if department is not None:
            self.where.append(QE.department_id == department.id)
        if doctor is not None:
            self.where.append(func.coalesce(QE.called_doctor_id, QE.doctor_id) == doctor.id)
        self.departments: dict[uuid.UUID, Department] = {}
        self.doctors: dict[uuid.UUID, tuple[str, str]] = {}
        self.t = _sample_table(f"iqms_report_{uuid.uuid4().hex[:12]}")

    async def load_labels(self) -> None:
        """Departments (names, triage targets) and doctors (usernames, names): small tables."""
        depts = (await self.ctx.s.execute(select(Department))).scalars().all()
        self.departments = {d.id: d for d in depts}
        rows = (
            await self.ctx.s.execute(
                select(Doctor.id, User.username, User.full_name).join(
                    User, User.id == Doctor.user_id
                )
            )
        ).all()
        self.doctors = {r.id: (r.username, r.full_name) for r in rows}

    # -- SQL building blocks --
    def seconds_between(self, start: Any, end: Any) -> ColumnElement[float]:
        if self.pg:
            return func.date_part("epoch", end - start)
        # julianday() is precise to ~0.1 ms at today's dates; round to whole milliseconds.
        return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)

    def local_hour(self, column: Any) -> ColumnElement[int]:
        if self.pg:
            return cast(func.date_part("hour", func.timezone(self.tz.key, column)), Integer)
        start = datetime.combine(self.scope.date_from - timedelta(days=2), time(), UTC)
        end = datetime.combine(self.scope.date_to + timedelta(days=2), time(), UTC)
        segments = _utc_offset_segments(self.tz, start, end)
        last = literal(f"{segments[-1][1]:+d} minutes")
        if len(segments) == 1:
            modifier: Any = last
        else:
            modifier = case(
                *[(column < until, literal(f"{off:+d} minutes")) for until, off in segments[:-1]],
                else_=last,
            )
        return cast(func.strftime("%H", column, modifier), Integer)

    def target_minutes(self) -> ColumnElement[int]:
        """The triage target of each ticket's category in its department (overrides apply)."""
        defaults = triage_targets(None)
        default_expr = case(
            {int(c): minutes for c, minutes in defaults.items()}, value=QE.triage_category
        )
        whens = []
        for dept in self.departments.values():
            for cat, minutes in triage_targets(dept.triage_targets).items():
                if minutes != defaults[cat]:
                    whens.append(
                        (
                            and_(QE.department_id == dept.id, QE.triage_category == int(cat)),
                            minutes,
                        )
                    )
        if not whens:
            return default_expr
        return case(*whens, else_=default_expr)

    def sample_rows(self, *, raw_keys: bool = False) -> Any:
        """Each ticket in scope as the sample table's columns (in their order).

        ``raw_keys``: ids, day, status and source as the database holds them
        (text on SQLite), for counting without converting each row.
        """

        def key(column: Any) -> Any:
            return type_coerce(column, String) if raw_keys else column

        wait_s = self.seconds_between(QE.arrived_at, QE.called_at)
        waited = and_(QE.called_at.is_not(None), QE.status != TicketStatus.TRANSFERRED)
        service_start = func.coalesce(QE.started_at, QE.called_at)
        served = and_(
            QE.status == TicketStatus.SERVED,
            QE.finished_at.is_not(None),
            service_start.is_not(None),
        )
        return select(
            key(QE.department_id),
            key(QE.service_date),
            key(QE.status),
            key(QE.source),
            key(QE.patient_id),
            QE.triage_category,
            self.local_hour(QE.arrived_at),
            key(QE.called_doctor_id),
            case((waited, wait_s / 60.0)),
            # Waits count in whole minutes, as clinics record them: 10 min 40 s meets a
            # 10-minute target, 11 min does not (and "immediate" means within the minute).
            case((waited, case((wait_s < (self.target_minutes() + 1) * 60, 1), else_=0))),
            case((served, self.seconds_between(service_start, QE.finished_at) / 60.0)),
        ).where(*self.where)

    async def build_sample(self) -> None:
        """Copy the tickets in scope into the temporary sample table."""
        if self.pg:
            # Sorting a year of waits for the percentiles needs more than the default 4 MB.
            await self.ctx.s.execute(text("SET LOCAL work_mem = '256MB'"))
        await self.ctx.s.execute(CreateTable(self.t))
        await self.ctx.s.execute(
            insert(self.t).from_select(list(self.t.c.keys()), self.sample_rows())
        )

    async def one_pass(
        self,
    ) -> tuple[
        dict[str, list[tuple[Any, ...]]],
        tuple[int, int],
        dict[str | None, list[Any]],
        dict[str | None, list[Any]],
    ]:
        """Every count and distribution from one read of the tickets in scope (SQLite)."""
        pass_ = _OnePass()
        conn = await self.ctx.s.connection()  # plain rows, no ORM loading
        with self.ctx.db.in_worker_thread():  # a year of rows: keep the event loop free
            result = await conn.stream(self.sample_rows(raw_keys=True))
            async for rows in result.partitions(5000):
                pass_.add(rows)
        return (
            pass_.counts(),
            pass_.people(),
            pass_.distributions(WAIT_KEYS, "wait"),
            pass_.distributions(SERVICE_KEYS, "service"),
        )

    async def drop_sample(self) -> None:
        """Drop the sample now (PostgreSQL would also drop it at commit)."""
        await self.ctx.s.execute(DropTable(self.t, if_exists=True))

    # -- distributions --
    async def distributions(self, value: str, keys: Sequence[str]) -> dict[str | None, list[Any]]:
        """Rows (k, n, mean, median, p90, on_target) of ``value`` overall and by each key.

        PostgreSQL, one query: GROUPING SETS ((), (dept), (category), ...) with
        percentile_cont.
        """
        t = self.t
        v = t.c[value]
        cols = [t.c[_COLUMN[k]] for k in keys]
        stmt = (
            select(
                func.grouping(*cols).label("g"),
                *cols,
                func.count(v).label("n"),
                func.avg(v).label("mean"),
                # both percentiles from one sort of each group's values
                func.percentile_cont(postgresql.array([0.5, 0.9])).within_group(v).label("pct"),
                func.sum(t.c.on_target).label("on_target"),
            )
            .where(v.is_not(None))
            .group_by(func.grouping_sets(tuple_(), *(tuple_(c) for c in cols)))
        )
        rows = (await self.ctx.s.execute(stmt)).all()
        everything = (1 << len(keys)) - 1  # grouping() sets a bit per key not grouped by
        out: dict[str | None, list[Any]] = {None: [], **{k: [] for k in keys}}
        for row in rows:
            median, p90 = row.pct or (None, None)
            if row.g == everything:
                out[None].append(_Dist(None, row.n, row.mean, median, p90, row.on_target))
                continue
            for i, key in enumerate(keys):
                if row.g == everything & ~(1 << (len(keys) - 1 - i)):
                    k = getattr(row, _COLUMN[key])
                    out[key].append(_Dist(k, row.n, row.mean, median, p90, row.on_target))
        return out

    def overall(self, dists: dict[str | None, list[Any]]) -> Distribution:
        rows = [r for r in dists[None] if r.n]
        return _distribution(rows[0]) if rows else Distribution(0, None, None, None)

    def breakdown(self, dists: dict[str | None, list[Any]], key: str) -> list[Breakdown]:
        out = [Breakdown(*self.label(key, r.k), minutes=_distribution(r)) for r in dists[key]]
        return sorted(out, key=_sort_key(key))

    def triage(self, waits: dict[str | None, list[Any]]) -> list[TriageResult]:
        by_cat = {int(r.k): r for r in waits["category"]}
        scoped = (
            [self.department] if self.department is not None else list(self.departments.values())
        )
        per_dept = [triage_targets(d.triage_targets) for d in scoped] or [triage_targets(None)]
        results = []
        for cat in TriageCategory:
            minutes = [t[cat] for t in per_dept]
            row = by_cat.get(int(cat))
            results.append(
                TriageResult(
                    category=int(cat),
                    label=cat.label,
                    target_min=min(minutes),
                    target_max=max(minutes),
                    seen=int(row.n) if row else 0,
                    within_target=int(row.on_target or 0) if row else 0,
                )
            )
        return results

    def label(self, key: str, value: Any) -> tuple[str, str]:
        if key == "department":
            dept = self.departments.get(_as_uuid(value))
            return (dept.code, dept.name) if dept else ("?", "unknown department")
        if key == "category":
            cat = TriageCategory(int(value))
            return str(int(cat)), f"{int(cat)} {cat.label}"
        if key == "hour":
            return f"{int(value):02d}", f"{int(value):02d}:00"
        if key == "doctor":
            if value is None:
                return "-", "not recorded"
            found = self.doctors.get(_as_uuid(value))
            return found if found else ("?", "unknown doctor")
        raise ValueError(key)

    # -- counts --
    async def counts(self) -> dict[str, list[tuple[Any, ...]]]:
        """Ticket counts for each of ``_COUNT_SETS``: rows of (key columns..., count).

        PostgreSQL: all of them in one pass with GROUPING SETS.
        """
        t = self.t
        out: dict[str, list[tuple[Any, ...]]] = {name: [] for name in _COUNT_SETS}
        names = list(dict.fromkeys(c for cols in _COUNT_SETS.values() for c in cols))
        all_cols = [t.c[c] for c in names]
        stmt = select(func.grouping(*all_cols).label("g"), *all_cols, func.count().label("n"))
        stmt = stmt.group_by(
            func.grouping_sets(*(tuple_(*(t.c[c] for c in cols)) for cols in _COUNT_SETS.values()))
        )
        mask_of = {
            sum(1 << (len(names) - 1 - i) for i, c in enumerate(names) if c not in cols): name
            for name, cols in _COUNT_SETS.items()
        }
        for row in (await self.ctx.s.execute(stmt)).all():
            name = mask_of[row.g]
            out[name].append((*(getattr(row, c) for c in _COUNT_SETS[name]), row.n))
        return out

    async def people(self) -> tuple[int, int]:
        """Distinct registered patients, and tickets without one (walk-ins)."""
        t = self.t
        per_patient = (
            select(t.c.patient_id, func.count().label("n")).group_by(t.c.patient_id).subquery()
        )
        row = (
            await self.ctx.s.execute(
                select(
                    func.coalesce(
                        func.sum(case((per_patient.c.patient_id.is_not(None), 1), else_=0)), 0
                    ),
                    func.coalesce(
                        func.sum(case((per_patient.c.patient_id.is_(None), per_patient.c.n))), 0
                    ),
                )
            )
        ).one()
        return int(row[0]), int(row[1])

    def departments_volume(self, rows: list[tuple[Any, ...]]) -> list[DepartmentVolume]:
        counts: dict[uuid.UUID, dict[TicketStatus, int]] = {}
        for dept_id, status, n in rows:
            counts.setdefault(_as_uuid(dept_id), {})[TicketStatus(status)] = int(n)
        out = []
        for dept_id, by_status in counts.items():
            code, name = self.label("department", dept_id)
            out.append(DepartmentVolume(code=code, name=name, outcomes=_outcomes(by_status)))
        return sorted(out, key=lambda d: d.code)


class _OnePass:
    """Counts and samples kept while reading the tickets in scope once (keys as stored)."""

    def __init__(self) -> None:
        self.by: dict[str, Counter[Any]] = {name: Counter() for name in _COUNT_SETS}
        self.patients: set[Any] = set()
        self.walk_ins = 0
        # value kind -> grouping (None: all) -> group -> values, and on-target counts
        self.values: dict[str, dict[str | None, dict[Any, list[float]]]] = {
            "wait": {None: {}, **{k: {} for k in WAIT_KEYS}},
            "service": {None: {}, **{k: {} for k in SERVICE_KEYS}},
        }
        self.on_target: dict[str | None, Counter[Any]] = {None: Counter()}
        self.on_target.update({k: Counter() for k in WAIT_KEYS})

    def add(self, rows: Sequence[Any]) -> None:
        by = self.by
        by["status"].update(r[2] for r in rows)
        by["source"].update(r[3] for r in rows)
        by["department"].update((r[0], r[2]) for r in rows)
        by["day"].update((r[1], r[2]) for r in rows)
        by["hour"].update(r[6] for r in rows)
        waits, services, on_target = self.values["wait"], self.values["service"], self.on_target
        for (
            dept,
            _day,
            _status,
            _source,
            patient,
            category,
            hour,
            doctor,
            wait,
            met,
            service,
        ) in rows:
            if patient is None:
                self.walk_ins += 1
            else:
                self.patients.add(patient)
            if wait is not None:
                for grouping, group in (
                    (None, None), ("department", dept), ("category", category),
                    ("hour", hour), ("doctor", doctor),
                ):  # fmt: skip
                    found = waits[grouping].get(group)
                    if found is None:
                        waits[grouping][group] = [wait]
                    else:
                        found.append(wait)
                    if met:
                        on_target[grouping][group] += 1
            if service is not None:
                for grouping, group in ((None, None), ("department", dept), ("doctor", doctor)):
                    found = services[grouping].get(group)
                    if found is None:
                        services[grouping][group] = [service]
                    else:
                        found.append(service)

    def counts(self) -> dict[str, list[tuple[Any, ...]]]:
        def plain(name: str, key: Any) -> tuple[Any, ...]:
            parts = key if isinstance(key, tuple) else (key,)
            if name == "day":
                return (date.fromisoformat(parts[0]), parts[1])
            return parts

        return {name: [(*plain(name, k), n) for k, n in c.items()] for name, c in self.by.items()}

    def people(self) -> tuple[int, int]:
        return len(self.patients), self.walk_ins

    def distributions(self, keys: Sequence[str], kind: str) -> dict[str | None, list[Any]]:
        out: dict[str | None, list[Any]] = {None: [], **{k: [] for k in keys}}
        for grouping, groups in self.values[kind].items():
            met = self.on_target.get(grouping, Counter()) if kind == "wait" else Counter()
            for group, values in groups.items():
                values.sort()
                out[grouping].append(
                    _Dist(
                        group,
                        len(values),
                        math.fsum(values) / len(values),
                        _percentile(values, 0.5),
                        _percentile(values, 0.9),
                        met[group],
                    )
                )
        return out


def _percentile(ordered: Sequence[float], p: float) -> float:
    """percentile_cont(p) of sorted values: linear interpolation between the two ranks around it."""
    pos = p * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])


_COUNT_SETS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "source": ("source",),
    "department": ("dept_id", "status"),
    "day": ("day", "status"),
    "hour": ("arrival_hour",),
}


def _days_volume(rows: list[tuple[Any, ...]]) -> list[DayVolume]:
    counts: dict[date, dict[TicketStatus, int]] = {}
    for day, status, n in rows:
        counts.setdefault(day, {})[TicketStatus(status)] = int(n)
    return [DayVolume(day=d, outcomes=_outcomes(c)) for d, c in sorted(counts.items())]


def _hours_load(rows: list[tuple[Any, ...]], open_days: int) -> list[HourLoad]:
    return [
        HourLoad(hour=int(h), arrivals=int(n), per_open_day=int(n) / max(open_days, 1))
        for h, n in sorted(rows)
    ]


@dataclass(frozen=True)
class _Dist:
    k: Any
    n: int
    mean: float | None
    median: float | None
    p90: float | None
    on_target: int | None


def _distribution(row: Any) -> Distribution:
    def num(v: Any) -> float | None:
        return None if v is None else round(float(v), 3)

    return Distribution(int(row.n), num(row.mean), num(row.median), num(row.p90))


def _outcomes(by_status: dict[TicketStatus, int]) -> Outcomes:
    S = TicketStatus
    return Outcomes(
        total=sum(by_status.values()),
        served=by_status.get(S.SERVED, 0),
        no_show=by_status.get(S.NO_SHOW, 0),
        cancelled=by_status.get(S.CANCELLED, 0),
        transferred=by_status.get(S.TRANSFERRED, 0),
        open=sum(by_status.get(s, 0) for s in (S.WAITING, S.HELD, S.CALLED, S.IN_SERVICE)),
    )


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _sort_key(key: str) -> Any:
    if key in ("category", "hour"):
        return lambda b: int(b.key)
    if key == "doctor":
        return lambda b: (b.key == "-", b.label.lower())
    return lambda b: b.key


__all__: Sequence[str] = [
    "Breakdown",
    "ClinicReport",
    "DayVolume",
    "DepartmentVolume",
    "Distribution",
    "HourLoad",
    "Outcomes",
    "ReportScope",
    "TriageResult",
    "clinic_report",
]
