"""The kiosk's screens through the Pilot, on a real database and a fake network printer.

Every path a patient can take: language, service with its wait, SMS sign-up,
appointment check-in (booking code, phone and date of birth, not found), the
number and its reprint, going back, leaving it idle, and the staff PIN.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from textual.widgets import MaskedInput

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.enums import NotifyChannel, TicketSource
from iqms.core.models import QueueEntry
from iqms.core.service import Context
from iqms.core.services import audit, clinic, patients, queue
from iqms.kiosk.app import PrinterChanged
from iqms.kiosk.screens import (
    CheckInFormScreen,
    CheckInScreen,
    PinDialog,
    ResultScreen,
    ServiceScreen,
    SmsFormScreen,
    SmsOfferScreen,
    StartScreen,
)
from tests.kiosk.fake_printer import FakePrinter
from tests.kiosk.support import (
    PIN,
    SIZE,
    kiosk_app,
    kiosk_key,
    kiosk_settings,
    press_through,
    printed_or_failed,
    started,
    until_screen,
)
from tests.test_queue_fixtures import small_clinic
from tests.tui.support import screen_text, showing, status_line, wait_until


@pytest.fixture
def printer() -> FakePrinter:
    with FakePrinter() as fake:
        yield fake  # type: ignore[misc]


async def tickets_in_db(core: Context) -> list[QueueEntry]:
    async with core.db.transaction(readonly=True) as s:
        return list((await s.execute(select(QueueEntry).order_by(QueueEntry.sequence))).scalars())


async def test_a_walk_in_gets_the_printed_number_in_their_language(
    core: Context, kiosk_env: Settings, clock: FrozenClock, printer: FakePrinter
) -> None:
    await small_clinic(core)
    for _ in range(3):
        await queue.issue(core, department="GEN")
    key = await kiosk_key(core)
    app = kiosk_app(kiosk_env, key, clock, printer=printer.spec)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        text = screen_text(app)
        assert "Welcome · Bienvenido" in text and "Español" in text
        assert "entrance" in status_line(app) and "● online" in status_line(app)
        await pilot.press("2")  # Español
        await until_screen(pilot, ServiceScreen)
        text = screen_text(app)
        assert "Elija un servicio" in text
        assert "General Practice" in text and "3 personas esperando · unos" in text
        assert "Paediatrics" in text and "Nadie esperando · menos de 5 min" in text
        await pilot.press("1")  # General Practice
        await until_screen(pilot, SmsOfferScreen)
        await wait_until(pilot, lambda: "¿Quiere un SMS" in screen_text(app))
        await pilot.press("1")  # no SMS, just the ticket
        await until_screen(pilot, ResultScreen)
        await wait_until(pilot, lambda: "Recoja su ticket, por favor." in screen_text(app))
        text = screen_text(app)
        assert "Su número" in text and "3 personas delante de usted" in text
        [issued] = app.issued
    [paper] = printer.wait_for_tickets(1)
    [*_, mine] = await tickets_in_db(core)
    # The number on screen, on paper and in the queue is one and the same ticket.
    assert issued.number == paper.largest.text == mine.ticket_number
    assert mine.source == TicketSource.KIOSK and mine.origin_device_id is not None
    paper.line("Su número")
    paper.line("3 personas delante de usted")
    assert "Espere, por favor, hasta que su número aparezca en la pantalla." in paper.flat
    assert len(await tickets_in_db(core)) == 4


async def test_back_and_idle_return_to_the_start_in_the_default_language(
    core: Context, tmp_path, sqlite_url: str, clock: FrozenClock
) -> None:
    settings = kiosk_settings(tmp_path, sqlite_url, kiosk_idle_seconds=2)
    await small_clinic(core, doctors=False)
    app = kiosk_app(settings, await kiosk_key(core), clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("2")
        await until_screen(pilot, ServiceScreen)
        await pilot.press("0")  # back
        await until_screen(pilot, StartScreen)
        await pilot.click("#choice-2")  # touch works as well as keys
        await until_screen(pilot, ServiceScreen)
        await pilot.press("9")
        await wait_until(pilot, lambda: "Registre su llegada" in screen_text(app))
        took = await wait_until(pilot, lambda: showing(app, StartScreen), within=6)
        assert took >= 1.0  # left alone for IQMS_KIOSK_IDLE_SECONDS, not at once
        assert app.language == "en" and len(app.screen_stack) == 1
    assert await tickets_in_db(core) == []  # looking around issues nothing


async def test_a_patient_asking_for_an_sms_is_registered_with_consent(
    core: Context, kiosk_env: Settings, clock: FrozenClock, printer: FakePrinter
) -> None:
    await small_clinic(core)
    app = kiosk_app(kiosk_env, await kiosk_key(core), clock, printer=printer.spec)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        # English, Paediatrics
        await press_through(pilot, ("1", ServiceScreen), ("2", SmsOfferScreen))
        await pilot.press("2")  # yes, an SMS
        await until_screen(pilot, SmsFormScreen)
        await pilot.press(*"0791112345", "enter")  # one digit short
        await pilot.press(*"11021984", "enter")
        await pilot.press(*"Amelia Hughes", "enter")
        await wait_until(pilot, lambda: "Please check the phone number." in screen_text(app))
        assert app.issued == []
        await pilot.click("#phone")
        await pilot.press("end", "7")
        await pilot.click("#choice-ok")  # "I agree: get my ticket"
        await until_screen(pilot, ResultScreen)
        await wait_until(pilot, lambda: printed_or_failed(app))
        await wait_until(
            pilot, lambda: "We will send an SMS to your number ending in 457." in screen_text(app)
        )
    [ticket] = await tickets_in_db(core)
    assert ticket.ticket_number == app.issued[0].number == printer.tickets[0].largest.text
    record = await patients.get(core, patient=ticket.patient_id)
    assert (record.full_name, record.phone, record.date_of_birth) == (
        "Amelia Hughes",
        "+447911123457",
        date(1984, 2, 11),
    )
    assert record.notify_channel == NotifyChannel.SMS
    [consent] = await audit.show(core, action="patient.consent_given")
    assert consent.details["consent_text"] == (
        "I agree that the clinic sends me SMS about my place in the queue."
    )


async def test_checking_in_by_booking_code_and_by_phone(
    core: Context, kiosk_env: Settings, clock: FrozenClock, printer: FakePrinter
) -> None:
    await small_clinic(core)
    omar = await patients.register(core, full_name="Omar Haddad", phone="+447911223344",
                                   date_of_birth=date(1990, 6, 1))  # fmt: skip
    booked = await clinic.book_appointment(core, patient=omar.id, department="GEN",
                                           scheduled_at=clock.now() + timedelta(minutes=20),
                                           doctor="drjones")  # fmt: skip
    later = await clinic.book_appointment(core, patient=omar.id, department="PED",
                                          scheduled_at=clock.now() + timedelta(minutes=50))  # fmt: skip
    app = kiosk_app(kiosk_env, await kiosk_key(core), clock, printer=printer.spec)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await press_through(pilot, ("1", ServiceScreen), ("9", CheckInScreen),
                            ("1", CheckInFormScreen))  # English, appointment, booking code  # fmt: skip
        await pilot.press(*"1234", "enter")
        await wait_until(pilot, lambda: "A booking code has 8 digits" in screen_text(app))
        wrong = "00000000" if booked.booking_code != "00000000" else "00000001"
        await pilot.press(*["backspace"] * 4, *wrong, "enter")
        await wait_until(pilot, lambda: "No appointment today matches" in screen_text(app))
        await pilot.press(*["backspace"] * 9, *str(booked.booking_code), "enter")
        await until_screen(pilot, ResultScreen)
        await wait_until(pilot, lambda: printed_or_failed(app))
        text = screen_text(app)
        assert "General Practice · Room: Room 2" in text and "Your appointment: 08:20" in text

        await pilot.press("0")  # done
        await until_screen(pilot, StartScreen)
        await press_through(pilot, ("1", ServiceScreen), ("9", CheckInScreen),
                            ("2", CheckInFormScreen))  # by phone and date of birth  # fmt: skip
        await pilot.press(*"07911 223344", "enter", *"01061990", "enter")
        await until_screen(pilot, ResultScreen)
        await wait_until(pilot, lambda: "Paediatrics" in screen_text(app))
        await wait_until(pilot, lambda: printed_or_failed(app))
    first, second = printer.wait_for_tickets(2)
    assert [first.largest.text, second.largest.text] == [i.number for i in app.issued]
    assert [i.department for i in app.issued] == ["General Practice", "Paediatrics"]
    first.line("Room 2")
    statuses = {a.id: a.status for a in await clinic.list_appointments(core)}
    assert statuses == {booked.id: "checked_in", later.id: "checked_in"}


async def test_checking_in_too_early_says_so_and_too_many_tries_send_to_reception(
    core: Context, kiosk_env: Settings, clock: FrozenClock
) -> None:
    await small_clinic(core, doctors=False)
    omar = await patients.register(core, full_name="Omar Haddad", phone="+447911223344",
                                   date_of_birth=date(1990, 6, 1))  # fmt: skip
    booked = await clinic.book_appointment(core, patient=omar.id, department="GEN",
                                           scheduled_at=clock.now() + timedelta(hours=5))  # fmt: skip
    app = kiosk_app(kiosk_env, await kiosk_key(core), clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await press_through(pilot, ("2", ServiceScreen), ("9", CheckInScreen),
                            ("1", CheckInFormScreen))  # fmt: skip
        await pilot.press(*str(booked.booking_code), "enter")
        await wait_until(pilot, lambda: "Aún es pronto para registrar" in screen_text(app))
        code = app.screen.query_one("#code", MaskedInput)
        for _ in range(5):  # five wrong codes...
            code.value = "9999 9999"
            await pilot.press("enter")
            await wait_until(pilot, lambda: "No hay ninguna cita" in screen_text(app))
            app.screen.say("")
        await pilot.press("enter")  # ...and the kiosk stops looking for a while
        await wait_until(pilot, lambda: "Demasiados intentos" in screen_text(app))
    assert await tickets_in_db(core) == []


async def test_quitting_needs_the_staff_pin(
    core: Context, kiosk_env: Settings, clock: FrozenClock
) -> None:
    await small_clinic(core, doctors=False)
    app = kiosk_app(kiosk_env, await kiosk_key(core), clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("ctrl+c")  # what a patient might try
        await until_screen(pilot, PinDialog)
        await pilot.press("escape")
        await until_screen(pilot, StartScreen)
        for _ in range(5):  # five taps on the clinic's name (a touch screen has no keys)
            await pilot.click("#clinic")
        await until_screen(pilot, PinDialog)
        await pilot.press(*"1111", "enter")
        await wait_until(pilot, lambda: "Wrong PIN." in screen_text(app))
        assert app.is_running
        await pilot.press(*PIN, "enter")
        await wait_until(pilot, lambda: not app.is_running)
    assert app.return_code == 0


async def test_without_a_pin_the_kiosk_cannot_be_quit_from_its_screen(
    core: Context, tmp_path, sqlite_url: str, clock: FrozenClock
) -> None:
    settings = kiosk_settings(tmp_path, sqlite_url, kiosk_admin_pin=None)
    await small_clinic(core, doctors=False)
    app = kiosk_app(settings, await kiosk_key(core), clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("ctrl+q")
        await until_screen(pilot, PinDialog)
        await wait_until(pilot, lambda: "No PIN is set (IQMS_KIOSK_ADMIN_PIN)" in screen_text(app))
        await pilot.press("enter", "q", "escape")
        await until_screen(pilot, StartScreen)
        assert app.is_running


async def test_an_unknown_department_or_a_revoked_key_stops_with_one_line(
    core: Context, kiosk_env: Settings, clock: FrozenClock
) -> None:
    await small_clinic(core, doctors=False)
    key = await kiosk_key(core)
    app = kiosk_app(kiosk_env, key, clock, departments=["XRAY"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: not app.is_running)
        said = [str(line) for line in app._exit_renderables]  # printed as the app ends
    assert app.return_code == 3
    assert said == ["iqms: error: no department XRAY (--department)"]

    from iqms.core.services import devices

    await devices.revoke(core, device="entrance")
    app = kiosk_app(kiosk_env, key, clock)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: not app.is_running)
        said = [str(line) for line in app._exit_renderables]
    assert app.return_code == 5
    [revoked] = said
    assert revoked.startswith("iqms: error: ") and "revoked" in revoked and "\n" not in revoked


async def test_new_waits_reaching_a_start_screen_without_its_widgets_do_not_stop_the_kiosk(
    core: Context, kiosk_env: Settings, clock: FrozenClock
) -> None:
    # The kiosk passes new waits and printer states to its start screens from a timer, which
    # can fire while a start screen is not composed yet or is being taken down as it closes.
    await small_clinic(core, doctors=False)
    app = kiosk_app(kiosk_env, await kiosk_key(core), clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        StartScreen().reload()  # no widgets: nothing to update, nothing raised
        await pilot.press("1")  # the kiosk goes on: English, then the services
        await until_screen(pilot, ServiceScreen)
        assert app.is_running


async def test_a_printer_state_reaching_the_services_before_they_are_drawn_does_not_stop_the_kiosk(
    core: Context, kiosk_env: Settings, clock: FrozenClock
) -> None:
    # The print worker reports the printer's state at any moment: also just after a patient
    # chose a language, when the services screen is on the stack but not composed yet.
    await small_clinic(core, doctors=False)
    app = kiosk_app(kiosk_env, await kiosk_key(core), clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.choose_language("en")  # the services screen is pushed, composed a moment later
        app.on_printer_changed(PrinterChanged(app.printer.status))  # ... and the printer reports
        await until_screen(pilot, ServiceScreen)
        await wait_until(pilot, lambda: "General Practice" in screen_text(app))
        assert app.is_running
