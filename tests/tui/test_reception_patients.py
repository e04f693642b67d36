"""Patients at the desk: register with field-by-field checks, duplicates, edits that clash."""

from __future__ import annotations

from iqms.core.enums import Role
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import patients
from iqms.tui.dialogs import ConfirmDialog
from iqms.tui.reception.app import ReceptionApp
from iqms.tui.reception.patients import PatientForm, PatientsScreen
from tests.tui.desk import Desk, queue_open
from tests.tui.support import add_account, screen_text, showing, wait_until


def beside(app: ReceptionApp, field: str) -> str:
    """The message shown beside a field of the open patient form."""
    return str(app.screen.query_one(f"#e-{field}").render())


async def open_form(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("f2")
    await wait_until(pilot, lambda: showing(pilot.app, PatientsScreen))
    await pilot.press("ctrl+n")
    await wait_until(pilot, lambda: showing(pilot.app, PatientForm))


async def test_register_shows_each_fields_problem_beside_it_then_saves(
    desk_core: Context, desk_app: ReceptionApp
) -> None:
    core, app = desk_core, desk_app
    async with queue_open(app, (100, 40)) as pilot:
        await open_form(pilot)
        await pilot.press("tab")  # leave the name empty
        await pilot.press(*"12345", "tab")  # not a phone number
        await pilot.press(*"31/02/1990", "tab")  # no such date
        await wait_until(pilot, lambda: beside(app, "date_of_birth") != "")
        assert beside(app, "full_name") == "required"
        assert beside(app, "phone") == "'12345' is not a valid phone number"
        assert beside(app, "date_of_birth") == "there is no date 31/02/1990"
        assert beside(app, "national_id") == ""  # not visited yet: no message
        await pilot.press("ctrl+s")  # refused here: nothing reaches the core
        await wait_until(pilot, lambda: "Please correct the fields" in screen_text(app))
        assert await patients.search(core, query="Hannah") == []

        await pilot.press(*"Hannah Clarke")  # the cursor went to the first bad field
        await pilot.press("tab", "ctrl+a", "ctrl+k", *"07911 123456")
        await pilot.press("tab", "ctrl+a", "ctrl+k", *"12/05/1991", "tab")
        await wait_until(pilot, lambda: beside(app, "date_of_birth") == "")
        assert beside(app, "full_name") == beside(app, "phone") == ""
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: showing(app, PatientsScreen))
        await wait_until(
            pilot, lambda: "MRN000004" in screen_text(app) and "Hannah Clarke" in screen_text(app)
        )
    [hannah] = await patients.search(core, query="Hannah Clarke")
    record = await patients.get(core, patient=hannah.id)
    assert (record.mrn, record.phone, record.date_of_birth.isoformat()) == (  # type: ignore[union-attr]
        "MRN000004",
        "+447911123456",
        "1991-05-12",
    )


async def test_a_likely_duplicate_asks_first_and_registers_only_when_confirmed(
    desk_core: Context, desk_app: ReceptionApp
) -> None:
    core, app = desk_core, desk_app
    async with queue_open(app, (100, 40)) as pilot:
        for answer in ("n", "y"):
            await open_form(pilot)
            await pilot.press(*"Amelia J Hughes", "tab", *"+447911123101", "tab", *"1984-03-07")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: showing(app, ConfirmDialog))
            await wait_until(
                pilot, lambda: "registered (MRN000001); use that record" in screen_text(app)
            )
            await pilot.press(answer)
            if answer == "n":
                await wait_until(pilot, lambda: showing(app, PatientForm))
                assert len(await patients.search(core, query="Hughes")) == 1
                await pilot.press("escape")
        await wait_until(pilot, lambda: showing(app, PatientsScreen))
    found = await patients.search(core, query="Hughes")
    assert sorted(p.full_name for p in found) == ["Amelia Hughes", "Amelia J Hughes"]


async def test_an_edit_that_clashes_says_who_changed_what_and_reload_takes_their_version(
    desk_core: Context, desk_app: ReceptionApp, desk: Desk
) -> None:
    core, app = desk_core, desk_app
    sam_id = await add_account(core, "sam", Role.STAFF, "Sam Desk")
    sam = core.as_principal(Principal(user_id=sam_id, username="sam", role="staff"))
    async with queue_open(app, (100, 40)) as pilot:
        await pilot.press("f2")
        await wait_until(pilot, lambda: showing(app, PatientsScreen))
        await pilot.press(*"George")
        await wait_until(pilot, lambda: "MRN000003" in screen_text(app))
        await pilot.press("enter", "enter")  # to the results, open the first
        await wait_until(pilot, lambda: showing(app, PatientForm))
        # meanwhile Sam, at the other desk, corrects George's phone number
        await patients.update(sam, patient=desk.george.id, version=1, phone="+447911123199")
        await pilot.press("tab", "ctrl+a", "ctrl+k", *"07911 123100")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "changed by someone else" in screen_text(app))
        text = " ".join(screen_text(app).split())
        assert "(sam at 09:30: phone)" in text and "Ctrl+R loads the record" in text
        assert (await patients.get(core, patient=desk.george.id)).phone == "+447911123199"

        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "Reloaded: version 2" in screen_text(app))
        assert app.screen.query_one("#f-phone").value == "+447911123199"  # type: ignore[attr-defined]
        await pilot.press("tab", "tab", *"AB123456")  # national id, on the current version
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: showing(app, PatientsScreen))
    george = await patients.get(core, patient=desk.george.id)
    assert (george.phone, george.national_id, george.version) == ("+447911123199", "AB123456", 3)
