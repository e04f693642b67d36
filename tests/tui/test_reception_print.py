"""``p`` on the queue prints the selected ticket's slip on the desk's printer (the kiosk's slip).

The printer is the fake network printer of the kiosk tests (a TCP server on
127.0.0.1 answering status queries); what it received is decoded back into the
paper a patient would hold.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from iqms.core.clock import FrozenClock
from iqms.core.service import Context
from iqms.core.services import audit, patients
from tests.kiosk.fake_printer import FakePrinter, closed_port
from tests.tui.desk import Desk, open_queue, reception, select
from tests.tui.support import console_settings, screen_text, wait_until


@pytest.fixture(scope="module", autouse=True)
def escpos_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # python-escpos caches its printer data; keep that cache out of the home directory.
    os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(tmp_path_factory.mktemp("escpos")))


def notices_of(app: object, title: str = "Printer") -> list[tuple[str, str]]:
    return [(severity, text) for severity, t, text in app.notices if t == title]  # type: ignore[attr-defined]


async def test_p_prints_the_selected_tickets_slip_in_the_patients_language(
    desk_core: Context, desk_url: str, tmp_path: Path, clock: FrozenClock, desk: Desk
) -> None:
    amelia = await patients.get(desk_core, patient=desk.amelia.id)
    await patients.update(desk_core, patient=amelia.id, version=amelia.version, language="es")
    with FakePrinter() as printer:
        settings = console_settings(
            tmp_path, desk_url, printer_kind="network", printer_host=printer.host,
            printer_port=printer.port, printer_timeout_seconds=3,
        )  # fmt: skip
        app = reception(settings, desk.rita, clock, live_events=False)
        viewed = len(await audit.show(desk_core, action="patient.viewed"))
        async with app.run_test(size=(120, 30)) as pilot:
            await open_queue(pilot)
            assert "p Print" in screen_text(app)  # in the key bar
            await select(pilot, "A-001")
            await pilot.press("p")
            await wait_until(pilot, lambda: bool(notices_of(app)), what="a printer notice")
            assert notices_of(app) == [("information", "A-001 printed")]
            [paper] = printer.wait_for_tickets(1)
            assert app.printer._worker is not None  # set up on the first print
        assert app.printer._worker is None  # and closed with the console
    assert paper.largest.text == "A-001"
    assert paper.lines[0].text == "Riverside Clinic"
    paper.line("General Practice")
    paper.line("Su número")  # Amelia reads Spanish
    assert paper.cuts == 1
    # printing a slip is not a look at Amelia's record
    assert len(await audit.show(desk_core, action="patient.viewed")) == viewed


async def test_a_refused_printer_or_none_set_up_is_a_notice_and_the_console_goes_on(
    desk_url: str, tmp_path: Path, clock: FrozenClock, desk: Desk
) -> None:
    port = closed_port()
    settings = console_settings(
        tmp_path, desk_url, printer_kind="network", printer_host="127.0.0.1", printer_port=port
    )
    app = reception(settings, desk.rita, clock, live_events=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await open_queue(pilot)
        await select(pilot, "A-003")  # called to Room 1: may still be printed
        await pilot.press("p")
        await wait_until(pilot, lambda: bool(notices_of(app)), what="a printer notice")
        assert notices_of(app) == [
            (
                "error",
                f"A-003 not printed: network printer 127.0.0.1:{port} refused the connection "
                "(switched off?)",
            )
        ]
        await select(pilot, "P-001")  # the console still answers keys
        assert "P-001" in screen_text(app)

    app = reception(console_settings(tmp_path, desk_url), desk.rita, clock, live_events=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await open_queue(pilot)
        await pilot.press("p")
        await wait_until(pilot, lambda: bool(notices_of(app)), what="a printer notice")
        [(severity, text)] = notices_of(app)
        assert severity == "warning"
        assert text.startswith("No ticket printer is set up at this desk: set IQMS_PRINTER_KIND")


async def test_paper_out_is_a_notice_and_nothing_printed_then_paper_low_prints_with_a_warning(
    desk_url: str, tmp_path: Path, clock: FrozenClock, desk: Desk
) -> None:
    with FakePrinter() as printer:
        printer.paper = "out"
        settings = console_settings(
            tmp_path, desk_url, printer_kind="network", printer_host=printer.host,
            printer_port=printer.port, printer_timeout_seconds=3,
        )  # fmt: skip
        app = reception(settings, desk.rita, clock, live_events=False)
        async with app.run_test(size=(120, 30)) as pilot:
            await open_queue(pilot)
            await select(pilot, "A-001")
            await pilot.press("p")
            await wait_until(pilot, lambda: bool(notices_of(app)), what="a printer notice")
            [(severity, text)] = notices_of(app)
            assert severity == "error" and text.startswith("A-001 not printed: ")
            assert "paper" in text.lower()
            assert printer.tickets == []  # nothing half-printed on an empty roll

            printer.paper = "low"  # a new roll is nearly at its end
            await pilot.press("p")
            await wait_until(pilot, lambda: len(notices_of(app)) == 2, what="a second notice")
            severity, text = notices_of(app)[1]
            assert severity == "warning" and text.startswith("A-001 printed (")
            [paper] = printer.wait_for_tickets(1)
    assert paper.largest.text == "A-001" and paper.cuts == 1
