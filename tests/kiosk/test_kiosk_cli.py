"""``iqms kiosk --check``: what an IT person runs when setting a kiosk up (key, database,
services, printer), with one line each and an exit code that says whether it is ready."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from iqms.cli import app
from iqms.core.service import Context
from tests.conftest import make_settings
from tests.kiosk.fake_printer import FakePrinter
from tests.kiosk.support import kiosk_key
from tests.system import cli_environment, run_as_system
from tests.test_queue_fixtures import small_clinic

runner = CliRunner()


@pytest.fixture
def kiosk_computer(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clinic with a kiosk device; the environment of the kiosk's computer. Returns its key."""
    settings = make_settings(tmp_path, sqlite_url)
    cli_environment(monkeypatch, tmp_path, sqlite_url,
                    unset=("IQMS_DEVICE_KEY", "IQMS_DEVICE_KEY_FILE", "IQMS_PRINTER_KIND"))  # fmt: skip

    async def seed(ctx: Context) -> str:
        await small_clinic(ctx, doctors=False)
        return await kiosk_key(ctx, "hall")

    return run_as_system(settings, seed)


@pytest.mark.sqlite
def test_the_check_says_what_the_kiosk_will_do(
    kiosk_computer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    without = runner.invoke(app, ["kiosk", "--check"])
    assert without.exit_code == 5
    assert "this computer has no device key" in without.stderr

    monkeypatch.setenv("IQMS_DEVICE_KEY", kiosk_computer)
    with FakePrinter() as printer:
        ready = runner.invoke(app, ["kiosk", "--check", "--printer", printer.spec, "-d", "GEN"])
        assert ready.exit_code == 0, ready.stderr
        assert ready.stderr.splitlines() == [
            "device: hall (kiosk)",
            "services: GEN General Practice",
            f"printer: network printer {printer.host}:{printer.port}: printer ready",
        ]
        printer.paper = "out"
        empty = runner.invoke(app, ["kiosk", "--check", "--printer", printer.spec])
    assert empty.exit_code == 1
    assert "the printer is out of paper" in empty.stderr
    assert "services: GEN General Practice, PED Paediatrics" in empty.stderr

    unknown = runner.invoke(app, ["kiosk", "--check", "--department", "XRAY"])
    assert (unknown.exit_code, unknown.stderr.strip().splitlines()[-1]) == (
        3,
        "iqms: error: no department XRAY",
    )
    bad = runner.invoke(app, ["kiosk", "--printer", "bluetooth:aa"])
    assert bad.exit_code == 9 and "unknown printer kind 'bluetooth'" in bad.stderr
