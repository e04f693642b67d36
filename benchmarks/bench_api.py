"""Ticket status over HTTP: ``GET /api/status/{code}`` at a fixed rate against a real ``iqms serve``.

    python -m benchmarks.bench_api                          # throwaway PostgreSQL, 200 req/s
    python -m benchmarks.bench_api --rate 400 --seconds 20 --workers 2
    python -m benchmarks.bench_api --backends postgresql,sqlite

A real ``iqms serve`` process (uvicorn) runs on 127.0.0.1 against a fresh
database with one department, its doctors and ``--waiting`` tickets issued
through the services. This process is the load generator: an open loop that
starts request *i* at ``i / rate`` seconds whether or not earlier ones have
answered (so a slow server is not hidden by a patient client), each asking for
the status of one of the waiting tickets by its code, as patients' phones do.
Latency is from the scheduled start to the full answer. In the same run, the
same rate on ``GET /healthz`` (the HTTP stack plus one database round trip) is
the floor the ticket status is compared with.

One JSON object per line on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks._support import (
    add_backend_options,
    bench_settings,
    chosen_backends,
    emit,
    fresh_database,
    percentile,
    postgres_server,
    progress,
)
from iqms.core.clock import SystemClock
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, queue, users

DEFAULT_RATE = 200.0
DEFAULT_SECONDS = 15.0
DEFAULT_WAITING = 300
DOCTORS = 4
SECRET = "benchmark-signing-secret-0123456789"
START_TIMEOUT = 90.0


async def seed(url: str, waiting: int) -> list[str]:
    """A department with its doctors and ``waiting`` tickets; returns their status codes."""
    settings = bench_settings(url)
    db = Database.from_settings(settings)
    ctx = Context(db=db, principal=Principal.system("benchmark"), settings=settings,
                  clock=SystemClock())  # fmt: skip
    try:
        await clinic.create_department(ctx, code="BEN", name="Benchmark clinic", ticket_prefix="B")
        for i in range(DOCTORS):
            name = f"bench-dr-{i + 1}"
            await users.create(ctx, username=name, full_name=f"Dr Bench {i + 1}", role="doctor",
                               password=f"bench-password-{i + 1:04d}")  # fmt: skip
            doc = await clinic.create_doctor(ctx, user=name, department="BEN", room=f"Room {i + 1}")
            await clinic.set_doctor_status(ctx, doctor=doc.id, status="available")
        rng = random.Random(7)
        codes = []
        for _ in range(waiting):
            category = rng.choices((2, 3, 4, 5), (0.1, 0.3, 0.45, 0.15))[0]
            ticket = await queue.issue(ctx, department="BEN", triage_category=category)
            assert ticket.status_code is not None
            codes.append(ticket.status_code)
        return codes
    finally:
        await db.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(url: str, *, workers: int) -> Iterator[str]:
    """``iqms serve`` on a free loopback port for this database; stopped afterwards."""
    port = _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="iqms-bench-api-"))
    env = {
        **os.environ,
        "IQMS_DATABASE_URL": url,
        "IQMS_DATA_DIR": str(data_dir),
        "IQMS_SECRET_KEY": SECRET,
        "IQMS_TIMEZONE": "UTC",
        "IQMS_LOG_LEVEL": "WARNING",
    }
    args = [sys.executable, "-m", "iqms", "serve", "--port", str(port),
            "--workers", str(workers), "--no-access-log"]  # fmt: skip
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"iqms serve stopped: {server.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("iqms serve did not start in time")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def open_loop(
    client: httpx.AsyncClient, paths: Sequence[str], *, rate: float, count: int
) -> dict[str, Any]:
    """``count`` GETs started ``1/rate`` s apart; latency from each scheduled start."""
    latencies: list[float] = []
    service: list[float] = []
    late_starts = 0
    errors = 0
    begin = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        nonlocal late_starts, errors
        scheduled = begin + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late_starts += 1
        sent = time.perf_counter()
        try:
            response = await client.get(paths[i % len(paths)])
            if response.status_code != 200:
                errors += 1
        except httpx.HTTPError:
            errors += 1
        done = time.perf_counter()
        latencies.append(done - scheduled)
        service.append(done - sent)

    await asyncio.gather(*(one(i) for i in range(count)))
    wall = time.perf_counter() - begin
    return {
        "requests": count,
        "achieved_per_s": round(count / wall, 1) if wall > 0 else math.nan,
        "p50_ms": round(1000 * percentile(latencies, 50), 2),
        "p90_ms": round(1000 * percentile(latencies, 90), 2),
        "p99_ms": round(1000 * percentile(latencies, 99), 2),
        "max_ms": round(1000 * max(latencies), 2),
        "sent_to_answer_p50_ms": round(1000 * percentile(service, 50), 2),
        "sent_to_answer_p99_ms": round(1000 * percentile(service, 99), 2),
        "errors": errors,
        "late_starts": late_starts,
    }


async def measure(
    base: str, codes: Sequence[str], *, rate: float, seconds: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    count = max(1, int(rate * seconds))
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        status_paths = [f"/api/status/{code}" for code in codes]
        await open_loop(client, status_paths, rate=rate, count=min(count, int(rate)))  # warm-up
        floor = await open_loop(client, ["/healthz"], rate=rate, count=count)
        status = await open_loop(client, status_paths, rate=rate, count=count)
    return status, floor


async def bench_database(
    url: str, *, rate: float, seconds: float, waiting: int, workers: int
) -> dict[str, Any]:
    """Ticket status at ``rate`` requests/s on one migrated, empty database."""
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    progress(f"api: seeding {waiting} waiting tickets ({backend})")
    codes = await seed(url, waiting)
    with serving(url, workers=workers) as base:
        progress(f"api: {rate:.0f} req/s for {seconds:.0f} s against {base} ({workers} worker(s))")
        status, floor = await measure(base, codes, rate=rate, seconds=seconds)
    line = {
        "name": "api.ticket_status",
        "backend": backend,
        "workers": workers,
        "waiting": waiting,
        "rate_per_s": rate,
        **status,
        "floor": "GET /healthz",
        "floor_p50_ms": floor["p50_ms"],
        "floor_p99_ms": floor["p99_ms"],
        "floor_errors": floor["errors"],
        "ratio_p50_to_floor": round(status["p50_ms"] / floor["p50_ms"], 2)
        if floor["p50_ms"]
        else math.nan,
        "ratio_p99_to_floor": round(status["p99_ms"] / floor["p99_ms"], 2)
        if floor["p99_ms"]
        else math.nan,
    }
    emit(line)
    return line


async def run(
    server_url: str | None,
    *,
    backends: Sequence[str],
    rate: float,
    seconds: float,
    waiting: int,
    workers: int,
) -> list[dict[str, Any]]:
    results = []
    for backend in backends:
        async with fresh_database(backend, server_url) as url:
            results.append(
                await bench_database(
                    url, rate=rate, seconds=seconds, waiting=waiting, workers=workers
                )
            )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Ticket status over HTTP at a fixed request rate (real iqms serve)."
    )
    add_backend_options(parser)
    parser.set_defaults(backends="postgresql")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="requests per second")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="measured time")
    parser.add_argument("--waiting", type=int, default=DEFAULT_WAITING, help="tickets waiting")
    parser.add_argument("--workers", type=int, default=1, help="iqms serve worker processes")
    args = parser.parse_args(argv)
    backends = chosen_backends(parser, args)
    with postgres_server(args.url, needed="postgresql" in backends) as server:
        asyncio.run(
            run(
                server.admin_url if server else None,
                backends=backends,
                rate=args.rate,
                seconds=args.seconds,
                waiting=args.waiting,
                workers=args.workers,
            )
        )


if __name__ == "__main__":
    main()
