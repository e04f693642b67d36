"""Printing tickets on a fake network printer (a real TCP server on 127.0.0.1 that answers
DLE EOT like a receipt printer), decoded back into what a patient would hold in their hand."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from iqms.core.config import Settings
from iqms.core.enums import PrinterState
from iqms.core.errors import ConfigError
from iqms.core.models import QueueEntry
from iqms.core.notify.templates import LANGUAGES as MESSAGE_LANGUAGES
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import devices, queue
from iqms.core.sync.journal import OfflineTicket
from iqms.kiosk.printer import (
    PrinterConfig,
    PrintWorker,
    TicketPrinter,
    parse_printer_spec,
)
from iqms.kiosk.texts import TEXTS
from iqms.kiosk.ticket import TicketSlip, printable
from tests.conftest import make_settings
from tests.kiosk.escpos_decode import decode
from tests.kiosk.fake_printer import FakePrinter, FakeSerialPrinter, closed_port
from tests.test_queue_fixtures import small_clinic

pytestmark = pytest.mark.usefixtures("escpos_cache")


@pytest.fixture(scope="session")
def escpos_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # python-escpos caches its printer data; keep that cache out of the home directory.
    os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(tmp_path_factory.mktemp("escpos")))


@pytest.fixture
def printer() -> FakePrinter:
    with FakePrinter() as fake:
        yield fake  # type: ignore[misc]


def worker_for(settings: Settings, fake: FakePrinter, timeout: float = 2.0) -> PrintWorker:
    config = dataclasses.replace(parse_printer_spec(fake.spec), timeout=timeout)
    return PrintWorker(TicketPrinter(config, settings))


async def kiosk_ctx(ctx: Context) -> Context:
    issued = await devices.add(ctx, name="entrance", role="kiosk")
    anonymous = ctx.as_principal(Principal.anonymous())
    return ctx.as_principal(await devices.authenticate(anonymous, key=issued.key))


@pytest.mark.sqlite
async def test_the_printed_number_is_the_issued_ticket_in_the_patients_language(
    sqlite_url: str, tmp_path: Path, printer: FakePrinter
) -> None:
    settings = make_settings(
        tmp_path, sqlite_url, clinic_name="Clínica San José", public_url="https://cola.example.org"
    )
    ctx = Context(db=_db(settings), principal=Principal.system("t"), settings=settings)
    try:
        c = await small_clinic(ctx, doctors=False)
        kiosk = await kiosk_ctx(ctx)
        await queue.issue(kiosk, department="GEN")
        ticket = await queue.issue(kiosk, department="GEN")
        slip = TicketSlip.for_ticket(settings, ticket, department=c.gen.name, language="es")
        worker = worker_for(settings, printer)
        result = await worker.print_ticket(slip)
        await worker.close()
    finally:
        await ctx.db.dispose()

    assert result.printed and result.status.state == PrinterState.READY
    [paper] = printer.wait_for_tickets(1)
    # The number in the largest size is the ticket the database issued.
    assert paper.largest.text == ticket.ticket_number == "A-002"
    assert (paper.largest.width, paper.largest.height) == (8, 8)
    # Accented text printed through the printer's code page, in Spanish.
    assert paper.code_pages == ["CP858"]
    assert paper.lines[0].text == "Clínica San José" and paper.lines[0].bold
    paper.line("Su número")
    paper.line("General Practice")
    paper.line("1 persona delante de usted")
    paper.line("Espera estimada:")
    assert "Espere, por favor, hasta que su número aparezca en la pantalla." in paper.flat
    # The QR code is the ticket's status page; then one cut.
    assert paper.qr == [ticket.status_url] and ticket.status_url.startswith(
        "https://cola.example.org/t/"
    )
    assert paper.cuts == 1
    # Asked before and after the ticket: printer status and paper sensor.
    assert paper.status_queries == [1, 4, 1, 4]
    local = ticket.arrived_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
    paper.line(local)


def _db(settings: Settings):  # type: ignore[no-untyped-def]
    from iqms.core.db import Database

    return Database.from_settings(settings)


async def test_without_a_public_url_the_qr_code_is_the_number(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    slip = TicketSlip(
        clinic="Riverside Clinic", number="P-007", department="Paediatrics",
        issued_at=datetime(2026, 1, 5, 9, 30, tzinfo=UTC), ahead=0, wait_minutes=(1.0, 3.5),
    )  # fmt: skip
    paper = decode(TicketPrinter(PrinterConfig(), settings).render(slip))
    assert paper.qr == ["P-007"]
    paper.line("You are next")
    paper.line("Estimated wait: under 5 min")
    assert "Please wait until your number is shown on the screen." in paper.flat
    assert "Scan" not in paper.text


async def test_an_offline_ticket_says_so_and_has_no_estimate(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    offline = OfflineTicket(
        op_id=__import__("uuid").uuid4(), ticket_number="A-121", sequence=121,
        department_id=__import__("uuid").uuid4(), department_name="General Practice",
        arrived_at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
    )  # fmt: skip
    slip = TicketSlip.for_offline(settings, offline, language="es")
    paper = decode(TicketPrinter(PrinterConfig(), settings).render(slip))
    assert paper.largest.text == "A-121"
    assert paper.line("EMITIDO SIN CONEXIÓN").invert
    paper.line("Espera estimada: no disponible")
    assert paper.qr == ["A-121"]


def test_text_the_code_page_lacks_is_transliterated_not_garbled() -> None:
    assert printable("Pediatría — 2ª planta “B” …", "CP858") == 'Pediatría - 2ª planta "B" ...'
    assert printable("Łódź Dvořák", "CP858") == "Lódz Dvorák"
    assert printable("诊所", "CP858") == "??"


def test_every_message_language_has_every_kiosk_text() -> None:
    assert set(MESSAGE_LANGUAGES) <= set(TEXTS)
    keys = set(TEXTS["en"])
    assert all(set(texts) == keys for texts in TEXTS.values())


# ---- faults -----------------------------------------------------------------------------------
FAULTS = {
    # name: (how the fake printer misbehaves, the state the kiosk must see)
    "paper out": ({"paper": "out"}, PrinterState.PAPER_OUT),
    "cover open": ({"cover_open": True}, PrinterState.COVER_OPEN),
    "offline": ({"online": False}, PrinterState.OFFLINE),
    "dropped mid-ticket": ({"drop_after": 40}, PrinterState.DISCONNECTED),
    "too slow": ({"stall_seconds": 3.0}, PrinterState.TIMEOUT),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_each_printer_fault_is_reported_and_nothing_is_half_printed(
    fault: str, tmp_path: Path, printer: FakePrinter
) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    changes, (setup, expected) = [], FAULTS[fault]
    for attr, value in setup.items():
        setattr(printer, attr, value)
    worker = worker_for(settings, printer, timeout=0.8)
    worker.add_listener(changes.append)
    slip = TicketSlip(clinic="Riverside Clinic", number="A-001", department="General Practice",
                      issued_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # fmt: skip
    result = await worker.print_ticket(slip)
    await worker.close()
    assert not result.printed
    assert result.status.state == expected and worker.status.state == expected
    assert [s.state for s in changes] == [expected]
    assert result.seconds < 0.8 + 0.6  # within its deadline, whatever the printer did
    if expected in (PrinterState.PAPER_OUT, PrinterState.COVER_OPEN, PrinterState.OFFLINE):
        # Checked first: not a byte of the ticket went to a printer that cannot print it.
        assert printer.tickets == []
    # The ticket is kept for a reprint once the printer is fixed.
    assert decode(result.data).largest.text == "A-001"


async def test_connection_refused_is_a_fault_with_a_plain_message(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    config = parse_printer_spec(f"network:127.0.0.1:{closed_port()}")
    worker = PrintWorker(TicketPrinter(config, settings))
    status = await worker.check()
    await worker.close()
    assert status.state == PrinterState.UNREACHABLE
    assert "refused the connection" in status.message and "127.0.0.1" in status.message


async def test_paper_near_its_end_still_prints_and_warns(
    tmp_path: Path, printer: FakePrinter
) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    printer.paper = "low"
    worker = worker_for(settings, printer)
    slip = TicketSlip(clinic="Riverside Clinic", number="A-002", department="General Practice",
                      issued_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # fmt: skip
    result = await worker.print_ticket(slip)
    assert result.printed and result.status.state == PrinterState.PAPER_LOW
    assert result.status.severity == "warning"
    # Reprint of the same ticket: the same bytes again.
    again = await worker.print_bytes(result.data)
    await worker.close()
    assert again.printed
    first, second = printer.wait_for_tickets(2)
    assert first.largest.text == second.largest.text == "A-002"


async def test_a_stalled_printer_never_blocks_the_screen(
    tmp_path: Path, printer: FakePrinter
) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    printer.stall_seconds = 3.0
    worker = worker_for(settings, printer, timeout=1.0)
    ticks = 0

    async def screen() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(screen())
    slip = TicketSlip(clinic="Riverside Clinic", number="A-003", department="General Practice",
                      issued_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # fmt: skip
    result = await worker.print_ticket(slip)
    ticker.cancel()
    await worker.close()
    assert result.status.state == PrinterState.TIMEOUT
    assert ticks >= 20  # the event loop kept running the whole second
    assert threading.active_count() >= 1


# ---- other printers and settings ---------------------------------------------------------------
async def test_a_device_file_printer_gets_the_same_ticket(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    device = tmp_path / "lp0"
    device.touch()
    worker = PrintWorker.for_settings(settings, f"file:{device}")
    slip = TicketSlip(clinic="Riverside Clinic", number="A-010", department="General Practice",
                      issued_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # fmt: skip
    result = await worker.print_ticket(slip)
    await worker.close()
    assert result.printed
    paper = decode(device.read_bytes())
    assert paper.largest.text == "A-010" and paper.cuts == 1 and paper.status_queries == []


async def test_a_serial_printer_prints_and_answers_status_queries(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    with FakeSerialPrinter() as fake:
        worker = PrintWorker.for_settings(settings, fake.spec)
        slip = TicketSlip(clinic="Riverside Clinic", number="A-012", department="General Practice",
                          issued_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # fmt: skip
        result = await worker.print_ticket(slip)
        fake.cover_open = True
        refused = await worker.print_ticket(slip)
        await worker.close()
        [paper] = fake.wait_for_tickets(1)
    assert result.printed and result.status.state == PrinterState.READY
    assert not refused.printed and refused.status.state == PrinterState.COVER_OPEN
    assert paper.largest.text == "A-012" and paper.cuts == 1
    assert paper.status_queries[:4] == [1, 4, 1, 4]


async def test_no_printer_shows_numbers_on_screen_only(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    worker = PrintWorker.for_settings(settings)  # IQMS_PRINTER_KIND defaults to dummy
    slip = TicketSlip(clinic="Riverside Clinic", number="A-011", department="General Practice",
                      issued_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # fmt: skip
    result = await worker.print_ticket(slip)
    await worker.close()
    assert not result.printed and result.status.state == PrinterState.NO_PRINTER
    assert result.status.severity == "ok"
    assert decode(worker.printer.last_output).largest.text == "A-011"


def test_printer_options_and_settings(tmp_path: Path) -> None:
    net = parse_printer_spec("network:192.168.1.50")
    assert (net.kind, net.host, net.port) == ("network", "192.168.1.50", 9100)
    assert parse_printer_spec("network:printer.lan:9101").port == 9101
    usb = parse_printer_spec("usb:04b8:0e15")
    assert (usb.usb_vendor, usb.usb_product) == (0x04B8, 0x0E15)
    serial = parse_printer_spec("serial:/dev/ttyUSB0:19200")
    assert (serial.device, serial.baudrate) == ("/dev/ttyUSB0", 19200)
    assert parse_printer_spec("file:/dev/usb/lp0").device == "/dev/usb/lp0"
    with pytest.raises(ConfigError, match="unknown printer kind 'bluetooth'"):
        parse_printer_spec("bluetooth:aa:bb")
    with pytest.raises(ConfigError, match="cannot read 'usb:epson' as a usb printer"):
        parse_printer_spec("usb:epson")
    settings = make_settings(tmp_path, "sqlite:///unused.db", printer_kind="network")
    with pytest.raises(ConfigError, match="IQMS_PRINTER_HOST"):
        PrinterConfig.from_settings(settings)
    bad_profile = make_settings(tmp_path, "sqlite:///unused.db", printer_profile="TM-NOPE")
    with pytest.raises(ConfigError, match="unknown printer profile 'TM-NOPE'"):
        PrinterConfig.from_settings(bad_profile)
    configured = make_settings(
        tmp_path, "sqlite:///unused.db", printer_kind="usb",
        printer_usb_vendor="0x04b8", printer_usb_product="0x0202",
    )  # fmt: skip
    assert PrinterConfig.from_settings(configured).describe() == "USB printer 04b8:0202"


async def test_a_missing_usb_printer_is_unreachable_not_a_crash(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///unused.db")
    worker = PrintWorker.for_settings(settings, "usb:ffff:fffe")
    status = await worker.check()
    await worker.close()
    assert status.state in (PrinterState.UNREACHABLE, PrinterState.ERROR)
    assert "USB" in status.message


async def test_one_ticket_exists_whatever_the_printer_does(
    ctx: Context, tmp_path: Path, printer: FakePrinter
) -> None:
    # The ticket is issued before printing; a failed print never issues another.
    await small_clinic(ctx, doctors=False)
    kiosk = await kiosk_ctx(ctx)
    printer.paper = "out"
    worker = worker_for(ctx.settings, printer)
    ticket = await queue.issue(kiosk, department="GEN")
    slip = TicketSlip.for_ticket(ctx.settings, ticket, department="General Practice")
    result = await worker.print_ticket(slip)
    printer.paper = "ok"
    reprint = await worker.print_bytes(result.data)
    await worker.close()
    assert not result.printed and reprint.printed
    async with ctx.db.transaction(readonly=True) as s:
        assert (await s.execute(select(func.count()).select_from(QueueEntry))).scalar_one() == 1
    assert printer.wait_for_tickets(1)[0].largest.text == ticket.ticket_number
