"""The sync batch format: malformed batches are refused whole, with the field named, nothing applied."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.errors import ValidationError
from iqms.core.models import (
    AuditRecord,
    Device,
    Patient,
    QueueEntry,
    SyncConflict,
    SyncOperation,
    TicketCounter,
)
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import sync
from iqms.core.sync.batch import BatchRejected, parse_batch

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

# ---- valid batches ----------------------------------------------------------------------------
uuids = st.uuids(version=4).map(str)
names = st.sampled_from(["Amelia Hughes", "Oliver Brown", "Sofía Martínez", "Noah  Taylor"])
phones = st.sampled_from(["+447911123101", "07911 123102", "+34600900104", None])


@st.composite
def operation(draw: st.DrawFn, seq: int, earlier: list[dict[str, Any]]) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "patient.register",
                "patient.update",
                "ticket.issue",
                "appointment.check_in",
                "ticket.cancel",
                "ticket.triage",
            ]
        )
    )
    op: dict[str, Any] = {
        "kind": kind,
        "op_id": draw(uuids),
        "device_seq": seq,
        "occurred_at": (T0 + timedelta(minutes=seq)).isoformat(),
    }
    registrations = [o["op_id"] for o in earlier if o["kind"] == "patient.register"]
    tickets = [o["op_id"] for o in earlier if o["kind"] == "ticket.issue"]
    if kind == "patient.register":
        op["patient"] = {"full_name": draw(names), "phone": draw(phones)}
        if draw(st.booleans()):
            op["patient"]["date_of_birth"] = "1984-02-11"
    elif kind == "patient.update":
        if registrations and draw(st.booleans()):
            op["patient_op_id"] = draw(st.sampled_from(registrations))
        else:
            op["patient_id"] = draw(uuids)
            op["base_version"] = draw(st.integers(1, 9))
        op["changes"] = {"phone": draw(phones)}
    elif kind == "ticket.issue":
        op["department_id"] = draw(uuids)
        op["triage_category"] = draw(st.integers(1, 5))
        op["sequence"] = draw(st.integers(1, 999))
        if registrations and draw(st.booleans()):
            op["patient_op_id"] = draw(st.sampled_from(registrations))
    elif kind == "appointment.check_in":
        op["appointment_id"] = draw(uuids)
    else:
        if tickets and draw(st.booleans()):
            op["ticket_op_id"] = draw(st.sampled_from(tickets))
        else:
            op["ticket_id"] = draw(uuids)
        if kind == "ticket.triage":
            op["triage_category"] = draw(st.integers(1, 5))
    return op


@st.composite
def valid_batch(draw: st.DrawFn) -> dict[str, Any]:
    ops: list[dict[str, Any]] = []
    seq = 0
    for _ in range(draw(st.integers(1, 6))):
        seq += draw(st.integers(1, 3))
        ops.append(draw(operation(seq, ops)))
    return {"format": 1, "device_id": draw(uuids), "operations": ops}


# ---- ways to break a batch, each naming the field the error must point at --------------------
REQUIRED = {
    "patient.register": ["patient"],
    "patient.update": ["changes"],
    "ticket.issue": ["department_id"],
    "appointment.check_in": ["appointment_id"],
    "ticket.cancel": [],
    "ticket.triage": ["triage_category"],
}
GARBAGE = st.one_of(
    st.just("not-a-uuid"), st.integers(-5, 5), st.just([]), st.just({}), st.just(True)
)


@st.composite
def malformed(draw: st.DrawFn) -> tuple[Any, str]:
    """(broken batch, the field path the error must name)."""
    batch = copy.deepcopy(draw(valid_batch()))
    ops = batch["operations"]
    i = draw(st.integers(0, len(ops) - 1))
    op = ops[i]
    at = f"operations[{i}]"
    choice = draw(st.integers(0, 17))
    if choice == 0:
        key = draw(st.sampled_from(["format", "device_id", "operations"]))
        del batch[key]
        return batch, key
    if choice == 1:
        key = draw(st.sampled_from(["op_id", "device_seq", "occurred_at", *REQUIRED[op["kind"]]]))
        del op[key]
        return batch, f"{at}.{key}"
    if choice == 2:
        op["surprise"] = draw(GARBAGE)
        return batch, f"{at}.surprise"
    if choice == 3:
        op["device_seq"] = draw(st.one_of(st.integers(-3, 0), st.just("abc"), st.just(1.5)))
        return batch, f"{at}.device_seq"
    if choice == 4:
        op["occurred_at"] = draw(
            st.sampled_from(["2026-01-05T09:00:00", "yesterday", "2026-13-40T25:00:00Z", ""])
        )
        return batch, f"{at}.occurred_at"
    if choice == 5:
        op["op_id"] = draw(st.sampled_from(["42", "", "zzzz-zzzz"]))
        return batch, f"{at}.op_id"
    if choice == 6:
        op["kind"] = draw(st.sampled_from(["ticket.delete", "", "PATIENT.REGISTER", "drop table"]))
        return batch, at
    if choice == 7:
        del op["kind"]
        return batch, at
    if choice == 8:
        batch["format"] = draw(st.sampled_from([0, 2, "1.0", None]))
        return batch, "format"
    if choice == 9:
        batch["operations"] = draw(st.sampled_from([[], {}, "ops", None]))
        return batch, "operations"
    if choice == 10:
        batch["device_id"] = draw(GARBAGE)
        return batch, "device_id"
    if choice == 11 and len(ops) > 1:
        j = draw(st.integers(1, len(ops) - 1))
        ops[j]["device_seq"] = ops[j - 1]["device_seq"]
        return batch, f"operations[{j}].device_seq"
    if choice == 12 and len(ops) > 1:
        j = draw(st.integers(1, len(ops) - 1))
        ops[j]["op_id"] = ops[j - 1]["op_id"]
        return batch, f"operations[{j}].op_id"
    if choice == 13:
        bad = draw(st.sampled_from(["", "   ", "Bad\x07Name", "x" * 121]))
        ops[i] = {**op, "kind": "patient.register", "patient": {"full_name": bad}}
        ops[i].pop("patient_id", None)
        for k in list(ops[i]):
            if k not in ("kind", "op_id", "device_seq", "occurred_at", "patient"):
                del ops[i][k]
        return batch, f"{at}.patient.full_name"
    if choice == 14:
        keep = {k: op[k] for k in ("op_id", "device_seq", "occurred_at")}
        ops[i] = {**keep, "kind": "ticket.issue", "department_id": str(uuid.uuid4())}
        field, value = draw(
            st.sampled_from(
                [
                    ("triage_category", 0),
                    ("triage_category", 6),
                    ("triage_category", "urgent!"),
                    ("sequence", 0),
                    ("sequence", 100000),
                    ("department_id", "GEN"),
                ]
            )
        )
        ops[i][field] = value
        return batch, f"{at}.{field}"
    if choice == 15:
        keep = {k: op[k] for k in ("op_id", "device_seq", "occurred_at")}
        bad_phone = draw(st.sampled_from(["12", "call me", "+99 1", "0000"]))
        ops[i] = {
            **keep,
            "kind": "patient.register",
            "patient": {"full_name": "Ann Lee", "phone": bad_phone},
        }
        return batch, f"{at}.patient.phone"
    if choice == 16:
        keep = {k: op[k] for k in ("op_id", "device_seq", "occurred_at")}
        ops[i] = {
            **keep,
            "kind": "patient.register",
            "patient": {"full_name": "Ann Lee", "date_of_birth": "2999-01-01"},
        }
        return batch, f"{at}.patient.date_of_birth"
    # a reference to a later operation (the journal always refers backwards)
    later = str(uuid.uuid4())
    keep = {k: op[k] for k in ("op_id", "device_seq", "occurred_at")}
    ops[i] = {**keep, "kind": "ticket.issue", "department_id": str(uuid.uuid4()),
              "patient_op_id": later}  # fmt: skip
    ops.append(
        {
            "kind": "patient.register",
            "op_id": later,
            "device_seq": ops[-1]["device_seq"] + 1,
            "occurred_at": T0.isoformat(),
            "patient": {"full_name": "Late Registration"},
        }
    )
    return batch, f"{at}.patient_op_id"


TABLES = (AuditRecord, Device, Patient, QueueEntry, SyncConflict, SyncOperation, TicketCounter)


async def _counts(db: Database) -> dict[str, int]:
    async with db.transaction(readonly=True) as s:
        return {
            t.__tablename__: int(
                (await s.execute(select(func.count()).select_from(t))).scalar_one()
            )
            for t in TABLES
        }


@given(valid_batch())
def test_the_generated_batches_are_valid(batch: dict[str, Any]) -> None:
    parsed = parse_batch(json.dumps(batch))
    assert [str(op.op_id) for op in parsed.operations] == [o["op_id"] for o in batch["operations"]]


@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=malformed(), as_text=st.booleans())
def test_malformed_batches_get_a_clear_error_and_change_nothing(
    settings: Settings, case: tuple[Any, str], as_text: bool
) -> None:
    batch, expected_field = case

    async def attempt() -> None:
        db = Database.from_settings(settings)
        ctx = Context(db=db, principal=Principal.system("kiosk-test"), settings=settings,
                      clock=FrozenClock(T0))  # fmt: skip
        try:
            before = await _counts(db)
            with pytest.raises(ValidationError) as caught:
                await sync.push(ctx, batch=json.dumps(batch) if as_text else batch)
            err = caught.value
            assert isinstance(err, BatchRejected)
            message = str(err)
            assert message.startswith("sync batch refused, nothing applied: ")
            assert "\n" not in message and "Traceback" not in message
            fields = [f for f, _ in err.problems]
            assert expected_field in fields, (expected_field, err.problems)
            assert all(problem.strip() for _, problem in err.problems)
            assert await _counts(db) == before
        finally:
            await db.dispose()

    asyncio.run(attempt())


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xff\xfe not utf-8", "is not UTF-8 text"),
        ("{not json", "is not valid JSON"),
        ("[1, 2, 3]", "must be a JSON object"),
        ('"hello"', "must be a JSON object"),
        ("[" * 5000 + "]" * 5000, "batch"),
    ],
)
def test_unreadable_input_is_named(data: str | bytes, says: str) -> None:
    with pytest.raises(BatchRejected) as caught:
        parse_batch(data)
    assert says in str(caught.value)
    assert caught.value.field == "batch"


def test_each_problem_is_listed_with_its_path() -> None:
    bad = {
        "format": 1,
        "device_id": str(uuid.uuid4()),
        "operations": [
            {"kind": "patient.register", "op_id": str(uuid.uuid4()), "device_seq": 1,
             "occurred_at": "2026-01-05T09:00:00", "patient": {"full_name": "A", "phone": "12"}},
            {"kind": "ticket.explode", "op_id": str(uuid.uuid4()), "device_seq": 2,
             "occurred_at": "2026-01-05T09:00:00Z"},
        ],
    }  # fmt: skip
    with pytest.raises(BatchRejected) as caught:
        parse_batch(bad)
    problems = dict(caught.value.problems)
    assert "time zone" in problems["operations[0].occurred_at"]
    assert "not a valid phone number" in problems["operations[0].patient.phone"]
    assert "unknown operation kind 'ticket.explode'" in problems["operations[1]"]
    assert str(caught.value).endswith("(and 2 more problems)")
