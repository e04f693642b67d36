"""Live updates: a ticket issued by another process shows up in the open console, in its place,
with the cursor left on the ticket the receptionist was looking at.

The other process is the real ``iqms queue issue`` command. PostgreSQL delivers the
event by LISTEN/NOTIFY (within 1 s); SQLite by polling (within 2 s).
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.security.tokens import issue_token
from iqms.core.service import Context
from tests.tui.desk import open_queue, queue_screen, reception, row_of, seed_desk, select
from tests.tui.support import console_settings, listening, screen_text, wait_until


async def issue_from_another_process(settings: Settings, token: str, *args: str) -> str:
    """Run ``iqms queue issue`` in its own process; returns what it printed."""
    env = {
        **os.environ,
        "IQMS_DATABASE_URL": str(settings.database_url),
        "IQMS_DATA_DIR": str(settings.data_dir / "other"),
        "IQMS_CONFIG_DIR": str(settings.config_dir / "other"),
        "IQMS_SECRET_KEY": settings.signing_secret(),
        "IQMS_TIMEZONE": settings.timezone,
        "IQMS_TOKEN": token,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iqms", "queue", "issue", "-d", "GEN", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_a_ticket_issued_elsewhere_appears_in_place_and_the_cursor_stays(
    db_url: str, tmp_path: Path
) -> None:
    url = db_url
    deadline = 1.0 if url.startswith("postgresql") else 2.0  # LISTEN/NOTIFY; polling
    settings = console_settings(tmp_path, url)
    # the other process keeps real time: so does this clinic
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    db = Database.from_settings(settings)
    core = Context(db=db, principal=Principal.system("test"), settings=settings, clock=clock)
    try:
        desk = await seed_desk(core, clock, morning=clock.now())
        token = issue_token(settings, user_id=desk.rita.user_id, username="rita",  # type: ignore[arg-type]
                            role="staff", token_version=1, now=clock.now())  # fmt: skip
    finally:
        await db.dispose()
    app = reception(settings, desk.rita, clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_queue(pilot)
        await select(pilot, "A-001")
        await listening(pilot)
        printed = await issue_from_another_process(settings, token, "--category", "2")
        assert "A-004" in printed
        took = await wait_until(pilot, lambda: "A-004" in screen_text(app), within=deadline)
        lines = [line for line in screen_text(app).splitlines() if " A-0" in line]
        order = [line.split()[0] for line in lines[:5]]
        assert order.index("A-004") < order.index("A-001")  # very urgent: ahead of Amelia
        assert queue_screen(app).selected().ticket_number == "A-001"  # type: ignore[union-attr]
        assert "waiting" in row_of(app, "A-004")
    assert took < deadline
