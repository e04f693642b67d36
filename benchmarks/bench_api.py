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
Latency is from the scheduled start to the full answer. In the same run and at
the same rate, a small static file (the HTTP stack and middleware: the floor
the ticket status is compared with) and ``GET /healthz`` (plus one database
round trip). It runs with the server keeping statuses between queue events
(the default) and reading each one afresh (``IQMS_API_STATUS_CACHE_SECONDS=0``).
The machine's load average is printed with the figures (other work on it skews
them).

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
from urllib.parse import urlsplit

import httpx
from sqlalchemy.engine import make_url

from benchmarks._support import (
    BENCH_SECRET,
    CATEGORY_MIX,
    add_backend_options,
    bench_settings,
    emit,
    fresh_database,
    make_clinic,
    percentile_ms,
    progress,
    run_with_backends,
)
from iqms.core.clock import SystemClock
from iqms.core.db import Database
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import queue

DEFAULT_RATE = 200.0
DEFAULT_SECONDS = 15.0
DEFAULT_WAITING = 300
DOCTORS = 4
START_TIMEOUT = 90.0


async def seed(url: str, waiting: int) -> list[str]:
    """A department with its doctors and ``waiting`` tickets issued through the services (on
    the real clock, as the server reads it); returns their status codes."""
    settings = bench_settings(url)
    db = Database.from_settings(settings)
    ctx = Context(db=db, principal=Principal.system("benchmark"), settings=settings,
                  clock=SystemClock())  # fmt: skip
    try:
        bench = await make_clinic(ctx, DOCTORS)
        rng = random.Random(7)
        categories, weights = zip(*CATEGORY_MIX, strict=True)
        codes = []
        for _ in range(waiting):
            category = rng.choices(categories, weights)[0]
            ticket = await queue.issue(
                ctx, department=bench.department_id, triage_category=category
            )
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
def serving(url: str, *, workers: int, cache_seconds: float) -> Iterator[str]:
    """``iqms serve`` on a free loopback port for this database; stopped afterwards."""
    port = _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="iqms-bench-api-"))
    env = {
        **os.environ,
        "IQMS_DATABASE_URL": url,
        "IQMS_DATA_DIR": str(data_dir),
        "IQMS_SECRET_KEY": BENCH_SECRET,
        "IQMS_TIMEZONE": "UTC",
        "IQMS_LOG_LEVEL": "WARNING",
        "IQMS_API_STATUS_CACHE_SECONDS": str(cache_seconds),
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


class Connection:
    """One keep-alive HTTP/1.1 connection to the server: one GET at a time, little overhead.

    The generator must not be the bottleneck on a small machine, so it writes
    the request line itself and reads the answer by its Content-Length.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
            self.writer = None


async def open_loop(
    base: str, paths: Sequence[str], *, rate: float, count: int, connections: int = 64
) -> dict[str, Any]:
    """``count`` GETs scheduled ``1/rate`` s apart; latency from each scheduled start.

    Requests go out on up to ``connections`` keep-alive connections; one that
    finds them all busy waits for the next free one (and that wait counts).
    """
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    service: list[float] = []
    errors = 0
    late_starts = 0
    begin = time.perf_counter() + 0.05
    free: asyncio.Queue[Connection] = asyncio.Queue()
    pool = [Connection(host, port) for _ in range(connections)]
    for conn in pool:
        free.put_nowait(conn)

    async def one(i: int) -> None:
        nonlocal errors, late_starts
        scheduled = begin + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late_starts += 1
        conn = await free.get()
        sent = time.perf_counter()
        try:
            if await conn.get(paths[i % len(paths)]) != 200:
                errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            await conn.close()
        finally:
            free.put_nowait(conn)
        done = time.perf_counter()
        latencies.append(done - scheduled)
        service.append(done - sent)

    try:
        await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        for conn in pool:
            await conn.close()
    wall = time.perf_counter() - begin
    return {
        "requests": count,
        "achieved_per_s": round(count / wall, 1) if wall > 0 else math.nan,
        "p50_ms": percentile_ms(latencies, 50, 2),
        "p90_ms": percentile_ms(latencies, 90, 2),
        "p99_ms": percentile_ms(latencies, 99, 2),
        "max_ms": round(1000 * max(latencies), 2),
        "sent_to_answer_p50_ms": percentile_ms(service, 50, 2),
        "sent_to_answer_p99_ms": percentile_ms(service, 99, 2),
        "errors": errors,
        "late_starts": late_starts,
    }


FLOOR_PATH = "/static/iqms.css"  # the HTTP stack and middleware, no database
DATABASE_FLOOR_PATH = "/healthz"  # plus one database round trip


async def measure(
    base: str, codes: Sequence[str], *, rate: float, seconds: float
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Ticket status, the HTTP floor and the database floor, each at ``rate`` for ``seconds``."""
    count = max(1, int(rate * seconds))
    status_paths = [f"/api/status/{code}" for code in codes]
    await open_loop(base, [FLOOR_PATH], rate=rate, count=min(count, int(rate)))  # warm-up
    floor = await open_loop(base, [FLOOR_PATH], rate=rate, count=count)
    database = await open_loop(base, [DATABASE_FLOOR_PATH], rate=rate, count=count)
    # Every ticket asked for once, as the phones of a waiting room already have.
    await open_loop(base, status_paths, rate=rate, count=max(len(codes), min(count, int(rate))))
    status = await open_loop(base, status_paths, rate=rate, count=count)
    return status, floor, database


def _ratio(value: float, floor: float) -> float:
    return round(value / floor, 2) if floor else math.nan


async def bench_server(
    url: str,
    codes: Sequence[str],
    *,
    rate: float,
    seconds: float,
    workers: int,
    cache_seconds: float,
) -> dict[str, Any]:
    """Ticket status at ``rate`` requests/s against one ``iqms serve``; returns the result line."""
    backend = make_url(url).get_backend_name()
    with serving(url, workers=workers, cache_seconds=cache_seconds) as base:
        progress(
            f"api: {rate:.0f} req/s for {seconds:.0f} s against {base} ({workers} worker(s), "
            f"statuses kept {cache_seconds:g} s)"
        )
        status, floor, database = await measure(base, codes, rate=rate, seconds=seconds)
    line = {
        "name": "api.ticket_status",
        "backend": backend,
        "workers": workers,
        "status_cache_seconds": cache_seconds,
        "waiting": len(codes),
        "rate_per_s": rate,
        **status,
        "floor": f"GET {FLOOR_PATH}",
        "floor_p50_ms": floor["p50_ms"],
        "floor_p99_ms": floor["p99_ms"],
        "floor_achieved_per_s": floor["achieved_per_s"],
        "ratio_p50_to_floor": _ratio(status["p50_ms"], floor["p50_ms"]),
        "ratio_p99_to_floor": _ratio(status["p99_ms"], floor["p99_ms"]),
        "database_floor": f"GET {DATABASE_FLOOR_PATH}",
        "database_floor_p50_ms": database["p50_ms"],
        "database_floor_p99_ms": database["p99_ms"],
        "database_floor_achieved_per_s": database["achieved_per_s"],
        "load_average": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
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
    cache: Sequence[float],
) -> list[dict[str, Any]]:
    results = []
    for backend in backends:
        async with fresh_database(backend, server_url) as url:
            progress(f"api: seeding {waiting} waiting tickets ({backend})")
            codes = await seed(url, waiting)
            for cache_seconds in cache:
                results.append(
                    await bench_server(
                        url, codes, rate=rate, seconds=seconds, workers=workers,
                        cache_seconds=cache_seconds,
                    )
                )  # fmt: skip
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
    parser.add_argument(
        "--cache-seconds",
        default="30,0",
        help="IQMS_API_STATUS_CACHE_SECONDS values to run with (0: every status read afresh)",
    )
    args = parser.parse_args(argv)
    cache = [float(v) for v in args.cache_seconds.split(",") if v.strip()]
    run_with_backends(
        parser,
        args,
        run,
        rate=args.rate,
        seconds=args.seconds,
        waiting=args.waiting,
        workers=args.workers,
        cache=cache,
    )


if __name__ == "__main__":
    main()
