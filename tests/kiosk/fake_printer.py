"""A network ESC/POS printer on 127.0.0.1 for tests: the hardware faked at its wire only.

It accepts TCP connections as a receipt printer does on port 9100, records
every byte of every connection, and answers the real-time status queries
(DLE EOT 1 printer, 2 offline cause, 4 paper sensor) as configured: online or
offline, cover open, paper fine, near its end, or out. It can also drop a
connection after some bytes of a ticket, stall before reading anything, or
never answer status queries.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.kiosk.escpos_decode import Decoded, decode


@dataclass
class Job:
    """Everything one connection sent, and when its last ticket byte arrived."""

    data: bytearray = field(default_factory=bytearray)
    ticket_bytes: int = 0
    last_byte_at: float | None = None  # time.perf_counter()
    dropped: bool = False

    def decoded(self) -> Decoded:
        return decode(bytes(self.data))


class FakePrinter:
    """``with FakePrinter() as printer: ... printer.port ...``"""

    def __init__(self) -> None:
        self.online = True
        self.cover_open = False
        self.paper = "ok"  # "ok", "low" (near-end sensor) or "out"
        self.answer_status = True
        self.drop_after: int | None = None  # close the connection after this many ticket bytes
        self.stall_seconds = 0.0  # wait this long before reading a new connection
        self.jobs: list[Job] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self.host, self.port = self._server.getsockname()[:2]
        self._threads: list[threading.Thread] = []

    # ---- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> FakePrinter:
        thread = threading.Thread(target=self._accept, name="fake-printer", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._server.close()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def spec(self) -> str:
        """The ``--printer`` value for this printer."""
        return f"network:{self.host}:{self.port}"

    # ---- what it received ----------------------------------------------------------------
    @property
    def tickets(self) -> list[Decoded]:
        """Decoded connections that carried more than status queries, oldest first."""
        with self._lock:
            jobs = [job for job in self.jobs if job.ticket_bytes]
        return [job.decoded() for job in jobs]

    def wait_for_tickets(self, count: int, timeout: float = 5.0) -> list[Decoded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tickets = self.tickets
            if len(tickets) >= count:
                return tickets
            time.sleep(0.01)
        raise AssertionError(f"expected {count} tickets, got {len(self.tickets)}")

    # ---- status answers (ESC/POS DLE EOT) ------------------------------------------------------
    def status_byte(self, which: int) -> int:
        out_of_paper = self.paper == "out"
        offline = not self.online or self.cover_open or out_of_paper
        if which == 1:
            return 0x12 | (0x08 if offline else 0)
        if which == 2:
            return 0x12 | (0x04 if self.cover_open else 0) | (0x20 if out_of_paper else 0)
        if which == 4:
            near_end = 0x0C if self.paper in ("low", "out") else 0
            return 0x12 | near_end | (0x60 if out_of_paper else 0)
        return 0x12

    # ---- serving ----------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        job = Job()
        with self._lock:
            self.jobs.append(job)
        conn.settimeout(0.1)
        if self.stall_seconds and self._stop.wait(self.stall_seconds):
            conn.close()
            return
        feed = self._feeder(job, conn.sendall)
        try:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                if not feed(chunk):
                    # Reset, as a printer switched off mid-ticket would leave it.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _feeder(self, job: Job, reply: Callable[[bytes], object]) -> Callable[[bytes], bool]:
        """Record bytes and answer status queries; returns False once the job is to be dropped."""
        state = 0  # 0: data, 1: after DLE, 2: after DLE EOT

        def feed(chunk: bytes) -> bool:
            nonlocal state
            now = time.perf_counter()
            for byte in chunk:
                with self._lock:
                    job.data.append(byte)
                if state == 0 and byte == 0x10:
                    state = 1
                elif state == 1 and byte == 0x04:
                    state = 2
                elif state == 2:
                    state = 0
                    if self.answer_status:
                        reply(bytes([self.status_byte(byte)]))
                else:
                    job.ticket_bytes += 2 if state == 1 else 1  # a DLE that was not a query
                    state = 0
                    job.last_byte_at = now
                    if self.drop_after is not None and job.ticket_bytes >= self.drop_after:
                        job.dropped = True
                        return False
            return True

        return feed


class FakeSerialPrinter(FakePrinter):
    """The same printer on a serial line: a pseudo-terminal whose other end it reads."""

    def __enter__(self) -> FakeSerialPrinter:
        self._server.close()
        self._master, slave = os.openpty()
        tty.setraw(slave)
        self.device = os.ttyname(slave)
        self._slave = slave
        thread = threading.Thread(target=self._serve_tty, name="fake-serial", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def spec(self) -> str:
        return f"serial:{self.device}"

    def _serve_tty(self) -> None:
        job = Job()
        with self._lock:
            self.jobs.append(job)
        feed = self._feeder(job, lambda data: os.write(self._master, data))
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if ready:
                feed(os.read(self._master, 4096))


def closed_port() -> int:
    """A local port where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
