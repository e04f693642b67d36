"""What a patient mistypes at the kiosk is pointed out on screen, and nothing happens until mended.

The SMS sign-up and the check-in by phone read the same two fields (phone, date
of birth) through one check; a wrong phone is covered with the SMS sign-up in
test_kiosk_screens.py, a date that is not one and a missing name here.
"""

from __future__ import annotations

from datetime import date, timedelta

from textual.widgets import MaskedInput

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.service import Context
from iqms.core.services import clinic, patients
from iqms.kiosk.screens import (
    CheckInFormScreen,
    CheckInScreen,
    ResultScreen,
    ServiceScreen,
    SmsFormScreen,
    SmsOfferScreen,
)
from tests.kiosk.fake_printer import FakePrinter
from tests.kiosk.support import (
    SIZE,
    kiosk_app,
    kiosk_key,
    press_through,
    printed_or_failed,
    started,
    until_screen,
)
from tests.test_queue_fixtures import small_clinic
from tests.tui.support import screen_text, wait_until


async def test_a_birth_date_that_is_no_date_is_pointed_out_before_checking_in(
    core: Context, kiosk_env: Settings, clock: FrozenClock
) -> None:
    await small_clinic(core)
    omar = await patients.register(core, full_name="Omar Haddad", phone="+447911223344",
                                   date_of_birth=date(1990, 6, 1))  # fmt: skip
    booked = await clinic.book_appointment(core, patient=omar.id, department="GEN",
                                           scheduled_at=clock.now() + timedelta(minutes=20))  # fmt: skip
    with FakePrinter() as printer:
        app = kiosk_app(kiosk_env, await kiosk_key(core), clock, printer=printer.spec)
        async with app.run_test(size=SIZE) as pilot:
            await started(pilot)
            await press_through(pilot, ("1", ServiceScreen), ("9", CheckInScreen),
                                ("2", CheckInFormScreen))  # English, appointment, by phone  # fmt: skip
            await pilot.press(*"07911 223344", "enter", *"31021990", "enter")  # 31 February
            await wait_until(
                pilot, lambda: "Please check the date of birth (day / month / year)." in
                screen_text(app),
            )  # fmt: skip
            assert isinstance(app.focused, MaskedInput) and app.focused.id == "birth"
            assert isinstance(app.screen, CheckInFormScreen)
            [still] = await clinic.list_appointments(core)
            assert still.status == "booked"  # nothing was checked in

            await pilot.press(*["backspace"] * 10, *"01061990", "enter")
            await until_screen(pilot, ResultScreen)
            await wait_until(pilot, lambda: printed_or_failed(app))
        assert [a.status for a in await clinic.list_appointments(core)] == ["checked_in"]
        assert booked.id == still.id and len(printer.tickets) == 1


async def test_an_sms_sign_up_without_a_name_is_pointed_out_and_no_ticket_is_issued(
    core: Context, kiosk_env: Settings, clock: FrozenClock
) -> None:
    await small_clinic(core)
    with FakePrinter() as printer:
        app = kiosk_app(kiosk_env, await kiosk_key(core), clock, printer=printer.spec)
        async with app.run_test(size=SIZE) as pilot:
            await started(pilot)
            await press_through(pilot, ("1", ServiceScreen), ("2", SmsOfferScreen),
                                ("2", SmsFormScreen))  # English, Paediatrics, yes to an SMS  # fmt: skip
            await pilot.press(*"07911123457", "enter", *"31021984", "enter", "enter")
            await wait_until(pilot, lambda: "Please check the date of birth" in screen_text(app))
            await pilot.press(*["backspace"] * 10, *"11021984", "enter", "enter")
            await wait_until(pilot, lambda: "Please type your name." in screen_text(app))
            assert isinstance(app.screen, SmsFormScreen) and app.issued == []
            await pilot.press(*"Amelia Hughes", "enter")
            await until_screen(pilot, ResultScreen)
            await wait_until(pilot, lambda: printed_or_failed(app))
        assert len(app.issued) == 1 and len(printer.tickets) == 1
    [amelia] = await patients.search(core, query="Amelia Hughes")
    assert amelia.date_of_birth == date(1984, 2, 11)
