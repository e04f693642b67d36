"""What the kiosk tests share: kiosks signed in with their own device keys, and the kiosk console."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import devices
from iqms.core.sync.connectivity import Backoff
from iqms.kiosk.app import KioskApp, KioskAuth
from iqms.kiosk.printer import PrintWorker, TicketPrinter, parse_printer_spec
from iqms.kiosk.screens import ResultScreen, ServiceScreen, SmsOfferScreen, StartScreen
from tests.tui.support import console_settings, showing, wait_until

PIN = "2468"
#: the kiosk's screen in the tests (a portrait touch screen's worth of lines)
SIZE = (100, 34)


async def kiosk(ctx: Context, name: str = "entrance") -> Context:
    """A context acting as a new kiosk, signed in with the key ``iqms admin devices add`` gave."""
    issued = await devices.add(ctx, name=name, role="kiosk")
    anonymous = ctx.as_principal(Principal.anonymous())
    return ctx.as_principal(await devices.authenticate(anonymous, key=issued.key))


# ---- the kiosk console under test ---------------------------------------------------------------
def kiosk_settings(tmp_path: Path, db_url: str, **overrides: Any) -> Settings:
    """Settings of a kiosk computer: its own data dir (journal), SMS offered, staff PIN set."""
    values: dict[str, Any] = {"kiosk_admin_pin": PIN, "kiosk_idle_seconds": 30}
    values.update(overrides)
    return console_settings(tmp_path, db_url, **values)


async def kiosk_key(ctx: Context, name: str = "entrance") -> str:
    """A kiosk device added by an administrator: its key, as ``iqms admin devices add`` prints it."""
    return (await devices.add(ctx, name=name, role="kiosk")).key


def printer_worker(
    settings: Settings, spec: str | None = None, timeout: float = 2.0
) -> PrintWorker:
    """The kiosk's printer: ``spec`` like ``--printer`` (a fake printer's), or the dummy."""
    if spec is None:
        return PrintWorker.for_settings(settings)
    config = dataclasses.replace(parse_printer_spec(spec), timeout=timeout)
    return PrintWorker(TicketPrinter(config, settings))


def kiosk_app(
    settings: Settings,
    key: str,
    clock: FrozenClock,
    *,
    printer: str | None = None,
    printer_timeout: float = 2.0,
    **options: Any,
) -> KioskApp:
    options.setdefault("heartbeat_seconds", 1.0)
    options.setdefault("backoff", Backoff(base=0.05, maximum=0.2, jitter=0))
    return KioskApp(
        settings,
        KioskAuth(key),
        printer=printer_worker(settings, printer, printer_timeout),
        clock=clock,
        **options,
    )


async def until_screen(pilot: Pilot[Any], screen: type, *, within: float = 10.0) -> None:
    await wait_until(pilot, lambda: showing(pilot.app, screen), within=within,
                     what=f"the {screen.__name__}")  # fmt: skip


async def press_through(pilot: Pilot[Any], *steps: tuple[str, type]) -> None:
    """Each key, then the screen it leads to: the next key is pressed on that screen once it
    is composed (a key pressed before would find none of its choices)."""
    for key, screen in steps:
        await pilot.press(key)
        await until_screen(pilot, screen)


async def started(pilot: Pilot[Any]) -> None:
    """The kiosk signed in and shows its start screen."""
    await until_screen(pilot, StartScreen)
    await pilot.pause(0.05)


async def take_a_ticket(pilot: Pilot[Any]) -> None:
    """From the start screen: English, General Practice, no SMS; waits for the number's screen."""
    await pilot.press("1")  # English
    await until_screen(pilot, ServiceScreen)
    await pilot.press("1")  # General Practice
    await until_screen(pilot, SmsOfferScreen)
    await pilot.press("1")  # no SMS
    await until_screen(pilot, ResultScreen)


def printed_or_failed(app: KioskApp) -> bool:
    """The last ticket went to the printer (or the printer failed): the screen says which."""
    return bool(app.issued) and bool(app.issued[-1].results)
