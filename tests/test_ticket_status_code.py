"""Every ticket carries an unguessable status code; with IQMS_PUBLIC_URL it has a status link."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from iqms.core.config import load_settings
from iqms.core.errors import ConfigError
from iqms.core.service import Context
from iqms.core.services import queue
from tests.conftest import make_settings
from tests.test_queue_fixtures import small_clinic


async def test_each_ticket_gets_its_own_code_and_no_link_without_a_public_url(
    ctx: Context,
) -> None:
    await small_clinic(ctx)
    tickets = [await queue.issue(ctx, department="GEN") for _ in range(20)]
    codes = {t.status_code for t in tickets}
    assert len(codes) == 20 and None not in codes
    assert all(len(c) >= 22 for c in codes if c)  # 128 random bits, URL-safe
    assert tickets[0].status_url is None
    again = await queue.get_ticket(ctx, ticket=tickets[0].ticket_number)
    assert again.status_code == tickets[0].status_code


async def test_the_status_link_uses_the_public_url(ctx: Context, tmp_path: Path) -> None:
    await small_clinic(ctx)
    settings = make_settings(
        tmp_path, ctx.settings.database_url or "", public_url="https://queue.example.org/"
    )
    pctx = replace(ctx, settings=settings)
    ticket = await queue.issue(pctx, department="GEN")
    assert ticket.status_url == f"https://queue.example.org/t/{ticket.status_code}"


@pytest.mark.parametrize("bad", ["queue.example.org", "ftp://x.org", "https://x.org/?a=1"])
def test_a_bad_public_url_names_the_setting(
    bad: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path))
    with pytest.raises(ConfigError) as err:
        load_settings(public_url=bad, _env_file=None)
    assert err.value.setting == "IQMS_PUBLIC_URL"
