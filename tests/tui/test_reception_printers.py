"""A kiosk's printer in trouble shows at reception: a notice, and the status bar until fixed."""

from __future__ import annotations

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.service import Context
from iqms.core.services import devices
from tests.tui.desk import Desk, open_queue, reception
from tests.tui.support import listening, status_line, wait_until


async def test_a_kiosk_printer_fault_shows_until_the_printer_works_again(
    desk_core: Context, desk_settings: Settings, clock: FrozenClock, desk: Desk
) -> None:
    issued = await devices.add(desk_core, name="entrance-kiosk", role="kiosk")
    kiosk = desk_core.as_principal(await devices.authenticate(desk_core, key=issued.key))
    await devices.report_printer(kiosk, state="paper_low", message="paper running low")
    app = reception(desk_settings, desk.rita, clock)
    async with app.run_test(size=(120, 30)) as pilot:
        await open_queue(pilot)  # known at start: the kiosk reported it before
        assert "⚠ printer entrance-kiosk: paper running low" in status_line(app)
        await listening(pilot)
        await devices.report_printer(kiosk, state="paper_out", message="out of paper")
        await wait_until(
            pilot, lambda: "entrance-kiosk: out of paper" in status_line(app), within=3
        )
        assert app.notices[-1] == (
            "error",
            "Kiosk printer",
            "entrance-kiosk: out of paper. It shows numbers on screen only.",
        )
        await devices.report_printer(kiosk, state="ready")
        await wait_until(pilot, lambda: "IQMS · Riverside Clinic" in status_line(app), within=3)
        assert app.notices[-1][2] == "The printer of entrance-kiosk works again."
