"""The waiting-room board as patients see and hear it, driven by the real queue services.

The board signs in with a real display device key, reads the core's board
view and follows the live events; the audio player is a command that keeps
every WAV it is given (the only thing replaced).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from iqms.announce import Announcer
from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import devices, display, queue
from iqms.tui.display import BoardApp, BoardSignIn
from iqms.tui.display.board import DepartmentBox
from tests.audio_support import fake_player
from tests.test_connectivity import terminal_link
from tests.test_queue_fixtures import as_doctor
from tests.tui.display_support import (
    NAMES,
    big,
    board_key,
    call,
    everything_shown,
    named_clinic,
    ready,
    signs_in_with,
)
from tests.tui.support import console_settings, listening, screen_text, wait_until


@pytest.fixture
async def pg_core(pg_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Context]:
    """The system's own context on a fresh PostgreSQL database."""
    db = Database(pg_url)
    try:
        yield Context(db=db, principal=Principal.system("test"),
                      settings=console_settings(tmp_path, pg_url), clock=clock)  # fmt: skip
    finally:
        await db.dispose()


def current(app: BoardApp) -> tuple[str, str]:
    return big(app, "current-ticket"), big(app, "current-room")


def recent(app: BoardApp) -> list[str]:
    return [big(app, f"recent-{n}") for n in range(app.board.rows - 1)]


def next_numbers(app: BoardApp, code: str) -> list[str]:
    """The numbers shown after "Next" in a department's box, as read off the screen."""
    box = next(b for b in app.board.query(DepartmentBox) if b.department.code == code)
    region = box.content_region
    lines = screen_text(app).splitlines()[region.y : region.y + region.height]
    words = " ".join(line[region.x : region.x + region.width] for line in lines).split()
    return words[words.index("Next") + 1 :] if "Next" in words else []


def highlighted(app: BoardApp) -> bool:
    return app.board.query_one("#current").has_class("-new")


async def test_calls_reach_the_board_with_their_room_highlighted_and_heard_never_names(
    core: Context, tui_settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    clinic = await named_clinic(core, waiting=4)
    await queue.issue(core, department="GEN", triage_category=2)  # A-005 goes first
    speaker = fake_player(tmp_path)
    app = BoardApp(tui_settings, signs_in_with(await board_key(core)), clock=clock,
                   announcer=Announcer("chime", player=speaker.command))  # fmt: skip
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: ready(app) and "5 waiting" in screen_text(app))
        assert "No calls yet today" in screen_text(app)
        assert next_numbers(app, "GEN") == ["A-005", "A-001", "A-002", "A-003", "A-004"]
        await listening(pilot)

        clock.advance(minutes=1)
        assert await call(core, clinic, "drsmith") == "A-005"
        await wait_until(pilot, lambda: current(app) == ("A-005", "→ Room 1"), within=3)
        assert highlighted(app)
        await wait_until(pilot, lambda: "4 waiting" in screen_text(app), within=3)
        assert next_numbers(app, "GEN") == ["A-001", "A-002", "A-003", "A-004"]
        clock.advance(minutes=1)
        assert await call(core, clinic, "drjones") == "A-001"  # Amelia Hughes's ticket
        await wait_until(pilot, lambda: current(app) == ("A-001", "→ Room 2"), within=3)
        assert recent(app)[0] == "A-005 → Room 1"
        await wait_until(pilot, lambda: "3 waiting" in screen_text(app), within=3)
        await wait_until(pilot, lambda: len(speaker.played()) == 2, what="two announcements")

        shown = everything_shown(app)
        for name in NAMES:
            for part in name.split():
                assert part not in shown, f"{part} is on the board"
        assert "Drsmith" not in shown and "Drjones" not in shown
    assert app.return_code in (None, 0)


async def test_a_recall_comes_back_to_the_top_highlighted_and_is_announced_again(
    core: Context, tui_settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    clinic = await named_clinic(core, waiting=3)
    speaker = fake_player(tmp_path)
    app = BoardApp(tui_settings, signs_in_with(await board_key(core)), clock=clock,
                   announcer=Announcer("chime", player=speaker.command),
                   blink_seconds=0.6)  # fmt: skip
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: ready(app))
        await listening(pilot)
        first = await call(core, clinic, "drsmith")
        await wait_until(pilot, lambda: current(app)[0] == first and highlighted(app), within=3)
        await wait_until(pilot, lambda: not highlighted(app), what="the blinking to end")
        assert current(app)[0] == first  # still the newest call, no longer blinking

        clock.advance(minutes=2)
        second = await call(core, clinic, "drjones")
        await wait_until(pilot, lambda: current(app)[0] == second, within=3)
        await wait_until(pilot, lambda: not highlighted(app))

        clock.advance(minutes=1)
        smith = as_doctor(core, clinic.doctors["drsmith"])
        await queue.recall(smith, ticket=first)  # the patient did not come: called again
        await wait_until(pilot, lambda: current(app) == (first, "→ Room 1") and highlighted(app),
                         within=3)  # fmt: skip
        assert recent(app)[0] == f"{second} → Room 2"
        await wait_until(pilot, lambda: len(speaker.played()) == 3, what="the recall heard")


async def test_the_message_line_appears_and_goes_at_once(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    await named_clinic(core, waiting=0)
    app = BoardApp(tui_settings, signs_in_with(await board_key(core)), clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: ready(app))
        await listening(pilot)
        await display.set_message(core, text="Dr Patel is running 20 minutes late")
        await wait_until(pilot, lambda: "Dr Patel is running 20 minutes late" in screen_text(app),
                         within=3)  # fmt: skip
        await display.clear_message(core)
        await wait_until(pilot, lambda: "Dr Patel" not in screen_text(app), within=3)


async def test_a_board_for_one_department_shows_and_announces_only_that_one(
    core: Context, tui_settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    clinic = await named_clinic(core, waiting=2)
    await queue.issue(core, department="PED")
    speaker = fake_player(tmp_path)
    app = BoardApp(tui_settings, signs_in_with(await board_key(core)), clock=clock,
                   departments=["PED"], announcer=Announcer("chime", player=speaker.command))  # fmt: skip
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: ready(app))
        await listening(pilot)
        assert [b.department.code for b in app.board.query(DepartmentBox)] == ["PED"]
        await call(core, clinic, "drsmith")  # a GEN call: not for this waiting room
        clock.advance(minutes=1)
        await call(core, clinic, "drpatel")
        await wait_until(pilot, lambda: current(app) == ("P-001", "→ Room 5"), within=3)
        await wait_until(pilot, lambda: len(speaker.played()) == 1)
        await pilot.pause(0.3)
        assert len(speaker.played()) == 1
        assert "A-001" not in everything_shown(app)


async def test_sound_problems_show_discreetly_and_mute_silences_calls_but_not_the_test(
    core: Context, tui_settings: Settings, clock: FrozenClock, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    clinic = await named_clinic(core, waiting=3)
    broken = fake_player(tmp_path / "broken", failure="audio open error: No such device")
    announcer = Announcer("chime", player=broken.command)
    app = BoardApp(tui_settings, signs_in_with(await board_key(core)), clock=clock,
                   announcer=announcer)  # fmt: skip
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: ready(app))
        await listening(pilot)
        with caplog.at_level(logging.WARNING, logger="iqms.announce"):
            first = await call(core, clinic, "drsmith")
            await wait_until(pilot, lambda: "no sound" in screen_text(app).splitlines()[0],
                             within=10)  # fmt: skip
            clock.advance(minutes=1)
            second = await call(core, clinic, "drjones")  # the board keeps going
            await wait_until(pilot, lambda: current(app)[0] == second, within=10)
            await announcer.wait_idle()
        assert sum("audio open error" in r.getMessage() for r in caplog.records) == 1
        assert recent(app)[0].startswith(first)

        working = fake_player(tmp_path / "fixed")
        announcer.player = working.command
        await pilot.press("m")  # reception mutes the board
        await wait_until(pilot, lambda: "sound muted" in screen_text(app).splitlines()[0])
        clock.advance(minutes=1)
        await queue.recall(as_doctor(core, clinic.doctors["drjones"]), ticket=second)
        await wait_until(pilot, lambda: highlighted(app), within=10)
        await pilot.press("t")  # ... but the speaker test still sounds
        await wait_until(pilot, lambda: len(working.played()) == 1, what="the test sound")
        await announcer.wait_idle()
        assert len(working.played()) == 1  # the recall itself was not heard
        assert "no sound" not in screen_text(app)  # the test call played fine
        await pilot.press("m")
        await wait_until(pilot, lambda: "muted" not in screen_text(app).splitlines()[0])


async def test_a_board_for_an_unknown_department_stops_with_one_line(
    core: Context, tui_settings: Settings, clock: FrozenClock, capsys: pytest.CaptureFixture[str]
) -> None:
    await named_clinic(core, waiting=0)
    app = BoardApp(tui_settings, signs_in_with(await board_key(core)), clock=clock,
                   departments=["GEN", "XRAY"])  # fmt: skip
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: not app.is_running)
    assert app.return_code == 3  # not found, as every iqms command
    assert capsys.readouterr().err.strip() == "iqms: error: no department XRAY"


@pytest.mark.postgresql
async def test_while_the_database_is_away_calls_are_dimmed_and_a_reload_follows_its_return(
    pg_core: Context, tmp_path: Path, pg_url: str, clock: FrozenClock
) -> None:
    clinic = await named_clinic(pg_core, waiting=3)
    key = await board_key(pg_core)
    speaker = fake_player(tmp_path)
    async with terminal_link(pg_url, tmp_path, "board") as link:  # the clinic LAN, cuttable
        settings = console_settings(tmp_path, link.url, db_connect_timeout=1)
        app = BoardApp(settings, signs_in_with(key), clock=clock, heartbeat_seconds=0.1,
                       announcer=Announcer("chime", player=speaker.command))  # fmt: skip
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: ready(app))
            await listening(pilot)
            first = await call(pg_core, clinic, "drsmith")
            await wait_until(pilot, lambda: current(app)[0] == first and highlighted(app))

            await link.cut()
            await wait_until(pilot, lambda: "⟳ reconnecting" in screen_text(app).splitlines()[0])
            assert "Last calls known at 08:00" in screen_text(app)
            assert app.board.query_one("#calls").has_class("-stale")
            assert not highlighted(app)  # no longer presented as the current call
            assert app.notices  # the outage went to the log, not into a pop-up

            clock.advance(minutes=3)
            missed = await call(pg_core, clinic, "drjones")  # while the board cannot hear
            listened = sum("reconnected" in reason for reason in app.board.resyncs)
            await link.restore()
            await wait_until(pilot, lambda: current(app)[0] == missed, within=15)
            assert "Now calling" in screen_text(app)
            assert "reconnecting" not in screen_text(app)
            assert not highlighted(app)  # found by the reload: shown, but not news
            assert recent(app)[0].startswith(first)
            await pilot.pause(0.3)
            assert len(speaker.played()) == 1  # ... and not announced minutes late

            # Live updates are back once the event listener has reconnected (it retries with
            # backoff, so it may come back a little after the first reload).
            await wait_until(
                pilot,
                lambda: sum("reconnected" in reason for reason in app.board.resyncs) > listened,
                within=30,
            )
            clock.advance(minutes=1)
            live = await call(pg_core, clinic, "drsmith")
            await wait_until(pilot, lambda: current(app)[0] == live and highlighted(app), within=15)


@pytest.mark.postgresql
async def test_a_board_started_before_the_database_waits_and_a_revoked_key_stops_it(
    pg_core: Context, tmp_path: Path, pg_url: str, clock: FrozenClock,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    await named_clinic(pg_core, waiting=1)
    key = await board_key(pg_core)
    async with terminal_link(pg_url, tmp_path, "board") as link:
        settings = console_settings(tmp_path, link.url, db_connect_timeout=1)
        await link.cut()  # the database server is not up yet (a power cut, a reboot)
        app = BoardApp(settings, BoardSignIn(signs_in_with(key), retry_max=0.2), clock=clock,
                       key_check_seconds=0.2)  # fmt: skip
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: "Connecting to the database…" in screen_text(app))
            await pilot.pause(0.5)  # a few tries meanwhile
            assert "Connecting to the database…" in screen_text(app)
            assert app.is_running and not app.signed_in
            await link.restore()
            await wait_until(pilot, lambda: ready(app) and "1 waiting" in screen_text(app),
                             within=10)  # fmt: skip

            await devices.revoke(pg_core, device="hall-board")
            await wait_until(pilot, lambda: not app.is_running, within=5)
    assert app.return_code == 5
    assert "iqms: error: the key of device hall-board was revoked" in capsys.readouterr().err


@pytest.mark.postgresql
async def test_on_postgresql_the_board_recovers_after_its_listener_is_killed(
    pg_core: Context, pg_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    clinic = await named_clinic(pg_core, waiting=3)
    speaker = fake_player(tmp_path)
    settings = console_settings(tmp_path, pg_url)
    app = BoardApp(settings, signs_in_with(await board_key(pg_core)), clock=clock,
                   announcer=Announcer("chime", player=speaker.command))  # fmt: skip

    async def listener_pids() -> list[int]:
        async with pg_core.db.transaction(readonly=True) as s:
            rows = await s.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'LISTEN%'"
            ))  # fmt: skip
            return [int(pid) for (pid,) in rows]

    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: ready(app))
        pids: list[int] = []
        while not pids:
            pids = await listener_pids()
            await pilot.pause(0.05)
        first = await call(pg_core, clinic, "drsmith")
        await wait_until(pilot, lambda: current(app)[0] == first, within=3)

        async with pg_core.db.transaction() as s:
            await s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
        clock.advance(minutes=1)
        around = await call(pg_core, clinic, "drjones")  # while the board listens again
        await wait_until(pilot, lambda: "reconnected" in app.board.resyncs, within=10)
        await wait_until(pilot, lambda: current(app)[0] == around, within=5)

        new_pids: list[int] = []
        while not new_pids or new_pids == pids:
            new_pids = await listener_pids()
            await pilot.pause(0.05)
        clock.advance(minutes=1)
        await queue.recall(as_doctor(pg_core, clinic.doctors["drsmith"]), ticket=first)
        await wait_until(pilot, lambda: current(app)[0] == first and highlighted(app), within=3)
        await wait_until(pilot, lambda: len(speaker.played()) >= 2)


async def test_a_resize_while_new_department_boxes_are_composed_does_not_stop_the_board(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    # Other departments in a reload put new boxes on the board; a resize (the TV switching
    # its resolution) may reach the board before those boxes have their widgets.
    await named_clinic(core, waiting=2)
    app = BoardApp(tui_settings, signs_in_with(await board_key(core)), clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: ready(app) and "2 waiting" in screen_text(app))
        board = app.board
        assert board.view is not None
        for box in board.query(DepartmentBox):
            box.remove()
        board.query_one("#queues").mount_all(
            DepartmentBox(d, classes="department") for d in board.view.departments
        )
        board.on_resize()  # the boxes are in the board, their widgets not composed yet
        await wait_until(pilot, lambda: next_numbers(app, "GEN") == ["A-001", "A-002"])
        assert app.is_running
