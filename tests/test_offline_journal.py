"""The offline journal on its own: what a terminal records while the database is away."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from iqms.core.clock import FrozenClock
from iqms.core.errors import ConfigError, Conflict, ValidationError
from iqms.core.sync.batch import parse_batch
from iqms.core.sync.journal import Journal, NumberBlockInfo

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")
GEN = uuid.uuid4()


def block(first: int, last: int, day: date = date(2026, 1, 5)) -> NumberBlockInfo:
    return NumberBlockInfo(
        department_id=GEN,
        department_code="GEN",
        department_name="General Practice",
        ticket_prefix="A",
        service_date=day,
        first_number=first,
        last_number=last,
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def journal(tmp_path: Path, clock: FrozenClock) -> Journal:
    return Journal(tmp_path / "journal.db", device_name="Entrance kiosk", timezone=LONDON,
                   clock=clock)  # fmt: skip


def test_entries_carry_op_id_device_seq_time_and_base_version(
    journal: Journal, clock: FrozenClock
) -> None:
    patient = uuid.uuid4()
    reg = journal.register_patient({"full_name": "Amelia Hughes", "phone": "07911 123101"})
    clock.advance(minutes=3)
    upd = journal.update_patient(
        patient_id=patient,
        base_version=4,
        base={"phone": "+447911123101"},
        changes={"phone": None, "language": "es"},
    )
    entries = journal.pending()
    assert [e.device_seq for e in entries] == [1, 2]
    assert [e.op_id for e in entries] == [reg.op_id, upd.op_id]
    assert entries[0].occurred_at == T0
    assert entries[1].occurred_at == T0 + timedelta(minutes=3)
    assert entries[0].body["patient"]["phone"] == "+447911123101"  # normalised on the way in
    assert entries[1].body["base_version"] == 4
    # an explicit "clear the phone" survives, unlike a field that was not given
    assert entries[1].body["changes"] == {"phone": None, "language": "es"}


def test_a_bad_entry_is_refused_and_nothing_is_stored(journal: Journal) -> None:
    with pytest.raises(ValidationError) as caught:
        journal.register_patient({"full_name": "Ann Lee", "phone": "12"})
    assert caught.value.field == "patient.phone"
    assert "not a valid phone number" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        journal.update_patient(patient_id=uuid.uuid4(), changes={"phone": "+447911123101"})
    assert "base_version is required" in str(caught.value)
    assert journal.pending_count() == 0
    # the sequence is not burnt by refused entries
    assert journal.register_patient({"full_name": "Ann Lee"}).device_seq == 1


def test_offline_tickets_use_the_reserved_block_and_stop_when_it_is_used_up(
    journal: Journal, clock: FrozenClock
) -> None:
    with pytest.raises(Conflict) as caught:
        journal.issue_ticket(GEN)
    assert "no offline ticket numbers left" in str(caught.value)
    journal.add_number_block(block(41, 42))
    journal.add_number_block(block(41, 42))  # the same block twice is kept once
    first = journal.issue_ticket(GEN, triage_category=3)
    clock.advance(minutes=1)
    second = journal.issue_ticket(GEN)
    assert (first.ticket_number, second.ticket_number) == ("A-041", "A-042")
    assert first.arrived_at == T0 and second.arrived_at == T0 + timedelta(minutes=1)
    assert journal.numbers_left()[0].left == 0
    with pytest.raises(Conflict) as caught:
        journal.issue_ticket(GEN)
    assert "General Practice" in str(caught.value)
    assert journal.pending_count() == 2
    journal.add_number_block(block(60, 64))
    assert journal.issue_ticket(GEN).ticket_number == "A-060"
    assert journal.numbers_left()[0].left == 4


def test_yesterdays_numbers_are_not_used_today(journal: Journal, clock: FrozenClock) -> None:
    journal.add_number_block(block(1, 5, day=date(2026, 1, 4)))
    with pytest.raises(Conflict):
        journal.issue_ticket(GEN)
    # the clinic's day, not UTC's: 00:30 in London in summer is still the previous UTC day
    clock.set(datetime(2026, 7, 1, 23, 30, tzinfo=UTC))
    journal.add_number_block(block(7, 7, day=date(2026, 7, 2)))
    assert journal.issue_ticket(GEN).ticket_number == "A-007"


def test_confirm_clears_only_what_the_server_confirmed(journal: Journal) -> None:
    journal.add_number_block(block(1, 10))
    a = journal.issue_ticket(GEN)
    b = journal.issue_ticket(GEN)
    c = journal.register_patient({"full_name": "Noah Taylor"})
    batch = journal.next_batch(limit=2)
    assert batch is not None
    parsed = parse_batch(batch)  # what the journal sends is always a valid batch
    assert [op.op_id for op in parsed.operations] == [a.op_id, b.op_id]
    journal.note_push_failed([a.op_id, b.op_id], "cannot reach the database")
    assert journal.status().last_error == "cannot reach the database"
    assert journal.pending()[0].push_attempts == 1
    cleared = journal.confirm(
        [
            {"op_id": str(a.op_id), "result": "applied", "details": {"ticket_number": "A-001"}},
            {"op_id": str(uuid.uuid4()), "result": "applied", "details": {}},
        ]
    )
    assert cleared == 1
    assert [e.op_id for e in journal.pending()] == [b.op_id, c.op_id]
    status = journal.status()
    assert status.pending == 2
    assert status.last_sync_summary == {"applied": 1}
    assert status.last_error is None
    assert journal.results()[0].details == {"ticket_number": "A-001"}
    # device sequence numbers are never reused, even after entries are cleared
    journal.confirm([{"op_id": str(b.op_id), "result": "applied"},
                     {"op_id": str(c.op_id), "result": "merged"}])  # fmt: skip
    assert journal.pending_count() == 0 and journal.next_batch() is None
    assert journal.register_patient({"full_name": "Mia Roberts"}).device_seq == 4


def test_the_journal_survives_a_restart_with_its_device_identity(
    tmp_path: Path, clock: FrozenClock
) -> None:
    first = Journal(tmp_path / "j.db", device_name="Kiosk 1", clock=clock)
    first.register_patient({"full_name": "Isla Wilson"})
    again = Journal(tmp_path / "j.db", clock=clock)
    assert again.device_id == first.device_id
    assert again.device_name == "Kiosk 1"
    assert again.pending_count() == 1
    other = Journal(tmp_path / "other.db", clock=clock)
    assert other.device_id != first.device_id


def test_an_unusable_journal_file_is_a_clear_setting_error(tmp_path: Path) -> None:
    bad = tmp_path / "journal.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError) as caught:
        Journal(bad)
    assert "offline journal" in str(caught.value) and "IQMS_DATA_DIR" in str(caught.value)
