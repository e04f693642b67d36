"""The clinic day as a SimPy model that drives the real IQMS core.

SimPy schedules the day: patients arrive (a Poisson process whose rate changes
through the day), doctors start and end their shifts, consultations take a
lognormal time, some called patients never come. Whenever a process needs the
clinic to do something (issue a ticket, call the next patient, ...) it asks an
:class:`Engine` and waits for the answer; the async driver
(:meth:`ClinicDay.run`) steps the SimPy environment, sets the virtual clock to
the simulated time and runs the requested core operations in order. The
queue itself (order, numbering, states, estimates) is the core's, never a copy.

The simulator keeps, beside the core, only what a clinic manager with a
stopwatch could see: who arrived when, who was called when, how long each
consultation took. From that it also computes the two classic wait
predictors the IQMS estimate is compared with.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

import simpy

from iqms.core.errors import IQMSError
from iqms.simulation.scenario import DepartmentPlan, DoctorPlan, Scenario
from iqms.simulation.stats import DayRecord, DoctorRecord, PatientRecord, QueueSample

#: minutes between queue-length samples in the report
SAMPLE_EVERY = 30.0


class SimulationError(IQMSError):
    """The simulated day could not run (e.g. the core handed out an unknown ticket)."""


@dataclass(frozen=True)
class DepartmentHandle:
    id: uuid.UUID
    code: str
    targets: dict[int, float]
    doctors: tuple[DoctorHandle, ...]


@dataclass(frozen=True)
class DoctorHandle:
    id: uuid.UUID
    name: str
    room: str
    plan: DoctorPlan


@dataclass(frozen=True)
class IssuedTicket:
    entry_id: uuid.UUID
    number: str
    p50_minutes: float | None
    p90_minutes: float | None


class Engine(Protocol):
    """What the simulated clinic asks of IQMS (implemented on the core services)."""

    backend: str

    async def prepare(self, scenario: Scenario) -> list[DepartmentHandle]: ...
    async def issue(self, department: DepartmentHandle, category: int) -> IssuedTicket: ...
    async def set_available(self, doctor: DoctorHandle, available: bool) -> None: ...
    async def call_next(self, doctor: DoctorHandle) -> uuid.UUID | None: ...
    async def start(self, doctor: DoctorHandle, entry_id: uuid.UUID) -> None: ...
    async def serve(self, doctor: DoctorHandle, entry_id: uuid.UUID) -> None: ...
    async def no_show(self, doctor: DoctorHandle, entry_id: uuid.UUID) -> None: ...
    async def cancel(self, entry_id: uuid.UUID) -> None: ...


def lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    """mu and sigma of the lognormal with this mean and standard deviation."""
    sigma2 = math.log(1.0 + (sd / mean) ** 2) if mean > 0 else 0.0
    return math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2)


@dataclass
class _Department:
    plan: DepartmentPlan
    handle: DepartmentHandle
    rng: random.Random
    waiting: dict[uuid.UUID, PatientRecord] = field(default_factory=dict)
    unclaimed: int = 0  # waiting patients no doctor has asked for yet
    on_duty: int = 0
    arrivals_done: bool = False
    last_called_wait: float | None = None
    changed: simpy.Event | None = None


@dataclass
class _Request:
    action: Callable[[], Awaitable[Any]]
    event: simpy.Event


class ClinicDay:
    """One simulated day: build with a scenario and an engine, then ``await run()``."""

    def __init__(
        self,
        scenario: Scenario,
        engine: Engine,
        *,
        seed: int,
        set_clock: Callable[[float], None],
        day: str,
        progress: Callable[[float, float], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.engine = engine
        self.seed = seed
        self.set_clock = set_clock
        self.progress = progress
        self.env = simpy.Environment(initial_time=scenario.opens)
        self.pending: deque[_Request] = deque()
        self.departments: list[_Department] = []
        self.by_entry: dict[uuid.UUID, tuple[_Department, PatientRecord]] = {}
        self.record = DayRecord(
            scenario=scenario.name,
            seed=seed,
            day=day,
            backend=engine.backend,
            opens=scenario.opens,
            closes=scenario.closes,
            targets={},
        )

    # ---- bridge to the async core -------------------------------------------------------
    def _core(self, action: Callable[[], Awaitable[Any]]) -> simpy.Event:
        """A SimPy event that succeeds with the result of a core call made at this moment."""
        event = self.env.event()
        self.pending.append(_Request(action, event))
        return event

    async def _drain(self) -> None:
        while self.pending:
            request = self.pending.popleft()
            self.set_clock(self.env.now)
            result = await request.action()
            request.event.succeed(result)

    async def run(self) -> DayRecord:
        """Simulate the whole day (until the last patient is done) and return what happened."""
        self.set_clock(self.env.now)
        handles = await self.engine.prepare(self.scenario)
        master = random.Random(self.seed)
        for plan, handle in zip(self.scenario.departments, handles, strict=True):
            dept = _Department(plan, handle, random.Random(master.getrandbits(64)))
            dept.changed = self.env.event()
            self.departments.append(dept)
            self.record.targets[plan.code] = dict(handle.targets)
            self.env.process(self._arrivals(dept))
            for doctor in handle.doctors:
                rec = DoctorRecord(doctor.name, plan.code, doctor.room)
                self.record.doctors.append(rec)
                self.env.process(self._doctor(dept, doctor, rec))
        self.env.process(self._sampler())
        span = max(self.scenario.closes - self.scenario.opens, 1.0)
        while True:
            await self._drain()
            if self.env.peek() == math.inf:
                break
            self.env.step()
            if self.progress is not None:
                self.progress(min(self.env.now - self.scenario.opens, span), span)
        self.set_clock(self.env.now)
        # Anyone still waiting when the last doctor left is sent home (and counted).
        for dept in self.departments:
            for entry_id, patient in list(dept.waiting.items()):
                await self.engine.cancel(entry_id)
                patient.outcome = "unserved"
            dept.waiting.clear()
        self.record.ended = max(
            [p.finished or p.called or 0.0 for p in self.record.patients] + [self.scenario.opens]
        )
        return self.record

    # ---- processes -----------------------------------------------------------------------
    def _notify(self, dept: _Department) -> None:
        old, dept.changed = dept.changed, self.env.event()
        assert old is not None
        old.succeed()

    def _arrivals(self, dept: _Department) -> Generator[simpy.Event, Any, None]:
        """Poisson arrivals with a piecewise-constant hourly rate (exact, by memorylessness)."""
        rng = dept.rng
        mix = self.scenario.mix_for(dept.plan)
        categories = list(mix)
        weights = [mix[c] for c in categories]
        mu, sigma = lognormal_params(dept.plan.service_mean, dept.plan.service_sd)
        for period in dept.plan.arrivals:
            if self.env.now < period.start:
                yield self.env.timeout(period.start - self.env.now)
            rate = period.per_hour / 60.0
            while rate > 0:
                gap = rng.expovariate(rate)
                if self.env.now + gap >= period.end:
                    break
                yield self.env.timeout(gap)
                patient = PatientRecord(
                    department=dept.plan.code,
                    category=rng.choices(categories, weights)[0],
                    arrived=self.env.now,
                    no_show=rng.random() < self.scenario.no_show_rate,
                    service_minutes=rng.lognormvariate(mu, sigma) if sigma > 0 else math.exp(mu),
                )
                self.record.patients.append(patient)
                self.env.process(self._patient(dept, patient))
            if self.env.now < period.end:
                yield self.env.timeout(period.end - self.env.now)
        dept.arrivals_done = True
        self._notify(dept)

    def _patient(
        self, dept: _Department, patient: PatientRecord
    ) -> Generator[simpy.Event, Any, None]:
        # The classic predictors, from what is visible at the moment of arrival.
        waiting_now = len(dept.waiting)
        servers = max(dept.on_duty, 1)
        patient.queue_length_estimate = (waiting_now + 1) * dept.plan.service_mean / servers
        patient.les_estimate = dept.last_called_wait if dept.last_called_wait is not None else 0.0
        ticket: IssuedTicket = yield self._core(
            lambda: self.engine.issue(dept.handle, patient.category)
        )
        patient.ticket = ticket.number
        patient.iqms_p50 = ticket.p50_minutes
        patient.iqms_p90 = ticket.p90_minutes
        dept.waiting[ticket.entry_id] = patient
        dept.unclaimed += 1
        self.by_entry[ticket.entry_id] = (dept, patient)
        self._notify(dept)

    def _doctor(
        self, dept: _Department, doctor: DoctorHandle, rec: DoctorRecord
    ) -> Generator[simpy.Event, Any, None]:
        env = self.env
        last = len(doctor.plan.shifts) - 1
        for index, shift in enumerate(doctor.plan.shifts):
            if env.now < shift.start:
                yield env.timeout(shift.start - env.now)
            began = env.now
            yield self._core(lambda: self.engine.set_available(doctor, True))
            dept.on_duty += 1
            # The last shift of the day runs on until the queue is empty if it reaches closing time.
            stays_late = index == last and shift.end >= self.scenario.closes
            while True:
                if env.now >= shift.end and not (
                    stays_late and (dept.unclaimed > 0 or not dept.arrivals_done)
                ):
                    break
                if dept.unclaimed <= 0:
                    assert dept.changed is not None
                    if env.now < shift.end:
                        yield dept.changed | env.timeout(shift.end - env.now)
                    else:
                        yield dept.changed
                    continue
                dept.unclaimed -= 1
                called_at = env.now
                entry_id = yield self._core(lambda: self.engine.call_next(doctor))
                if entry_id is None:
                    dept.unclaimed += 1  # someone else got there first; look again later
                    yield dept.changed
                    continue
                found = self.by_entry.get(entry_id)
                if found is None or found[0] is not dept:
                    raise SimulationError(
                        "the queue handed the simulated doctor a ticket the simulator did not "
                        "issue; run the simulation on a database without waiting tickets"
                    )
                patient = found[1]
                del dept.waiting[entry_id]
                patient.called = called_at
                patient.doctor = doctor.name
                dept.last_called_wait = called_at - patient.arrived
                if patient.no_show:
                    yield env.timeout(self.scenario.no_show_wait_minutes)
                    yield self._core(lambda eid=entry_id: self.engine.no_show(doctor, eid))
                    patient.outcome = "no_show"
                else:
                    yield self._core(lambda eid=entry_id: self.engine.start(doctor, eid))
                    yield env.timeout(patient.service_minutes)
                    yield self._core(lambda eid=entry_id: self.engine.serve(doctor, eid))
                    patient.outcome = "served"
                    rec.patients += 1
                patient.finished = env.now
                rec.busy_minutes += env.now - called_at
            dept.on_duty -= 1
            rec.on_duty_minutes += env.now - began
            yield self._core(lambda: self.engine.set_available(doctor, False))

    def _sampler(self) -> Generator[simpy.Event, Any, None]:
        """The waiting-room count of every department, every half hour of opening time."""
        env = self.env
        while env.now <= self.scenario.closes:
            self.record.samples.append(
                QueueSample(env.now, {d.plan.code: len(d.waiting) for d in self.departments})
            )
            yield env.timeout(SAMPLE_EVERY)


__all__ = [
    "ClinicDay",
    "DepartmentHandle",
    "DoctorHandle",
    "Engine",
    "IssuedTicket",
    "SimulationError",
    "lognormal_params",
]
