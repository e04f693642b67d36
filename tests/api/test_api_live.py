"""Live pages on a real server: the status stream follows the ticket, and in headless Chromium
the board and status pages render (screenshots) and a call shows on the open board within 2 s."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from iqms.core.clock import SystemClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import queue
from tests.api.conftest import ApiClinic, build_clinic, live_server
from tests.conftest import make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def real_ctx(settings: Settings) -> AsyncIterator[Context]:
    """The test database on the wall clock (the live server runs on it too)."""
    database = Database.from_settings(settings)
    try:
        yield Context(
            db=database, principal=Principal.system("test"), settings=settings, clock=SystemClock()
        )
    finally:
        await database.dispose()


async def next_update(lines: AsyncIterator[str]) -> dict[str, object]:
    """The data of the next ``update`` event of a server-sent event stream."""
    event = None
    async for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "update":
            return dict(json.loads(line.removeprefix("data: ")))
    raise AssertionError("the stream ended")


async def test_the_status_stream_follows_the_ticket(
    settings: Settings, real_ctx: Context, api_clinic: ApiClinic
) -> None:
    await queue.issue(real_ctx, department="GEN")
    mine = await queue.issue(real_ctx, department="GEN")
    with live_server(settings) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as client,
            client.stream("GET", f"/t/{mine.status_code}/events") as stream,
        ):
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            first = await next_update(lines)
            assert "You are number 2 in the queue" in str(first["html"])
            assert first["called"] is False
            await queue.call_next(real_ctx, doctor="drsmith")  # someone else's turn
            moved = await next_update(lines)
            assert "You are next" in str(moved["html"])
            await queue.call(real_ctx, ticket=mine.ticket_number, doctor="drjones")
            called = await next_update(lines)
            assert "Please go to Room 2 now" in str(called["html"]) and called["called"] is True
        missing = await client_get(url, "/t/" + "Z" * 22 + "/events")
        assert missing.status_code == 404


async def client_get(url: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.get(path)


def check_png(path: Path) -> None:
    """A real picture of a page: a PNG of a sensible size with more than one colour in it."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    with Image.open(path) as image:
        assert image.size[0] >= 300 and image.size[1] >= 300
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 10


@pytest.mark.postgresql
async def test_board_and_status_pages_in_chromium(pg_url: str, tmp_path: Path) -> None:
    """On PostgreSQL, the production shape (calls reach the board through LISTEN/NOTIFY)."""
    settings = make_settings(tmp_path, pg_url)
    database = Database.from_settings(settings)
    real_ctx = Context(
        db=database, principal=Principal.system("test"), settings=settings, clock=SystemClock()
    )
    try:
        built = await build_clinic(real_ctx)
        await in_chromium(settings, real_ctx, tmp_path, built.device_keys["tv-waiting-room"])
    finally:
        await database.dispose()


async def in_chromium(settings: Settings, real_ctx: Context, tmp_path: Path, key: str) -> None:
    from playwright.async_api import async_playwright

    await queue.issue(real_ctx, department="GEN", triage_category=2)
    waiting = await queue.issue(real_ctx, department="GEN")
    with live_server(settings) as url:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                tv = await browser.new_page(viewport={"width": 1280, "height": 720})
                await tv.goto(f"{url}/board?department=GEN&key={key}")  # the board's device key
                assert tv.url == f"{url}/board?department=GEN"  # the key went into a cookie
                await tv.wait_for_selector("#connection.online", timeout=10_000)
                assert await tv.inner_text("h1") == "General Practice"
                assert "A-001" in await tv.inner_text(".next")
                await tv.screenshot(path=tmp_path / "board.png", full_page=True)
                check_png(tmp_path / "board.png")

                called = await queue.call_next(real_ctx, doctor="drsmith")
                assert called is not None
                started = time.monotonic()
                await tv.wait_for_selector(
                    f'tr.calling.fresh[data-call^="{called.ticket_number}|Room 1|"]', timeout=2_000
                )
                shown_after = time.monotonic() - started
                assert shown_after < 2.0
                await tv.screenshot(path=tmp_path / "board-called.png")
                check_png(tmp_path / "board-called.png")

                phone = await browser.new_page(viewport={"width": 390, "height": 844})
                await phone.goto(f"{url}/t/{waiting.status_code}")
                assert await phone.inner_text(".number") == waiting.ticket_number
                assert "You are next" in await phone.inner_text(".headline")
                await phone.wait_for_selector("#connection.online", timeout=10_000)
                await queue.call(real_ctx, ticket=waiting.ticket_number, doctor="drjones")
                await phone.wait_for_selector(".ticket.called", timeout=5_000)
                assert await phone.inner_text(".headline") == "Please go to Room 2 now"
                await phone.screenshot(path=tmp_path / "status.png", full_page=True)
                check_png(tmp_path / "status.png")
                # The board saw it too (on its own stream: maybe a moment after the phone).
                await tv.wait_for_function(
                    "() => document.querySelector('.serving')?.innerText.includes('Room 2')",
                    timeout=5_000,
                )
            finally:
                await browser.close()
