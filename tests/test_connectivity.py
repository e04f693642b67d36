"""Connectivity: a terminal notices a lost database, works offline, and syncs when it returns.

The database is lost for real: on PostgreSQL the terminal talks through a
loopback TCP proxy that the test cuts (open connections are aborted, new ones
refused); on SQLite it reaches the database file through a directory link
that the test removes (as when a network share disappears).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from iqms.core.clock import FrozenClock
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.errors import DatabaseUnavailable, ValidationError
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import patients, queue
from iqms.core.sync.connectivity import Backoff, ConnectionState, Connectivity, ConnectivityStatus
from iqms.core.sync.journal import Journal
from tests.conftest import make_settings
from tests.test_sync_push import make_clinic

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class TcpProxy:
    """A loopback TCP proxy to PostgreSQL that can be cut and restored."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        for task in (
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def cut(self) -> None:
        """Stop listening and abort every open connection (the network is gone)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await asyncio.sleep(0)

    async def close(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()


@dataclass
class Link:
    """The terminal's way to the central database, which a test can cut."""

    url: str
    backend: str
    proxy: TcpProxy | None = None
    link_path: Path | None = None
    real_dir: Path | None = None

    async def cut(self) -> None:
        if self.proxy is not None:
            await self.proxy.cut()
        else:
            assert self.link_path is not None
            self.link_path.unlink()

    async def restore(self) -> None:
        if self.proxy is not None:
            await self.proxy.start()
        else:
            assert self.link_path is not None and self.real_dir is not None
            self.link_path.symlink_to(self.real_dir, target_is_directory=True)


@contextlib.asynccontextmanager
async def terminal_link(db_url: str, tmp_path: Path, name: str) -> AsyncIterator[Link]:
    """A cuttable route from a terminal to the test database."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        real = Path(url.database or "")
        link_path = tmp_path / f"share-{name}"
        link_path.symlink_to(real.parent, target_is_directory=True)
        yield Link(
            url=f"sqlite+aiosqlite:///{link_path / real.name}",
            backend="sqlite",
            link_path=link_path,
            real_dir=real.parent,
        )
        return
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        yield Link(
            url=url.set(port=proxy.port).render_as_string(hide_password=False),
            backend="postgresql",
            proxy=proxy,
        )
    finally:
        await proxy.close()


@dataclass
class Terminal:
    """A kiosk or desk terminal: its own database handle (through the link) and journal."""

    ctx: Context
    journal: Journal
    conn: Connectivity
    link: Link


@contextlib.asynccontextmanager
async def terminal(
    db_url: str,
    tmp_path: Path,
    clock: FrozenClock,
    name: str,
    principal: Principal,
    **options: object,
) -> AsyncIterator[Terminal]:
    async with terminal_link(db_url, tmp_path, name) as link:
        settings: Settings = make_settings(tmp_path / name, link.url, db_connect_timeout=2,
                                           device_name=name)  # fmt: skip
        db = Database.from_settings(settings)
        ctx = Context(db=db, principal=principal, settings=settings, clock=clock)
        journal = Journal.for_settings(settings, clock=clock)
        backoff = Backoff(base=0.01, maximum=0.05, jitter=0)
        conn = Connectivity(ctx, journal, backoff=backoff, **options)  # type: ignore[arg-type]
        try:
            yield Terminal(ctx=ctx, journal=journal, conn=conn, link=link)
        finally:
            await conn.stop()
            await db.dispose()


async def wait_state(conn: Connectivity, state: ConnectionState) -> None:
    async with asyncio.timeout(30):
        await conn.wait_for(state)


# ---- tests ------------------------------------------------------------------------------------
def test_backoff_grows_exponentially_up_to_a_cap() -> None:
    backoff = Backoff(base=1, factor=2, maximum=30, jitter=0.5, rng=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 1
    jittered = Backoff(base=10, maximum=10, jitter=0.5, rng=lambda: 1.0)
    assert jittered.next_delay() == 5  # jitter only ever shortens the wait
    with pytest.raises(ValueError):
        Backoff(base=0)


async def test_a_lost_database_switches_to_offline_and_back_with_the_journal_pushed(
    ctx: Context, clock: FrozenClock, db_url: str, tmp_path: Path
) -> None:
    clock.set(T0)
    clinic = await make_clinic(ctx)
    seen: list[ConnectivityStatus] = []
    async with terminal(db_url, tmp_path, clock, "desk2", Principal.system("desk2"),
                        departments=[clinic.gen], block_size=3, low_water=2) as t:  # fmt: skip
        t.conn.add_listener(seen.append)
        status = await t.conn.start()
        assert status.state == ConnectionState.ONLINE
        assert [n.left for n in t.journal.numbers_left()] == [3]  # topped up while online

        online = await t.conn.run(
            lambda: queue.issue(t.ctx, department=clinic.gen),
            offline=lambda: t.journal.issue_ticket(clinic.gen),
        )
        assert online.ticket_number == "A-004"  # type: ignore[union-attr]

        # a user mistake is not a lost connection
        with pytest.raises(ValidationError):
            await t.conn.run(lambda: patients.register(t.ctx, full_name=""))
        assert t.conn.state == ConnectionState.ONLINE

        await t.link.cut()
        clock.advance(minutes=3)
        offline = await t.conn.run(
            lambda: queue.issue(t.ctx, department=clinic.gen),
            offline=lambda: t.journal.issue_ticket(clinic.gen),
        )
        assert offline.ticket_number == "A-001"  # type: ignore[union-attr]
        assert t.conn.state == ConnectionState.OFFLINE
        assert "cannot reach the database" in (t.conn.status().last_error or "")
        clock.advance(minutes=1)
        # while offline nothing waits on the network; operations without a fallback say why
        second = await t.conn.run(
            lambda: queue.issue(t.ctx, department=clinic.gen),
            offline=lambda: t.journal.issue_ticket(clinic.gen),
        )
        assert second.ticket_number == "A-002"  # type: ignore[union-attr]
        with pytest.raises(DatabaseUnavailable) as caught:
            await t.conn.run(lambda: queue.queue_list(t.ctx))
        assert "working offline" in str(caught.value)
        assert t.conn.status().pending == 2
        assert "offline since" in t.conn.status().describe()
        # the reconnect loop keeps probing with growing delays
        retried = asyncio.Event()
        t.conn.add_listener(lambda st: retried.set() if st.attempts >= 3 else None)
        async with asyncio.timeout(30):
            await retried.wait()
        assert t.conn.state == ConnectionState.OFFLINE

        await t.link.restore()
        await wait_state(t.conn, ConnectionState.ONLINE)
        assert t.journal.pending_count() == 0
        last = t.conn.status().last_sync
        assert last is not None and last.counts == {"applied": 2}
        # topped up again: one number was left, below the low-water mark of 2
        assert [n.left for n in t.journal.numbers_left()] == [4]
        states = [s.state for s in seen]
        changes = [a for a, b in zip(states, [None, *states], strict=False) if a != b]
        assert changes == ["syncing", "online", "offline", "syncing", "online"]

    tickets = await queue.queue_list(ctx, department=clinic.gen)
    assert [(x.ticket_number, x.arrived_at) for x in tickets] == [
        ("A-004", T0),
        ("A-001", T0.replace(minute=3)),
        ("A-002", T0.replace(minute=4)),
    ]


async def test_starting_without_the_database_starts_offline(
    ctx: Context, clock: FrozenClock, db_url: str, tmp_path: Path
) -> None:
    clock.set(T0)
    await make_clinic(ctx)
    async with terminal(db_url, tmp_path, clock, "kiosk1", Principal.system("kiosk1")) as t:
        await t.link.cut()
        status = await t.conn.start()
        assert status.state == ConnectionState.OFFLINE
        t.journal.register_patient({"full_name": "George Wright"})
        await t.link.restore()
        await wait_state(t.conn, ConnectionState.ONLINE)
        assert t.journal.pending_count() == 0
        assert t.journal.results()[0].result == "applied"


def test_the_reconnect_task_needs_no_running_loop_to_go_offline(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    clock = FrozenClock(T0)
    db = Database.from_settings(settings)
    ctx = Context(db=db, principal=Principal.system(), settings=settings, clock=clock)
    conn = Connectivity(ctx, Journal(tmp_path / "j.db", clock=clock))
    conn.go_offline("network cable unplugged")
    assert conn.status().state == ConnectionState.OFFLINE
    assert conn.status().last_error == "network cable unplugged"
