"""The real ``iqms serve`` process on 127.0.0.1, and its one-line refusals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from iqms.cli import app as cli
from iqms.core.clock import SystemClock
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from tests.api.conftest import PASSWORD, build_clinic
from tests.conftest import make_settings

SECRET = "serve-test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"iqms serve exited early: {process.communicate()[1]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("iqms serve did not answer in time")


def test_the_real_server_process_over_loopback(tmp_path: Path, pg_url: str) -> None:
    settings = make_settings(tmp_path, pg_url, secret_key=SECRET)

    async def seed() -> None:
        ctx = Context(db=Database.from_settings(settings), principal=Principal.system("setup"),
                      settings=settings, clock=SystemClock())  # fmt: skip
        try:
            await build_clinic(ctx)
        finally:
            await ctx.db.dispose()

    asyncio.run(seed())
    port = free_port()
    env = {
        **os.environ,
        "IQMS_DATABASE_URL": pg_url,
        "IQMS_DATA_DIR": str(tmp_path / "data"),
        "IQMS_SECRET_KEY": SECRET,
        "IQMS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "IQMS_CLINIC_NAME": "Riverside Clinic",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "iqms", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server)
        with httpx.Client(base_url=url, timeout=10) as client:
            login = client.post("/api/auth/token", json={"username": "rita", "password": PASSWORD})
            assert login.status_code == 200, login.text
            staff = {"Authorization": f"Bearer {login.json()['access_token']}"}
            ticket = client.post("/api/staff/tickets", json={"department": "GEN"}, headers=staff)
            assert ticket.status_code == 201
            link = ticket.json()["status_url"]
            assert link.startswith(f"{url}/t/")
            page = client.get(link)
            assert page.status_code == 200 and "A-001" in page.text
            assert page.headers["content-security-policy"].startswith("default-src 'self'")
            docs = client.get("/api/openapi.json").json()
            assert "/api/patients/login/verify" in docs["paths"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, log = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            _, log = server.communicate()
    assert server.returncode == 0, log
    assert f"iqms serve: http://127.0.0.1:{port}/" in log
    assert '"POST /api/auth/token" 200' in log and '"POST /api/staff/tickets" 201' in log
    assert PASSWORD not in log and login.json()["access_token"] not in log


def test_serve_refuses_an_old_schema_and_a_busy_port(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IQMS_SECRET_KEY", SECRET)
    monkeypatch.setenv("IQMS_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    runner = CliRunner()
    old = runner.invoke(cli, ["serve", "--port", str(free_port())])
    assert old.exit_code == 8
    assert "iqms db upgrade" in old.output
    assert old.output.count("\n") == 1

    monkeypatch.setenv("IQMS_DATABASE_URL", sqlite_url)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        refused = runner.invoke(cli, ["serve", "--port", str(taken)])
    assert refused.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{taken}" in refused.output
