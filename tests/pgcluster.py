"""Find or start a PostgreSQL server for tests and benchmarks.

``IQMS_TEST_DATABASE_URL`` (or the URL given) names an existing server; otherwise
a throwaway cluster is created from the installed server binaries, run as the
``postgres`` user when we are root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bindir() -> Path | None:
    """Directory holding initdb and pg_ctl, or None."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.CalledProcessError):
            pass
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    candidates += sorted(glob.glob("/usr/local/pgsql/bin"))
    for cand in candidates:
        if (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    return None


@dataclass
class PostgresServer:
    """A reachable PostgreSQL server on which we may create databases."""

    admin_url: str  # postgresql://user@host:port/postgres
    datadir: Path | None = None
    bindir: Path | None = None
    run_as: str | None = None
    _owned: bool = field(default=False)

    def url(self, database: str) -> str:
        return (
            make_url(self.admin_url)
            .set(drivername="postgresql+psycopg", database=database)
            .render_as_string(hide_password=False)
        )

    def _admin_conninfo(self) -> str:
        return (
            make_url(self.admin_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )

    def execute(self, statement: sql.Composable | str) -> None:
        with psycopg.connect(self._admin_conninfo(), autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self, name: str, template: str | None = None) -> None:
        if template:
            self.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def recreate_database(self, name: str) -> None:
        self.drop_database(name)
        self.create_database(name)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    def stop(self) -> None:
        if self._owned and self.datadir and self.bindir:
            self._run(
                str(self.bindir / "pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(self.datadir)
            )
            self._owned = False
            shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_cluster(base: Path, bindir: Path) -> PostgresServer:
    """initdb + pg_ctl start a private cluster under ``base`` on a free loopback port."""
    run_as = None
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "running as root and there is no 'postgres' user to run the server"
            ) from None
        run_as = "postgres"
        os.chown(base, pw.pw_uid, pw.pw_gid)
    datadir = base / "data"
    port = _free_port()
    server = PostgresServer(
        admin_url=f"postgresql://postgres@127.0.0.1:{port}/postgres",
        datadir=datadir,
        bindir=bindir,
        run_as=run_as,
    )
    init = server._run(
        str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust",
        "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
    )  # fmt: skip
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed: {init.stderr.strip()[:300]}")
    start = server._run(
        str(bindir / "pg_ctl"), "start", "-w", "-D", str(datadir), "-l", str(base / "log"),
        "-o", f"-p {port} -h 127.0.0.1 -k {base} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200",
    )  # fmt: skip
    if start.returncode != 0:
        log = (base / "log").read_text(errors="replace")[-500:] if (base / "log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {start.stderr.strip()[:300]} {log}")
    server._owned = True
    return server


def find_or_start_postgres(url: str | None = None) -> PostgresServer:
    """Use ``url`` / ``IQMS_TEST_DATABASE_URL`` if given, else start a throwaway cluster."""
    url = url or os.environ.get("IQMS_TEST_DATABASE_URL")
    if url:
        server = PostgresServer(admin_url=url)
        try:
            server.execute("SELECT 1")
        except psycopg.Error as exc:
            raise RuntimeError(f"cannot connect to IQMS_TEST_DATABASE_URL: {exc}") from None
        return server
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries found (install the 'postgresql' package)")
    # Not under pytest's private tmp dirs: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="iqms-pg-"))
    try:
        return start_cluster(base, bindir)
    except Exception:
        shutil.rmtree(base, ignore_errors=True)
        raise
