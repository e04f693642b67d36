"""The command-line side of the doctor console: ``iqms queue note`` and ``iqms doctor``."""

from __future__ import annotations

import json

from tests.test_cli_queue import Tokens, clinic_cli, iqms

__all__ = ["clinic_cli"]  # the fixture, shared with the queue command tests


def test_reception_leaves_a_note_that_the_doctor_reads_and_done_works_from_called(
    clinic_cli: Tokens,
) -> None:
    t = clinic_cli
    assert iqms(t.staff, "queue", "issue", "-d", "GEN").exit_code == 0
    noted = iqms(t.staff, "queue", "note", "A-001", "Hard of hearing: call loudly")
    assert noted.exit_code == 0, noted.output
    assert noted.stdout.strip() == "A-001" and "noted" in noted.stderr
    denied = iqms(t.drsmith, "queue", "note", "A-001", "mine")
    assert denied.exit_code == 4  # doctors read notes; reception writes them
    too_long = iqms(t.staff, "queue", "note", "A-001", "x" * 301)
    assert too_long.exit_code == 7 and "at most 300 characters" in too_long.stderr

    view = iqms(t.drsmith, "queue", "doctor", "--json")
    assert json.loads(view.stdout)["waiting"][0]["note"] == "Hard of hearing: call loudly"
    assert iqms(t.drsmith, "queue", "call-next").exit_code == 0
    done = iqms(t.drsmith, "queue", "serve", "A-001", "--json")  # straight from called
    assert done.exit_code == 0, done.output
    served = json.loads(done.stdout)
    assert served["status"] == "served" and served["started_at"] == served["finished_at"]


def test_the_doctor_command_has_help_and_is_listed() -> None:
    listed = iqms(None, "--help")
    assert "doctor" in listed.stdout
    shown = iqms(None, "doctor", "--help")
    assert shown.exit_code == 0
    assert "--room" in shown.stdout and "call, see and finish patients" in shown.stdout
