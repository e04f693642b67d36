"""Random sequences of queue operations against a small reference model (hypothesis).

The model is a dict of tickets with their status, category, arrival and due
time. After every step the database must agree with it: the same statuses,
and the waiting tickets of each department in the model's order (category 1
first, then due time, then arrival, then number). Moves the model forbids
must raise InvalidTransition (or Conflict) and change nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select

from iqms.core.clock import FrozenClock
from iqms.core.db import Database
from iqms.core.enums import DEFAULT_TRIAGE_TARGET_MINUTES, TicketStatus, TriageCategory
from iqms.core.errors import Conflict, InvalidTransition
from iqms.core.models import QueueEntry
from iqms.core.queue import engine as queue_engine
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, queue
from tests.conftest import make_settings
from tests.test_queue_fixtures import add_doctor, as_doctor

W, H, C, S = TicketStatus.WAITING, TicketStatus.HELD, TicketStatus.CALLED, TicketStatus.IN_SERVICE
GEN_TARGETS = {3: 30}  # the first department overrides category 3


@dataclass
class Ticket:
    id: uuid.UUID
    dept: str  # "gen" or "ped"
    seq: int
    status: TicketStatus
    category: int
    arrived: datetime
    due: datetime
    doctor: int | None  # reserved for doctor 0 / 1 of gen, or the pool

    def key(self) -> tuple[int, datetime, datetime, int]:
        return (0 if self.category == 1 else 1, self.due, self.arrived, self.seq)


def _target(dept: str, category: int) -> int:
    if dept == "gen" and category in GEN_TARGETS:
        return GEN_TARGETS[category]
    return DEFAULT_TRIAGE_TARGET_MINUTES[TriageCategory(category)]


_example = itertools.count()


def make_machine(db: Database, settings_: Any, loop: asyncio.AbstractEventLoop) -> type:
    class QueueMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = FrozenClock()
            self.ctx = Context(
                db=db, principal=Principal.system("test"), settings=settings_, clock=self.clock
            )
            self.tickets: list[Ticket] = []
            self.depts: dict[str, Any] = {}
            self.doctors: list[Any] = []
            self.counter = {"gen": 0, "ped": 0}

        def run(self, coro: Any) -> Any:
            return loop.run_until_complete(coro)

        @initialize()
        def setup(self) -> None:
            n = next(_example)
            letters = f"{chr(65 + n // 26 % 26)}{chr(65 + n % 26)}"

            async def build() -> None:
                self.depts["gen"] = await clinic.create_department(
                    self.ctx,
                    code=f"G{n}",
                    name="General",
                    ticket_prefix=f"G{letters}",
                    triage_targets={str(k): v for k, v in GEN_TARGETS.items()},
                )
                self.depts["ped"] = await clinic.create_department(
                    self.ctx, code=f"P{n}", name="Paediatrics", ticket_prefix=f"P{letters}"
                )
                for i in range(2):
                    self.doctors.append(await add_doctor(self.ctx, f"d{n}x{i}", f"G{n}", f"R{i}"))

            self.run(build())

        # -- helpers --
        def expect(self, t: Ticket, allowed: set[TicketStatus], call: Any) -> Any:
            """Run ``call``; it must succeed iff the model allows the move from t's status."""
            if t.status in allowed:
                return self.run(call)
            try:
                self.run(call)
            except InvalidTransition:
                return None
            raise AssertionError(f"{t.status} ticket accepted a move it should refuse")

        def best_waiting(self, doctor: int) -> Ticket | None:
            scope = [
                t
                for t in self.tickets
                if t.dept == "gen" and t.status == W and t.doctor in (None, doctor)
            ]
            return min(scope, key=Ticket.key) if scope else None

        def new_ticket(self, out: Any, dept: str, category: int, doctor: int | None) -> Ticket:
            self.counter[dept] += 1
            assert out.ticket_number.endswith(f"-{self.counter[dept]:03d}")
            return Ticket(
                out.id, dept, self.counter[dept], W, category, out.arrived_at, out.due_at, doctor
            )

        # -- rules --
        @rule(
            dept=st.sampled_from(["gen", "gen", "ped"]),
            category=st.integers(1, 5),
            doctor=st.sampled_from([None, None, 0, 1]),
        )
        def issue(self, dept: str, category: int, doctor: int | None) -> None:
            if dept == "ped":
                doctor = None
            out = self.run(
                queue.issue(
                    self.ctx,
                    department=self.depts[dept].id,
                    triage_category=category,
                    doctor=self.doctors[doctor].id if doctor is not None else None,
                )
            )
            t = self.new_ticket(out, dept, category, doctor)
            assert t.due == self.clock.now() + timedelta(minutes=_target(dept, category))
            self.tickets.append(t)

        @rule(minutes=st.integers(0, 90))
        def wait(self, minutes: int) -> None:
            self.clock.advance(minutes=minutes)

        @rule(doctor=st.sampled_from([0, 1]))
        def call_next(self, doctor: int) -> None:
            expected = self.best_waiting(doctor)
            got = self.run(queue.call_next(as_doctor(self.ctx, self.doctors[doctor])))
            if expected is None:
                assert got is None
                return
            assert got is not None and got.id == expected.id
            expected.status = C

        ACTIONS = st.sampled_from(
            ["call", "recall", "start", "serve", "no_show", "requeue", "cancel", "hold",
             "return", "category", "transfer"]
        )  # fmt: skip

        # Two identical rules so that most steps move an existing ticket.
        @precondition(lambda self: self.tickets)
        @rule(data=st.data(), action=ACTIONS)
        def move(self, data: st.DataObject, action: str) -> None:
            self._move(data, action)

        @precondition(lambda self: self.tickets)
        @rule(data=st.data(), action=ACTIONS)
        def move_again(self, data: st.DataObject, action: str) -> None:
            self._move(data, action)

        def _move(self, data: st.DataObject, action: str) -> None:
            # Pick a state first, then a ticket in it: rarer states get their share of moves.
            states = sorted({t.status for t in self.tickets})
            state = data.draw(st.sampled_from(states), label="state")
            t = data.draw(st.sampled_from([t for t in self.tickets if t.status == state]))
            getattr(self, f"_{action}")(data, t)

        def _call(self, data: st.DataObject, t: Ticket) -> None:
            doctor = data.draw(st.sampled_from([0, 1]), label="doctor")
            coro = queue.call(as_doctor(self.ctx, self.doctors[doctor]), ticket=t.id)
            if t.status != W:
                self.expect(t, {W}, coro)
                return
            if t.dept != "gen" or t.doctor not in (None, doctor):
                try:
                    self.run(coro)
                except Conflict:
                    return
                raise AssertionError("called a ticket outside the doctor's queue")
            self.run(coro)
            t.status = C

        def _recall(self, data: st.DataObject, t: Ticket) -> None:
            self.expect(t, {C}, queue.recall(self.ctx, ticket=t.id))

        def _start(self, data: st.DataObject, t: Ticket) -> None:
            if self.expect(t, {C}, queue.start(self.ctx, ticket=t.id)) is not None:
                t.status = S

        def _serve(self, data: st.DataObject, t: Ticket) -> None:
            if self.expect(t, {C, S}, queue.serve(self.ctx, ticket=t.id)) is not None:
                t.status = TicketStatus.SERVED

        def _no_show(self, data: st.DataObject, t: Ticket) -> None:
            if self.expect(t, {C}, queue.no_show(self.ctx, ticket=t.id)) is not None:
                t.status = TicketStatus.NO_SHOW

        def _requeue(self, data: st.DataObject, t: Ticket) -> None:
            call = queue.no_show(self.ctx, ticket=t.id, requeue=True)
            if self.expect(t, {C}, call) is not None:
                t.status = W
                t.due = max(t.due, self.clock.now())

        def _cancel(self, data: st.DataObject, t: Ticket) -> None:
            if self.expect(t, {W, H}, queue.cancel(self.ctx, ticket=t.id)) is not None:
                t.status = TicketStatus.CANCELLED

        def _hold(self, data: st.DataObject, t: Ticket) -> None:
            if self.expect(t, {W, C, S}, queue.hold(self.ctx, ticket=t.id)) is not None:
                t.status = H

        def _return(self, data: st.DataObject, t: Ticket) -> None:
            if self.expect(t, {H}, queue.return_to_queue(self.ctx, ticket=t.id)) is not None:
                t.status = W

        def _category(self, data: st.DataObject, t: Ticket) -> None:
            category = data.draw(st.integers(1, 5), label="category")
            call = queue.change_category(self.ctx, ticket=t.id, triage_category=category)
            if self.expect(t, {W, H}, call) is not None:
                t.category = category
                t.due = t.arrived + timedelta(minutes=_target(t.dept, category))

        def _transfer(self, data: st.DataObject, t: Ticket) -> None:
            if t.dept != "gen":
                return
            call = queue.transfer(self.ctx, ticket=t.id, department=self.depts["ped"].id)
            out = self.expect(t, {W, H, C, S}, call)
            if out is not None:
                t.status = TicketStatus.TRANSFERRED
                moved = self.new_ticket(out, "ped", t.category, None)
                assert moved.arrived == t.arrived
                self.tickets.append(moved)

        # -- the database agrees with the model --
        @invariant()
        def database_matches_model(self) -> None:
            if not self.depts:
                return

            async def read() -> tuple[dict[uuid.UUID, TicketStatus], dict[str, list[uuid.UUID]]]:
                async with db.transaction(readonly=True) as s:
                    ids = [t.id for t in self.tickets]
                    rows = await s.execute(
                        select(QueueEntry.id, QueueEntry.status).where(QueueEntry.id.in_(ids))
                    )
                    statuses = {r[0]: r[1] for r in rows}
                    order = {}
                    for name, dept in self.depts.items():
                        waiting = await queue_engine.waiting_in_order(s, department_id=dept.id)
                        order[name] = [e.id for e in waiting]
                    return statuses, order

            statuses, order = self.run(read())
            assert statuses == {t.id: t.status for t in self.tickets}
            for name in self.depts:
                expected = sorted(
                    (t for t in self.tickets if t.dept == name and t.status == W), key=Ticket.key
                )
                assert order[name] == [t.id for t in expected]

    return QueueMachine


def test_random_operation_sequences_match_the_reference_model(db_url: str, tmp_path: Path) -> None:
    cfg = make_settings(tmp_path, db_url, sms_provider="none", push_provider="none")
    loop = asyncio.new_event_loop()
    db = Database.from_settings(cfg)
    try:
        machine = make_machine(db, cfg, loop)
        machine.TestCase.settings = settings(
            max_examples=12,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        machine.TestCase().runTest()
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()
