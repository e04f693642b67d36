"""The console foundation, through a small sample console on a real database.

Sign-in (password, saved login, device), live events, the one error path, the
idle lock, the status bar going offline and back, the command palette and
the themes: each asserted by what the screen shows and what the core holds.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import Input

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.enums import Role
from iqms.core.queue.events import Resync as CoreResync
from iqms.core.security.rbac import Principal
from iqms.core.security.tokens import issue_token
from iqms.core.service import Context
from iqms.core.services import audit, queue, users
from iqms.core.sync.connectivity import Backoff
from iqms.tui.auth import PasswordLogin, SignIn
from iqms.tui.screens import LockScreen, LoginScreen
from iqms.tui.themes import HIGH_CONTRAST
from tests.test_connectivity import terminal_link
from tests.tui.support import (
    PASSWORD,
    SampleConsole,
    SampleScreen,
    add_account,
    console_settings,
    listening,
    make_department,
    screen_text,
    showing,
    staff_principal,
    status_line,
    synced_when_back,
    wait_until,
)


async def log_in(pilot, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: on_login(pilot.app), what="the login screen")
    await pilot.press(*username, "enter", *password, "enter")


def on_login(app: SampleConsole) -> bool:
    return isinstance(app.screen, LoginScreen) and "Password" in screen_text(app)


def on_console(app: SampleConsole) -> bool:
    return app.signed_in and isinstance(app.screen, SampleScreen)


async def test_logging_in_opens_the_console_and_the_status_bar_says_who(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    await add_account(core, "rita", Role.STAFF, "Rita Reception")
    app = SampleConsole(tui_settings, PasswordLogin(), clock=clock)
    async with app.run_test(size=(100, 24)) as pilot:
        await log_in(pilot, "rita", PASSWORD)
        await wait_until(pilot, lambda: on_console(app), what="the console")
        top = status_line(app)
        assert "IQMS · Riverside Clinic" in top
        assert "Rita Reception (staff)" in top
        assert "● online" in top and "08:00" in top  # the clinic's clock (frozen)
    account = await users.get(core, user="rita")
    assert account.last_login_at is not None and account.failed_logins == 0


async def test_a_wrong_password_is_refused_and_too_many_lock_the_account(
    core: Context, tmp_path: Path, sqlite_url: str, clock: FrozenClock
) -> None:
    settings = console_settings(tmp_path, sqlite_url, lockout_threshold=2)
    await add_account(core, "rita")
    app = SampleConsole(settings, PasswordLogin(), clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await log_in(pilot, "rita", "not-the-password")
        await wait_until(pilot, lambda: "wrong username or password" in screen_text(app))
        assert isinstance(app.screen, LoginScreen) and not app.signed_in
        assert app.screen.query_one("#password", Input).value == ""  # cleared, focused again
        assert (await users.get(core, user="rita")).failed_logins == 1

        await pilot.press(*"still-wrong", "enter")
        await wait_until(pilot, lambda: app.screen.query_one("#password", Input).value == "")
        assert (await users.get(core, user="rita")).locked

        await pilot.press(*PASSWORD, "enter")  # the right password, but the account is locked
        await pilot.pause(0.3)
        await wait_until(pilot, lambda: app.screen.query_one("#password", Input).value == "")
        assert not app.signed_in
        assert "locked for 15 minutes" in screen_text(app)


async def test_a_saved_login_is_reused_and_an_expired_one_asks_to_log_in(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    user_id = await add_account(core, "rita", Role.STAFF, "Rita Reception")
    token = issue_token(tui_settings, user_id=user_id, username="rita", role="staff",
                        token_version=1, now=clock.now())  # fmt: skip
    app = SampleConsole(tui_settings, PasswordLogin(saved_token=token), clock=clock)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: on_console(app))
        assert app.sign_in is not None and app.sign_in.display_name == "Rita Reception"

    old = issue_token(tui_settings, user_id=user_id, username="rita", role="staff",
                      token_version=1, now=clock.now() - timedelta(days=2))  # fmt: skip
    app = SampleConsole(tui_settings, PasswordLogin(saved_token=old), clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: on_login(app))
        assert "The saved login cannot be used" in screen_text(app)
        assert "expired" in screen_text(app)
        await log_in(pilot, "rita", PASSWORD)
        await wait_until(pilot, lambda: on_console(app))


async def test_an_account_of_another_role_is_turned_away(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    await add_account(core, "drsmith", Role.DOCTOR)
    app = SampleConsole(tui_settings, PasswordLogin(), clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await log_in(pilot, "drsmith", PASSWORD)
        await wait_until(pilot, lambda: "is for admin or staff accounts" in screen_text(app))
        assert not app.signed_in


async def test_a_device_signs_in_without_a_login_screen_and_never_locks(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    asked: list[str] = []

    async def device_key(ctx: Context) -> Principal:
        asked.append(ctx.principal.role)
        return Principal(user_id=None, username="Board hall A", role="kiosk")

    app = SampleConsole(tui_settings, device_key, clock=clock)
    SampleConsole.ALLOWED_ROLES = None
    try:
        async with app.run_test() as pilot:
            await wait_until(pilot, lambda: on_console(app))
            assert asked == ["anonymous"]  # the callable got a context of nobody yet
            assert "Board hall A" in status_line(app)
            app.last_input_at -= 24 * 3600
            app.lock_if_idle()
            await pilot.pause()
            assert not isinstance(app.screen, LockScreen)
    finally:
        SampleConsole.ALLOWED_ROLES = frozenset({"staff", "admin"})


async def test_live_events_reach_the_screen_and_a_resync_reloads_it(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    await make_department(core)
    app = SampleConsole(tui_settings, await staff_principal(core), clock=clock)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: on_console(app))
        screen = app.screen
        assert isinstance(screen, SampleScreen)
        await listening(pilot)
        ticket = await queue.issue(core, department="GEN")  # another terminal issues a ticket
        took = await wait_until(pilot, lambda: f"issued {ticket.ticket_number}" in screen_text(app),
                                within=2.0)  # fmt: skip
        assert took < 2.0
        reloads = screen.reloads
        app.deliver_event(CoreResync("missed events"))  # what the listener yields after a gap
        await wait_until(pilot, lambda: screen.reloads == reloads + 1)
        assert "resync: missed events" in screen.kinds


async def test_refusals_and_bugs_become_short_notices_and_the_console_keeps_working(
    core: Context, tui_settings: Settings, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = SampleConsole(tui_settings, await staff_principal(core), clock=clock, live_events=False)
    async with app.run_test(notifications=True, size=(100, 24)) as pilot:
        await wait_until(pilot, lambda: on_console(app))
        await pilot.press("i")  # no department GEN yet: the core refuses
        await wait_until(pilot, lambda: len(app.notices) == 1)
        assert app.notices[-1] == ("warning", "Not found", "no department GEN")
        assert "no department GEN" in screen_text(app)

        with caplog.at_level(logging.ERROR, logger="iqms.tui"):
            await pilot.press("x")  # a bug in the console's own code
            await wait_until(pilot, lambda: len(app.notices) == 2)
        severity, title, message = app.notices[-1]
        assert (severity, title) == ("error", "Unexpected error")
        assert message.startswith("RuntimeError: a bug in the console")
        assert "Traceback" not in screen_text(app)
        assert any(r.exc_info for r in caplog.records)  # the details went to the log

        await make_department(core)
        await pilot.press("i")  # still working
        await wait_until(pilot, lambda: app.screen.issued == ["A-001"])  # type: ignore[attr-defined]


async def test_the_console_locks_when_idle_and_only_the_password_unlocks_it(
    core: Context, tmp_path: Path, sqlite_url: str, clock: FrozenClock
) -> None:
    settings = console_settings(tmp_path, sqlite_url, tui_idle_lock_minutes=3)
    await add_account(core, "rita", Role.STAFF, "Rita Reception")
    await add_account(core, "sam", Role.STAFF, "Sam Desk")
    app = SampleConsole(settings, PasswordLogin(), clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await log_in(pilot, "rita", PASSWORD)
        await wait_until(pilot, lambda: on_console(app))
        app.last_input_at -= 2 * 60
        app.lock_if_idle()
        assert not app.locked  # two minutes idle: not yet
        app.last_input_at -= 60
        app.lock_if_idle()
        await wait_until(pilot, lambda: "is locked" in screen_text(app))
        text = screen_text(app)
        assert "Sample console is locked" in text and "Rita Reception (staff)" in text
        await pilot.press("ctrl+p")  # nothing behind the lock answers, not even the palette
        await pilot.pause()
        assert isinstance(app.screen, LockScreen)

        await pilot.press(*"guess", "enter")
        await wait_until(pilot, lambda: "wrong username or password" in screen_text(app))
        assert isinstance(app.screen, LockScreen)
        await pilot.press(*PASSWORD, "enter")
        await wait_until(pilot, lambda: on_console(app) and not app.locked)

        await pilot.press("ctrl+l")  # lock now; another person takes over the desk
        await wait_until(pilot, lambda: "is locked" in screen_text(app))
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: on_login(app))
        assert "Rita Reception logged out." in screen_text(app)
        await log_in(pilot, "sam", PASSWORD)
        await wait_until(pilot, lambda: on_console(app) and "Sam Desk (staff)" in screen_text(app))
    failed = await audit.show(core, action="auth.login_failed")
    assert [r.details["username"] for r in failed] == ["rita"]  # the guess was counted


async def test_the_status_bar_shows_the_database_going_away_and_coming_back(
    core: Context, tmp_path: Path, sqlite_url: str, clock: FrozenClock
) -> None:
    async with terminal_link(sqlite_url, tmp_path, "desk") as link:
        settings = console_settings(tmp_path, link.url)
        app = SampleConsole(settings, await staff_principal(core), clock=clock,
                            heartbeat_seconds=0.1)  # fmt: skip
        async with app.run_test(size=(100, 24)) as pilot:
            await wait_until(pilot, lambda: on_console(app))
            await link.cut()
            await wait_until(pilot, lambda: "▲ OFFLINE" in status_line(app))
            await pilot.press("i")  # no journal in this console: refused, nothing saved
            await wait_until(
                pilot, lambda: app.notices and app.notices[-1][1] == "Database unavailable"
            )
            await link.restore()
            await wait_until(pilot, lambda: "● online" in status_line(app))
            screen = app.screen
            assert isinstance(screen, SampleScreen)
            assert "resync: back online" in screen.kinds


async def test_with_the_journal_a_console_keeps_issuing_offline_and_syncs_when_back(
    core: Context, tmp_path: Path, sqlite_url: str, clock: FrozenClock
) -> None:
    await make_department(core)
    desk = await staff_principal(core)
    async with terminal_link(sqlite_url, tmp_path, "desk") as link:
        settings = console_settings(tmp_path, link.url, device_name="desk 1")
        app = SampleConsole(settings, desk, clock=clock, offline=True, heartbeat_seconds=0.1,
                            backoff=Backoff(base=0.05, maximum=0.2, jitter=0))  # fmt: skip
        async with app.run_test(size=(100, 24)) as pilot:
            await wait_until(pilot, lambda: on_console(app) and app.connectivity is not None)
            screen = app.screen
            assert isinstance(screen, SampleScreen)
            await pilot.press("i")  # online: the next central number after the reserved block
            await wait_until(pilot, lambda: screen.issued == ["A-021"])
            await link.cut()
            await wait_until(pilot, lambda: "▲ OFFLINE" in status_line(app))
            await pilot.press("i")  # offline: the first number of the reserved block
            await wait_until(pilot, lambda: screen.issued == ["A-021", "A-001"])
            await wait_until(pilot, lambda: "· 1 to sync" in status_line(app))
            await synced_when_back(pilot, link, 1)
    waiting = await queue.queue_list(core, department="GEN")
    assert sorted(t.ticket_number for t in waiting) == ["A-001", "A-021"]


async def test_the_command_palette_offers_the_screens_actions_by_name(
    core: Context, tui_settings: Settings, clock: FrozenClock
) -> None:
    await make_department(core)
    app = SampleConsole(tui_settings, await staff_principal(core), clock=clock, live_events=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: on_console(app))
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: showing(app, CommandPalette))
        await pilot.press(*"issue")
        await wait_until(pilot, lambda: "key: i" in screen_text(app))
        assert "Issue ticket" in screen_text(app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: on_console(app) and app.screen.issued == ["A-001"])  # type: ignore[attr-defined]


async def test_the_high_contrast_theme_is_there_and_the_setting_picks_it(
    core: Context, tmp_path: Path, sqlite_url: str, clock: FrozenClock
) -> None:
    desk = await staff_principal(core)
    settings = console_settings(tmp_path, sqlite_url, tui_theme=HIGH_CONTRAST)
    app = SampleConsole(settings, desk, clock=clock, live_events=False)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: on_console(app))
        assert app.theme == "iqms-high-contrast"
        assert app.current_theme.background == "#000000"
        assert {"iqms", "iqms-light", "iqms-high-contrast"} <= set(app.available_themes)

    settings = console_settings(tmp_path, sqlite_url, tui_theme="no-such-theme")
    app = SampleConsole(settings, desk, clock=clock, live_events=False)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: on_console(app))
        assert app.theme == "iqms"
        assert "unknown theme 'no-such-theme'" in app.notices[0][2]


async def test_a_bug_in_a_handler_ends_the_console_with_one_line_and_the_details_logged(
    core: Context, tui_settings: Settings, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Crashing(SampleConsole):
        def action_lock(self) -> None:
            raise ZeroDivisionError("boom")

    app = Crashing(tui_settings, PasswordLogin(), clock=clock, live_events=False)
    app.sign_in = SignIn(await staff_principal(core), "desk")  # signed in, so ctrl+l reaches it
    with caplog.at_level(logging.CRITICAL, logger="iqms.tui"), pytest.raises(ZeroDivisionError):
        async with app.run_test() as pilot:
            await pilot.press("ctrl+l")
            await pilot.pause(0.2)
    assert app.return_code == 1
    record = next(r for r in caplog.records if r.levelno == logging.CRITICAL)
    assert "stopped on an unexpected error" in record.getMessage() and record.exc_info
