"""Wait estimates: how long until a waiting ticket is called, as a 50% and a 90% bound.

An estimate comes from four things the database knows:

* the ticket's **position** in the queue order (queue band, due time, arrival
  time), counted with SQL;
* the **doctors available** in its department (or, for a ticket reserved for a
  doctor, that doctor alone), and how long the patients they are seeing now
  have already been in the room;
* **recent service times**, exponentially weighted, per department and per
  doctor (a department's ``default_service_minutes`` until there is history);
* the **recent arrival rate by triage category**: urgent patients who arrive
  while this one waits and are due earlier will be called first.

The arithmetic lives in pure functions (:func:`service_stats`,
:func:`residual_minutes`, :func:`estimate_wait`, ...) that need no database;
:func:`estimate_for_entry` and :func:`estimates_for_department` read the
inputs and apply them.
"""

from __future__ import annotations

import math
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from iqms.core.config import Settings
from iqms.core.enums import DEFAULT_TRIAGE_TARGET_MINUTES, DoctorStatus, TicketStatus
from iqms.core.models import Department, Doctor, QueueEntry
from iqms.core.queue import engine as queue_engine

if TYPE_CHECKING:
    from iqms.core.service import Context

# ---- tuning (minutes, weights) -------------------------------------------------------------
#: weight of the newest service time in the exponentially weighted averages
SERVICE_ALPHA = 0.15
#: how many recent consultations of a department are read
SERVICE_HISTORY = 80
#: only consultations that ended this recently count as "recent"
SERVICE_HISTORY_DAYS = 14
#: the department's default service time counts as this many consultations
DEFAULT_PRIOR_WEIGHT = 3.0
#: a doctor's own mean is pulled towards the department's with this many consultations' weight
DOCTOR_PRIOR_WEIGHT = 4.0
#: spread of service times (coefficient of variation) assumed before there is history
DEFAULT_SERVICE_CV = 0.5
#: time constant of the arrival-rate estimate
ARRIVAL_TAU_MINUTES = 40.0
#: arrivals older than this do not count; at most this many recent ones are read
ARRIVAL_WINDOW_MINUTES = 4 * ARRIVAL_TAU_MINUTES
ARRIVAL_SAMPLE = 400
#: at most this share of the doctors' turns during a wait go to later, more urgent arrivals
MAX_OVERTAKE_SHARE = 0.5
#: doctors' pace drifts and arrivals bunch: widen the range beyond independent draws
VARIANCE_INFLATION = 2.0
#: z-score of the 90% bound
Z90 = 1.2815515655446004

_BUSY = (TicketStatus.CALLED, TicketStatus.IN_SERVICE)


@dataclass(frozen=True)
class WaitEstimate:
    """Estimated minutes until a ticket is called: median and 90% bound.

    ``position`` is how many waiting tickets will be called before this one
    (0 = next); ``servers`` how many available doctors can call it (0 means
    nobody is available right now: the estimate then assumes one will be).
    """

    p50_minutes: float
    p90_minutes: float
    position: int
    servers: int


@dataclass(frozen=True)
class ServiceStats:
    """Typical consultation length (minutes) and its spread (coefficient of variation)."""

    mean_minutes: float
    cv: float
    samples: int


@dataclass(frozen=True)
class Server:
    """An available doctor as the estimator sees them."""

    doctor_id: uuid.UUID
    mean_minutes: float
    cv: float
    free_in_minutes: float  # 0 when idle; expected remaining time of the current patient


@dataclass(frozen=True)
class Ahead:
    """Waiting tickets ahead of one ticket, split by whom they are reserved for."""

    pool: int  # department pool (no doctor named)
    reserved: Mapping[uuid.UUID, int] = field(default_factory=dict)  # doctor -> count

    @property
    def total(self) -> int:
        return self.pool + sum(self.reserved.values())

    @classmethod
    def of_lanes(cls, lanes: Mapping[uuid.UUID | None, int]) -> Ahead:
        """From :func:`iqms.core.queue.engine.lanes_ahead` (lane None = the pool)."""
        return cls(lanes.get(None, 0), {lane: n for lane, n in lanes.items() if lane is not None})


@dataclass(frozen=True)
class DepartmentState:
    """Everything about a department that the estimate of one of its tickets needs."""

    servers: tuple[Server, ...]
    stats: ServiceStats
    doctor_stats: Mapping[uuid.UUID, ServiceStats]
    # expected arrivals per minute by triage category (1..5)
    arrival_rates: Mapping[int, float]
    # target wait in minutes by triage category (1..5)
    targets: Mapping[int, float]


# ---- pure computation ----------------------------------------------------------------------
def service_stats(
    durations: Sequence[float],
    *,
    prior_mean: float,
    prior_cv: float = DEFAULT_SERVICE_CV,
    prior_weight: float = DEFAULT_PRIOR_WEIGHT,
    alpha: float = SERVICE_ALPHA,
) -> ServiceStats:
    """Exponentially weighted mean and spread of service times (oldest first).

    The prior (a default or the department's figure) counts as ``prior_weight``
    observations made before the oldest one, so a single unusual consultation
    does not swing the estimate and the prior fades as history accumulates.
    """
    prior_mean = max(prior_mean, 0.1)
    weights = []
    values = []
    n = len(durations)
    for i, d in enumerate(durations):
        if d is None or not math.isfinite(d) or d <= 0:
            continue
        weights.append((1.0 - alpha) ** (n - 1 - i))
        values.append(float(d))
    if not values:
        return ServiceStats(prior_mean, prior_cv, 0)
    w0 = prior_weight * (1.0 - alpha) ** n
    total_w = w0 + sum(weights)
    mean = (w0 * prior_mean + sum(w * v for w, v in zip(weights, values, strict=True))) / total_w
    # spread: weighted variance around the weighted mean, with the prior's own variance
    prior_var = (prior_cv * prior_mean) ** 2 + (prior_mean - mean) ** 2
    var = (
        w0 * prior_var + sum(w * (v - mean) ** 2 for w, v in zip(weights, values, strict=True))
    ) / total_w
    cv = math.sqrt(max(var, 0.0)) / mean if mean > 0 else prior_cv
    return ServiceStats(mean, min(max(cv, 0.05), 3.0), len(values))


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def residual_minutes(mean: float, cv: float, elapsed: float) -> float:
    """Expected remaining minutes of a consultation that has lasted ``elapsed`` so far.

    Service times are taken as lognormal with the given mean and spread; the
    answer is E[S - e | S > e], which shrinks slowly (not to zero) for a
    consultation that is already running long.
    """
    mean = max(mean, 0.01)
    elapsed = max(elapsed, 0.0)
    s2 = math.log(1.0 + max(cv, 0.01) ** 2)
    s = math.sqrt(s2)
    m = math.log(mean) - s2 / 2.0
    if elapsed <= 0.0:
        return mean
    z = (m - math.log(elapsed)) / s
    survive = _phi(z)
    if survive < 1e-9:
        # far beyond any usual length: it should end soon, but cannot be "now"
        return max(0.1 * mean, 0.5)
    partial = math.exp(m + s2 / 2.0) * _phi(z + s)
    return max(partial / survive - elapsed, 0.0)


def lognormal_bounds(mean: float, variance: float) -> tuple[float, float]:
    """Median and 90th percentile of a lognormal with this mean and variance."""
    if mean <= 0.0:
        return 0.0, 0.0
    if variance <= 0.0:
        return mean, mean
    s2 = math.log(1.0 + variance / mean**2)
    m = math.log(mean) - s2 / 2.0
    return math.exp(m), math.exp(m + Z90 * math.sqrt(s2))


def time_to_free_slot(servers: Sequence[Server], slots_needed: float) -> float:
    """Minutes until ``slots_needed`` doctors' turns have come up (fluid model).

    Doctor ``i`` is free for the first time after ``free_in_minutes`` and then
    every ``mean_minutes``; the answer is the earliest time by which the turns
    of all doctors add up to ``slots_needed`` (a ticket at position ``n`` needs
    ``n + 1``). Exact for one doctor; for several it spreads turns evenly.
    """
    if slots_needed <= 0 or not servers:
        return 0.0
    return _time_to_turns(_turn_events(servers), slots_needed)


def _turn_events(servers: Sequence[Server]) -> list[tuple[float, float]]:
    """(first free at, turns per minute) of each doctor, soonest first."""
    return sorted((max(s.free_in_minutes, 0.0), 1.0 / max(s.mean_minutes, 0.01)) for s in servers)


def _time_to_turns(events: Sequence[tuple[float, float]], slots_needed: float) -> float:
    """:func:`time_to_free_slot` for breakpoints from :func:`_turn_events` (worked out once
    per estimate: the fixed point below asks for them up to 30 times)."""
    # Walk the breakpoints where another doctor frees up; between them turns accrue linearly.
    count = 0.0  # turns available by time t
    rate = 0.0  # turns per minute from doctors already free
    t = 0.0
    for free_at, r in events:
        # before this doctor frees up, do the already-free ones cover the need?
        if rate > 0 and count + rate * (free_at - t) >= slots_needed:
            return t + (slots_needed - count) / rate
        count += rate * (free_at - t)
        t = free_at
        count += 1.0  # this doctor's first turn
        rate += r
        if count >= slots_needed:
            return t
    return t + (slots_needed - count) / rate


def overtaking_rate(
    arrival_rates: Mapping[int, float],
    targets: Mapping[int, float],
    *,
    due_in_minutes: float,
    waited_minutes: float,
) -> float:
    """Expected number of later arrivals that will be called before this ticket.

    An arrival of category ``c`` at time ``t`` from now is due at ``t + target(c)``
    and is called earlier if that is before this ticket's due time; category 1
    always goes first. Returns the count expected within ``waited_minutes``.
    """
    windows = _overtaking_windows(arrival_rates, targets, due_in_minutes=due_in_minutes)
    return _arrivals_within(windows, waited_minutes)


def _overtaking_windows(
    arrival_rates: Mapping[int, float], targets: Mapping[int, float], *, due_in_minutes: float
) -> list[tuple[float, float]]:
    """(arrivals per minute, the longest window in which such an arrival is due before this
    ticket) per category that arrives at all: worked out once per estimate."""
    return [
        (rate, math.inf if category == 1 else max(due_in_minutes - targets.get(category, 0.0), 0.0))
        for category, rate in arrival_rates.items()
        if rate > 0
    ]


def _arrivals_within(windows: Sequence[tuple[float, float]], waited_minutes: float) -> float:
    """:func:`overtaking_rate` for windows from :func:`_overtaking_windows`."""
    total = 0.0
    for rate, longest in windows:
        total += rate * max(min(waited_minutes, longest), 0.0)
    return total


@dataclass(frozen=True)
class _Turns:
    """Who will call a ticket and how fast: the part of an estimate that depends only on the
    department's state and the ticket's doctor (the same for every pool ticket of a list)."""

    share: float  # this ticket's share of the department's turns for pool tickets
    servers: int  # doctors available who can call it
    available: frozenset[uuid.UUID]
    rate: float  # turns per minute once all of them are busy
    mean_service: float
    cv: float
    size: int
    events: list[tuple[float, float]]


def _turns(state: DepartmentState, doctor_id: uuid.UUID | None) -> _Turns:
    servers = list(state.servers)
    available = frozenset(s.doctor_id for s in servers)
    if doctor_id is not None:
        stats = state.doctor_stats.get(doctor_id, state.stats)
        own = [s for s in servers if s.doctor_id == doctor_id]
        n_servers = len(own)
        me = own[0] if own else Server(doctor_id, stats.mean_minutes, stats.cv, 0.0)
        # Pool tickets ahead are shared among the doctors on duty, in proportion to their pace.
        total_rate = sum(1.0 / s.mean_minutes for s in servers) + (
            0 if own else 1.0 / me.mean_minutes
        )
        share = (1.0 / me.mean_minutes) / total_rate
        pool = [me]
    else:
        share = 1.0
        n_servers = len(servers)
        pool = servers or [Server(uuid.UUID(int=0), state.stats.mean_minutes, state.stats.cv, 0.0)]
    rate = sum(1.0 / s.mean_minutes for s in pool)
    return _Turns(
        share=share,
        servers=n_servers,
        available=available,
        rate=rate,
        mean_service=len(pool) / rate,
        cv=sum(s.cv for s in pool) / len(pool),
        size=len(pool),
        events=_turn_events(pool),
    )


def estimate_wait(
    state: DepartmentState,
    ahead: Ahead,
    *,
    doctor_id: uuid.UUID | None,
    due_in_minutes: float,
    band: int = 1,
    turns: _Turns | None = None,
) -> WaitEstimate:
    """The wait of one ticket, given its department's state and the tickets ahead of it.

    ``turns``: ``_turns(state, doctor_id)``, if the caller has it already.
    """
    if turns is None:
        turns = _turns(state, doctor_id)
    share = turns.share
    if doctor_id is not None:
        position = ahead.pool + ahead.reserved.get(doctor_id, 0)
        work = ahead.reserved.get(doctor_id, 0) + ahead.pool * share
    else:
        # Tickets reserved for a doctor who is not on duty do not hold anyone up now.
        reserved = sum(n for d, n in ahead.reserved.items() if d in turns.available)
        position = ahead.pool + sum(ahead.reserved.values())
        work = ahead.pool + reserved

    rate = turns.rate  # turns per minute once all are busy
    mean_service = turns.mean_service
    cv = turns.cv
    events = turns.events
    wait = _time_to_turns(events, work + 1.0)
    overtakers = 0.0
    if band > 0:
        windows = _overtaking_windows(
            state.arrival_rates, state.targets, due_in_minutes=due_in_minutes
        )
        # Fixed point: the longer the wait, the more urgent arrivals overtake it (a reserved
        # ticket only by those its doctor takes). Converges: the cap keeps the slope below 1.
        for _ in range(30):
            overtakers = min(
                share * _arrivals_within(windows, wait),
                # Surges pass: later arrivals take at most this share of the turns meanwhile.
                MAX_OVERTAKE_SHARE * wait * rate,
            )
            new_wait = _time_to_turns(events, work + overtakers + 1.0)
            if abs(new_wait - wait) < 0.01:
                wait = new_wait
                break
            wait = new_wait

    # Spread: turns come up like a renewal process, so the variance of the time until one's
    # turn grows with the wait itself (cv^2 x pace x wait); later arrivals who overtake add
    # their own (Poisson) share. Growing with the wait keeps the median monotone in position.
    pace = mean_service / turns.size  # minutes per turn, all doctors together
    variance = VARIANCE_INFLATION * pace * (cv * cv * wait + overtakers * pace)
    p50, p90 = lognormal_bounds(wait, variance)
    return WaitEstimate(
        p50_minutes=round(p50, 2),
        p90_minutes=round(max(p90, p50), 2),
        position=position,
        servers=turns.servers,
    )


def arrival_rates(
    arrivals: Iterable[tuple[int, float, int]], *, tau: float = ARRIVAL_TAU_MINUTES
) -> dict[int, float]:
    """Arrivals per minute by category, exponentially weighted by age.

    ``arrivals`` holds (category, minutes ago, how many) groups.
    """
    rates = dict.fromkeys(range(1, 6), 0.0)
    for category, ago, count in arrivals:
        if ago < 0 or count <= 0:
            continue
        rates[int(category)] = rates.get(int(category), 0.0) + count * math.exp(-ago / tau) / tau
    return rates


def department_targets(department: Department) -> dict[int, float]:
    """Target wait (minutes) per category, with the department's overrides."""
    targets = {int(c): float(m) for c, m in DEFAULT_TRIAGE_TARGET_MINUTES.items()}
    for key, value in (department.triage_targets or {}).items():
        try:
            targets[int(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return targets


# ---- reading the inputs --------------------------------------------------------------------
def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60.0


#: literal (not bound) so that both databases can use the partial index of served tickets
_IS_SERVED: ColumnElement[bool] = QueueEntry.status == literal_column("'served'")


def service_sample(
    doctor_id: uuid.UUID | None,
    called_at: datetime | None,
    started_at: datetime | None,
    finished_at: datetime | None,
) -> tuple[uuid.UUID | None, datetime, float] | None:
    """A served ticket's consultation as the estimates count it: (doctor, ended, minutes).

    The doctor is taken from the call, not only from the start; None when the
    times do not say how long it took.
    """
    began = started_at or called_at
    if called_at is not None and started_at is not None and called_at <= started_at:
        began = called_at
    if began is None or finished_at is None:
        return None
    return doctor_id, finished_at, _minutes(finished_at - began)


@dataclass
class _Inputs:
    """What the database says about a department, before it is turned into a state at ``now``."""

    default_minutes: float
    targets: dict[int, float]
    # served consultations, newest first: (doctor, when it ended, minutes)
    history: list[tuple[uuid.UUID | None, datetime, float]]
    # every doctor of the department: doctor -> status
    doctors: dict[uuid.UUID, DoctorStatus]
    # the tickets the department's doctors have called or are seeing: ticket -> (doctor, since)
    busy: dict[uuid.UUID, tuple[uuid.UUID, datetime]]
    # the newest tickets by daily sequence: (category, arrival)
    arrivals: list[tuple[int, datetime]]


async def _read_inputs(
    session: AsyncSession,
    department_id: uuid.UUID,
    *,
    now: datetime,
    department: Department | None = None,
) -> _Inputs:
    """Three statements: recent service times, doctors (with whom they are seeing), arrivals."""
    if department is None:
        department = await session.get(Department, department_id)
    default = float(department.default_service_minutes) if department else 12.0
    targets = (
        department_targets(department)
        if department
        else {int(c): float(m) for c, m in DEFAULT_TRIAGE_TARGET_MINUTES.items()}
    )
    qe = QueueEntry
    history_rows = (
        await session.execute(
            select(qe.called_doctor_id, qe.called_at, qe.started_at, qe.finished_at)
            .where(
                qe.department_id == department_id,
                _IS_SERVED,
                qe.finished_at.is_not(None),
                qe.finished_at <= now,
                qe.finished_at >= now - timedelta(days=SERVICE_HISTORY_DAYS),
            )
            .order_by(qe.finished_at.desc())
            .limit(SERVICE_HISTORY)
        )
    ).all()
    history: list[tuple[uuid.UUID | None, datetime, float]] = []
    for doctor, called, started, finished in history_rows:
        sample = service_sample(doctor, called, started, finished)
        if sample is not None:
            history.append(sample)

    # Doctors, and the tickets each has called or is seeing (since when).
    busy_tickets = (
        select(
            qe.id.label("entry_id"),
            qe.called_doctor_id.label("doctor_id"),
            func.coalesce(qe.called_at, qe.started_at).label("since"),
        )
        .where(qe.status.in_(_BUSY))
        .subquery("busy")
    )
    doctors: dict[uuid.UUID, DoctorStatus] = {}
    busy: dict[uuid.UUID, tuple[uuid.UUID, datetime]] = {}
    for doctor_id, status, entry_id, since in (
        await session.execute(
            select(Doctor.id, Doctor.status, busy_tickets.c.entry_id, busy_tickets.c.since)
            .outerjoin(busy_tickets, busy_tickets.c.doctor_id == Doctor.id)
            .where(Doctor.department_id == department_id)
        )
    ).all():
        doctors[doctor_id] = DoctorStatus(status)
        if entry_id is not None and since is not None:
            busy[entry_id] = (doctor_id, since)

    # The most recent arrivals: the newest tickets by daily sequence (the department's unique
    # (department, day, sequence) index read backwards; a few hundred are plenty, since more
    # than that within the window is a rush at any pace).
    window_start = now - timedelta(minutes=ARRIVAL_WINDOW_MINUTES)
    arrivals = [
        (int(cat), at)
        for cat, at in (
            await session.execute(
                select(qe.triage_category, qe.arrived_at)
                .where(
                    qe.department_id == department_id,
                    qe.service_date >= (window_start - timedelta(days=1)).date(),
                )
                .order_by(qe.service_date.desc(), qe.sequence.desc())
                .limit(ARRIVAL_SAMPLE)
            )
        ).all()
    ]
    return _Inputs(default, targets, history, doctors, busy, arrivals)


def _state_at(inputs: _Inputs, now: datetime) -> DepartmentState:
    """The estimator's view of a department at ``now``."""
    oldest = now - timedelta(days=SERVICE_HISTORY_DAYS)
    samples = [
        (doctor, minutes)
        for doctor, finished, minutes in reversed(inputs.history)  # oldest first
        if oldest <= finished <= now
    ]
    stats = service_stats([d for _, d in samples], prior_mean=inputs.default_minutes)
    per_doctor: dict[uuid.UUID, ServiceStats] = {}
    for doctor in {d for d, _ in samples if d is not None}:
        per_doctor[doctor] = service_stats(
            [m for d, m in samples if d == doctor],
            prior_mean=stats.mean_minutes,
            prior_cv=stats.cv,
            prior_weight=DOCTOR_PRIOR_WEIGHT,
        )
    busy_since: dict[uuid.UUID, datetime] = {}
    for doctor_id, began in inputs.busy.values():
        was = busy_since.get(doctor_id)
        busy_since[doctor_id] = began if was is None else min(was, began)
    servers = []
    doctor_stats: dict[uuid.UUID, ServiceStats] = {}
    for doctor_id, status in inputs.doctors.items():
        since = busy_since.get(doctor_id)
        ds = per_doctor.get(doctor_id, stats)
        doctor_stats[doctor_id] = ds
        if status != DoctorStatus.AVAILABLE:
            continue
        free_in = 0.0
        if since is not None:
            free_in = residual_minutes(ds.mean_minutes, ds.cv, _minutes(now - since))
        servers.append(Server(doctor_id, ds.mean_minutes, ds.cv, free_in))
    servers.sort(key=lambda s: str(s.doctor_id))
    # arrival_rates() of the arrivals within the window, written out: this runs for every
    # estimate with up to ARRIVAL_SAMPLE arrivals
    window_start = now - timedelta(minutes=ARRIVAL_WINDOW_MINUTES)
    tau = ARRIVAL_TAU_MINUTES
    rates = dict.fromkeys(range(1, 6), 0.0)
    for cat, at in inputs.arrivals:
        if window_start <= at <= now:
            rates[cat] = (
                rates.get(cat, 0.0) + math.exp((at - now).total_seconds() / 60.0 / tau) / tau
            )
    return DepartmentState(tuple(servers), stats, doctor_stats, rates, dict(inputs.targets))


async def load_department_state(
    session: AsyncSession,
    department_id: uuid.UUID,
    *,
    now: datetime,
    department: Department | None = None,
) -> DepartmentState:
    """Read doctors, recent service times and arrivals of a department (not cached)."""
    inputs = await _read_inputs(session, department_id, now=now, department=department)
    return _state_at(inputs, now)


# ---- a brief in-process cache of department inputs --------------------------------------------
#: how long read inputs serve later estimates (seconds of wall time); changes made in this
#: process update or drop them at once (see :func:`note_change`), other processes' after this
STATE_TTL_SECONDS = 5.0


#: a state worked out from the inputs serves estimates for this long (clock seconds)
STATE_REUSE_SECONDS = 1.0


@dataclass
class _Cached:
    inputs: _Inputs
    read_at: float
    # the state last worked out from these inputs, and the moment it is for
    state: DepartmentState | None = None
    state_at: datetime | None = None


@dataclass
class _DepartmentCache:
    entries: dict[uuid.UUID, _Cached] = field(default_factory=dict)
    # bumped by every change, so a read that raced a change is not kept
    generation: dict[uuid.UUID, int] = field(default_factory=dict)


_CACHES: weakref.WeakKeyDictionary[Any, _DepartmentCache] = weakref.WeakKeyDictionary()


def _cache_of(db: Any) -> _DepartmentCache:
    cache = _CACHES.get(db)
    if cache is None:
        cache = _CACHES[db] = _DepartmentCache()
    return cache


async def department_state(
    ctx: Context, department_id: uuid.UUID, *, department: Department | None = None
) -> DepartmentState:
    """The department's state at ``ctx.now()``, from inputs read at most a few seconds ago.

    The state itself is worked out again when the inputs change or a second
    has passed.
    """
    cache = _cache_of(ctx.db)
    found = cache.entries.get(department_id)
    if found is None or time.monotonic() - found.read_at > STATE_TTL_SECONDS:
        generation = cache.generation.get(department_id, 0)
        read_at = time.monotonic()
        inputs = await _read_inputs(ctx.s, department_id, now=ctx.now(), department=department)
        found = _Cached(inputs, read_at)
        if cache.generation.get(department_id, 0) == generation:
            cache.entries[department_id] = found
    now = ctx.now()
    if (
        found.state is None
        or found.state_at is None
        or abs((now - found.state_at).total_seconds()) >= STATE_REUSE_SECONDS
    ):
        found.state, found.state_at = _state_at(found.inputs, now), now
    return found.state


def note_change(
    db: Any,
    department_id: uuid.UUID,
    *,
    arrival: tuple[int, datetime] | None = None,
    busy: tuple[uuid.UUID, uuid.UUID, datetime] | None = None,
    free: uuid.UUID | None = None,
    served: tuple[uuid.UUID | None, datetime, float] | None = None,
) -> None:
    """A change to a department's queue: keep the cached inputs current, or drop them.

    What changed, each applied in place: ``arrival`` (category, arrival time)
    of a new ticket; ``busy`` (ticket, doctor, since) when a doctor calls a
    ticket; ``free`` (ticket) when a ticket stops keeping its doctor busy
    (served, no-show, held, cancelled, transferred); ``served`` (doctor, when,
    minutes; :func:`service_sample`) a finished consultation. Without any of
    them the change is one the inputs cannot follow (a doctor's status, the
    department's settings, a category change): they are dropped and read
    again by the next estimate.
    """
    cache = _cache_of(db)
    cache.generation[department_id] = cache.generation.get(department_id, 0) + 1
    if free is not None or busy is not None:
        # The doctor's own department counts who is busy, and a doctor may see a ticket of
        # another department (a transfer to them): look in every department's inputs.
        for cached in cache.entries.values():
            if free is not None and cached.inputs.busy.pop(free, None) is not None:
                cached.state = None
            if busy is not None and busy[1] in cached.inputs.doctors:
                cached.inputs.busy[busy[0]] = (busy[1], busy[2])
                cached.state = None
    found = cache.entries.get(department_id)
    if found is None:
        return
    if arrival is None and busy is None and free is None and served is None:
        del cache.entries[department_id]
        return
    inputs = found.inputs
    if served is not None:
        inputs.history.insert(0, served)
        del inputs.history[SERVICE_HISTORY:]
        found.state = None  # the service times feed every server: work it out again
    if arrival is not None:
        inputs.arrivals.insert(0, arrival)
        del inputs.arrivals[ARRIVAL_SAMPLE:]
        state, at = found.state, found.state_at
        if state is not None and at is not None:
            # The state in use gains this arrival's share of the rate (what working it out
            # again at the same moment would give, but for the oldest arrival let go above).
            category, arrived = arrival
            window_start = at - timedelta(minutes=ARRIVAL_WINDOW_MINUTES)
            if window_start <= arrived <= at:
                rates = dict(state.arrival_rates)
                share = math.exp((arrived - at).total_seconds() / 60.0 / ARRIVAL_TAU_MINUTES)
                rates[category] = rates.get(category, 0.0) + share / ARRIVAL_TAU_MINUTES
                found.state = replace(state, arrival_rates=rates)


#: written literally, not bound, so both databases match the partial queue-order indexes
_IS_WAITING: ColumnElement[bool] = QueueEntry.status == literal_column("'waiting'")


async def count_ahead(session: AsyncSession, entry: QueueEntry) -> Ahead:
    """The waiting tickets ahead of ``entry`` in its department, pool and per doctor.

    Ahead means earlier in the queue order (band, due time, arrival time, then
    sequence); see :func:`iqms.core.queue.engine.lanes_ahead`.
    """
    lanes = await queue_engine.lanes_ahead(
        session, department_id=entry.department_id, key=queue_engine.rank_key(entry)
    )
    return Ahead.of_lanes(lanes)


def _not_waiting(servers: int) -> WaitEstimate:
    return WaitEstimate(0.0, 0.0, 0, servers)


async def estimate_for_entry(
    session: AsyncSession, entry: QueueEntry, *, now: datetime, settings: Settings
) -> WaitEstimate:
    """The wait estimate of one ticket (zero for a ticket that is no longer waiting)."""
    state = await load_department_state(session, entry.department_id, now=now)
    if entry.status != TicketStatus.WAITING:
        return _not_waiting(len(state.servers))
    ahead = await count_ahead(session, entry)
    return estimate_for(state, entry, ahead, now=now)


def estimate_for(
    state: DepartmentState, entry: QueueEntry, ahead: Ahead, *, now: datetime
) -> WaitEstimate:
    """The wait estimate of a waiting ticket, given its department's state and who is ahead."""
    return estimate_wait(
        state,
        ahead,
        doctor_id=entry.doctor_id,
        due_in_minutes=_minutes(entry.due_at - now),
        band=entry.queue_band,
    )


async def estimate_ticket(ctx: Context, entry: QueueEntry) -> WaitEstimate:
    """:func:`estimate_for_entry` for an operation, with the department's cached inputs."""
    state = await department_state(ctx, entry.department_id)
    if entry.status != TicketStatus.WAITING:
        return _not_waiting(len(state.servers))
    ahead = await count_ahead(ctx.s, entry)
    return estimate_for(state, entry, ahead, now=ctx.now())


async def estimates_for_department(
    session: AsyncSession,
    department_id: uuid.UUID,
    *,
    now: datetime,
    settings: Settings,
    limit: int | None = None,
    state: DepartmentState | None = None,
) -> dict[uuid.UUID, WaitEstimate]:
    """Wait estimates of the waiting tickets of a department, by ticket id.

    All of them, or the first ``limit`` in queue order (what a board or a
    console shows; positions and estimates are the same either way).
    ``state`` is the department's, if the caller has it already.
    """
    if state is None:
        state = await load_department_state(session, department_id, now=now)
    rows = (
        await session.execute(
            select(QueueEntry.id, QueueEntry.doctor_id, QueueEntry.due_at, QueueEntry.queue_band)
            .where(QueueEntry.department_id == department_id, _IS_WAITING)
            .order_by(
                QueueEntry.queue_band,
                QueueEntry.due_at,
                QueueEntry.arrived_at,
                QueueEntry.sequence,
            )
            .limit(limit)
        )
    ).all()
    return estimates_in_order(state, rows, now=now)


class WaitingTicket(Protocol):
    """What an estimate needs of a waiting ticket (a ticket object or a row of its columns)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def doctor_id(self) -> uuid.UUID | None: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def queue_band(self) -> int: ...


def estimates_in_order(
    state: DepartmentState, tickets: Iterable[WaitingTicket], *, now: datetime
) -> dict[uuid.UUID, WaitEstimate]:
    """Wait estimates of a department's first waiting tickets, by ticket id.

    ``tickets`` are the department's waiting tickets in queue order, from the
    first: each is estimated with those before it ahead.
    """
    out: dict[uuid.UUID, WaitEstimate] = {}
    pool = 0
    reserved: dict[uuid.UUID, int] = {}
    turns: dict[uuid.UUID | None, _Turns] = {}
    for ticket in tickets:
        doctor_id = ticket.doctor_id
        if doctor_id not in turns:
            turns[doctor_id] = _turns(state, doctor_id)
        out[ticket.id] = estimate_wait(
            state,
            Ahead(pool, reserved),  # read during the call only: no copy needed
            doctor_id=doctor_id,
            due_in_minutes=_minutes(ticket.due_at - now),
            band=ticket.queue_band,
            turns=turns[doctor_id],
        )
        if doctor_id is None:
            pool += 1
        else:
            reserved[doctor_id] = reserved.get(doctor_id, 0) + 1
    return out


__all__ = [
    "Ahead",
    "DepartmentState",
    "Server",
    "ServiceStats",
    "WaitEstimate",
    "WaitingTicket",
    "arrival_rates",
    "count_ahead",
    "department_state",
    "department_targets",
    "estimate_for",
    "estimate_for_entry",
    "estimate_ticket",
    "estimate_wait",
    "estimates_for_department",
    "estimates_in_order",
    "load_department_state",
    "lognormal_bounds",
    "note_change",
    "overtaking_rate",
    "residual_minutes",
    "service_sample",
    "service_stats",
    "time_to_free_slot",
]
